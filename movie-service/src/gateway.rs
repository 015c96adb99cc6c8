//! The aggregator's use cases, free of any web framework: what to ask which upstream, and what
//! a missing answer means (degrade, or fail naming the service).

use std::sync::Arc;
use std::time::Duration;

use common::discovery::{self, WatchOptions};
use common::registry::Registry;
use common::upstream::{
    Strategy, Upstream, UpstreamError, UpstreamOptions, UpstreamRequest, UpstreamResponse,
    UpstreamStatus,
};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

/// Service names the aggregator calls.
pub const METADATA: &str = "metadata-service";
/// See [`METADATA`].
pub const RATING: &str = "rating-service";
/// See [`METADATA`].
pub const USER: &str = "user-service";
/// See [`METADATA`].
pub const PRODUCT: &str = "product-service";

/// Record type under which movie ratings are kept by rating-service.
const MOVIE_RECORD: &str = "movie";

/// Ratings fetched at once for `GET /movies`: concurrent, but bounded so that a long catalogue
/// does not open hundreds of connections to the rating instances.
const LIST_CONCURRENCY: usize = 8;

/// One client per upstream service.
#[derive(Debug, Clone)]
pub struct Gateway {
    metadata: Upstream,
    rating: Upstream,
    user: Upstream,
    product: Upstream,
}

/// A movie as the aggregator answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Movie {
    /// Movie ID.
    pub id: String,
    /// metadata-service's record.
    pub metadata: Value,
    /// rating-service's aggregate, or null when it could not be had.
    pub rating: Option<Value>,
    /// Services whose data is missing from this answer.
    pub degraded: Vec<&'static str>,
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The upstream says the thing does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `movie 42`.
        what: String,
    },
    /// A required upstream gave no usable answer.
    #[error("{service} is unavailable: {reason}")]
    Unavailable {
        /// The service.
        service: &'static str,
        /// Why.
        reason: String,
    },
    /// The upstream refused the request (a 4xx other than 404); its answer is passed on.
    #[error("{service} refused the request")]
    Rejected {
        /// The service.
        service: &'static str,
        /// Its status.
        status: u16,
        /// Its body (a problem document).
        body: Value,
    },
}

impl Gateway {
    /// Builds the clients: watchers on the registry for the resilient strategy, a lookup per
    /// call for the naive one.
    ///
    /// # Errors
    ///
    /// When an HTTP client cannot be built.
    pub fn new(
        registry: Arc<dyn Registry>,
        options: UpstreamOptions,
        watch: WatchOptions,
    ) -> Result<Self, anyhow::Error> {
        let client = |service: &str| -> Result<Upstream, anyhow::Error> {
            Ok(match options.strategy {
                Strategy::Resilient => Upstream::new(
                    service,
                    discovery::watch(registry.clone(), service, watch),
                    options,
                )?,
                Strategy::Naive => Upstream::naive(service, registry.clone(), options)?,
            })
        };
        Ok(Self {
            metadata: client(METADATA)?,
            rating: client(RATING)?,
            user: client(USER)?,
            product: client(PRODUCT)?,
        })
    }

    /// Discovery status of every upstream, by service name.
    pub fn status(&self) -> Vec<(&str, UpstreamStatus)> {
        [&self.metadata, &self.rating, &self.user, &self.product]
            .into_iter()
            .map(|u| (u.service(), u.status()))
            .collect()
    }

    /// A movie with its rating, both fetched concurrently. No rating → degraded answer;
    /// no metadata → error naming metadata-service.
    ///
    /// # Errors
    ///
    /// [`GatewayError::NotFound`] for an unknown movie, [`GatewayError::Unavailable`] when
    /// metadata cannot be had.
    pub async fn movie(&self, id: &str, request_id: &str) -> Result<Movie, GatewayError> {
        let (metadata, rating) = tokio::join!(
            self.metadata
                .send(get(&format!("/metadata/{id}"), request_id)),
            self.rating_of(id, request_id),
        );
        let metadata = required(METADATA, metadata, || format!("movie {id}"))?;
        Ok(movie(id.to_owned(), metadata, rating))
    }

