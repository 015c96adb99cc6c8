//! Where movie metadata comes from: the [`MovieRepository`] seam and its in-memory catalogue.

use std::collections::BTreeMap;
use std::fmt;

use crate::domain::{Movie, MovieId};

/// Looks movies up.
///
/// A trait object (`Arc<dyn MovieRepository>`) so that the source is picked at start-up without
/// the filters carrying a type parameter. It is synchronous because the catalogue is seed data
/// in memory; it becomes `async` (as the rating service's is) the day movies move to a database.
pub trait MovieRepository: Send + Sync + fmt::Debug {
    /// Every movie, ordered by ID.
    fn list(&self) -> Vec<Movie>;

    /// One movie, if it exists.
    fn find(&self, id: &MovieId) -> Option<Movie>;
}

/// A fixed catalogue held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryMovies {
    /// Movies by ID.
    movies: BTreeMap<String, Movie>,
}

// === impl MemoryMovies ===

impl MemoryMovies {
    /// A catalogue of exactly `movies`.
    pub fn new(movies: impl IntoIterator<Item = Movie>) -> Self {
        Self {
            movies: movies.into_iter().map(|m| (m.id.clone(), m)).collect(),
        }
    }

    /// The demo catalogue: five classic films, IDs `1`–`5` (the rating service rates 1–3).
    pub fn seeded() -> Self {
        let movie = |id: &str, title: &str, director: &str, description: &str| Movie {
            id: id.to_owned(),
            title: title.to_owned(),
            description: description.to_owned(),
            director: director.to_owned(),
        };
        Self::new([
            movie(
                "1",
                "Casablanca",
                "Michael Curtiz",
                "In wartime Morocco, a cynical nightclub owner must choose between his old love and helping her resistance-leader husband escape the Nazis.",
            ),
            movie(
                "2",
                "Seven Samurai",
                "Akira Kurosawa",
                "A poor farming village hires seven masterless samurai to defend it against the bandits who return every harvest.",
            ),
            movie(
                "3",
                "Vertigo",
                "Alfred Hitchcock",
                "A retired San Francisco detective with a fear of heights is hired to follow an old friend's wife and becomes dangerously obsessed with her.",
            ),
            movie(
                "4",
                "2001: A Space Odyssey",
                "Stanley Kubrick",
                "A mysterious black monolith guides humanity from its first tools to a voyage to Jupiter, where a ship's computer turns on its crew.",
            ),
            movie(
                "5",
                "The Godfather",
                "Francis Ford Coppola",
                "The ageing patriarch of a New York crime family hands his empire to his reluctant youngest son.",
            ),
        ])
    }
}

impl MovieRepository for MemoryMovies {
    fn list(&self) -> Vec<Movie> {
        self.movies.values().cloned().collect()
    }

    fn find(&self, id: &MovieId) -> Option<Movie> {
        self.movies.get(id.as_str()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_holds_movies_one_to_five_in_order() {
        let repo = MemoryMovies::seeded();
        let ids: Vec<_> = repo.list().into_iter().map(|m| m.id).collect();
        assert_eq!(ids, ["1", "2", "3", "4", "5"]);
        let vertigo = repo.find(&MovieId::parse("3").unwrap()).unwrap();
        assert_eq!(vertigo.director, "Alfred Hitchcock");
        assert!(repo.find(&MovieId::parse("6").unwrap()).is_none());
    }
}
