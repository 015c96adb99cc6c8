//! Registration, TTL updates and the read endpoints' filters.

use serde_json::{Value, json};

use crate::helpers::spawn;

/// `PUT` a registration body, returning status and body text.
async fn try_register(registry: &crate::helpers::TestRegistry, body: &str) -> (u16, String) {
    let response = registry
        .put("/v1/agent/service/register", body.to_owned())
        .await;
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn lowercase_keys_and_documented_snake_case_aliases_are_accepted() {
    let registry = spawn().await;
    registry
        .register(&json!({
            "name": "web", "id": "web-1", "port": 80, "enabletagoverride": true,
            "tagged_addresses": {"lan": {"address": "10.1.1.1", "port": 80}},
            "checks": [{"ttl": "30s", "deregister_critical_service_after": "90s"}]
        }))
        .await;
    let (_, services) = registry.get_json("/v1/agent/services").await;
    let web = &services["web-1"];
    assert_eq!(web["EnableTagOverride"], true);
    assert_eq!(
        web["TaggedAddresses"]["lan"],
        json!({"Address": "10.1.1.1", "Port": 80})
    );
    assert!(registry.check("service:web-1").await.is_some());
}

#[tokio::test]
async fn strict_decoding_rejects_unknown_fields_bad_types_and_empty_durations() {
    let registry = spawn().await;
    let cases = [
        (
            r#"{"Name":"a","Colour":"red"}"#,
            r#"Request decode failed: json: unknown field "Colour""#,
        ),
        (
            r#"{"Name":"a","check_id":"x"}"#,
            r#"Request decode failed: json: unknown field "check_id""#,
        ),
        (
            r#"{"Name":"a","Port":"80"}"#,
            "Request decode failed: json: cannot unmarshal string into Go struct field ServiceDefinition.Port of type int",
        ),
        (
            r#"{"Name":"a","Check":{"TTL":""}}"#,
            r#"Request decode failed: time: invalid duration """#,
        ),
        (
            r#"{"Name":"a","Check":{"TTL":"10"}}"#,
            r#"Request decode failed: time: invalid duration "10""#,
        ),
        (r#"{"Name":"a","Address":"::"}"#, "Invalid service address"),
        (
            r#"{"Name":"a","Weights":{"Passing":1,"Warning":-1}}"#,
            "Invalid Weights: Warning must be greater or equal than 0",
        ),
        (
            r#"{"Name":"a","Meta":{"consul-x":"y"}}"#,
            "Invalid Service Meta: Couldn't load metadata pair ('consul-x', 'y'): Key prefix 'consul-' is reserved for internal use",
        ),
        (
            r#"{"Name":"a","Check":{"TCP":"x:1"}}"#,
            "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks",
        ),
        (
            r#"{"Name":"a","Checks":[{"TTL":"1s"},{"TTL":"1s","Status":"up"}]}"#,
            "Status for checks must 'passing', 'warning', 'critical'",
        ),
    ];
    for (body, message) in cases {
        assert_eq!(
            try_register(&registry, body).await,
            (400, message.to_owned()),
            "{body}"
        );
    }
    let (status, text) = try_register(
        &registry,
        r#"{"Name":"a","TaggedAddresses":{"lan_ipv4":{"Address":"nope"}}}"#,
    )
    .await;
    assert_eq!(
        status, 500,
        "tagged-address errors come from inside the agent"
    );
    assert_eq!(
        text,
        r#"Service tagged address "lan_ipv4" must be a valid ipv4 address"#
    );
}

#[tokio::test]
async fn null_and_empty_checks_register_a_service_without_checks() {
    let registry = spawn().await;
    registry
        .register(&json!({"Name": "a", "Check": null, "Checks": null}))
        .await;
    registry.register(&json!({"Name": "b", "Check": {}})).await;
    let (_, checks) = registry.get_json("/v1/agent/checks").await;
    assert_eq!(
        checks.as_object().unwrap().len(),
        1,
        "only serfHealth: {checks}"
    );
    let (_, services) = registry.get_json("/v1/agent/services").await;
    assert_eq!(
        services["a"]["Weights"],
        json!({"Passing": 1, "Warning": 1})
    );
}

#[tokio::test]
async fn check_ids_and_names_are_derived_over_the_combined_list() {
    let registry = spawn().await;
    registry
        .register(&json!({
            "ID": "web-1", "Name": "web",
            "Check": {"TTL": "30s"},
            "Checks": [{"CheckID": "explicit", "TTL": "30s"}, {"TTL": "30s", "Status": "passing"}]
        }))
        .await;
    let first = registry.check("service:web-1:1").await.unwrap();
    assert_eq!(first["Name"], "Service 'web' check");
    assert_eq!(first["Status"], "critical", "new checks start critical");
    assert_eq!(first["Type"], "ttl");
    assert!(registry.check("explicit").await.is_some());
    let third = registry.check("service:web-1:3").await.unwrap();
    assert_eq!(
        third["Status"], "passing",
        "an explicit initial Status is honoured"
    );

    registry
        .register(&json!({"Name": "solo", "Check": {"TTL": "30s"}}))
        .await;
    assert!(registry.check("service:solo").await.is_some());
}

#[tokio::test]
async fn reregistration_keeps_check_status_and_output() {
    let registry = spawn().await;
    let body = json!({"ID": "web-1", "Name": "web", "Check": {"CheckID": "web-ttl", "TTL": "30s"}});
    registry.register(&body).await;
    let response = registry
        .put_empty("/v1/agent/check/pass/web-ttl?note=fine")
        .await;
    assert_eq!(response.status(), 200);

    let mut again = body.clone();
    again["Check"]["Status"] = json!("critical");
    again["Tags"] = json!(["v2"]);
    registry.register(&again).await;
    let check = registry.check("web-ttl").await.unwrap();
    assert_eq!(check["Status"], "passing");
    assert_eq!(check["Output"], "fine");
    assert_eq!(check["ServiceTags"], json!(["v2"]));
}

#[tokio::test]
async fn replace_existing_checks_drops_checks_missing_from_the_request() {
    let registry = spawn().await;
    let two = json!({"ID": "web-1", "Name": "web", "Checks": [{"TTL": "30s"}, {"TTL": "30s"}]});
    let one = json!({"ID": "web-1", "Name": "web", "Check": {"TTL": "30s"}});
    registry.register(&two).await;
    registry.register(&one).await;
    for id in ["service:web-1:1", "service:web-1:2", "service:web-1"] {
        assert!(
            registry.check(id).await.is_some(),
            "{id} kept without the flag"
        );
    }
    for flag in ["false", "1"] {
        let response = registry
            .put(
                &format!("/v1/agent/service/register?replace-existing-checks={flag}"),
                one.to_string(),
            )
            .await;
        assert_eq!(response.status(), 200);
        assert!(
            registry.check("service:web-1:1").await.is_some(),
            "flag={flag} is off"
        );
    }
    let response = registry
        .put(
            "/v1/agent/service/register?replace-existing-checks",
            one.to_string(),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(registry.check("service:web-1:1").await.is_none());
    assert!(registry.check("service:web-1:2").await.is_none());
    assert!(registry.check("service:web-1").await.is_some());
}

#[tokio::test]
async fn ttl_endpoints_set_status_and_output() {
    let registry = spawn().await;
    registry
        .register(&json!({"Name": "web", "Check": {"TTL": "30s"}}))
        .await;
    for (verb, status) in [
        ("warn", "warning"),
        ("fail", "critical"),
        ("pass", "passing"),
    ] {
        let response = registry
            .put_empty(&format!("/v1/agent/check/{verb}/service:web?note={verb}ed"))
            .await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("content-type").is_none());
        assert_eq!(response.text().await.unwrap(), "");
        let check = registry.check("service:web").await.unwrap();
        assert_eq!(check["Status"], status);
        assert_eq!(check["Output"], format!("{verb}ed"));
    }
    let response = registry
        .put(
            "/v1/agent/check/update/service:web",
            r#"{"Status":"warning","Output":"slow"}"#,
        )
        .await;
    assert_eq!(response.status(), 200);
    let check = registry.check("service:web").await.unwrap();
    assert_eq!(
        (check["Status"].clone(), check["Output"].clone()),
        (json!("warning"), json!("slow"))
    );
}

#[tokio::test]
async fn long_ttl_output_keeps_the_first_4096_bytes_and_says_so() {
    let registry = spawn().await;
    registry
        .register(&json!({"Name": "web", "Check": {"TTL": "30s"}}))
        .await;
    let output = "x".repeat(5000);
    let body = json!({"Status": "passing", "Output": output}).to_string();
    assert_eq!(
        registry
            .put("/v1/agent/check/update/service:web", body)
            .await
            .status(),
        200
    );
    let check = registry.check("service:web").await.unwrap();
    let stored = check["Output"].as_str().unwrap();
    assert_eq!(
        stored,
        format!("{} ... (captured 4096 of 5000 bytes)", "x".repeat(4096))
    );
}

#[tokio::test]
async fn ids_with_slashes_work_when_percent_encoded() {
    let registry = spawn().await;
    registry
        .register(&json!({"ID": "api/v1", "Name": "api", "Check": {"CheckID": "api/v1/ttl", "TTL": "30s"}}))
        .await;
    let response = registry
        .put_empty("/v1/agent/check/pass/api%2Fv1%2Fttl")
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        registry.check("api/v1/ttl").await.unwrap()["Status"],
        "passing"
    );
    let (_, service) = registry.get_json("/v1/agent/service/api%2Fv1").await;
    assert_eq!(service["ID"], "api/v1");
    let response = registry
        .put_empty("/v1/agent/service/deregister/api%2Fv1")
        .await;
    assert_eq!(response.status(), 200);
    let (_, services) = registry.get_json("/v1/agent/services").await;
    assert_eq!(services, json!({}));
}

#[tokio::test]
async fn deregistering_removes_the_service_and_its_checks() {
    let registry = spawn().await;
    registry
        .register(&json!({"ID": "web-1", "Name": "web", "Check": {"TTL": "30s"}}))
        .await;
    assert_eq!(
        registry
            .put_empty("/v1/agent/service/deregister/web-1")
            .await
            .status(),
        200
    );
    assert!(registry.check("service:web-1").await.is_none());
    let response = registry
        .put_empty("/v1/agent/service/deregister/web-1")
        .await;
    assert_eq!(response.status(), 404);
    let response = registry
        .put_empty("/v1/agent/check/pass/service:web-1")
        .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn health_passing_hides_warning_and_critical_instances() {
    let registry = spawn().await;
    for (id, status) in [("ok", "passing"), ("meh", "warning"), ("bad", "critical")] {
        registry
            .register(&json!({"ID": id, "Name": "web", "Check": {"TTL": "30s", "Status": status}}))
            .await;
    }
    registry
        .register(&json!({"ID": "unchecked", "Name": "web"}))
        .await;
    let ids = |entries: &Value| -> Vec<String> {
        let mut ids: Vec<String> = entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Service"]["ID"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let (_, all) = registry.get_json("/v1/health/service/web").await;
    assert_eq!(ids(&all), ["bad", "meh", "ok", "unchecked"]);
    for query in ["passing", "passing=1", "passing=true", "passing=T"] {
        let (_, healthy) = registry
            .get_json(&format!("/v1/health/service/web?{query}"))
            .await;
        assert_eq!(ids(&healthy), ["ok", "unchecked"], "{query}");
    }
    let (_, all) = registry
        .get_json("/v1/health/service/web?passing=false")
        .await;
    assert_eq!(ids(&all).len(), 4);
}

#[tokio::test]
async fn names_and_tags_match_case_insensitively_and_tags_combine_with_and() {
    let registry = spawn().await;
    registry
        .register(&json!({"ID": "a", "Name": "Web", "Tags": ["v1", "Blue"]}))
        .await;
    registry
        .register(&json!({"ID": "b", "Name": "web", "Tags": ["v1"]}))
        .await;
    let (_, entries) = registry.get_json("/v1/health/service/WEB").await;
    assert_eq!(entries.as_array().unwrap().len(), 2);
    let (_, entries) = registry
        .get_json("/v1/health/service/web?tag=V1&tag=blue")
        .await;
    assert_eq!(entries.as_array().unwrap().len(), 1);
    assert_eq!(entries[0]["Service"]["ID"], "a");
    let (_, entries) = registry.get_json("/v1/catalog/service/web?tag=blue").await;
    assert_eq!(entries.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_services_read_as_empty_lists_with_an_index() {
    let registry = spawn().await;
    for path in ["/v1/health/service/nope", "/v1/catalog/service/nope"] {
        let (index, entries) = registry.get_json(path).await;
        assert_eq!(entries, json!([]), "{path}");
        assert!(index >= 1, "{path}");
    }
    let response = registry.get("/v1/agent/service/nope").await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.text().await.unwrap(), "unknown service ID: nope");
}

#[tokio::test]
async fn catalog_services_lists_the_union_of_tags_and_always_consul() {
    let registry = spawn().await;
    let (_, services) = registry.get_json("/v1/catalog/services").await;
    assert_eq!(services, json!({"consul": []}));
    registry
        .register(&json!({"ID": "a", "Name": "web", "Tags": ["v1", "blue"]}))
        .await;
    registry
        .register(&json!({"ID": "b", "Name": "web", "Tags": ["v2", "blue"]}))
        .await;
    let (index, services) = registry.get_json("/v1/catalog/services").await;
    assert_eq!(services, json!({"consul": [], "web": ["v1", "blue", "v2"]}));
    assert!(index > 1);
    let (_, consul) = registry.get_json("/v1/health/service/consul").await;
    assert_eq!(consul[0]["Service"]["Port"], 8300);
}

#[tokio::test]
async fn agent_service_carries_a_content_hash_that_follows_the_definition() {
    let registry = spawn().await;
    registry
        .register(&json!({"ID": "web-1", "Name": "web", "Port": 80}))
        .await;
    let response = registry.get("/v1/agent/service/web-1").await;
    let header = response.headers()["x-consul-contenthash"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ContentHash"], header);
    assert_eq!(body["Port"], 80);

    registry
        .register(&json!({"ID": "web-1", "Name": "web", "Port": 81}))
        .await;
    let response = registry.get("/v1/agent/service/web-1").await;
    assert_ne!(
        response.headers()["x-consul-contenthash"].to_str().unwrap(),
        header
    );
}

#[tokio::test]
async fn agent_self_reports_the_node_and_datacenter() {
    let registry = spawn().await;
    let (_, me) = registry.get_json("/v1/agent/self").await;
    assert_eq!(me["Config"]["NodeName"], "dev-registry");
    assert_eq!(me["Config"]["Datacenter"], "dc1");
}

#[tokio::test]
async fn an_unknown_datacenter_has_no_path() {
    let registry = spawn().await;
    let response = registry.get("/v1/health/service/web?dc=dc9").await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.text().await.unwrap(), "No path to datacenter");
    assert_eq!(
        registry.get("/v1/health/service/web?dc=dc1").await.status(),
        200
    );
}

#[tokio::test]
async fn filter_expressions_are_refused_rather_than_ignored() {
    let registry = spawn().await;
    for path in [
        "/v1/health/service/web?filter=Service.Port%3D%3D80",
        "/v1/agent/services?filter=x",
    ] {
        let response = registry.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .starts_with("Failed to create boolean expression evaluator")
        );
    }
}

#[tokio::test]
async fn node_meta_filters_against_the_single_node() {
    let registry = spawn().await;
    registry.register(&json!({"Name": "web"})).await;
    let (_, hit) = registry
        .get_json("/v1/health/service/web?node-meta=consul-network-segment:")
        .await;
    assert_eq!(hit.as_array().unwrap().len(), 1);
    let (_, miss) = registry
        .get_json("/v1/health/service/web?node-meta=rack:a")
        .await;
    assert_eq!(miss, json!([]));
}