    /// Every movie with its rating; ratings are fetched concurrently (bounded).
    ///
    /// # Errors
    ///
    /// [`GatewayError::Unavailable`] when the list of movies cannot be had.
    pub async fn movies(&self, request_id: &str) -> Result<Vec<Movie>, GatewayError> {
        let list = required(
            METADATA,
            self.metadata.send(get("/metadata", request_id)).await,
            || "movie list".to_owned(),
        )?;
        let entries = match list {
            Value::Array(entries) => entries,
            other => {
                return Err(GatewayError::Unavailable {
                    service: METADATA,
                    reason: format!("expected a list, got {other}"),
                });
            }
        };
        let movies = futures::stream::iter(entries)
            .map(|metadata| async move {
                let id = match &metadata["id"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let rating = self.rating_of(&id, request_id).await;
                movie(id, metadata, rating)
            })
            .buffered(LIST_CONCURRENCY)
            .collect()
            .await;
        Ok(movies)
    }

    /// Sets a user's rating of a movie (which must exist) and returns the new aggregate.
    ///
    /// # Errors
    ///
    /// Unknown movie → NotFound; the rating service's own 4xx → Rejected (passed on);
    /// no answer → Unavailable.
    pub async fn rate(
        &self,
        id: &str,
        body: &Value,
        request_id: &str,
    ) -> Result<Value, GatewayError> {
        required(
            METADATA,
            self.metadata
                .send(get(&format!("/metadata/{id}"), request_id))
                .await,
            || format!("movie {id}"),
        )?;
        let request = UpstreamRequest::put_json(format!("/ratings/{MOVIE_RECORD}/{id}"), body)
            .map_err(|e| GatewayError::Unavailable {
                service: RATING,
                reason: e.to_string(),
            })?
            .with_request_id(request_id);
        required(RATING, self.rating.send(request).await, || {
            format!("rating of movie {id}")
        })
    }

    /// A user, through discovery.
    ///
    /// # Errors
    ///
    /// NotFound or Unavailable.
    pub async fn user(&self, id: &str, request_id: &str) -> Result<Value, GatewayError> {
        let answer = self
            .user
            .send(get(&format!("/users/{id}"), request_id))
            .await;
        required(USER, answer, || format!("user {id}"))
    }

    /// A product, through discovery.
    ///
    /// # Errors
    ///
    /// NotFound or Unavailable.
    pub async fn product(&self, id: &str, request_id: &str) -> Result<Value, GatewayError> {
        let answer = self
            .product
            .send(get(&format!("/products/{id}"), request_id))
            .await;
        required(PRODUCT, answer, || format!("product {id}"))
    }

    /// The rating aggregate of a movie, or None when rating-service cannot give it.
    async fn rating_of(&self, id: &str, request_id: &str) -> Option<Value> {
        let answer = self
            .rating
            .send(get(&format!("/ratings/{MOVIE_RECORD}/{id}"), request_id))
            .await;
        match required(RATING, answer, || format!("rating of movie {id}")) {
            Ok(rating) => Some(rating),
            Err(e) => {
                tracing::warn!(error = %e, movie = id, "answering without a rating");
                None
            }
        }
    }
}

fn get(path: &str, request_id: &str) -> UpstreamRequest {
    UpstreamRequest::get(path).with_request_id(request_id)
}

fn movie(id: String, metadata: Value, rating: Option<Value>) -> Movie {
    let degraded = if rating.is_none() {
        vec![RATING]
    } else {
        vec![]
    };
    Movie {
        id,
        metadata,
        rating,
        degraded,
    }
}

/// The JSON body of a 2xx answer, or what its absence means.
fn required(
    service: &'static str,
    answer: Result<UpstreamResponse, UpstreamError>,
    what: impl FnOnce() -> String,
) -> Result<Value, GatewayError> {
    let response = answer.map_err(|e| GatewayError::Unavailable {
        service,
        reason: e.to_string(),
    })?;
    let body = || response.json::<Value>();
    match response.status {
        200..=299 => body().map_err(|e| GatewayError::Unavailable {
            service,
            reason: format!("invalid JSON from {}: {e}", response.instance.authority()),
        }),
        404 => Err(GatewayError::NotFound { what: what() }),
        400..=499 => Err(GatewayError::Rejected {
            service,
            status: response.status,
            body: body().unwrap_or(Value::Null),
        }),
        status => Err(GatewayError::Unavailable {
            service,
            reason: format!("answered {status} from {}", response.instance.authority()),
        }),
    }
}

/// How long the aggregator gives one request in total: the upstream deadline plus a margin
/// for its own work, so that the upstream client's typed errors win over a blunt timeout.
pub fn request_timeout(options: &UpstreamOptions) -> Duration {
    options.deadline + Duration::from_secs(1)
}
