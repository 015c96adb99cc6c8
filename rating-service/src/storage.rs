//! Which database holds the ratings (`DATABASE_URL`), how long to wait on it, and opening it.
//!
//! | `DATABASE_URL` | storage |
//! |---|---|
//! | unset | SQLite at `$XDG_DATA_HOME/consul-discovery/ratings.sqlite3` (`~/.local/share/…` when `XDG_DATA_HOME` is unset) |
//! | `sqlite://path` | SQLite at `path` (`sqlite:///abs/path` for an absolute one) |
//! | `postgres://…`, `postgresql://…` | PostgreSQL (libpq-style URL) |
//!
//! The default is one fixed file per user, not per instance, because replicas a user starts on
//! one machine with default settings must agree: they all open the same file. An in-memory
//! database is refused: it would lose ratings on restart and give each replica its own.
//!
//! [`open`] waits for PostgreSQL while it cannot be reached (compose starts both together),
//! retrying with jittered exponential backoff; a mistake (wrong password, unknown database)
//! fails at once. SQLite is a local file: it is usable at once or never.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use sqlx::postgres::PgConnectOptions;

use crate::repository::{PostgresRatings, RatingRepository, RepositoryError, SqliteRatings};

/// The default database file, under the user's data directory.
pub const DEFAULT_SQLITE_FILE: &str = "consul-discovery/ratings.sqlite3";

/// First delay between attempts to reach PostgreSQL at start-up.
pub const STARTUP_RETRY_MIN: Duration = Duration::from_millis(250);

/// Longest delay between attempts to reach PostgreSQL at start-up: a database that comes up
/// is used within 5 s, at a cost of one connection attempt per 5 s while it is down.
pub const STARTUP_RETRY_MAX: Duration = Duration::from_secs(5);

/// Where ratings are kept, and how long to wait on the database. Built by
/// [`StorageArgs::into_config`] or, in tests, by [`StorageConfig::sqlite`] and field updates.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The database.
    pub database: Database,
    /// Timeouts of every database call.
    pub timings: StorageTimings,
}

/// A database that can hold ratings.
#[derive(Clone)]
pub enum Database {
    /// A SQLite file, created with its directory if missing.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres {
        /// Parsed connection URL (host, port, user, password, database, options).
        options: Box<PgConnectOptions>,
    },
}

/// Timeouts of database calls. The defaults are what production wants; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageTimings {
    /// Longest wait for a pooled connection, opening one included (sqlx keeps retrying a
    /// refused connection until then). 1 s: a pooled connection is ready in microseconds and a
    /// new one takes milliseconds on a LAN, so 1 s means the database is down or jammed; and it
    /// is under the aggregator's 2 s attempt timeout, so the caller gets our 503 and degrades
    /// rather than timing out itself. Also bounds each start-up connection attempt.
    pub acquire_timeout: Duration,
    /// Longest a statement may wait or run: SQLite's busy timeout (waiting for another
    /// process's write lock) and PostgreSQL's `statement_timeout`. 3 s: our statements touch
    /// one primary-key range, and the only honest wait is for another writer's commit
    /// (milliseconds, one fsync), so 3 s is a stuck database, not a busy one.
    pub statement_timeout: Duration,
    /// Longest a whole repository call may take, measured by us: acquiring, statements and
    /// commit. Covers what the database's own timeouts cannot see, a server or network that
    /// stops answering mid-statement. 5 s: acquire plus statement time, and the aggregator's
    /// whole-request deadline, past which nobody waits for the answer.
    pub call_timeout: Duration,
}

impl Default for StorageTimings {
    fn default() -> Self {
        Self {
            acquire_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(3),
            call_timeout: Duration::from_secs(5),
        }
    }
}

/// `--database-url`/`DATABASE_URL`, flattened into the binary's command line.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// Where ratings are kept: `postgres://user:password@host:5432/db` or `sqlite://path`.
    /// Default: one SQLite file shared by all instances a user runs,
    /// `$XDG_DATA_HOME/consul-discovery/ratings.sqlite3` (`~/.local/share/…` without it).
    #[arg(long = "database-url", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl StorageArgs {
    /// Checks the URL, or finds the default file, and builds the configuration.
    ///
    /// Reads `XDG_DATA_HOME` and `HOME` when no URL is given, so it belongs in `main.rs`.
    ///
    /// # Errors
    ///
    /// [`StorageConfigError`] when the URL is unusable, or no URL is given and neither
    /// variable names a directory.
    pub fn into_config(self) -> Result<StorageConfig, StorageConfigError> {
        match self.database_url.filter(|url| !url.trim().is_empty()) {
            Some(url) => StorageConfig::from_url(&url),
            None => {
                let path = default_sqlite_path(
                    std::env::var_os("XDG_DATA_HOME"),
                    std::env::var_os("HOME"),
                )
                .ok_or(StorageConfigError::NoDataDirectory)?;
                Ok(StorageConfig::sqlite(path))
            }
        }
    }
}

