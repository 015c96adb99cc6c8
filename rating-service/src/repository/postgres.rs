//! [`PostgresRatings`]: ratings in PostgreSQL, selected with `DATABASE_URL=postgres://…`.
//!
//! - **Durability**: every session runs with `synchronous_commit=on`, whatever the server's
//!   default, so a commit returns only once its WAL record is flushed to disk.
//! - **Timeouts**: `statement_timeout` on every session ends a statement the server is stuck
//!   on; the pool's acquire timeout bounds waiting for (or opening) a connection; the client-side
//!   call timeout covers a server that stops answering.
//! - **Outages**: the pool opens connections lazily and pings an idle one before lending it
//!   (sqlx's `test_before_acquire`), so after the server comes back the next request gets a
//!   fresh connection and succeeds; meanwhile requests fail within the acquire timeout.
//! - **Migrations**: sqlx's migrator holds a PostgreSQL advisory lock while it migrates, so
//!   replicas starting together apply each migration once; the others wait, then find it applied.
//!   Tables go in the first schema of the session's `search_path` (`public` unless the URL says
//!   otherwise, e.g. `?options=-c%20search_path%3Dratings`).
//!
//! No TLS backend is compiled in: compose reaches PostgreSQL over its private network. With the
//! default `sslmode=prefer` the client then speaks plain TCP; `sslmode=require` fails at start-up
//! with a clear error rather than connecting in the clear.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use super::{RatingRepository, RepositoryError, aggregate_from_row, bounded, migrations};
use crate::domain::{Aggregate, Id, Stars, UserId};
use crate::storage::StorageTimings;

/// Connections per replica. Each request holds one for a statement or two; 8 serves a few
/// hundred requests a second per replica and leaves the server's default 100 connections room
/// for a dozen replicas.
const POOL_SIZE: u32 = 8;

/// Bound on migrating at start-up, server side (`statement_timeout` of the migrating session)
/// and client side. Far above what this schema needs, because it includes waiting for another
/// replica's migration to release the advisory lock.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Name shown in `pg_stat_activity`, so an operator can tell our sessions apart.
const APPLICATION_NAME: &str = "rating-service";

/// Upsert: a user's second rating of a record replaces the first. `ON CONFLICT` makes it
/// atomic under concurrency: two sessions upserting one key never produce two rows.
const UPSERT: &str = "INSERT INTO ratings (record_type, record_id, user_id, value) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (record_type, record_id, user_id) \
     DO UPDATE SET value = excluded.value, updated_at = now()";

/// Count and sum of a record's ratings, computed by PostgreSQL over the primary key's range
/// (`SUM` of a `SMALLINT` is a `BIGINT`).
const AGGREGATE: &str = "SELECT COUNT(*), COALESCE(SUM(value), 0)::BIGINT FROM ratings \
     WHERE record_type = $1 AND record_id = $2";

/// A [`RatingRepository`] in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresRatings {
    /// Connections to the database.
    pool: PgPool,
    /// Bound on one call, acquiring a connection included.
    call_timeout: Duration,
}

// === impl PostgresRatings ===

impl PostgresRatings {
    /// Connects once to migrate the database, then pools connections to it (opened on demand).
    ///
    /// Makes one attempt: waiting for a database that is still starting is the caller's choice
    /// ([`crate::storage::open`] retries with backoff).
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`] when the server cannot be reached or is not ready;
    /// [`RepositoryError::Failed`] when it refuses us (password, missing database, TLS required)
    /// or holds a schema the migrations do not recognise.
    #[tracing::instrument(skip_all, fields(host = options.get_host(), database = options.get_database()))]
    pub async fn open(
        options: &PgConnectOptions,
        timings: &StorageTimings,
    ) -> Result<Self, RepositoryError> {
        let options = options.clone().application_name(APPLICATION_NAME).options([
            (
                "statement_timeout",
                timings.statement_timeout.as_millis().to_string(),
            ),
            ("synchronous_commit", "on".to_owned()),
        ]);
        // Later `-c` settings win, so the migrating session gets the longer timeout.
        let migrating = options.clone().options([(
            "statement_timeout",
            MIGRATION_TIMEOUT.as_millis().to_string(),
        )]);
        let mut conn = bounded(timings.acquire_timeout, migrating.connect()).await?;
        let migrator = migrations::postgres().await?;
        // `run_direct`, not `run`: `run` is generic over `Acquire<'a>`, which makes the future
        // not `Send` for spawning (sqlx's own comment on `run_direct` says so).
        match tokio::time::timeout(MIGRATION_TIMEOUT, migrator.run_direct(&mut conn)).await {
            Ok(migrated) => migrated?,
            Err(_) => {
                return Err(RepositoryError::Unavailable(
                    format!("migrations did not finish within {MIGRATION_TIMEOUT:?}").into(),
                ));
            }
        }
        // The schema is in place; a failure to say goodbye politely changes nothing.
        let _ = conn.close().await;

        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(timings.acquire_timeout)
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            call_timeout: timings.call_timeout,
        })
    }
}

