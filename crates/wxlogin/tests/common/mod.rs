//! `spawn_app()`: the service in process on 127.0.0.1:0, sandbox mode, a fresh data dir; and helpers that play
//! the phone through the sandbox device API over HTTP, as a user of the README would.

#![allow(dead_code)]

pub mod pg_cluster;
pub mod privacy;
pub mod product;
pub mod push;
pub mod qr;
pub mod rows;

use serde_json::{Value, json};
use std::path::PathBuf;
use wxlogin::config::{ServeArgs, Settings};

pub struct TestApp {
    pub running: Option<wxlogin::app::Running>,
    pub base: String,
    pub http: reqwest::Client,
    pub data_dir: PathBuf,
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wxlogin-test-{tag}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn sandbox_args(data_dir: &std::path::Path) -> ServeArgs {
    ServeArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(data_dir.to_owned()),
        ..Default::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(sandbox_args(&temp_dir("app"))).await
}

pub async fn spawn_with(args: ServeArgs) -> TestApp {
    let data_dir = args.data_dir.clone().unwrap_or_else(|| temp_dir("app"));
    let settings = Settings::resolve(args, |_| None).unwrap();
    let running = wxlogin::app::start(settings, std::future::pending())
        .await
        .unwrap();
    let base = running.base_url();
    TestApp {
        running: Some(running),
        base,
        http: reqwest::Client::new(),
        data_dir,
    }
}

impl TestApp {
    pub fn sim(&self) -> &wxsim::Simulator {
        self.running
            .as_ref()
            .unwrap()
            .sim
            .as_ref()
            .expect("sandbox mode")
    }

    pub async fn users(&self) -> i64 {
        self.running
            .as_ref()
            .unwrap()
            .store
            .count_accounts()
            .await
            .unwrap()
    }

    pub async fn stop(&mut self) {
        self.running.take().unwrap().shutdown().await.unwrap();
    }

    /// POST a JSON body; answers (status, body as JSON).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, body.to_string().into_bytes(), None)
            .await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>, bearer: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A sandbox user through the device API; answers its openid.
    pub async fn user(&self, phone: &str) -> String {
        let (status, body) = self
            .post("/sandbox/v1/users", json!({ "phoneNumber": phone }))
            .await;
        assert!(status == 201 || status == 200, "{status} {body}");
        body["openid"].as_str().unwrap().to_owned()
    }

    pub async fn login_code(&self, openid: &str) -> String {
        let (_, body) = self
            .post("/sandbox/v1/login-code", json!({ "openid": openid }))
            .await;
        body["code"].as_str().unwrap().to_owned()
    }

    pub async fn phone_code(&self, openid: &str) -> String {
        let (_, body) = self
            .post("/sandbox/v1/phone-code", json!({ "openid": openid }))
            .await;
        body["code"].as_str().unwrap().to_owned()
    }

    pub async fn stats(&self) -> Value {
        self.get("/sandbox/v1/stats", None).await.1
    }

