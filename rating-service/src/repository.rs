//! Where ratings are kept: the [`RatingRepository`] seam and its in-memory implementation.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::{Aggregate, Id, Stars, UserId};

/// Stores one rating per user and record, and aggregates them.
///
/// It is a trait object (`Arc<dyn RatingRepository>`) so that storage is picked at start-up
/// (memory today, SQLite or PostgreSQL next) without the handlers or the router carrying a type
/// parameter; one virtual call per request is nothing next to a database round trip. It is
/// `async` because every real implementation does I/O.
#[async_trait]
pub trait RatingRepository: Send + Sync + fmt::Debug {
    /// Sets `user_id`'s rating of the record to `value`, replacing any earlier one (an upsert,
    /// so the same call twice leaves one rating), and returns the record's aggregate after the
    /// write. Returning it from the same call lets a database do both in one transaction.
    ///
    /// # Errors
    ///
    /// [`RepositoryError`] when the storage cannot be reached or refuses the write.
    async fn put(
        &self,
        record_type: &Id,
        record_id: &Id,
        user_id: &UserId,
        value: Stars,
    ) -> Result<Aggregate, RepositoryError>;

    /// The aggregate of all ratings of a record; a record nobody rated has count 0.
    ///
    /// # Errors
    ///
    /// [`RepositoryError`] when the storage cannot be reached.
    async fn aggregate(
        &self,
        record_type: &Id,
        record_id: &Id,
    ) -> Result<Aggregate, RepositoryError>;
}

/// The storage behind a [`RatingRepository`] failed. Never shown to clients.
#[derive(Debug, thiserror::Error)]
#[error("rating storage failed: {0}")]
pub struct RepositoryError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Ratings per `(record_type, record_id)`, each a map from user to stars.
type Ratings = HashMap<(Id, Id), BTreeMap<UserId, Stars>>;

/// A [`RatingRepository`] in process memory: per instance, lost on restart.
#[derive(Debug, Default)]
pub struct MemoryRatings {
    /// Ratings, behind a lock held only for map operations, never across an `.await`.
    ratings: Mutex<Ratings>,
}

// === impl MemoryRatings ===

impl MemoryRatings {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    /// A repository with demo ratings of movies `1`–`3` (the metadata service's first films).
    pub fn seeded() -> Self {
        let seed: &[(&str, &str, u8)] = &[
            ("1", "alice", 5),
            ("1", "bob", 4),
            ("1", "carol", 5),
            ("2", "alice", 4),
            ("2", "bob", 3),
            ("3", "carol", 5),
        ];
        let mut ratings = Ratings::new();
        for &(movie, user, stars) in seed {
            // The seed is written above and checked by the unit tests.
            let (Ok(t), Ok(id), Ok(user), Ok(stars)) = (
                Id::parse("record_type", "movie"),
                Id::parse("record_id", movie),
                UserId::parse(user),
                Stars::new(stars.into()),
            ) else {
                continue;
            };
            ratings.entry((t, id)).or_default().insert(user, stars);
        }
        Self {
            ratings: Mutex::new(ratings),
        }
    }

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

    fn id(raw: &str) -> Id {
        Id::parse("id", raw).unwrap()
    }

    #[tokio::test]
    async fn seed_rates_the_first_three_movies() {
        let repo = MemoryRatings::seeded();
        for movie in ["1", "2", "3"] {
            let agg = repo.aggregate(&id("movie"), &id(movie)).await.unwrap();
            assert!(agg.count > 0, "movie {movie} is seeded");
        }
        let first = repo.aggregate(&id("movie"), &id("1")).await.unwrap();
        assert_eq!(first.count, 3);
        assert_eq!(
            repo.aggregate(&id("movie"), &id("4")).await.unwrap().count,
            0
        );
    }

    #[tokio::test]
    async fn put_replaces_the_users_earlier_rating() {
        let repo = MemoryRatings::new();
        let (t, r) = (id("movie"), id("9"));
        let alice = UserId::parse("alice").unwrap();
        repo.put(&t, &r, &alice, Stars::new(2).unwrap())
            .await
            .unwrap();
        let agg = repo
            .put(&t, &r, &alice, Stars::new(4).unwrap())
            .await
            .unwrap();
        assert_eq!((agg.count, agg.average), (1, Some(4.0)));
        assert_eq!(repo.aggregate(&t, &r).await.unwrap(), agg);
    }
}