/// A `DATABASE_URL` or default location that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StorageConfigError {
    /// Neither `postgres://`, `postgresql://` nor `sqlite:`.
    #[error("DATABASE_URL must start with postgres://, postgresql:// or sqlite://, got {scheme:?}")]
    UnknownScheme {
        /// What came before `:`.
        scheme: String,
    },
    /// An in-memory or empty SQLite location.
    #[error(
        "DATABASE_URL must name a SQLite file: an in-memory database would lose ratings on \
         restart and give each replica its own"
    )]
    NoSqliteFile,
    /// A SQLite URL with `?…` parameters, which would fight the service's own settings.
    #[error(
        "DATABASE_URL: SQLite query parameters are not supported (WAL, sync and busy timeout \
         are set by the service)"
    )]
    SqliteParameters,
    /// A PostgreSQL URL sqlx cannot parse. The URL itself is not repeated: it may hold a password.
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    Postgres(String),
    /// No URL, and no `XDG_DATA_HOME` or `HOME` to put the default file under.
    #[error(
        "no DATABASE_URL, and neither XDG_DATA_HOME nor HOME names a directory for the default SQLite file"
    )]
    NoDataDirectory,
}

// === impl StorageConfig ===

impl StorageConfig {
    /// SQLite at `path`, default timings.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Self::with_database(Database::Sqlite { path: path.into() })
    }

    /// PostgreSQL with these connection options, default timings.
    pub fn postgres(options: PgConnectOptions) -> Self {
        Self::with_database(Database::Postgres {
            options: Box::new(options),
        })
    }

    /// The storage a `DATABASE_URL` names.
    ///
    /// # Errors
    ///
    /// [`StorageConfigError`] for an unknown scheme, an in-memory or parameterised SQLite URL,
    /// or a PostgreSQL URL that does not parse.
    pub fn from_url(url: &str) -> Result<Self, StorageConfigError> {
        let url = url.trim();
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        match scheme {
            "postgres" | "postgresql" => {
                let options = url
                    .parse::<PgConnectOptions>()
                    .map_err(|e| StorageConfigError::Postgres(e.to_string()))?;
                Ok(Self::postgres(options))
            }
            "sqlite" => {
                // `sqlite` alone has no colon and so no file.
                let rest = url.strip_prefix("sqlite:").unwrap_or_default();
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.contains('?') {
                    return Err(StorageConfigError::SqliteParameters);
                }
                if path.is_empty() || path.contains(":memory:") {
                    return Err(StorageConfigError::NoSqliteFile);
                }
                Ok(Self::sqlite(path))
            }
            other => Err(StorageConfigError::UnknownScheme {
                scheme: other.to_owned(),
            }),
        }
    }

    /// The SQLite file, if the database is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.database {
            Database::Sqlite { path } => Some(path),
            Database::Postgres { .. } => None,
        }
    }

    fn with_database(database: Database) -> Self {
        Self {
            database,
            timings: StorageTimings::default(),
        }
    }
}

/// The default SQLite file for a user: `$XDG_DATA_HOME/consul-discovery/ratings.sqlite3`, or
/// `$HOME/.local/share/consul-discovery/ratings.sqlite3` when `XDG_DATA_HOME` is unset or not
/// absolute (the XDG base directory spec says to ignore relative values). `None` without either.
pub fn default_sqlite_path(
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let absolute = |dir: OsString| Some(PathBuf::from(dir)).filter(|p| p.is_absolute());
    let data_home = xdg_data_home.and_then(absolute).or_else(|| {
        home.and_then(absolute)
            .map(|home| home.join(".local/share"))
    })?;
    Some(data_home.join(DEFAULT_SQLITE_FILE))
}

// === impl Database ===

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password: Debug output ends up in logs.
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Database {
    /// `sqlite:///path` or `postgres://user@host:port/database`, without the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite { path } => write!(f, "sqlite://{}", path.display()),
            Self::Postgres { options } => write!(
                f,
                "postgres://{}@{}:{}/{}",
                options.get_username(),
                options.get_host(),
                options.get_port(),
                options.get_database().unwrap_or_default()
            ),
        }
    }
}

