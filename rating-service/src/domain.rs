//! Ratings without the transport: identifiers, one user's rating and a record's aggregate.

use serde::Serialize;

/// Longest identifier accepted, in a path or in a body (the same bound for both).
pub use common::http::MAX_ID_LEN;

/// The lowest rating a user can give.
pub const MIN_STARS: u8 = 1;

/// The highest rating a user can give.
pub const MAX_STARS: u8 = 5;

/// A record type or record ID from the path: 1–64 characters of `A-Z a-z 0-9 _ -`.
///
/// Restricting IDs to URL-safe characters means they never need escaping in logs, storage keys
/// or upstream URLs, and odd path segments (`..`, `%00`, unicode) are refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    /// Checks a raw path segment; `field` names it in the error.
    ///
    /// # Errors
    ///
    /// [`InvalidId`] when it is empty, longer than [`MAX_ID_LEN`] or has other characters.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidId> {
        if common::http::is_valid_id(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidId { field })
        }
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A path identifier that is not 1–64 characters of `A-Z a-z 0-9 _ -`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")]
pub struct InvalidId {
    /// Which path parameter was refused.
    pub field: &'static str,
}

/// The user who gives a rating: 1–64 characters, not blank, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// Checks a user ID from a request body.
    ///
    /// # Errors
    ///
    /// [`InvalidRating::UserId`] when it is blank, too long or has control characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidRating> {
        let valid = !raw.trim().is_empty()
            && raw.chars().count() <= MAX_ID_LEN
            && !raw.chars().any(char::is_control);
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidRating::UserId)
        }
    }

    /// The user ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A rating value, 1 to 5 stars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stars(u8);

impl Stars {
    /// Checks a rating value.
    ///
    /// # Errors
    ///
    /// [`InvalidRating::Value`] outside 1–5.
    pub fn new(value: i64) -> Result<Self, InvalidRating> {
        u8::try_from(value)
            .ok()
            .filter(|v| (MIN_STARS..=MAX_STARS).contains(v))
            .map(Self)
            .ok_or(InvalidRating::Value(value))
    }

    /// The number of stars.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// A well-formed rating body whose values cannot be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRating {
    /// `user_id` is blank, longer than 64 characters or has control characters.
    #[error("user_id must be 1-64 characters, not blank, without control characters")]
    UserId,
    /// `value` is not within 1–5.
    #[error("value must be an integer from 1 to 5, got {0}")]
    Value(i64),
}

/// What `GET` and `PUT /ratings/{record_type}/{record_id}` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    /// The kind of record rated, e.g. `movie`.
    pub record_type: String,
    /// The record rated.
    pub record_id: String,
    /// Mean of all ratings; `None` (JSON `null`) when there are none.
    pub average: Option<f64>,
    /// How many users rated it.
    pub count: u64,
}

impl Aggregate {
    /// Aggregates the ratings of one record.
    pub fn of(record_type: &Id, record_id: &Id, ratings: impl IntoIterator<Item = Stars>) -> Self {
        let (sum, count) = ratings.into_iter().fold((0u64, 0u64), |(sum, n), s| {
            (sum + u64::from(s.get()), n + 1)
        });
        Self::from_totals(record_type, record_id, sum, count)
    }

    /// The aggregate of `count` ratings adding up to `sum` stars, as a database's `SUM` and
    /// `COUNT` report them.
    pub fn from_totals(record_type: &Id, record_id: &Id, sum: u64, count: u64) -> Self {
        Self {
            record_type: record_type.as_str().to_owned(),
            record_id: record_id.as_str().to_owned(),
            // Sums and counts stay far below 2^52, so the conversions to f64 are exact and every
            // backend answers the same average for the same ratings.
            average: (count > 0).then(|| sum as f64 / count as f64),
            count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_and_bounded() {
        for good in ["1", "movie", "a_b-C9", &"x".repeat(MAX_ID_LEN)] {
            assert!(Id::parse("record_id", good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "..",
            "a.b",
            "a/b",
            "é",
            "\0",
            " ",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            assert_eq!(
                Id::parse("record_id", bad),
                Err(InvalidId { field: "record_id" }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn stars_accept_one_to_five_only() {
        assert_eq!(Stars::new(1).map(Stars::get), Ok(1));
        assert_eq!(Stars::new(5).map(Stars::get), Ok(5));
        for bad in [0, 6, -1, 256, i64::MAX] {
            assert_eq!(Stars::new(bad), Err(InvalidRating::Value(bad)));
        }
    }

    #[test]
    fn user_ids_must_be_present_and_short() {
        assert!(UserId::parse("alice").is_ok());
        assert!(
            UserId::parse(&"é".repeat(MAX_ID_LEN)).is_ok(),
            "counted in characters"
        );
        for bad in ["", "  ", "a\nb", &"u".repeat(MAX_ID_LEN + 1)] {
            assert_eq!(UserId::parse(bad), Err(InvalidRating::UserId), "{bad:?}");
        }
    }

    #[test]
    fn aggregate_of_nothing_has_no_average() {
        let (t, id) = (
            Id::parse("t", "movie").unwrap(),
            Id::parse("i", "1").unwrap(),
        );
        let none = Aggregate::of(&t, &id, []);
        assert_eq!((none.average, none.count), (None, 0));
        let some = Aggregate::of(&t, &id, [Stars::new(4).unwrap(), Stars::new(5).unwrap()]);
        assert_eq!((some.average, some.count), (Some(4.5), 2));
    }
}
