//! [`SqliteRatings`]: ratings in one SQLite file that every replica on the machine opens.
//!
//! Replicas are separate processes sharing one file, so the settings are chosen for that:
//!
//! - **WAL journal**: readers never block the writer nor each other, across processes; only
//!   writers take turns. It is a property of the file, set once under the migration lock.
//! - **`synchronous=FULL`**: in WAL mode, every commit syncs the WAL before it returns, so a
//!   rating we acknowledged survives a power cut, not just a `kill -9` (`NORMAL` would only
//!   guarantee the latter). A rating is one small commit, so the sync is the whole cost.
//! - **Busy timeout**: a writer that finds another process's write in progress waits (SQLite
//!   retries inside `sqlite3_step`) instead of failing at once with `SQLITE_BUSY`.
//! - **Migrations under a file lock**: sqlx's migrator locks PostgreSQL with an advisory lock but
//!   does nothing for SQLite, and switching a new file to WAL needs an exclusive lock that the
//!   busy timeout does not wait for. Two replicas started at once on a new file would race on
//!   both, so opening takes an exclusive `flock` on `<file>.lock` first (released by the kernel
//!   when the holder exits, even after `kill -9`).
//!
//! The file must be on a local file system: SQLite's locking is not reliable over NFS.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use tokio::time::Instant;

use super::{RatingRepository, RepositoryError, aggregate_from_row, bounded, migrations};
use crate::domain::{Aggregate, Id, Stars, UserId};
use crate::storage::StorageTimings;

/// Connections per replica. WAL lets readers run side by side and writers queue on the file's
/// lock whatever the pool size, so a few connections keep reads off the writers' queue without
/// one thread per request (each sqlx SQLite connection is a worker thread).
const POOL_SIZE: u32 = 4;

/// How long to wait for another process's migration before giving up. Migrating this schema
/// takes milliseconds; 30 s means the holder is stuck, not slow.
const MIGRATION_LOCK_PATIENCE: Duration = Duration::from_secs(30);

/// How often to try the migration lock again. Short, since the holder is done in milliseconds.
const MIGRATION_LOCK_POLL: Duration = Duration::from_millis(20);

/// Upsert: a user's second rating of a record replaces the first.
const UPSERT: &str = "INSERT INTO ratings (record_type, record_id, user_id, value) \
     VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (record_type, record_id, user_id) \
     DO UPDATE SET value = excluded.value, \
                   updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// Count and sum of a record's ratings, computed by SQLite over the primary key's range.
const AGGREGATE: &str = "SELECT COUNT(*), COALESCE(SUM(value), 0) FROM ratings \
     WHERE record_type = ?1 AND record_id = ?2";

/// A [`RatingRepository`] in a SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteRatings {
    /// Connections to the file.
    pool: SqlitePool,
    /// Where the file is, for logs.
    path: PathBuf,
    /// Bound on one call, acquiring a connection included.
    call_timeout: Duration,
}

// === impl SqliteRatings ===

impl SqliteRatings {
    /// Opens the database at `path`, creating it and its directory if missing, migrates it, and
    /// pools connections to it. Safe to call from several processes at once on one file.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Failed`] when the directory or file cannot be created or opened, or the
    /// file holds a schema the migrations do not recognise; [`RepositoryError::Unavailable`] when
    /// another process holds the migration lock for too long.
    #[tracing::instrument(skip_all, fields(path = %path.display()))]
    pub async fn open(path: &Path, timings: &StorageTimings) -> Result<Self, RepositoryError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                RepositoryError::Failed(
                    format!("cannot create the directory {}: {e}", dir.display()).into(),
                )
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(timings.statement_timeout);

