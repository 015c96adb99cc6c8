//! `ConsulRegistry` against a stub Consul (wiremock): request shapes and Consul's error answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::config::ConsulConfig;
use common::discovery::{self, WatchOptions};
use common::registration;
use common::registry::{
    BlockingWait, ConsulRegistry, HealthCheck, Registration, Registry, RegistryError,
};
use wiremock::matchers::{
    body_json_string, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn client(server: &MockServer) -> ConsulRegistry {
    client_with(server, |_| {})
}

fn client_with(server: &MockServer, tweak: impl FnOnce(&mut ConsulConfig)) -> ConsulRegistry {
    let mut config = ConsulConfig::new(server.uri().parse().unwrap());
    tweak(&mut config);
    ConsulRegistry::new(&config).unwrap()
}

fn registration(check: HealthCheck) -> Registration {
    Registration {
        id: "orders-1".into(),
        name: "orders".into(),
        address: "10.0.0.11".into(),
        port: 8080,
        tags: vec![],
        meta: BTreeMap::from([("framework".into(), "axum".into())]),
        check,
        deregister_critical_after: Duration::from_secs(60),
    }
}

fn ttl_registration() -> Registration {
    registration(HealthCheck::Ttl {
        ttl: Duration::from_millis(300),
    })
}

fn text(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_raw(body.as_bytes().to_vec(), "text/plain; charset=utf-8")
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../testdata/consul-samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn requests_to(server: &MockServer, p: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == p)
        .collect()
}

#[tokio::test]
async fn register_sends_the_definition_with_token_and_replace_existing_checks() {
    let server = MockServer::start().await;
    let reg = registration(HealthCheck::Http {
        url: "http://10.0.0.11:8080/health".into(),
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
    });
    Mock::given(method("PUT"))
        .and(path("/v1/agent/service/register"))
        .and(query_param("replace-existing-checks", "true"))
        .and(header("X-Consul-Token", "s3cr3t"))
        .and(header("content-type", "application/json"))
        .and(body_json_string(
            r#"{"ID":"orders-1","Name":"orders","Address":"10.0.0.11","Port":8080,
                "Meta":{"framework":"axum"},
                "Check":{"CheckID":"service:orders-1","Name":"orders health",
                         "HTTP":"http://10.0.0.11:8080/health","Method":"GET","Interval":"5s",
                         "Timeout":"2s","Status":"passing","DeregisterCriticalServiceAfter":"1m"}}"#,
        ))
        // Consul answers writes with an empty body and no content type: never decode it.
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let consul = client_with(&server, |c| c.token = Some("s3cr3t".into()));
    consul.register(&reg).await.unwrap();
}

#[tokio::test]
async fn acl_refusal_keeps_consuls_plain_text_and_is_not_transient() {
    let server = MockServer::start().await;
    let denied = "Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'service:write' on \"orders\"";
    Mock::given(path("/v1/agent/service/register"))
        .respond_with(text(403, denied))
        .mount(&server)
        .await;
    let err = client(&server)
        .register(&ttl_registration())
        .await
        .unwrap_err();
    match &err {
        RegistryError::Status { status: 403, body } => assert_eq!(body, denied),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!err.is_transient());
}

#[tokio::test]
async fn ttl_pass_on_a_forgotten_check_is_unknown_check_for_both_consul_generations() {
    for (status, body) in [
        (
            404,
            "Unknown check ID \"service:orders-1\". Ensure that the check ID is passed, not the check name.",
        ),
        (
            500,
            "CheckID \"service:orders-1\" does not have associated TTL",
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("PUT"))
            .and(path("/v1/agent/check/pass/service:orders-1"))
            .and(query_param("note", "beat"))
            .respond_with(text(status, body))
            .mount(&server)
            .await;
        let err = client(&server)
            .pass_ttl("service:orders-1", "beat")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RegistryError::UnknownCheck { body: b, .. } if b == body),
            "{status}: {err:?}"
        );
    }
}

#[tokio::test]
async fn other_server_errors_stay_plain_status_errors() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/agent/check/pass/service:orders-1"))
        .respond_with(text(500, "rpc error: connection reset"))
        .mount(&server)
        .await;
    let err = client(&server)
        .pass_ttl("service:orders-1", "")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Status { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn keeper_registers_again_when_the_ttl_pass_answers_404() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/agent/service/register"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(path("/v1/agent/check/pass/service:orders-1"))
        .respond_with(text(404, "Unknown check ID \"service:orders-1\". Ensure that the check ID is passed, not the check name."))
        .mount(&server)
        .await;
    let consul: Arc<dyn Registry> = Arc::new(client(&server));
    let reg = ttl_registration();
    let keeper = registration::spawn(
        consul,
        reg.clone(),
        registration::keepalive_interval(&reg.check),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while requests_to(&server, "/v1/agent/service/register")
        .await
        .len()
        < 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never re-registered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !requests_to(&server, "/v1/agent/check/pass/service:orders-1")
            .await
            .is_empty()
    );
    drop(keeper);
}