/// Opens the storage `config` names: creates or migrates the schema and pools connections.
///
/// PostgreSQL that cannot be reached yet (refused connection, unknown host, server starting
/// up) is retried for as long as it takes, with jittered exponential backoff from
/// [`STARTUP_RETRY_MIN`] to [`STARTUP_RETRY_MAX`], logging each failure; race it against a
/// shutdown signal to stop waiting.
///
/// # Errors
///
/// [`RepositoryError::Failed`] when the storage refuses us for good (see
/// [`SqliteRatings::open`] and [`PostgresRatings::open`]).
pub async fn open(config: &StorageConfig) -> Result<Arc<dyn RatingRepository>, RepositoryError> {
    let timings = &config.timings;
    let ratings: Arc<dyn RatingRepository> = match &config.database {
        Database::Sqlite { path } => Arc::new(SqliteRatings::open(path, timings).await?),
        Database::Postgres { options } => {
            let backoff = ExponentialBuilder::default()
                .with_min_delay(STARTUP_RETRY_MIN)
                .with_max_delay(STARTUP_RETRY_MAX)
                .with_jitter()
                .without_max_times();
            let postgres = (|| PostgresRatings::open(options, timings))
                .retry(backoff)
                .when(RepositoryError::is_unavailable)
                .notify(|error, retry_in| {
                    tracing::warn!(
                        error = %error,
                        retry_in = ?retry_in,
                        database = %config.database,
                        "waiting for the database"
                    );
                })
                .await?;
            Arc::new(postgres)
        }
    };
    tracing::info!(database = %config.database, "ratings storage ready");
    Ok(ratings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(url: &str) -> PathBuf {
        StorageConfig::from_url(url)
            .unwrap()
            .sqlite_path()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn sqlite_urls_name_a_file() {
        assert_eq!(
            path_of("sqlite:///var/lib/r.db"),
            Path::new("/var/lib/r.db")
        );
        assert_eq!(path_of("sqlite://data/r.db"), Path::new("data/r.db"));
        assert_eq!(path_of("sqlite:r.db"), Path::new("r.db"));
        for bad in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://",
            "sqlite:",
        ] {
            assert!(
                matches!(
                    StorageConfig::from_url(bad),
                    Err(StorageConfigError::NoSqliteFile)
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            StorageConfig::from_url("sqlite://r.db?mode=ro"),
            Err(StorageConfigError::SqliteParameters)
        ));
    }

    #[test]
    fn postgres_urls_are_parsed_and_never_shown_with_their_password() {
        for url in [
            "postgres://ratings:s3cret@postgres:5432/ratings",
            "postgresql://ratings:s3cret@postgres/ratings",
        ] {
            let config = StorageConfig::from_url(url).unwrap();
            let Database::Postgres { options } = &config.database else {
                panic!("{url} is PostgreSQL");
            };
            assert_eq!(options.get_host(), "postgres");
            assert_eq!(options.get_port(), 5432);
            let shown = format!("{} {config:?}", config.database);
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(
                shown.contains("postgres://ratings@postgres:5432/ratings"),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_scheme_without_a_file_is_refused_not_a_panic() {
        for bare in ["sqlite", "sqlite:", "sqlite://", " sqlite "] {
            assert!(
                matches!(
                    StorageConfig::from_url(bare),
                    Err(StorageConfigError::NoSqliteFile)
                ),
                "{bare}"
            );
        }
    }

    #[test]
    fn other_schemes_are_refused() {
        for bad in ["mysql://x/y", "/var/lib/r.db", "http://x"] {
            assert!(
                matches!(
                    StorageConfig::from_url(bad),
                    Err(StorageConfigError::UnknownScheme { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_default_file_is_per_user_under_the_xdg_data_directory() {
        let default = |xdg: Option<&str>, home: Option<&str>| {
            default_sqlite_path(xdg.map(OsString::from), home.map(OsString::from))
        };
        assert_eq!(
            default(Some("/xdg"), Some("/home/u")),
            Some(PathBuf::from("/xdg/consul-discovery/ratings.sqlite3"))
        );
        assert_eq!(
            default(None, Some("/home/u")),
            Some(PathBuf::from(
                "/home/u/.local/share/consul-discovery/ratings.sqlite3"
            ))
        );
        assert_eq!(
            default(Some("relative"), Some("/home/u")),
            Some(PathBuf::from(
                "/home/u/.local/share/consul-discovery/ratings.sqlite3"
            )),
            "a relative XDG_DATA_HOME is ignored"
        );
        assert_eq!(default(None, None), None);
        assert_eq!(default(Some(""), Some("")), None);
    }

    #[test]
    fn args_without_a_url_pick_the_default_file() {
        use clap::Parser;

        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            storage: StorageArgs,
        }
        let cli = Cli::try_parse_from(["rating-service", "--database-url", "sqlite:///tmp/x.db"])
            .unwrap();
        let config = cli.storage.into_config().unwrap();
        assert_eq!(config.sqlite_path(), Some(Path::new("/tmp/x.db")));
        let blank = StorageArgs {
            database_url: Some("  ".into()),
        };
        // Blank counts as unset; the default then depends on the environment, so only check
        // that it is not refused as a URL.
        assert!(!matches!(
            blank.into_config(),
            Err(StorageConfigError::UnknownScheme { .. })
        ));
    }
}