        {
            let _lock = MigrationLock::acquire(path).await?;
            let mut conn = options
                .clone()
                .journal_mode(SqliteJournalMode::Wal)
                .connect()
                .await?;
            // `run_direct`, not `run`: `run` is generic over `Acquire<'a>`, which makes the
            // future not `Send` for spawning (sqlx's own comment on `run_direct` says so).
            migrations::sqlite().await?.run_direct(&mut conn).await?;
            conn.close().await?;
        }

        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(timings.acquire_timeout)
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            path: path.to_owned(),
            call_timeout: timings.call_timeout,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl RatingRepository for SqliteRatings {
    async fn put(
        &self,
        record_type: &Id,
        record_id: &Id,
        user_id: &UserId,
        value: Stars,
    ) -> Result<Aggregate, RepositoryError> {
        let totals = bounded(self.call_timeout, async {
            // The first statement writes, so this deferred transaction takes the write lock
            // before reading anything and cannot fail on a stale snapshot (SQLITE_BUSY_SNAPSHOT).
            let mut tx = self.pool.begin().await?;
            sqlx::query(UPSERT)
                .bind(record_type.as_str())
                .bind(record_id.as_str())
                .bind(user_id.as_str())
                .bind(i64::from(value.get()))
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

/// Whether a SQLite result code is a wait that ran out rather than a mistake: `SQLITE_BUSY`
/// and `SQLITE_LOCKED` (another connection's lock outlived the busy timeout), `SQLITE_IOERR`,
/// `SQLITE_FULL` (disk full) and `SQLITE_CANTOPEN`. Extended codes carry the primary code in
/// their low byte.
pub(super) fn is_transient_code(code: Option<&str>) -> bool {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, BUSY | LOCKED | IOERR | FULL | CANTOPEN))
}

/// An exclusive lock on `<database>.lock`, held while a process migrates the database.
#[derive(Debug)]
struct MigrationLock {
    /// The locked file; closing it releases the lock.
    _file: File,
}

// === impl MigrationLock ===

impl MigrationLock {
    /// Takes the lock beside `database`, waiting up to [`MIGRATION_LOCK_PATIENCE`].
    ///
    /// Polls `try_lock` rather than blocking a thread in `lock`, so that giving up (or the
    /// caller being cancelled) never leaves a thread behind holding a lock nobody wants.
    async fn acquire(database: &Path) -> Result<Self, RepositoryError> {
        let path = lock_path(database);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                RepositoryError::Failed(format!("cannot open {}: {e}", path.display()).into())
            })?;
        let deadline = Instant::now() + MIGRATION_LOCK_PATIENCE;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(MIGRATION_LOCK_POLL).await;
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(RepositoryError::Unavailable(
                        format!(
                            "another process has held {} for {MIGRATION_LOCK_PATIENCE:?}",
                            path.display()
                        )
                        .into(),
                    ));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(RepositoryError::Failed(
                        format!("cannot lock {}: {e}", path.display()).into(),
                    ));
                }
            }
        }
    }
}

