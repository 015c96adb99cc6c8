//! [`MemoryRatings`]: a reference [`RatingRepository`] in process memory, for unit tests only.
//!
//! It is what the service used before it had a database, and why it needed one: every replica
//! had its own ratings and lost them on restart. It stays as the simplest correct model of the
//! trait, checked by the same conformance suite as the real backends.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{RatingRepository, RepositoryError};
use crate::domain::{Aggregate, Id, Stars, UserId};

/// Ratings per `(record_type, record_id)`, each a map from user to stars.
type Ratings = HashMap<(Id, Id), BTreeMap<UserId, Stars>>;

/// A [`RatingRepository`] in process memory: per instance, lost on restart.
#[derive(Debug, Default)]
pub(crate) struct MemoryRatings {
    /// Ratings, behind a lock held only for map operations, never across an `.await`.
    ratings: Mutex<Ratings>,
}

// === impl MemoryRatings ===

impl MemoryRatings {
    fn with_ratings<T>(&self, f: impl FnOnce(&mut Ratings) -> T) -> T {
        // Every critical section is a single map operation, so a panic cannot leave the map
        // half-updated: recovering from poisoning is safe.
        let mut ratings = self
            .ratings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut ratings)
    }
}

#[async_trait]
impl RatingRepository for MemoryRatings {
    async fn put(
        &self,
        record_type: &Id,
        record_id: &Id,
        user_id: &UserId,
        value: Stars,
    ) -> Result<Aggregate, RepositoryError> {
        Ok(self.with_ratings(|ratings| {
            let users = ratings
                .entry((record_type.clone(), record_id.clone()))
                .or_default();
            users.insert(user_id.clone(), value);
            Aggregate::of(record_type, record_id, users.values().copied())
        }))
    }

    async fn aggregate(
        &self,
        record_type: &Id,
        record_id: &Id,
    ) -> Result<Aggregate, RepositoryError> {
        Ok(self.with_ratings(|ratings| {
            let key = (record_type.clone(), record_id.clone());
            let users = ratings.get(&key).into_iter().flat_map(BTreeMap::values);
            Aggregate::of(record_type, record_id, users.copied())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::conformance;

    #[tokio::test]
    async fn passes_the_repository_conformance_suite() {
        conformance::run_all(&MemoryRatings::default()).await;
    }
}
