//! Products without the transport: the product record and its identifier.

use serde::Serialize;

pub use common::http::MAX_ID_LEN;

/// A product ID from the path: 1–64 characters of `A-Z a-z 0-9 _ -`,
/// checked by [`common::http::is_valid_id`], shared by every service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductId(String);

impl ProductId {
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
    fn parse_accepts_valid_ids_only() {
        // The full table of good and bad IDs is `common::http::is_valid_id`'s.
        assert_eq!(
            ProductId::parse("sku_42-b").map(|id| id.as_str().to_owned()),
            Ok("sku_42-b".to_owned())
        );
        assert_eq!(ProductId::parse("a.b"), Err(InvalidId));
    }
}