/// `<database>.lock`, next to the database (and its `-wal` and `-shm` files).
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::repository::conformance;

    fn timings() -> StorageTimings {
        conformance::patient_timings()
    }

    async fn open_in(dir: &tempfile::TempDir) -> SqliteRatings {
        SqliteRatings::open(&dir.path().join("ratings.sqlite3"), &timings())
            .await
            .unwrap()
    }

    /// How many rows the file holds for a record, counted directly, not through the repository.
    async fn rows(repo: &SqliteRatings, record_type: &str, record_id: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM ratings WHERE record_type = ?1 AND record_id = ?2")
            .bind(record_type)
            .bind(record_id)
            .fetch_one(&repo.pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn passes_the_repository_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let repo = open_in(&dir).await;
        conformance::run_all(&repo).await;
    }

    #[tokio::test]
    async fn an_upsert_leaves_one_row_per_user() {
        let dir = tempfile::tempdir().unwrap();
        let repo = open_in(&dir).await;
        let (t, r, u) = conformance::ids("upsert");
        for value in [1, 5, 3] {
            repo.put(&t, &r, &u, Stars::new(value).unwrap())
                .await
                .unwrap();
        }
        assert_eq!(rows(&repo, t.as_str(), r.as_str()).await, 1);
        let agg = repo.aggregate(&t, &r).await.unwrap();
        assert_eq!((agg.count, agg.average), (1, Some(3.0)));
    }

    #[tokio::test]
    async fn the_file_is_in_wal_mode_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let repo = open_in(&dir).await;
        let mut conn = repo.pool.acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "FULL");
        assert_eq!(
            u128::try_from(busy).unwrap(),
            timings().statement_timeout.as_millis()
        );
    }

    #[tokio::test]
    async fn two_repositories_on_one_file_agree() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (open_in(&dir).await, open_in(&dir).await);
        let (t, r, u) = conformance::ids("agree");
        let written = a.put(&t, &r, &u, Stars::new(4).unwrap()).await.unwrap();
        assert_eq!(b.aggregate(&t, &r).await.unwrap(), written);
        let other = UserId::parse("someone-else").unwrap();
        let written = b.put(&t, &r, &other, Stars::new(1).unwrap()).await.unwrap();
        assert_eq!((written.count, written.average), (2, Some(2.5)));
        assert_eq!(a.aggregate(&t, &r).await.unwrap(), written);
    }

    #[tokio::test]
    async fn concurrent_writes_of_one_users_rating_from_two_pools_leave_one_row() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (Arc::new(open_in(&dir).await), Arc::new(open_in(&dir).await));
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
        let agg = b.aggregate(&t, &r).await.unwrap();
        assert_eq!(agg.count, 1);
        assert!((1.0..=5.0).contains(&agg.average.unwrap()));
    }

    #[tokio::test]
    async fn many_pools_migrating_one_new_file_at_once_all_succeed() {
        // Repeated on fresh files, since a race shows only sometimes.
        for _ in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ratings.sqlite3");
            let opens = (0..4).map(|_| {
                let path = path.clone();
                tokio::spawn(async move { SqliteRatings::open(&path, &timings()).await })
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
        }
    }

    #[tokio::test]
    async fn ratings_survive_closing_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (t, r, u) = conformance::ids("restart");
        let repo = open_in(&dir).await;
        let written = repo.put(&t, &r, &u, Stars::new(2).unwrap()).await.unwrap();
        repo.close().await;
        drop(repo);
        let reopened = open_in(&dir).await;
        assert_eq!(reopened.aggregate(&t, &r).await.unwrap(), written);
    }

    #[tokio::test]
    async fn reopening_never_reseeds_over_a_users_later_rating() {
        let dir = tempfile::tempdir().unwrap();
        let (movie, first) = (conformance::id("movie"), conformance::id("1"));
        let alice = UserId::parse("alice").unwrap();
        let repo = open_in(&dir).await;
        // The seed gave alice 5 stars for movie 1; she changes her mind.
        let changed = repo
            .put(&movie, &first, &alice, Stars::new(1).unwrap())
            .await
            .unwrap();
        assert_eq!(changed.count, 3);
        repo.close().await;
        let reopened = open_in(&dir).await;
        assert_eq!(reopened.aggregate(&movie, &first).await.unwrap(), changed);
    }

    #[tokio::test]
    async fn a_write_locked_out_past_the_busy_timeout_is_unavailable_then_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ratings.sqlite3");
        let mut fast = timings();
        fast.statement_timeout = Duration::from_millis(200);
        let repo = SqliteRatings::open(&path, &fast).await.unwrap();
        let (t, r, u) = conformance::ids("locked");

        // Another process holding the write lock, as a stuck writer would.
        let mut other = SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .unwrap();
        let err = repo
            .put(&t, &r, &u, Stars::new(3).unwrap())
            .await
            .unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        assert_eq!(
            repo.aggregate(&t, &r).await.unwrap().count,
            0,
            "reads go on in WAL mode"
        );

        sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
        let agg = repo.put(&t, &r, &u, Stars::new(3).unwrap()).await.unwrap();
        assert_eq!(agg.count, 1);
    }

    #[tokio::test]
    async fn an_unusable_path_fails_instead_of_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-directory");
        std::fs::write(&blocker, b"").unwrap();
        let err = SqliteRatings::open(&blocker.join("ratings.sqlite3"), &timings())
            .await
            .unwrap_err();
        assert!(!err.is_unavailable(), "{err}");
    }

    #[test]
    fn busy_and_locked_codes_are_transient_but_constraints_are_not() {
        for transient in ["5", "517", "6", "10", "13", "14"] {
            assert!(is_transient_code(Some(transient)), "{transient}");
        }
        for not in [None, Some("19"), Some("2067"), Some("1"), Some("x")] {
            assert!(!is_transient_code(not), "{not:?}");
        }
    }

    #[test]
    fn the_lock_file_sits_beside_the_database() {
        assert_eq!(
            lock_path(Path::new("/data/ratings.sqlite3")),
            Path::new("/data/ratings.sqlite3.lock")
        );
    }
}
