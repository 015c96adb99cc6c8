//! `GET /v1/catalog/services` and `GET /v1/catalog/service/:name` (reference §5.1–§5.2).

use std::collections::BTreeMap;

use axum::response::Response;

use super::{ApiError, Call, json_with_index};
use crate::state::Catalog;
use crate::wire::response::{NodeOut, ServiceNodeOut};

/// `GET /v1/catalog/services`: service name → union of its instances' tags.
pub(super) async fn services(call: &Call) -> Result<Response, ApiError> {
    let blocking = call.query.blocking()?;
    call.query.reject_filter()?;
    call.query.check_datacenter()?;
    let authorizer = call.authorizer()?;
    let registry = &call.registry;
    blocking
        .wait_past(registry, None, |catalog| catalog.services_index())
        .await;
    let visible = authorizer.can_read()
        && call
            .query
            .node_meta_matches(&NodeOut::new(registry.node()).meta_pairs());
    Ok(registry.read(|catalog| {
        let mut services: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for record in catalog.catalog_services().filter(|_| visible) {
            let tags = services.entry(&record.service.name).or_default();
            for tag in &record.service.tags {
                if !tags.contains(&tag.as_str()) {
                    tags.push(tag);
                }
            }
        }
        json_with_index(&services, catalog.services_index())
    }))
}

/// `GET /v1/catalog/service/:name`: flat `ServiceNode` entries, `?tag` filtered.
pub(super) async fn service(call: &Call, name: &str) -> Result<Response, ApiError> {
    let blocking = call.query.blocking()?;
    if name.is_empty() {
        return Err(ApiError::bad_request("Missing service name"));
    }
    let tags = call.query.all("tag");
    call.query.reject_filter()?;
    call.query.check_datacenter()?;
    let authorizer = call.authorizer()?;
    let registry = &call.registry;
    blocking
        .wait_past(registry, Some(name), |catalog| {
            catalog.service_nodes_index(name)
        })
        .await;
    let node_out = NodeOut::new(registry.node());
    let visible = authorizer.can_read() && call.query.node_meta_matches(&node_out.meta_pairs());
    Ok(registry.read(|catalog| {
        let entries: Vec<ServiceNodeOut<'_>> = catalog
            .instances(name)
            .into_iter()
            .filter(|_| visible)
            .filter(|record| Catalog::has_tags(&record.service, &tags))
            .map(|record| ServiceNodeOut::new(&node_out, record))
            .collect();
        json_with_index(&entries, catalog.service_nodes_index(name))
    }))
}
