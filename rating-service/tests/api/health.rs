//! `/health` and the headers every response carries: the shared contract (`common::testing::contract`).

use common::testing::contract;

use crate::helpers::spawn_app;

/// A resource that exists, and a malformed ID of the same route.
const FOUND: &str = "/ratings/movie/1";
const INVALID: &str = "/ratings/movie/a.b";

#[tokio::test]
async fn health_reports_passing_with_service_and_instance() {
    contract::health_reports_passing(&spawn_app().await).await;
}

#[tokio::test]
async fn every_response_names_the_instance_even_errors() {
    contract::every_response_names_the_instance(&spawn_app().await, FOUND, INVALID).await;
}

#[tokio::test]
async fn a_callers_request_id_is_echoed() {
    contract::a_callers_request_id_is_echoed(&spawn_app().await, FOUND).await;
}

#[tokio::test]
async fn a_missing_or_unusable_request_id_is_replaced_by_a_new_one() {
    contract::a_missing_or_unusable_request_id_is_replaced(&spawn_app().await, FOUND).await;
}
