//! Where ratings are kept: the [`RatingRepository`] seam and its SQLite and PostgreSQL
//! implementations.
//!
//! # Layout
//!
//! - [`sqlite`]: [`SqliteRatings`], one database file shared by every replica on a machine (the
//!   default).
//! - [`postgres`]: [`PostgresRatings`], selected with `DATABASE_URL=postgres://…` (docker compose).
//! - `memory`: an in-process reference implementation, compiled for unit tests only: a rating
//!   service that forgets on restart and disagrees across replicas is exactly the bug these
//!   backends fix.
//! - `migrations`: the schema, embedded in the binary and applied at start-up.
//! - `conformance` (tests only): what every implementation must do, run against each of them.
//!
//! Both databases keep one row per `(record_type, record_id, user_id)`, written with an upsert,
//! and compute aggregates with `COUNT` and `SUM` in SQL, so a read costs one index range scan
//! however many users rated. A `put` returns only after the database reports the transaction
//! durable (SQLite `synchronous=FULL` in WAL mode, PostgreSQL `synchronous_commit=on`).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{Aggregate, Id, Stars, UserId};

#[cfg(test)]
pub(crate) mod conformance;
#[cfg(test)]
pub(crate) mod memory;
mod migrations;
pub mod postgres;
pub mod sqlite;

pub use postgres::PostgresRatings;
pub use sqlite::SqliteRatings;

/// Stores one rating per user and record, and aggregates them.
///
/// It is a trait object (`Arc<dyn RatingRepository>`) so that storage is picked at start-up
/// (SQLite or PostgreSQL, from `DATABASE_URL`) without the handlers or the router carrying a type
/// parameter; one virtual call per request is nothing next to a database round trip. It is
/// `async` because every real implementation does I/O.
#[async_trait]
pub trait RatingRepository: Send + Sync + fmt::Debug {
    /// Sets `user_id`'s rating of the record to `value`, replacing any earlier one (an upsert,
    /// so the same call twice leaves one rating), and returns the record's aggregate after the
    /// write. Returning it from the same call lets a database do both in one transaction.
    ///
    /// Returns only once the write is durable.
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

    /// Closes the storage's connections once the server has stopped; calls still running
    /// finish first. The default does nothing.
    async fn close(&self) {}
}

/// Any error, boxed: what a [`RepositoryError`] carries as its cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The storage behind a [`RatingRepository`] failed. Never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The database cannot be reached or is too busy right now (refused or lost connection,
    /// no pooled connection in time, a lock held too long, a server shutting down). Worth
    /// retrying later: HTTP answers 503, and start-up waits for PostgreSQL with backoff.
    #[error("rating storage is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// Anything retrying will not fix: a refused password, a schema that does not match the
    /// migrations, a bug in a query. HTTP answers 500 and start-up gives up.
    #[error("rating storage failed: {0}")]
    Failed(#[source] BoxError),
}

// === impl RepositoryError ===

impl RepositoryError {
    /// Whether the failure is an outage that may end on its own.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<sqlx::Error> for RepositoryError {
    fn from(error: sqlx::Error) -> Self {
        if is_transient(&error) {
            Self::Unavailable(Box::new(error))
        } else {
            Self::Failed(Box::new(error))
        }
    }
}

impl From<sqlx::migrate::MigrateError> for RepositoryError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        use sqlx::migrate::MigrateError;
        let transient = match &error {
            MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => is_transient(e),
            _ => false,
        };
        if transient {
            Self::Unavailable(Box::new(error))
        } else {
            Self::Failed(Box::new(error))
        }
    }
}

/// Whether a sqlx error is an outage (see [`RepositoryError::Unavailable`]) rather than a
/// mistake.
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        // I/O covers refused, reset and timed-out connections and unresolvable host names (a
        // compose service whose container is not up yet); a protocol error is a connection cut
        // mid-message.
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres::is_transient_sqlstate(pg.code())
            } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                sqlite::is_transient_code(db.code().as_deref())
            } else {
                false
            }
        }
        _ => false,
    }
}

/// Runs one storage call, bounded by `limit` on the client side.
///
/// The databases' own timeouts (SQLite's busy timeout, PostgreSQL's `statement_timeout`, the
/// pool's acquire timeout) cover every wait they can see; this also covers the one they cannot:
/// a server or network that stops answering in the middle of a statement.
pub(crate) async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, RepositoryError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(RepositoryError::from),
        Err(_) => Err(RepositoryError::Unavailable(
            format!("no answer from the database within {limit:?}").into(),
        )),
    }
}

/// Converts `SUM(value)` and `COUNT(*)` as the databases return them (`BIGINT`) into an
/// [`Aggregate`].
pub(crate) fn aggregate_from_row(
    record_type: &Id,
    record_id: &Id,
    (count, sum): (i64, i64),
) -> Result<Aggregate, RepositoryError> {
    let count = u64::try_from(count).map_err(|e| RepositoryError::Failed(Box::new(e)))?;
    let sum = u64::try_from(sum).map_err(|e| RepositoryError::Failed(Box::new(e)))?;
    Ok(Aggregate::from_totals(record_type, record_id, sum, count))
}
