//! The databases the storage tests run against: a fresh SQLite file always, and a fresh schema
//! in the PostgreSQL database `DATABASE_URL` names when it is set.

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

/// A schema of its own in the PostgreSQL database `DATABASE_URL` names, so that tests running
/// in parallel (nextest runs each in its own process) never see each other's tables.
#[derive(Debug)]
pub(crate) struct PgSchema {
    /// A `postgres://` URL whose session `search_path` is the schema, for child processes.
    pub(crate) url: String,
    /// The same as connection options.
    pub(crate) options: PgConnectOptions,
    /// The schema's name.
    name: String,
    /// Options for the database itself, to drop the schema.
    admin: PgConnectOptions,
}

impl PgSchema {
    /// Creates a fresh schema, or returns `None` after saying why when `DATABASE_URL` is not a
    /// PostgreSQL URL. Under CI (`CI` set) a missing database fails the test instead, so CI
    /// cannot pass by skipping.
    pub(crate) async fn create(label: &str) -> Option<Self> {
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
        let admin: PgConnectOptions = url.parse().unwrap();
        let name = format!("rating_it_{label}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin.connect().await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut with_schema = url::Url::parse(&url).unwrap();
        with_schema
            .query_pairs_mut()
            .append_pair("options", &format!("-c search_path={name}"));
        Some(Self {
            url: with_schema.to_string(),
            options: admin.clone().options([("search_path", &name)]),
            name,
            admin,
        })
    }

    /// Drops the schema and everything in it.
    pub(crate) async fn drop(self) {
        let mut conn = self.admin.connect().await.unwrap();
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}
