//! Where products come from: the [`ProductRepository`] seam and its in-memory catalogue.

use std::collections::BTreeMap;
use std::fmt;

use crate::domain::{Product, ProductId};

/// Looks products up.
///
/// A trait object (`Arc<dyn ProductRepository>`) so that the source is picked at start-up
/// without the handlers or the app factory carrying a type parameter. It is synchronous because
/// the catalogue is seed data in memory; it becomes `async` (as the rating service's is) the
/// day products move to a database.
pub trait ProductRepository: Send + Sync + fmt::Debug {
    /// Every product, ordered by ID.
    fn list(&self) -> Vec<Product>;

    /// One product, if it exists.
    fn find(&self, id: &ProductId) -> Option<Product>;
}

/// A fixed catalogue held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryProducts {
    /// Products by ID.
    products: BTreeMap<String, Product>,
}

// === impl MemoryProducts ===

impl MemoryProducts {
    /// A catalogue of exactly `products`.
    pub fn new(products: impl IntoIterator<Item = Product>) -> Self {
        Self {
            products: products.into_iter().map(|p| (p.id.clone(), p)).collect(),
        }
    }

    /// The demo catalogue: products `1`–`3`.
    pub fn seeded() -> Self {
        let product = |id: &str, name: &str, price_cents, currency: &str| Product {
            id: id.to_owned(),
            name: name.to_owned(),
            price_cents,
            currency: currency.to_owned(),
        };
        Self::new([
            product("1", "Mechanical keyboard", 12_900, "USD"),
            product("2", "27-inch 4K monitor", 32_900, "USD"),
            product("3", "USB-C docking station", 8_950, "EUR"),
        ])
    }
}

impl ProductRepository for MemoryProducts {
    fn list(&self) -> Vec<Product> {
        self.products.values().cloned().collect()
    }

    fn find(&self, id: &ProductId) -> Option<Product> {
        self.products.get(id.as_str()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_holds_products_one_to_three_in_order() {
        let repo = MemoryProducts::seeded();
        let ids: Vec<_> = repo.list().into_iter().map(|p| p.id).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        let id = ProductId::parse("2").unwrap();
        assert_eq!(repo.find(&id).unwrap().price_cents, 32_900);
        assert!(repo.find(&ProductId::parse("4").unwrap()).is_none());
    }
}
