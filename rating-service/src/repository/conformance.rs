//! What every [`RatingRepository`] must do, as checks each backend's tests run against itself.
//!
//! Each check uses record IDs of its own, so the checks can share a database (and run while
//! other tests use it) without seeing each other's ratings.

use futures::future::join_all;

use std::time::Duration;

use super::RatingRepository;
use crate::domain::{Id, Stars, UserId};
use crate::storage::StorageTimings;

/// Timings for tests of behaviour under contention: the production defaults turn a queue of
/// commits that drains slowly into 503s after a second, which is right for a service but makes
/// a correctness test depend on how loaded the CI machine is. Tests of the timeouts themselves
/// set their own.
pub(crate) fn patient_timings() -> StorageTimings {
    StorageTimings {
        acquire_timeout: Duration::from_secs(30),
        statement_timeout: Duration::from_secs(30),
        call_timeout: Duration::from_secs(60),
    }
}

/// An identifier, for tests.
pub(crate) fn id(raw: &str) -> Id {
    Id::parse("id", raw).unwrap()
}

/// A record type, a record ID and a user unique to this call, tagged with `label`.
pub(crate) fn ids(label: &str) -> (Id, Id, UserId) {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    (
        id("movie"),
        id(&format!("{label}-{unique}")),
        UserId::parse(&format!("user-{unique}")).unwrap(),
    )
}

fn stars(value: i64) -> Stars {
    Stars::new(value).unwrap()
}

/// Runs every check against `repo`.
pub(crate) async fn run_all(repo: &dyn RatingRepository) {
    an_unrated_record_has_no_average(repo).await;
    put_answers_the_aggregate_that_reads_then_see(repo).await;
    the_same_put_twice_is_one_rating(repo).await;
    a_users_new_value_replaces_the_old_one(repo).await;
    the_average_is_the_mean_of_all_users(repo).await;
    records_of_other_types_or_ids_are_separate(repo).await;
    concurrent_ratings_by_different_users_all_count(repo).await;
}

async fn an_unrated_record_has_no_average(repo: &dyn RatingRepository) {
    let (t, r, _) = ids("unrated");
    let agg = repo.aggregate(&t, &r).await.unwrap();
    assert_eq!((agg.count, agg.average), (0, None));
    assert_eq!(
        (agg.record_type.as_str(), agg.record_id.as_str()),
        (t.as_str(), r.as_str())
    );
}

async fn put_answers_the_aggregate_that_reads_then_see(repo: &dyn RatingRepository) {
    let (t, r, u) = ids("put");
    let written = repo.put(&t, &r, &u, stars(4)).await.unwrap();
    assert_eq!((written.count, written.average), (1, Some(4.0)));
    assert_eq!(repo.aggregate(&t, &r).await.unwrap(), written);
}

async fn the_same_put_twice_is_one_rating(repo: &dyn RatingRepository) {
    let (t, r, u) = ids("twice");
    repo.put(&t, &r, &u, stars(4)).await.unwrap();
    let again = repo.put(&t, &r, &u, stars(4)).await.unwrap();
    assert_eq!((again.count, again.average), (1, Some(4.0)));
}

async fn a_users_new_value_replaces_the_old_one(repo: &dyn RatingRepository) {
    let (t, r, u) = ids("replace");
    let other = UserId::parse("other").unwrap();
    repo.put(&t, &r, &u, stars(4)).await.unwrap();
    repo.put(&t, &r, &other, stars(5)).await.unwrap();
    let agg = repo.put(&t, &r, &u, stars(1)).await.unwrap();
    assert_eq!((agg.count, agg.average), (2, Some(3.0)));
}

async fn the_average_is_the_mean_of_all_users(repo: &dyn RatingRepository) {
    let (t, r, _) = ids("mean");
    for (user, value) in [("a", 5), ("b", 4), ("c", 4)] {
        repo.put(&t, &r, &UserId::parse(user).unwrap(), stars(value))
            .await
            .unwrap();
    }
    let agg = repo.aggregate(&t, &r).await.unwrap();
    assert_eq!(agg.count, 3);
    assert_eq!(agg.average, Some(13.0 / 3.0), "exactly the mean, as f64");
}

async fn records_of_other_types_or_ids_are_separate(repo: &dyn RatingRepository) {
    let (t, r, u) = ids("separate");
    repo.put(&t, &r, &u, stars(5)).await.unwrap();
    assert_eq!(repo.aggregate(&id("book"), &r).await.unwrap().count, 0);
    let (_, other_id, _) = ids("separate");
    assert_eq!(repo.aggregate(&t, &other_id).await.unwrap().count, 0);
}

async fn concurrent_ratings_by_different_users_all_count(repo: &dyn RatingRepository) {
    let (t, r, _) = ids("crowd");
    let users: Vec<UserId> = (0..16)
        .map(|i| UserId::parse(&format!("user-{i}")).unwrap())
        .collect();
    let writes = users
        .iter()
        .enumerate()
        .map(|(i, user)| repo.put(&t, &r, user, stars(i as i64 % 5 + 1)));
    for written in join_all(writes).await {
        let written = written.unwrap();
        assert!((1..=16).contains(&written.count));
    }
    let agg = repo.aggregate(&t, &r).await.unwrap();
    let expected: i64 = (0..16).map(|i| i % 5 + 1).sum();
    assert_eq!(agg.count, 16);
    assert_eq!(agg.average, Some(expected as f64 / 16.0));
}

/// A schema of its own in the PostgreSQL database `DATABASE_URL` names, so that tests running
/// in parallel (nextest runs each in its own process) never see each other's tables.
#[derive(Debug)]
pub(crate) struct TestSchema {
    /// Connection options whose `search_path` is the new schema.
    pub(crate) options: sqlx::postgres::PgConnectOptions,
    /// The schema's name.
    name: String,
    /// Options for the database itself, to drop the schema.
    admin: sqlx::postgres::PgConnectOptions,
}

impl TestSchema {
    /// Creates a fresh schema, or returns `None` after saying why when `DATABASE_URL` is not a
    /// PostgreSQL URL. Under CI (`CI` set) a missing database fails the test instead, so CI
    /// cannot pass by skipping.
    pub(crate) async fn create(label: &str) -> Option<Self> {
        use sqlx::ConnectOptions;

        let url = std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"));
        let Some(url) = url else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but DATABASE_URL is not a postgres:// URL: PostgreSQL tests must run in CI"
            );
            eprintln!(
                "SKIPPED PostgreSQL test ({label}): DATABASE_URL is not a postgres:// URL \
                 (.ci/run starts a cluster and sets it)"
            );
            return None;
        };
        let admin: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        let name = format!("rating_test_{label}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin.connect().await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let options = admin.clone().options([("search_path", &name)]);
        Some(Self {
            options,
            name,
            admin,
        })
    }

    /// Drops the schema and everything in it.
    pub(crate) async fn drop(self) {
        use sqlx::ConnectOptions;

        let mut conn = self.admin.connect().await.unwrap();
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}