#[async_trait]
impl RatingRepository for PostgresRatings {
    async fn put(
        &self,
        record_type: &Id,
        record_id: &Id,
        user_id: &UserId,
        value: Stars,
    ) -> Result<Aggregate, RepositoryError> {
        let totals = bounded(self.call_timeout, async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(UPSERT)
                .bind(record_type.as_str())
                .bind(record_id.as_str())
                .bind(user_id.as_str())
                .bind(i16::from(value.get()))
                .execute(&mut *tx)
                .await?;
            let totals: (i64, i64) = sqlx::query_as(AGGREGATE)
                .bind(record_type.as_str())
                .bind(record_id.as_str())
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(totals)
        })
        .await?;
        aggregate_from_row(record_type, record_id, totals)
    }

    async fn aggregate(
        &self,
        record_type: &Id,
        record_id: &Id,
    ) -> Result<Aggregate, RepositoryError> {
        let totals = bounded(
            self.call_timeout,
            sqlx::query_as(AGGREGATE)
                .bind(record_type.as_str())
                .bind(record_id.as_str())
                .fetch_one(&self.pool),
        )
        .await?;
        aggregate_from_row(record_type, record_id, totals)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whether a SQLSTATE is an outage or contention rather than a mistake: connection exceptions
/// (class 08), insufficient resources (53: too many connections, disk full), operator
/// intervention (57: shutting down, starting up, our own `statement_timeout`), system errors
/// (58), and serialization failures or deadlocks (40001, 40P01) and lock timeouts (55P03), which
/// a retry resolves.
pub(super) fn is_transient_sqlstate(code: &str) -> bool {
    matches!(code.get(..2), Some("08" | "53" | "57" | "58"))
        || matches!(code, "40001" | "40P01" | "55P03")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::repository::conformance::{self, TestSchema};

    async fn open_in(schema: &TestSchema) -> PostgresRatings {
        PostgresRatings::open(&schema.options, &conformance::patient_timings())
            .await
            .unwrap()
    }

    /// How many rows the table holds for a record, counted directly.
    async fn rows(repo: &PostgresRatings, record_type: &str, record_id: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM ratings WHERE record_type = $1 AND record_id = $2")
            .bind(record_type)
            .bind(record_id)
            .fetch_one(&repo.pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn passes_the_repository_conformance_suite() {
        let Some(schema) = TestSchema::create("conformance").await else {
            return;
        };
        let repo = open_in(&schema).await;
        conformance::run_all(&repo).await;
        repo.close().await;
        schema.drop().await;
    }

    #[tokio::test]
    async fn an_upsert_leaves_one_row_per_user() {
        let Some(schema) = TestSchema::create("upsert").await else {
            return;
        };
        let repo = open_in(&schema).await;
        let (t, r, u) = conformance::ids("upsert");
        for value in [1, 5, 3] {
            repo.put(&t, &r, &u, Stars::new(value).unwrap())
                .await
                .unwrap();
        }
        assert_eq!(rows(&repo, t.as_str(), r.as_str()).await, 1);
        let agg = repo.aggregate(&t, &r).await.unwrap();
        assert_eq!((agg.count, agg.average), (1, Some(3.0)));
        repo.close().await;
        schema.drop().await;
    }

    #[tokio::test]
    async fn sessions_commit_synchronously_with_a_statement_timeout() {
        let Some(schema) = TestSchema::create("settings").await else {
            return;
        };
        let repo = PostgresRatings::open(&schema.options, &StorageTimings::default())
            .await
            .unwrap();
        let mut conn = repo.pool.acquire().await.unwrap();
        let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(sync, "on");
        assert_eq!(timeout, "3s");
        drop(conn);
        repo.close().await;
        schema.drop().await;
    }

    #[tokio::test]
    async fn two_pools_on_one_database_agree() {
        let Some(schema) = TestSchema::create("agree").await else {
            return;
        };
        let (a, b) = (open_in(&schema).await, open_in(&schema).await);
        let (t, r, u) = conformance::ids("agree");
        let written = a.put(&t, &r, &u, Stars::new(4).unwrap()).await.unwrap();
        assert_eq!(b.aggregate(&t, &r).await.unwrap(), written);
        let other = UserId::parse("someone-else").unwrap();
        let written = b.put(&t, &r, &other, Stars::new(1).unwrap()).await.unwrap();
        assert_eq!((written.count, written.average), (2, Some(2.5)));
        assert_eq!(a.aggregate(&t, &r).await.unwrap(), written);
        a.close().await;
        b.close().await;
        schema.drop().await;
    }

    #[tokio::test]
    async fn concurrent_writes_of_one_users_rating_from_two_pools_leave_one_row() {
        let Some(schema) = TestSchema::create("race").await else {
            return;
        };
        let (a, b) = (
            Arc::new(open_in(&schema).await),
            Arc::new(open_in(&schema).await),
        );
        let (t, r, u) = conformance::ids("race");
        let writes = (0..40).map(|i| {
            let repo = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (t, r, u) = (t.clone(), r.clone(), u.clone());
            tokio::spawn(async move {
                let value = Stars::new(i % 5 + 1).unwrap();
                repo.put(&t, &r, &u, value).await.map(|agg| agg.count)
            })
        });
        for count in futures::future::join_all(writes).await {
            assert_eq!(count.unwrap().unwrap(), 1, "every answer saw one rating");
        }
        assert_eq!(rows(&a, t.as_str(), r.as_str()).await, 1);
        assert_eq!(b.aggregate(&t, &r).await.unwrap().count, 1);
        a.close().await;
        b.close().await;
        schema.drop().await;
    }

    #[tokio::test]
    async fn many_pools_migrating_one_new_schema_at_once_all_succeed() {
        let Some(schema) = TestSchema::create("migrate").await else {
            return;
        };
        let opens = (0..4).map(|_| {
            let options = schema.options.clone();
            tokio::spawn(async move {
                PostgresRatings::open(&options, &conformance::patient_timings()).await
            })
        });
        let repos: Vec<_> = futures::future::join_all(opens)
            .await
            .into_iter()
            .map(|opened| opened.unwrap().unwrap())
            .collect();
        let seeded = repos[0]
            .aggregate(&conformance::id("movie"), &conformance::id("1"))
            .await
            .unwrap();
        assert_eq!(seeded.count, 3, "seeded exactly once");
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&repos[1].pool)
            .await
            .unwrap();
        assert_eq!(applied, 2);
        for repo in repos {
            repo.close().await;
        }
        schema.drop().await;
    }

    #[tokio::test]
    async fn reopening_keeps_ratings_and_never_reseeds_over_them() {
        let Some(schema) = TestSchema::create("restart").await else {
            return;
        };
        let (movie, first) = (conformance::id("movie"), conformance::id("1"));
        let alice = UserId::parse("alice").unwrap();
        let repo = open_in(&schema).await;
        // The seed gave alice 5 stars for movie 1; she changes her mind.
        let changed = repo
            .put(&movie, &first, &alice, Stars::new(1).unwrap())
            .await
            .unwrap();
        assert_eq!(changed.count, 3);
        repo.close().await;
        let reopened = open_in(&schema).await;
        assert_eq!(reopened.aggregate(&movie, &first).await.unwrap(), changed);
        reopened.close().await;
        schema.drop().await;
    }

    #[tokio::test]
    async fn a_wrong_password_fails_instead_of_waiting() {
        let Some(schema) = TestSchema::create("password").await else {
            return;
        };
        let wrong = schema
            .options
            .clone()
            .password("certainly-not-the-password");
        let opened = PostgresRatings::open(&wrong, &StorageTimings::default()).await;
        schema.drop().await;
        match opened {
            Err(err) => assert!(
                !err.is_unavailable(),
                "a refused password is no outage: {err}"
            ),
            // A server that trusts its clients ignores passwords: nothing to check there.
            Ok(repo) => {
                eprintln!("the test server accepted a wrong password (trust auth); not checked");
                repo.close().await;
            }
        }
    }

    #[tokio::test]
    async fn a_server_that_is_not_listening_is_unavailable() {
        let options = PgConnectOptions::new().host("127.0.0.1").port(1);
        let err = PostgresRatings::open(&options, &StorageTimings::default())
            .await
            .unwrap_err();
        assert!(err.is_unavailable(), "{err}");
    }

    #[test]
    fn outages_are_transient_and_mistakes_are_not() {
        for transient in [
            "08006", "08001", "53300", "57P01", "57P03", "57014", "40001", "40P01",
        ] {
            assert!(is_transient_sqlstate(transient), "{transient}");
        }
        for not in ["28P01", "3D000", "42P01", "23505", "22001", ""] {
            assert!(!is_transient_sqlstate(not), "{not}");
        }
    }
}