    pub async fn phone_calls(&self) -> u64 {
        self.stats().await["routes"]["/wxa/business/getuserphonenumber"]["calls"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The seed's one call for a user; answers the response.
    pub async fn get_phone(&self, openid: &str) -> (u16, Value) {
        let (login, phone) = (self.login_code(openid).await, self.phone_code(openid).await);
        self.post(
            "/api/getPhone",
            json!({ "loginCode": login, "phoneCode": phone }),
        )
        .await
    }
}

/// Asserts an error answer: the status, a non-zero code, a message and the error id.
pub fn assert_error(answer: &(u16, Value), status: u16, error: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_ne!(body["code"].as_i64().unwrap_or(0), 0, "{body}");
    assert!(!body["msg"].as_str().unwrap_or("").is_empty(), "{body}");
    assert_eq!(body["error"], error, "{body}");
}

/// The service's `/metrics` text at `base`.
pub async fn metrics_text(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// One unlabelled metric's value in a Prometheus text answer (`/metrics`), 0 when absent.
pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// One labelled series' value in a Prometheus text answer, 0 when absent: the series of `name` whose labels are
/// exactly `labels` (in any order).
pub fn metric_series(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let prefix = format!("{name}{{");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .find(|rest| {
            let (head, _) = rest.split_once('}').unwrap_or((rest, ""));
            let got: Vec<&str> = head.split(',').collect();
            got.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| got.contains(&format!("{k}=\"{v}\"").as_str()))
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// A port that was free a moment ago (for a child process that binds it itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `url` answers at all (a child process is up).
/// `wxlogin serve ARGS` (the real binary) with only `env`, PATH and `RUST_LOG=log` in its environment, so no
/// setting of the machine running the tests leaks in; stdout and stderr piped, killed when dropped.
pub fn serve_command(args: &[&str], env: &[(&str, &str)], log: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wxlogin"));
    command
        .arg("serve")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", log)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

/// Starts `command` (a `wxlogin` listening on port 0) and reads its stdout until `announced` finds the address it
/// listens on in a line. No port is picked ahead, so no other test can take it in between, and no other process can
/// answer in its place. Afterwards its stdout is drained, so a chatty child never blocks on a full pipe. A child that
/// exits first fails the test with its own output. Also answers the lines it printed before that one.
pub async fn spawn_listening(
    mut command: tokio::process::Command,
    announced: fn(&str) -> Option<std::net::SocketAddr>,
) -> (tokio::process::Child, std::net::SocketAddr, String) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let found = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = announced(&line) {
                return Some(addr);
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        None
    })
    .await;
    match found {
        Ok(Some(addr)) => {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            (child, addr, seen)
        }
        _ => {
            let _ = child.start_kill();
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err).await;
            }
            panic!("wxlogin did not say where it listens: {seen}{err}")
        }
    }
}

/// `serve`'s "wxlogin listening addr=…" line (at info for `wxlogin::app`: see [`SERVE_LOG`]).
pub fn serve_announced(line: &str) -> Option<std::net::SocketAddr> {
    if !line.contains("wxlogin listening") {
        return None;
    }
    let rest = line.split("addr=").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// `sim`'s "WeChat simulator listening on http://…" line.
pub fn sim_announced(line: &str) -> Option<std::net::SocketAddr> {
    let rest = line.split("listening on http://").nth(1)?;
    rest.split([' ', '/']).next()?.parse().ok()
}

/// Warnings only, and the line that says where `serve` listens.
pub const SERVE_LOG: &str = "warn,wxlogin::app=info";

/// Waits until `url` answers, or until `child` exits: then answers its output (stdout and stderr, when piped).
pub async fn wait_child_up(
    http: &reqwest::Client,
    child: &mut tokio::process::Child,
    url: &str,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    while http.get(url).send().await.is_err() {
        if child.try_wait().unwrap().is_some() {
            let mut output = String::new();
            use tokio::io::AsyncReadExt;
            if let Some(mut out) = child.stdout.take() {
                out.read_to_string(&mut output).await.unwrap();
            }
            if let Some(mut err) = child.stderr.take() {
                err.read_to_string(&mut output).await.unwrap();
            }
            return Err(output);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{url} did not come up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(())
}

pub async fn wait_up(http: &reqwest::Client, url: &str) {
    let started = std::time::Instant::now();
    while http.get(url).send().await.is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{url} did not come up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The real `wxlogin serve` binary in sandbox mode on a free port, up and answering; returns it and its base URL.
pub async fn sandbox_binary(
    data_dir: &std::path::Path,
    rust_log: &str,
    stdout: std::process::Stdio,
    stderr: std::process::Stdio,
) -> (std::process::Child, String) {
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_wxlogin"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .env("RUST_LOG", rust_log)
        .env_remove("WX_APPID")
        .env_remove("WX_SECRET")
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_up(&reqwest::Client::new(), &format!("{base}/healthz")).await;
    (child, base)
}
