//! Users without the transport: the user record and its identifier.

use serde::Serialize;

/// Longest identifier accepted in a path. 64 covers UUIDs (36) and account keys with room to spare.
pub const MAX_ID_LEN: usize = 64;

/// A user ID from the path: 1–64 characters of `A-Z a-z 0-9 _ -`.
///
/// Restricting IDs to URL-safe characters means they never need escaping in logs or storage
/// keys, and odd path segments (`..`, `%00`, unicode) are refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
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
#[error("a user id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")]
pub struct InvalidId;

/// A user of the demo shop and cinema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Stable identifier, shared with the rating service's `user_id`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_and_bounded() {
        for good in ["1", "u-42", "a_b-C", &"x".repeat(MAX_ID_LEN)] {
            assert!(UserId::parse(good).is_ok(), "{good:?}");
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
            assert_eq!(UserId::parse(bad), Err(InvalidId), "{bad:?}");
        }
    }
}
