//! Where users come from: the [`UserRepository`] seam and its in-memory directory.

use std::collections::BTreeMap;
use std::fmt;

use crate::domain::{User, UserId};

/// Looks users up.
///
/// A trait object (`Arc<dyn UserRepository>`, held in Rocket's managed state) so that the source
/// is picked at start-up without the handlers carrying a type parameter. It is synchronous
/// because the directory is seed data in memory; it becomes `async` (as the rating service's is)
/// the day users move to a database.
pub trait UserRepository: Send + Sync + fmt::Debug {
    /// Every user, ordered by ID.
    fn list(&self) -> Vec<User>;

    /// One user, if it exists.
    fn find(&self, id: &UserId) -> Option<User>;
}

/// A fixed directory held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryUsers {
    /// Users by ID.
    users: BTreeMap<String, User>,
}

// === impl MemoryUsers ===

impl MemoryUsers {
    /// A directory of exactly `users`.
    pub fn new(users: impl IntoIterator<Item = User>) -> Self {
        Self {
            users: users.into_iter().map(|u| (u.id.clone(), u)).collect(),
        }
    }

    /// The demo directory: users `1`–`3`.
    pub fn seeded() -> Self {
        let user = |id: &str, name: &str, email: &str| User {
            id: id.to_owned(),
            name: name.to_owned(),
            email: email.to_owned(),
        };
        Self::new([
            user("1", "Ada Lovelace", "ada@example.com"),
            user("2", "Alan Turing", "alan@example.com"),
            user("3", "Grace Hopper", "grace@example.com"),
        ])
    }
}

impl UserRepository for MemoryUsers {
    fn list(&self) -> Vec<User> {
        self.users.values().cloned().collect()
    }

    fn find(&self, id: &UserId) -> Option<User> {
        self.users.get(id.as_str()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_holds_users_one_to_three_in_order() {
        let repo = MemoryUsers::seeded();
        let ids: Vec<_> = repo.list().into_iter().map(|u| u.id).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        let grace = repo.find(&UserId::parse("3").unwrap()).unwrap();
        assert_eq!(grace.email, "grace@example.com");
        assert!(repo.find(&UserId::parse("4").unwrap()).is_none());
    }
}
