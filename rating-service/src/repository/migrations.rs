//! The schema, embedded in the binary as SQL files and applied with sqlx's migrator.
//!
//! The files live in `rating-service/migrations/` (one directory per dialect, plus the seed that
//! both share) and are compiled in with `include_str!`, so a binary or container image needs no
//! files beside it and no database is needed at compile time (which `sqlx::migrate!` would not
//! need either, but it pulls in sqlx's proc-macro crates and builds both drivers a second time).
//! sqlx records each applied version with a checksum in `_sqlx_migrations` and refuses to start
//! on a database whose applied migrations were since edited: add a new file, never change one.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::RepositoryError;

/// One migration: its version, what it does, and its SQL.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// Applied in increasing order; recorded in `_sqlx_migrations`.
    version: i64,
    /// Shown in `_sqlx_migrations` and in errors.
    description: &'static str,
    /// The statements.
    sql: &'static str,
}

/// The demo ratings, identical in both dialects.
const SEED: Step = Step {
    version: 2,
    description: "seed demo ratings",
    sql: include_str!("../../migrations/0002_seed_demo_ratings.sql"),
};

/// SQLite's migrations, in order.
const SQLITE: &[Step] = &[
    Step {
        version: 1,
        description: "create ratings",
        sql: include_str!("../../migrations/sqlite/0001_create_ratings.sql"),
    },
    SEED,
];

/// PostgreSQL's migrations, in order.
const POSTGRES: &[Step] = &[
    Step {
        version: 1,
        description: "create ratings",
        sql: include_str!("../../migrations/postgres/0001_create_ratings.sql"),
    },
    SEED,
];

/// A set of embedded migrations, as sqlx's migrator reads them.
#[derive(Debug, Clone, Copy)]
struct Embedded(&'static [Step]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        let migrations = self
            .0
            .iter()
            .map(|step| {
                Migration::new(
                    step.version,
                    Cow::Borrowed(step.description),
                    MigrationType::Simple,
                    Cow::Borrowed(step.sql),
                    false,
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

/// The migrator for SQLite databases.
///
/// # Errors
///
/// Never in practice: resolving embedded migrations cannot fail.
pub(super) async fn sqlite() -> Result<Migrator, RepositoryError> {
    Ok(Migrator::new(Embedded(SQLITE)).await?)
}

/// The migrator for PostgreSQL databases.
///
/// # Errors
///
/// Never in practice: resolving embedded migrations cannot fail.
pub(super) async fn postgres() -> Result<Migrator, RepositoryError> {
    Ok(Migrator::new(Embedded(POSTGRES)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_both_dialects_have_the_same_steps() {
        for steps in [SQLITE, POSTGRES] {
            assert!(steps.windows(2).all(|w| w[0].version < w[1].version));
        }
        let described = |steps: &[Step]| -> Vec<(i64, &str)> {
            steps.iter().map(|s| (s.version, s.description)).collect()
        };
        assert_eq!(described(SQLITE), described(POSTGRES));
    }
}
