//! Real `rating-service` processes sharing one database: replicas agree, a rating acknowledged
//! before `kill -9` survives it, and concurrent writes of one user's rating leave one row.
//!
//! Each test starts the dev registry in-process and the binary as child processes on port 0,
//! and learns their ports from the registry, as any client would. Children run with a cleared
//! environment (so a `DATABASE_URL` in the test's environment is never inherited by accident),
//! log to files in the test's directory, and are killed if the test fails.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use dev_registry::RunningRegistry;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::databases::PgSchema;
use crate::helpers::PATIENCE;

/// Where the replicas of one test keep their ratings.
#[derive(Debug, Clone)]
enum Storage {
    /// No `DATABASE_URL`: the default SQLite file under `XDG_DATA_HOME`.
    DefaultSqlite,
    /// `--database-url <url>`.
    Url(String),
}

/// A dev registry, a data directory and the replicas started against them.
struct Cluster {
    registry: RunningRegistry,
    storage: Storage,
    /// `XDG_DATA_HOME` and `HOME` of every replica, and where their logs go.
    home: tempfile::TempDir,
    client: reqwest::Client,
}

/// One `rating-service` process. Killed (SIGKILL) when dropped, so a failing test leaves
/// nothing running.
struct Replica {
    name: String,
    child: Child,
    /// `http://127.0.0.1:<port>`.
    url: String,
    log: PathBuf,
}

impl Cluster {
    async fn new(storage: Storage) -> Self {
        common::tls::install_crypto_provider();
        Self {
            registry: RunningRegistry::spawn(dev_registry::Options::default())
                .await
                .unwrap(),
            storage,
            home: tempfile::tempdir().unwrap(),
            client: reqwest::Client::new(),
        }
    }

    /// The SQLite file replicas with default settings use.
    fn default_sqlite_file(&self) -> PathBuf {
        self.home.path().join("consul-discovery/ratings.sqlite3")
    }

