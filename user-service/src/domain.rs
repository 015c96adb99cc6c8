//! Users without the transport: the user record and its identifier.

use serde::Serialize;

pub use common::http::MAX_ID_LEN;

/// A user ID from the path: 1–64 characters of `A-Z a-z 0-9 _ -`,
/// checked by [`common::http::is_valid_id`], shared by every service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// Checks a raw path segment.
    ///
    /// # Errors
    ///
    /// [`InvalidId`] when it is empty, longer than [`MAX_ID_LEN`] or has other characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        if common::http::is_valid_id(raw) {
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
    fn parse_accepts_valid_ids_only() {
        // The full table of good and bad IDs is `common::http::is_valid_id`'s.
        assert_eq!(
            UserId::parse("u-42").map(|id| id.as_str().to_owned()),
            Ok("u-42".to_owned())
        );
        assert_eq!(UserId::parse("a.b"), Err(InvalidId));
    }
}
