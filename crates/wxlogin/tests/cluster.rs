//! Several `wxlogin serve` processes behind no balancer but this test's round robin, on one PostgreSQL and one
//! Redis, against one `wxlogin sim` process: the cluster must behave as one service. PostgreSQL is reached
//! through a TCP proxy in this test, so "the database is down for 5 s" is a cut of that proxy and does not
//! disturb anything else on the machine.
//!
//! With WXLOGIN_TEST_POSTGRES and WXLOGIN_TEST_REDIS set (CI sets both) the test must run; without them it skips
//! with a message when either server is absent.

mod common;

use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS: &str = "redis://127.0.0.1:6379/";
const DATA_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Kills its process when dropped, so a failed assertion leaves nothing running.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn servers_available() -> bool {
    let required = std::env::var_os("WXLOGIN_TEST_POSTGRES").is_some()
        || std::env::var_os("WXLOGIN_TEST_REDIS").is_some();
    let pg = PgConnection::connect(PG)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let redis = TcpStream::connect("127.0.0.1:6379")
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    match (pg, redis) {
        (Ok(()), Ok(())) => true,
        (pg, redis) if required => panic!(
            "PostgreSQL/Redis required by the environment but not reachable: {pg:?} {redis:?}"
        ),
        (pg, redis) => {
            eprintln!("skipping the cluster test: PostgreSQL {pg:?}, Redis {redis:?}");
            false
        }
    }
}

/// A TCP proxy to PostgreSQL that can be cut (existing connections dropped, new ones refused) and restored.
#[derive(Clone)]
struct DbProxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<parking_lot::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl DbProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Self {
            port,
            up: Arc::new(AtomicBool::new(true)),
            conns: Default::default(),
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !p.up.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                p.conns.lock().push(task.abort_handle());
            }
        });
        proxy
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

struct Cluster {
    http: reqwest::Client,
    sim: String,
    instances: Vec<Option<Proc>>,
    urls: Vec<String>,
    appid: String,
    schema: String,
    _sim_proc: Proc,
}

impl Cluster {
    async fn post(&self, url: String, body: Value) -> (u16, Value) {
        match self.http.post(url).json(&body).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({ "transport": e.to_string() })),
        }
    }

    async fn batch(&self, count: usize) -> Vec<Value> {
        let (_, body) = self
            .post(
                format!("{}/sandbox/v1/batch", self.sim),
                json!({ "count": count }),
            )
            .await;
        body["items"].as_array().unwrap().clone()
    }

    async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/sandbox/v1/stats", self.sim))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn tokens_issued(&self) -> u64 {
        self.stats().await["tokensIssued"].as_u64().unwrap()
    }

    async fn faults(&self, body: Value) {
        let r = self
            .http
            .put(format!("{}/sandbox/v1/faults", self.sim))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// getPhone for each item, spread round robin over the live instances, all at once.
    async fn logins(&self, items: &[Value], on: &[usize]) -> Vec<(u16, Value)> {
        let calls = items.iter().enumerate().map(|(i, item)| {
            let url = format!("{}/api/getPhone", self.urls[on[i % on.len()]]);
            self.post(
                url,
                json!({ "loginCode": item["loginCode"], "phoneCode": item["phoneCode"] }),
            )
        });
        futures::future::join_all(calls).await
    }

    async fn users(&self) -> i64 {
        let mut c = PgConnection::connect(PG).await.unwrap();
        let sql = format!("SELECT count(*) FROM \"{}\".accounts", self.schema);
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut c)
            .await
            .unwrap()
    }

    async fn duplicate_openids(&self) -> i64 {
        let mut c = PgConnection::connect(PG).await.unwrap();
        let sql = format!(
            "SELECT count(*) FROM (SELECT openid FROM \"{}\".identities GROUP BY appid, openid HAVING count(*) > 1) d",
            self.schema
        );
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut c)
            .await
            .unwrap()
    }
}

