//! `GET /v1/health/service/:name`: instances with their node and checks, `?passing`,
//! `?tag` and blocking queries (reference §4, §6).

use axum::response::Response;

use super::{ApiError, Call, json_with_index};
use crate::state::Catalog;
use crate::wire::response::{CheckServiceNodeOut, NodeOut};

/// `GET /v1/health/service/:name`.
#[tracing::instrument(name = "health", skip(call))]
pub(super) async fn service(call: &Call, name: &str) -> Result<Response, ApiError> {
    let blocking = call.query.blocking()?;
    if name.is_empty() {
        return Err(ApiError::bad_request("Missing service name"));
    }
    let tags = call.query.all("tag");
    let passing = call.query.passing()?;
    call.query.reject_filter()?;
    call.query.check_datacenter()?;
    let authorizer = call.authorizer()?;
    let registry = &call.registry;
    blocking
        .wait_past(registry, Some(name), |catalog| catalog.health_index(name))
        .await;
    let node = registry.node();
    let node_out = NodeOut::new(node);
    let visible = authorizer.can_read() && call.query.node_meta_matches(&node_out.meta_pairs());
    Ok(registry.read(|catalog| {
        let entries: Vec<CheckServiceNodeOut<'_>> = catalog
            .instances(name)
            .into_iter()
            .filter(|_| visible)
            .filter(|record| Catalog::has_tags(&record.service, &tags))
            .map(|record| CheckServiceNodeOut::new(&node_out, node, catalog, record))
            // §4.3: any check not exactly passing (warning too) hides the entry.
            .filter(|entry| !passing || entry.all_passing())
            .collect();
        json_with_index(&entries, catalog.health_index(name))
    }))
}