    /// Starts a replica named `name` (its service ID) and returns once the registry lists it.
    async fn start(&self, name: &str) -> Replica {
        let log = self.home.path().join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_rating-service"));
        command
            .env_clear()
            .env("HOME", self.home.path())
            .env("XDG_DATA_HOME", self.home.path())
            .env("RUST_LOG", "info")
            .args(["--bind", "127.0.0.1", "--port", "0", "--service-id", name])
            .args(["--consul", &self.registry.url()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        if let Storage::Url(url) = &self.storage {
            command.args(["--database-url", url]);
        }
        let child = command.spawn().unwrap();
        let mut replica = Replica {
            name: name.to_owned(),
            child,
            url: String::new(),
            log,
        };
        replica.url = self.registered_url(&mut replica).await;
        replica
    }

    /// Waits until the registry knows `replica`, and returns its URL.
    async fn registered_url(&self, replica: &mut Replica) -> String {
        let lookup = format!("{}/v1/agent/service/{}", self.registry.url(), replica.name);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(response) = self.client.get(&lookup).send().await
                && response.status() == 200
            {
                let service: Value = response.json().await.unwrap();
                return format!("http://127.0.0.1:{}", service["Port"]);
            }
            if let Ok(Some(status)) = replica.child.try_wait() {
                panic!("{} exited with {status}:\n{}", replica.name, replica.logs());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} never registered:\n{}",
                replica.name,
                replica.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `PUT /ratings/movie/<record>` through `replica`; asserts 200 and returns the aggregate.
    async fn put(&self, replica: &Replica, record: &str, user: &str, value: u8) -> Value {
        let response = self
            .client
            .put(format!("{}/ratings/movie/{record}", replica.url))
            .json(&json!({"user_id": user, "value": value}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            status,
            200,
            "PUT through {}: {body}\n{}",
            replica.name,
            replica.logs()
        );
        body
    }

    /// Like [`Cluster::put`], but answers 503 (a replica shedding load: a pool queue longer
    /// than its acquire timeout, e.g. while a debug build opens its first connections on a busy
    /// machine) are retried, as the aggregator would.
    async fn put_retrying(&self, replica: &Replica, record: &str, user: &str, value: u8) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let response = self
                .client
                .put(format!("{}/ratings/movie/{record}", replica.url))
                .json(&json!({"user_id": user, "value": value}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            if status == 503 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            assert_eq!(status, 200, "PUT through {}: {body}", replica.name);
            return body;
        }
    }

    /// `GET /ratings/movie/<record>` through `replica`; asserts 200 and returns the aggregate.
    async fn get(&self, replica: &Replica, record: &str) -> Value {
        let response = self
            .client
            .get(format!("{}/ratings/movie/{record}", replica.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET through {}", replica.name);
        response.json().await.unwrap()
    }
}

impl Replica {
    /// Sends SIGKILL (what `kill -9` does) and reaps the process.
    async fn kill_9(mut self) -> ExitStatus {
        self.child.start_kill().unwrap();
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("a SIGKILLed process exits")
            .unwrap()
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A record ID no other test uses.
fn fresh_record() -> String {
    format!("r-{}", uuid::Uuid::new_v4().simple())
}

async fn replicas_agree(cluster: &Cluster) {
    // Started together: on a new SQLite file this also races their migrations.
    let (a, b) = tokio::join!(cluster.start("replica-a"), cluster.start("replica-b"));
    let record = fresh_record();
    let written = cluster.put(&a, &record, "alice", 4).await;
    assert_eq!(written["count"], 1);
    assert_eq!(cluster.get(&b, &record).await, written);
    let written = cluster.put(&b, &record, "bob", 2).await;
    assert_eq!(
        (written["count"].as_u64(), written["average"].as_f64()),
        (Some(2), Some(3.0))
    );
    assert_eq!(cluster.get(&a, &record).await, written);
    assert_eq!(cluster.get(&a, "1").await["count"], 3, "seeded once");
}

async fn a_rating_survives_kill_9(cluster: &Cluster) {
    let (a, b) = tokio::join!(cluster.start("replica-a"), cluster.start("replica-b"));
    let record = fresh_record();
    let acknowledged = cluster.put(&a, &record, "alice", 5).await;

    let status = a.kill_9().await;
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed, not exited: {status}");
    }
    assert_eq!(cluster.get(&b, &record).await, acknowledged);

    // A replica started after the kill, on the same storage, sees it too. (A new service ID,
    // so the registry's stale entry for the killed one is not mistaken for it.)
    let again = cluster.start("replica-c").await;
    assert_eq!(cluster.get(&again, &record).await, acknowledged);
}

/// Concurrent writes of one user's rating through both replicas; returns the record.
async fn one_users_concurrent_writes_leave_one_rating(cluster: &Cluster) -> String {
    let (a, b) = tokio::join!(cluster.start("replica-a"), cluster.start("replica-b"));
    let record = fresh_record();
    let writes = (0..40u8).map(|i| {
        let replica = if i % 2 == 0 { &a } else { &b };
        cluster.put_retrying(replica, &record, "alice", i % 5 + 1)
    });
    for written in futures::future::join_all(writes).await {
        assert_eq!(written["count"], 1, "{written}");
    }
    for replica in [&a, &b] {
        assert_eq!(cluster.get(replica, &record).await["count"], 1);
    }
    record
}

#[tokio::test]
async fn two_replicas_with_default_settings_share_one_sqlite_file_and_agree() {
    let cluster = Cluster::new(Storage::DefaultSqlite).await;
    replicas_agree(&cluster).await;
    assert!(
        cluster.default_sqlite_file().is_file(),
        "the default file is under XDG_DATA_HOME"
    );
}

#[tokio::test]
async fn a_rating_acknowledged_before_kill_9_is_read_back_through_another_replica_on_sqlite() {
    let cluster = Cluster::new(Storage::DefaultSqlite).await;
    a_rating_survives_kill_9(&cluster).await;
}

#[tokio::test]
async fn concurrent_writes_of_one_users_rating_through_two_replicas_leave_one_sqlite_row() {
    let cluster = Cluster::new(Storage::DefaultSqlite).await;
    let record = one_users_concurrent_writes_leave_one_rating(&cluster).await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ratings WHERE record_id = ?1")
        .bind(&record)
        .fetch_one(&sqlite_pool(&cluster.default_sqlite_file()).await)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn two_replicas_on_postgres_agree() {
    let Some(schema) = PgSchema::create("agree").await else {
        return;
    };
    let cluster = Cluster::new(Storage::Url(schema.url.clone())).await;
    replicas_agree(&cluster).await;
    drop(cluster);
    schema.drop().await;
}

#[tokio::test]
async fn a_rating_acknowledged_before_kill_9_is_read_back_through_another_replica_on_postgres() {
    let Some(schema) = PgSchema::create("kill9").await else {
        return;
    };
    let cluster = Cluster::new(Storage::Url(schema.url.clone())).await;
    a_rating_survives_kill_9(&cluster).await;
    drop(cluster);
    schema.drop().await;
}

#[tokio::test]
async fn concurrent_writes_of_one_users_rating_through_two_replicas_leave_one_postgres_row() {
    let Some(schema) = PgSchema::create("race").await else {
        return;
    };
    let cluster = Cluster::new(Storage::Url(schema.url.clone())).await;
    let record = one_users_concurrent_writes_leave_one_rating(&cluster).await;
    let pool = sqlx::postgres::PgPoolOptions::new().connect_lazy_with(schema.options.clone());
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ratings WHERE record_id = $1")
        .bind(&record)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    pool.close().await;
    drop(cluster);
    schema.drop().await;
}

async fn sqlite_pool(path: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(path))
        .await
        .unwrap()
}