#[tokio::test]
async fn no_cluster_leader_is_a_transient_500() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/health/service/orders"))
        .respond_with(text(500, "No cluster leader"))
        .mount(&server)
        .await;
    let err = client(&server)
        .healthy_instances("orders", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::Status { status: 500, body } if body == "No cluster leader"),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_slow_agent_times_out_instead_of_hanging() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/agent/service/register"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let consul = client_with(&server, |c| c.request_timeout = Duration::from_millis(200));
    let err = consul.register(&ttl_registration()).await.unwrap_err();
    assert!(matches!(err, RegistryError::Timeout(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_agent_is_reported_with_the_cause() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let consul = ConsulRegistry::new(&ConsulConfig::new(
        format!("127.0.0.1:{port}").parse().unwrap(),
    ))
    .unwrap();
    let err = consul.healthy_instances("orders", None).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable(_)), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
}

#[tokio::test]
async fn health_answer_is_parsed_filtered_and_falls_back_to_the_node_address() {
    let server = MockServer::start().await;
    // The sample has a critical orders-2 with an empty Service.Address; a stand-in that ignored
    // ?passing would return it, so we also filter client-side.
    Mock::given(method("GET"))
        .and(path("/v1/health/service/orders"))
        .and(query_param("passing", "1"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-Consul-Index", "52")
                .set_body_raw(
                    sample("health-service-two-instances.json"),
                    "application/json",
                ),
        )
        .mount(&server)
        .await;
    let answer = client(&server)
        .healthy_instances("orders", None)
        .await
        .unwrap();
    assert_eq!(answer.index, 52);
    let ids: Vec<_> = answer.instances.iter().map(|i| i.authority()).collect();
    assert_eq!(ids, ["10.0.0.11:8080"]);

    // The same sample with every check passing: orders-2 falls back to Node.Address.
    let all_passing =
        sample("health-service-two-instances.json").replace("\"critical\"", "\"passing\"");
    let server = MockServer::start().await;
    Mock::given(path("/v1/health/service/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-Consul-Index", "53")
                .set_body_raw(all_passing, "application/json"),
        )
        .mount(&server)
        .await;
    let answer = client(&server)
        .healthy_instances("orders", None)
        .await
        .unwrap();
    let ids: Vec<_> = answer.instances.iter().map(|i| i.authority()).collect();
    assert_eq!(ids, ["10.0.0.11:8080", "172.18.0.2:8081"]);
}

#[tokio::test]
async fn blocking_query_sends_index_and_wait_in_milliseconds() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/health/service/orders"))
        .and(query_param("index", "7"))
        .and(query_param("wait", "1500ms"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-Consul-Index", "8")
                .set_body_string("[]"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let wait = Some(BlockingWait {
        index: 7,
        wait: Duration::from_millis(1500),
    });
    let answer = client(&server)
        .healthy_instances("orders", wait)
        .await
        .unwrap();
    assert_eq!(answer.index, 8);
}

#[tokio::test]
async fn a_missing_index_header_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/health/service/orders"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .mount(&server)
        .await;
    let err = client(&server)
        .healthy_instances("orders", None)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Decode(_)), "{err:?}");
}

#[tokio::test]
async fn watcher_starts_over_without_an_index_when_the_index_goes_backwards() {
    let server = MockServer::start().await;
    let one = r#"[{"Node":{"Address":"10.0.0.1"},"Service":{"ID":"a","Address":"10.0.0.1","Port":1},"Checks":[]}]"#;
    Mock::given(path("/v1/health/service/orders"))
        .and(query_param_is_missing("index"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-Consul-Index", "100")
                .set_body_string(one),
        )
        .mount(&server)
        .await;
    // The agent restarted: a blocking query on the old index comes back with a lower one.
    Mock::given(path("/v1/health/service/orders"))
        .and(query_param("index", "100"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-Consul-Index", "5")
                .set_body_string(one),
        )
        .mount(&server)
        .await;
    let consul: Arc<dyn Registry> = Arc::new(client(&server));
    let options = WatchOptions {
        period: Duration::from_millis(50),
        ..WatchOptions::default()
    };
    let watcher = discovery::watch(consul, "orders", options);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let indexes: Vec<Option<String>> = requests_to(&server, "/v1/health/service/orders")
            .await
            .iter()
            .map(|r| {
                r.url
                    .query_pairs()
                    .find(|(k, _)| k == "index")
                    .map(|(_, v)| v.into_owned())
            })
            .collect();
        // After the backwards answer (to index=100), the next query carries no index.
        let after_backwards = indexes
            .iter()
            .position(|i| i.as_deref() == Some("100"))
            .and_then(|pos| indexes.get(pos + 1));
        if let Some(next) = after_backwards {
            assert_eq!(*next, None, "reset to 0 after going backwards: {indexes:?}");
            assert_eq!(indexes[0], None, "first query does not block");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{indexes:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(watcher.snapshot().instances.len(), 1);
}

#[tokio::test]
async fn ids_are_percent_encoded_and_a_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/consul/v1/agent/service/deregister/odd%2Fid"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let consul = ConsulRegistry::new(&ConsulConfig::new(
        format!("{}/consul", server.uri()).parse().unwrap(),
    ))
    .unwrap();
    consul.deregister("odd/id").await.unwrap();
}

#[tokio::test]
async fn deregistering_an_unknown_id_counts_as_done() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/agent/service/deregister/orders-9"))
        .respond_with(text(404, "Unknown service ID \"orders-9\". Ensure that the service ID is passed, not the service name."))
        .mount(&server)
        .await;
    client(&server).deregister("orders-9").await.unwrap();
}

#[tokio::test]
async fn is_registered_reads_the_agent_entry() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/agent/service/orders-1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"ID":"orders-1","Service":"orders"}"#),
        )
        .mount(&server)
        .await;
    Mock::given(path("/v1/agent/service/orders-2"))
        .respond_with(text(404, "unknown service ID: orders-2"))
        .mount(&server)
        .await;
    let consul = client(&server);
    assert!(consul.is_registered("orders-1").await.unwrap());
    assert!(!consul.is_registered("orders-2").await.unwrap());
}
