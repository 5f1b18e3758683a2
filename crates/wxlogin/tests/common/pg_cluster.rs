//! Several real `wxlogin serve` processes on one PostgreSQL schema of their own, against one `wxlogin sim` process
//! (WeChat and its device API): a cluster as docs/deployment.md runs it, minus Redis.

use super::{free_port, wait_up};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const DATA_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Kills its process when dropped, so a failed assertion leaves nothing running.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct PgCluster {
    pub http: reqwest::Client,
    /// The simulator's base URL (`/sandbox/v1/…` is its device API).
    pub sim: String,
    pub urls: Vec<String>,
    pub instances: Vec<Proc>,
    /// Every instance's database connections carry this `application_name`.
    pub application_name: String,
    _sim: Proc,
}

/// PostgreSQL reachable, or `false` (skip) when WXLOGIN_TEST_POSTGRES does not require it.
pub async fn postgres_available(what: &str) -> bool {
    match PgConnection::connect(PG).await {
        Ok(_) => true,
        Err(e) if std::env::var_os("WXLOGIN_TEST_POSTGRES").is_some() => {
            panic!("WXLOGIN_TEST_POSTGRES is set but PostgreSQL is not reachable: {e}")
        }
        Err(e) => {
            eprintln!("skipping {what}: PostgreSQL is not reachable ({e})");
            false
        }
    }
}

/// A PostgreSQL schema of its own for one test: the database URL that uses it.
pub async fn fresh_schema(tag: &str) -> String {
    let schema = format!("{tag}_{:012x}", rand::random::<u64>() >> 16);
    let mut c = PgConnection::connect(PG).await.unwrap();
    c.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .await
        .unwrap();
    format!("{PG}?application_name={schema}&options=-c%20search_path%3D{schema}")
}

impl PgCluster {
    /// `count` instances (rate limits off: the load comes from one address), each with `extra` flags.
    pub async fn start(tag: &str, count: usize, extra: &[&str]) -> Self {
        let bin = env!("CARGO_BIN_EXE_wxlogin");
        let appid = format!("wx{:016x}", rand::random::<u64>());
        let secret = format!("{:032x}", rand::random::<u128>());
        let schema = format!("{tag}_{:012x}", rand::random::<u64>() >> 16);
        let mut c = PgConnection::connect(PG).await.unwrap();
        c.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .await
            .unwrap();

        let sim_port = free_port();
        let sim_proc = Proc(
            Command::new(bin)
                .args(["sim", "--listen", &format!("127.0.0.1:{sim_port}")])
                .args(["--app", &format!("{appid}:{secret}")])
                .stdout(Stdio::null())
                .env("RUST_LOG", "warn")
                .spawn()
                .unwrap(),
        );
        let sim = format!("http://127.0.0.1:{sim_port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        wait_up(&http, &format!("{sim}/sandbox/v1/stats")).await;

        let application_name = schema.clone();
        let database_url =
            format!("{PG}?application_name={application_name}&options=-c%20search_path%3D{schema}");
        let mut instances = Vec::new();
        let mut urls = Vec::new();
        for i in 0..count {
            let addr = format!("127.0.0.1:{}", free_port());
            let dir = std::env::temp_dir().join(format!("wxlogin-{schema}-{i}"));
            let child = Command::new(bin)
                .args(["serve", "--listen", &addr, "--data-dir"])
                .arg(&dir)
                .args(["--database-url", &database_url, "--wechat-base-url", &sim])
                .args(["--rate-limits", "off"])
                // One issuer for the cluster: the default is each instance's own listen address.
                .args(["--issuer", "http://wxlogin.test"])
                .args(extra)
                .env("WX_APPID", &appid)
                .env("WX_SECRET", &secret)
                .env("WXLOGIN_DATA_KEY", DATA_KEY)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            instances.push(Proc(child));
            urls.push(format!("http://{addr}"));
        }
        for url in &urls {
            wait_up(&http, &format!("{url}/healthz")).await;
        }
        Self {
            http,
            sim,
            urls,
            instances,
            application_name,
            _sim: sim_proc,
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, url: String, body: Value, bearer: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(url).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    /// A sandbox user of the simulator logged in through instance `on`: (openid, access token, accountId).
    pub async fn logged_in(&self, phone: &str, on: usize) -> (String, String, String) {
        let sim = &self.sim;
        let (_, user) = self
            .post(
                format!("{sim}/sandbox/v1/users"),
                json!({ "phoneNumber": phone }),
                None,
            )
            .await;
        let openid = user["openid"].as_str().unwrap().to_owned();
        let code = |kind: &'static str| {
            let openid = openid.clone();
            async move {
                let url = format!("{sim}/sandbox/v1/{kind}");
                let (_, body) = self.post(url, json!({ "openid": openid }), None).await;
                body["code"].as_str().unwrap().to_owned()
            }
        };
        let body =
            json!({ "loginCode": code("login-code").await, "phoneCode": code("phone-code").await });
        let (status, login) = self
            .post(format!("{}/api/getPhone", self.urls[on]), body, None)
            .await;
        assert_eq!(status, 200, "{login}");
        let data = &login["data"];
        (
            openid,
            data["token"].as_str().unwrap().to_owned(),
            data["accountId"].as_str().unwrap().to_owned(),
        )
    }

    /// One metric's value on instance `on` (`/metrics`), 0 when absent.
    pub async fn metric(&self, on: usize, name: &str) -> f64 {
        let text = super::metrics_text(&self.http, &self.urls[on]).await;
        super::metric_value(&text, name)
    }

    /// Database connections the cluster's instances hold open.
    pub async fn backends(&self) -> i64 {
        let mut c = PgConnection::connect(PG).await.unwrap();
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&self.application_name)
        .fetch_one(&mut c)
        .await
        .unwrap()
    }

    /// Resident memory of instance `on`, in KiB.
    pub fn rss_kib(&self, on: usize) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.instances[on].0.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}