async fn start_cluster(db_port: u16, lease: &str) -> Cluster {
    let bin = env!("CARGO_BIN_EXE_wxlogin");
    let appid = format!("wx{:016x}", rand::random::<u64>());
    let secret = format!("{:032x}", rand::random::<u128>());
    let schema = format!("cluster_{:012x}", rand::random::<u64>() >> 16);
    let mut c = PgConnection::connect(PG).await.unwrap();
    c.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .await
        .unwrap();

    let sim_port = common::free_port();
    let sim_proc = Proc(
        Command::new(bin)
            .args([
                "sim",
                "--listen",
                &format!("127.0.0.1:{sim_port}"),
                "--app",
                &format!("{appid}:{secret}"),
            ])
            .stdout(Stdio::null())
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let sim = format!("http://127.0.0.1:{sim_port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    common::wait_up(&http, &format!("{sim}/sandbox/v1/stats")).await;

    let database_url =
        format!("postgres://postgres@127.0.0.1:{db_port}/test?options=-c%20search_path%3D{schema}");
    let mut instances = Vec::new();
    let mut urls = Vec::new();
    for i in 0..3 {
        let port = common::free_port();
        let dir = std::env::temp_dir().join(format!("wxlogin-cluster-{schema}-{i}"));
        let child = Command::new(bin)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&dir)
            .args([
                "--database-url",
                &database_url,
                "--redis-url",
                REDIS,
                "--wechat-base-url",
                &sim,
                "--token-lock-lease",
                lease,
                // Load from one address; the limits across instances are tested in tests/limits.rs.
                "--rate-limits",
                "off",
            ])
            .env("WX_APPID", &appid)
            .env("WX_SECRET", &secret)
            .env("WXLOGIN_DATA_KEY", DATA_KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        instances.push(Some(Proc(child)));
        urls.push(format!("http://127.0.0.1:{port}"));
    }
    for url in &urls {
        common::wait_up(&http, &format!("{url}/healthz")).await;
    }
    Cluster {
        http,
        sim,
        instances,
        urls,
        appid,
        schema,
        _sim_proc: sim_proc,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behave_as_one() {
    if !servers_available().await {
        return;
    }
    let proxy = DbProxy::start().await;
    let mut cluster = start_cluster(proxy.port, "2s").await;
    let all = [0, 1, 2];

    // 300 concurrent logins of distinct users over three instances: one token for the cluster.
    let items = cluster.batch(300).await;
    let answers = cluster.logins(&items, &all).await;
    assert!(
        answers.iter().all(|(s, b)| *s == 200 && b["code"] == 0),
        "{:?}",
        answers.iter().find(|(s, _)| *s != 200)
    );
    assert_eq!(cluster.users().await, 300);
    assert_eq!(
        cluster.tokens_issued().await,
        1,
        "one access token for the whole cluster"
    );
    for url in &cluster.urls {
        let ready: Value = cluster
            .http
            .get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            ready,
            json!({ "status": "ready", "database": "ok", "redis": "ok" })
        );
    }

    // A revoked token under load: exactly one refresh across the cluster, no failed login.
    cluster.faults(json!({ "revokeToken": true })).await;
    let items = cluster.batch(150).await;
    let answers = cluster.logins(&items, &all).await;
    assert!(
        answers.iter().all(|(s, _)| *s == 200),
        "{:?}",
        answers.iter().find(|(s, _)| *s != 200)
    );
    assert_eq!(cluster.tokens_issued().await, 2);

    // An instance SIGKILLed while it holds the refresh lock: the others take over within the lease.
    cluster
        .faults(json!({ "latencyMs": 1500, "paths": ["/cgi-bin/stable_token"] }))
        .await;
    cluster.faults(json!({ "revokeToken": true })).await;
    let victim_item = cluster.batch(1).await.remove(0);
    let victim_url = format!("{}/api/getPhone", cluster.urls[0]);
    let http = cluster.http.clone();
    let victim_call = tokio::spawn(async move {
        let _ = http.post(victim_url).json(&json!({ "loginCode": victim_item["loginCode"], "phoneCode": victim_item["phoneCode"] })).send().await;
    });
    let mut redis = redis_connection().await;
    let lock_key = format!("wxlogin:{}:refresh_lock", cluster.appid);
    let started = Instant::now();
    loop {
        let held: Option<String> = redis::cmd("GET")
            .arg(&lock_key)
            .query_async(&mut redis)
            .await
            .unwrap();
        if held.is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "instance 0 never took the refresh lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut victim = cluster.instances[0].take().unwrap();
    victim.0.kill().unwrap(); // SIGKILL
    victim.0.wait().unwrap();
    victim_call.await.unwrap();
    let survivors_started = Instant::now();
    let items = cluster.batch(60).await;
    let answers = cluster.logins(&items, &[1, 2]).await;
    assert!(
        answers.iter().all(|(s, _)| *s == 200),
        "{:?}",
        answers.iter().find(|(s, _)| *s != 200)
    );
    let took = survivors_started.elapsed();
    eprintln!("after SIGKILL of the lock holder: 60 logins on the survivors in {took:?}");
    assert!(
        took < Duration::from_secs(2 + 2 + 2),
        "lease 2 s + a 1.5 s token fetch, took {took:?}"
    );
    cluster.faults(json!({})).await;

    // The database down for 5 s under load: clear 503s during, recovery after, nothing lost or duplicated.
    let before = cluster.users().await;
    let items = cluster.batch(400).await;
    let outcomes = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let load = {
        let (cluster_http, urls, outcomes, items) = (
            cluster.http.clone(),
            cluster.urls.clone(),
            outcomes.clone(),
            items.clone(),
        );
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                let url = format!("{}/api/getPhone", urls[1 + i % 2]);
                let (http, outcomes) = (cluster_http.clone(), outcomes.clone());
                tasks.push(tokio::spawn(async move {
                    let sent = Instant::now();
                    let r = http.post(url).json(&json!({ "loginCode": item["loginCode"], "phoneCode": item["phoneCode"] })).send().await;
                    let (status, body) = match r {
                        Ok(r) => (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null)),
                        Err(e) => (0, json!({ "transport": e.to_string() })),
                    };
                    outcomes.lock().push((i, status, body, sent.elapsed()));
                }));
                tokio::time::sleep(Duration::from_millis(25)).await; // 40 logins/s for 10 s
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.restore();
    load.await.unwrap();
    let outcomes = outcomes.lock().clone();
    let failed: Vec<usize> = outcomes
        .iter()
        .filter(|o| o.1 != 200)
        .map(|o| o.0)
        .collect();
    for (_, status, body, took) in &outcomes {
        assert!(
            *status == 200 || (*status == 503 && body["error"] == "database_unavailable"),
            "{status} {body}"
        );
        assert!(
            *took < Duration::from_secs(5),
            "an answer took {took:?}: no hang"
        );
    }
    let slowest = outcomes.iter().map(|o| o.3).max().unwrap();
    eprintln!(
        "database outage: {} of {} logins answered 503, slowest answer {slowest:?}",
        failed.len(),
        outcomes.len()
    );
    assert!(!failed.is_empty(), "the outage was seen");
    // The outage covers 5 of the load's 10 s: about half the logins, plus a moment of reconnection.
    assert!(
        failed.len() < items.len() * 65 / 100,
        "logins outside the outage succeeded ({} failed)",
        failed.len()
    );
    let last_ok = outcomes
        .iter()
        .filter(|o| o.1 == 200)
        .map(|o| o.0)
        .max()
        .unwrap();
    assert!(
        last_ok > *failed.iter().max().unwrap(),
        "logins succeed again after the outage"
    );
    // The users whose login failed try again (fresh codes, as the mini program would): all get in, once.
    let openids: Vec<String> = failed
        .iter()
        .map(|&i| items[i]["openid"].as_str().unwrap().to_owned())
        .collect();
    let (_, fresh) = cluster
        .post(
            format!("{}/sandbox/v1/batch", cluster.sim),
            json!({ "openids": openids, "kind": "both" }),
        )
        .await;
    let retry = cluster
        .logins(fresh["items"].as_array().unwrap(), &[1, 2])
        .await;
    assert!(
        retry.iter().all(|(s, _)| *s == 200),
        "{:?}",
        retry.iter().find(|(s, _)| *s != 200)
    );
    assert_eq!(
        cluster.users().await,
        before + items.len() as i64,
        "no lost user"
    );
    assert_eq!(cluster.duplicate_openids().await, 0, "no duplicated user");

    let mut c = PgConnection::connect(PG).await.unwrap();
    c.execute(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{}\" CASCADE",
        cluster.schema
    )))
    .await
    .unwrap();
}

async fn redis_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}
