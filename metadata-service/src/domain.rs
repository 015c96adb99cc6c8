//! Movie metadata without the transport: the movie record and its identifier.

use serde::Serialize;

/// Longest identifier accepted in a path. 64 covers UUIDs (36) and catalogue keys with room to spare.
pub const MAX_ID_LEN: usize = 64;

/// A movie ID from the path: 1–64 characters of `A-Z a-z 0-9 _ -`.
///
/// Restricting IDs to URL-safe characters means they never need escaping in logs or storage
/// keys, and odd path segments (`..`, `%00`, unicode) are refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MovieId(String);

impl MovieId {
    /// Checks a raw path segment.
    ///
    /// # Errors
    ///
    /// [`InvalidId`] when it is empty, longer than [`MAX_ID_LEN`] or has other characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        let valid = !raw.is_empty()
            && raw.len() <= MAX_ID_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidId)
        }
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A path identifier that is not 1–64 characters of `A-Z a-z 0-9 _ -`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a movie id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")]
pub struct InvalidId;

/// What we know about a movie, apart from its ratings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Movie {
    /// Stable identifier, shared with the rating service's `record_id`.
    pub id: String,
    /// Title.
    pub title: String,
    /// One-paragraph synopsis.
    pub description: String,
    /// Director's name.
    pub director: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_and_bounded() {
        for good in ["1", "tt0034583", "a_b-C", &"x".repeat(MAX_ID_LEN)] {
            assert!(MovieId::parse(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "..",
            "a.b",
            "a/b",
            "é",
            "%00",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            assert_eq!(MovieId::parse(bad), Err(InvalidId), "{bad:?}");
        }
    }
}
