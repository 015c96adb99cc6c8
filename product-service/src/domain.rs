//! Products without the transport: the product record and its identifier.

use serde::Serialize;

/// Longest identifier accepted in a path. 64 covers UUIDs (36) and SKUs with room to spare.
pub const MAX_ID_LEN: usize = 64;

/// A product ID from the path: 1–64 characters of `A-Z a-z 0-9 _ -`.
///
/// Restricting IDs to URL-safe characters means they never need escaping in logs or storage
/// keys, and odd path segments (`..`, `%00`, unicode) are refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductId(String);

impl ProductId {
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
#[error("a product id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")]
pub struct InvalidId;

/// A product for sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    /// Stable identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Price in the currency's minor unit (cents), so that no float ever holds money.
    pub price_cents: u64,
    /// ISO 4217 currency code, e.g. `USD`.
    pub currency: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_and_bounded() {
        for good in ["1", "sku_42-b", &"x".repeat(MAX_ID_LEN)] {
            assert!(ProductId::parse(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "..",
            "a.b",
            "a/b",
            "é",
            "\0",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            assert_eq!(ProductId::parse(bad), Err(InvalidId), "{bad:?}");
        }
    }
}
