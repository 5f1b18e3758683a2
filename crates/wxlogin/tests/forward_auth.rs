//! Forward auth through a real nginx: Debian's nginx with `auth_request` (docs/forward-auth/nginx.conf, the
//! config the docs show) in front of a small upstream this test runs, asking three `wxlogin serve` instances on
//! PostgreSQL + Redis (against one `wxlogin sim` process). A request with a valid token reaches the upstream
//! with `X-Auth-Subject`; without one, with a forged header, or after a logout or a revocation on any instance,
//! nginx answers 401, on every instance within a second of the logout.
//!
//! Skips with a message when nginx (with its auth_request module) is not installed, unless WXLOGIN_TEST_NGINX is
//! set (CI sets it); PostgreSQL and Redis as in tests/cluster.rs (WXLOGIN_TEST_POSTGRES / WXLOGIN_TEST_REDIS).

mod common;

use axum::http::HeaderMap;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS: &str = "redis://127.0.0.1:6379/";
const DATA_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const ISSUER: &str = "http://wxlogin.test";
/// The config the docs show, with placeholders this test fills in.
const NGINX_CONF: &str = include_str!("../../../docs/forward-auth/nginx.conf");
/// The promise: a logout reaches /auth/verify on every instance within this (each remembers a session 0.5 s).
const LOGOUT_BOUND: Duration = Duration::from_secs(1);
/// Unbroken 401s through nginx (round robin over three instances) that close the check of a logout.
const REFUSALS: usize = 30;

/// Kills its process when dropped, so a failed assertion leaves nothing running.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx in the foreground in its own process group (master and worker), killed as a group when dropped; its
/// error log is printed when the test fails.
struct Nginx {
    child: Child,
    prefix: PathBuf,
    base: String,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: a signal to the process group this test created for nginx (its pid is the group's id).
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default();
            eprintln!("nginx error.log:\n{log}");
        } else {
            let _ = std::fs::remove_dir_all(&self.prefix);
        }
    }
}

/// nginx with the auth_request module, or None (skip) when it is absent and WXLOGIN_TEST_NGINX is not set.
fn nginx_binary() -> Option<PathBuf> {
    let required = std::env::var_os("WXLOGIN_TEST_NGINX").is_some();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::iter::once(PathBuf::from("/usr/sbin/nginx"))
        .chain(std::env::split_paths(&path).map(|dir| dir.join("nginx")))
        .find(|p| p.is_file());
    let Some(nginx) = found else {
        assert!(
            !required,
            "WXLOGIN_TEST_NGINX is set but nginx is not installed (apt-get install nginx-light)"
        );
        eprintln!(
            "skipping the forward auth test: nginx is not installed (apt-get install nginx-light)"
        );
        return None;
    };
    let version = Command::new(&nginx).arg("-V").output().unwrap();
    let built = String::from_utf8_lossy(&version.stderr);
    if !built.contains("--with-http_auth_request_module") {
        assert!(
            !required,
            "{} has no auth_request module: {built}",
            nginx.display()
        );
        eprintln!(
            "skipping the forward auth test: {} has no auth_request module",
            nginx.display()
        );
        return None;
    }
    Some(nginx)
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
            eprintln!("skipping the forward auth test: PostgreSQL {pg:?}, Redis {redis:?}");
            false
        }
    }
}

/// The protected backend: answers what nginx told it (every value of every X-Auth-* header), and counts hits.
async fn start_upstream() -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let echo = move |uri: axum::http::Uri, headers: HeaderMap| {
        let hits = counted.clone();
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            let all = |name: &str| {
                headers
                    .get_all(name)
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect::<Vec<_>>()
            };
            axum::Json(json!({
                "path": uri.path(),
                "subject": all("x-auth-subject"),
                "appid": all("x-auth-appid"),
                "openid": all("x-auth-openid"),
                "phone": all("x-auth-phone"),
            }))
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(echo);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, hits)
}

/// docs/forward-auth/nginx.conf with its placeholders filled in.
fn nginx_conf(prefix: &Path, listen: &str, wxlogin: &[String], upstream: &str) -> String {
    let servers = wxlogin
        .iter()
        .map(|addr| format!("server {addr};"))
        .collect::<Vec<_>>()
        .join("\n        ");
    // Comments keep their placeholders (they explain them); every directive gets its value.
    let conf: String = NGINX_CONF
        .lines()
        .map(|line| {
            let filled = if line.trim_start().starts_with('#') {
                line.to_owned()
            } else {
                line.replace("{{PREFIX}}", prefix.to_str().unwrap())
                    .replace("{{LISTEN}}", listen)
                    .replace("{{WXLOGIN_SERVERS}}", &servers)
                    .replace("{{UPSTREAM}}", upstream)
            };
            assert!(
                filled.trim_start().starts_with('#') || !filled.contains("{{"),
                "a placeholder left: {filled}"
            );
            filled + "\n"
        })
        .collect();
    conf
}

async fn start_nginx(binary: &Path, wxlogin: &[String], upstream: &str) -> Nginx {
    let prefix = common::temp_dir("nginx");
    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, nginx_conf(&prefix, &listen, wxlogin, upstream)).unwrap();
    let child = Command::new(binary)
        .arg("-p")
        .arg(&prefix)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut nginx = Nginx {
        child,
        prefix,
        base: format!("http://{listen}"),
    };
    let started = Instant::now();
    while TcpStream::connect(&listen).await.is_err() {
        if let Some(status) = nginx.child.try_wait().unwrap() {
            panic!("nginx exited: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not come up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nginx
}

impl Nginx {
    /// The access log's line for `path` (requests are unique by path): (status, the wxlogin instance that
    /// answered the auth subrequest). Waits for it: nginx writes a line as it finishes the request.
    async fn logged(&self, path: &str) -> (u16, String) {
        let needle = format!("\"GET {path} HTTP/1.1\" ");
        let started = Instant::now();
        loop {
            let log = std::fs::read_to_string(self.prefix.join("access.log")).unwrap_or_default();
            if let Some(line) = log.lines().find(|l| l.contains(&needle)) {
                let rest = &line[line.find(&needle).unwrap() + needle.len()..];
                let status = rest[..3].parse().unwrap();
                let by = line.rsplit("by=").next().unwrap();
                // `a, b` when nginx tried another instance after a failed connection: the last one answered.
                let by = by.rsplit(", ").next().unwrap().to_owned();
                return (status, by);
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "no access log line for {path}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

struct Setup {
    http: reqwest::Client,
    sim: String,
    appid: String,
    urls: Vec<String>,
    addrs: Vec<String>,
    schema: String,
    _instances: Vec<Proc>,
    _sim: Proc,
}

async fn start_cluster() -> Setup {
    let bin = env!("CARGO_BIN_EXE_wxlogin");
    let appid = format!("wx{:016x}", rand::random::<u64>());
    let secret = format!("{:032x}", rand::random::<u128>());
    let schema = format!("fwdauth_{:012x}", rand::random::<u64>() >> 16);
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
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    common::wait_up(&http, &format!("{sim}/sandbox/v1/stats")).await;

    let database_url =
        format!("postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3D{schema}");
    let mut instances = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..3 {
        let addr = format!("127.0.0.1:{}", common::free_port());
        let dir = std::env::temp_dir().join(format!("wxlogin-fwdauth-{schema}-{i}"));
        let child = Command::new(bin)
            .args(["serve", "--listen", &addr, "--data-dir"])
            .arg(&dir)
            .args([
                "--database-url",
                &database_url,
                "--redis-url",
                REDIS,
                "--wechat-base-url",
                &sim,
                // One issuer for the cluster: the default is each instance's own listen address.
                "--issuer",
                ISSUER,
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
        instances.push(Proc(child));
        addrs.push(addr);
    }
    let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
    for url in &urls {
        common::wait_up(&http, &format!("{url}/healthz")).await;
    }
    Setup {
        http,
        sim,
        appid,
        urls,
        addrs,
        schema,
        _instances: instances,
        _sim: sim_proc,
    }
}

/// A logged-in user: (accountId, access token, refresh token).
struct User {
    account: String,
    token: String,
    refresh: String,
}

impl Setup {
    async fn post(&self, url: String, body: Value) -> (u16, Value) {
        let r = self.http.post(url).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A sandbox user logs in on instance `on` (getPhone with fresh codes from the simulator's device API).
    async fn login(&self, phone: &str, on: usize) -> User {
        let (status, user) = self
            .post(
                format!("{}/sandbox/v1/users", self.sim),
                json!({ "phoneNumber": phone, "appid": self.appid }),
            )
            .await;
        assert!(status == 201 || status == 200, "{status} {user}");
        let openid = user["openid"].clone();
        let (_, login) = self
            .post(
                format!("{}/sandbox/v1/login-code", self.sim),
                json!({ "openid": openid }),
            )
            .await;
        let (_, phone) = self
            .post(
                format!("{}/sandbox/v1/phone-code", self.sim),
                json!({ "openid": openid }),
            )
            .await;
        let (status, body) = self
            .post(
                format!("{}/api/getPhone", self.urls[on]),
                json!({ "loginCode": login["code"], "phoneCode": phone["code"] }),
            )
            .await;
        assert_eq!((status, &body["code"]), (200, &json!(0)), "{body}");
        let data = &body["data"];
        User {
            account: data["accountId"].as_str().unwrap().to_owned(),
            token: data["token"].as_str().unwrap().to_owned(),
            refresh: data["refreshToken"].as_str().unwrap().to_owned(),
        }
    }

    /// `/auth/verify` asked directly on instance `on`.
    async fn verify_direct(&self, on: usize, token: &str) -> (u16, HeaderMap, Value) {
        let r = self
            .http
            .get(format!("{}/auth/verify", self.urls[on]))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, headers, r.json().await.unwrap_or(Value::Null))
    }

    fn instance_of(&self, addr: &str) -> usize {
        self.addrs
            .iter()
            .position(|a| a == addr)
            .unwrap_or_else(|| panic!("{addr} is none of the instances {:?}", self.addrs))
    }
}

/// A GET through nginx: (status, headers, body).
async fn through(
    http: &reqwest::Client,
    nginx: &Nginx,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    let mut request = http.get(format!("{}{path}", nginx.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let r = request.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

/// Requests through nginx with `user`'s token until each of the three instances has let it through (so every
/// instance remembers the session live), checking what the upstream saw.
async fn warm(setup: &Setup, nginx: &Nginx, user: &User, label: &str) {
    let mut passed = [false; 3];
    for i in 0..9 {
        let path = format!("/api/warm/{label}/{i}");
        let (status, _, body) = through(&setup.http, nginx, &path, Some(&user.token), &[]).await;
        assert_eq!(status, 200, "{path}: {body}");
        let seen: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(seen["subject"], json!([user.account]), "{body}");
        let (logged, by) = nginx.logged(&path).await;
        assert_eq!(logged, 200);
        passed[setup.instance_of(&by)] = true;
    }
    assert_eq!(
        passed, [true; 3],
        "round robin reached every instance while warming"
    );
}

/// After a session ended (its answer at `ended`): polls through nginx with its token, every few ms, until
/// [`REFUSALS`] 401s in a row (a deadline fails the test instead of waiting forever). Answers the time from
/// `ended` until each of the three instances had refused the token in that final unbroken run of 401s, and the
/// time of the last 200.
async fn refused_everywhere(
    setup: &Setup,
    nginx: &Nginx,
    token: &str,
    label: &str,
    ended: Instant,
) -> (Duration, Option<Duration>) {
    // (path, status, answered at since `ended`)
    let mut polls: Vec<(String, u16, Duration)> = Vec::new();
    let mut run = 0;
    while run < REFUSALS {
        let path = format!("/api/poll/{label}/{}", polls.len());
        let (status, headers, body) = through(&setup.http, nginx, &path, Some(token), &[]).await;
        let at = ended.elapsed();
        assert!(
            status == 200 || status == 401,
            "{path}: nginx answered {status} {body} (auth subrequest: {:?})",
            nginx.logged(&path).await
        );
        if status == 401 {
            let challenge = headers.get("www-authenticate").map(|v| v.to_str().unwrap());
            assert!(
                challenge.is_some_and(|c| c.starts_with("Bearer")),
                "{challenge:?}"
            );
            run += 1;
        } else {
            run = 0;
        }
        polls.push((path, status, at));
        assert!(
            at < LOGOUT_BOUND * 3,
            "{label}: still no {REFUSALS} refusals in a row {at:?} after the session ended: {:?}",
            polls.iter().map(|p| (p.1, p.2)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let first_refusal = polls.iter().find(|p| p.1 == 401).map(|p| p.2).unwrap();
    let last_ok = polls.iter().rev().find(|p| p.1 == 200).map(|p| p.2);
    let run_start = polls.len() - run;
    let mut refused = [false; 3];
    let mut all_refuse = None;
    for (path, _, at) in &polls[run_start..] {
        let (logged, by) = nginx.logged(path).await;
        assert_eq!(logged, 401, "{path}");
        refused[setup.instance_of(&by)] = true;
        if refused == [true; 3] && all_refuse.is_none() {
            all_refuse = Some(*at);
        }
    }
    let all_refuse = all_refuse.unwrap_or_else(|| {
        panic!("{label}: {REFUSALS} refusals in a row but not from every instance: {refused:?}")
    });
    // And asked directly, no instance lets the token through any more.
    for on in 0..3 {
        let (status, _, body) = setup.verify_direct(on, token).await;
        assert_eq!(status, 401, "instance {} after {label}: {body}", on + 1);
    }
    eprintln!(
        "{label}: {} requests through nginx; first 401 at {first_refusal:?}, last 200 at {last_ok:?}, every \
         instance refusing from {all_refuse:?} after the answer to the {label} (then {REFUSALS} refusals in a row)",
        polls.len()
    );
    (all_refuse, last_ok)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_in_front_of_three_instances() {
    let Some(nginx_bin) = nginx_binary() else {
        return;
    };
    if !servers_available().await {
        return;
    }
    let started = Instant::now();
    let setup = start_cluster().await;
    let (upstream_port, upstream_hits) = start_upstream().await;
    let nginx = start_nginx(
        &nginx_bin,
        &setup.addrs,
        &format!("127.0.0.1:{upstream_port}"),
    )
    .await;
    let http = &setup.http;

    // Directly: /auth/verify's own answers.
    let (status, _, body) = setup.verify_direct(0, "not-a-token").await;
    assert_eq!(
        (status, &body["error"]),
        (401, &json!("unauthorized")),
        "{body}"
    );

    let alice = setup.login("13800138000", 0).await;
    let (status, headers, _) = setup.verify_direct(1, &alice.token).await;
    assert_eq!(
        status, 200,
        "a token minted on instance 1 verifies on instance 2"
    );
    assert_eq!(headers["x-auth-subject"], alice.account.as_str());
    assert_eq!(headers["x-auth-appid"], setup.appid.as_str());
    assert!(headers.contains_key("x-auth-openid"));
    assert!(
        !headers.contains_key("x-auth-phone"),
        "no phone unless asked"
    );

    // Through nginx with the token: the upstream sees the subject (and no forged one sent alongside).
    let (status, _, body) = through(
        http,
        &nginx,
        "/api/orders",
        Some(&alice.token),
        &[
            ("X-Auth-Subject", "acc_forged"),
            ("X-Auth-Phone", "+8613900000000"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/api/orders");
    assert_eq!(seen["subject"], json!([alice.account]), "{body}");
    assert_eq!(seen["appid"], json!([setup.appid]), "{body}");
    assert_eq!(seen["openid"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(
        seen["phone"],
        json!([]),
        "a forged X-Auth-Phone is dropped: {body}"
    );

    // Without a token (with or without a forged subject), or with a garbage one: 401, the upstream not asked.
    let hits = upstream_hits.load(Ordering::SeqCst);
    for (path, token, extra) in [
        ("/api/orders?no-token", None, vec![]),
        (
            "/api/orders?forged",
            None,
            vec![("X-Auth-Subject", alice.account.as_str())],
        ),
        ("/api/orders?garbage", Some("garbage.not.a-jwt"), vec![]),
        (
            "/api/orders?not-jwt",
            Some("eyJhbGciOiJub25lIn0.e30."),
            vec![],
        ),
    ] {
        let (status, headers, body) = through(http, &nginx, path, token, &extra).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{path}: wxlogin's challenge passed on"
        );
    }
    assert_eq!(
        upstream_hits.load(Ordering::SeqCst),
        hits,
        "no refused request reached the upstream"
    );
    // The auth location is internal.
    assert_eq!(
        through(http, &nginx, "/_auth", Some(&alice.token), &[])
            .await
            .0,
        404
    );

    // Logout on instance 2 (directly), with every instance's cache warm: 401 through nginx within a second.
    let bob = setup.login("13800138001", 0).await;
    warm(&setup, &nginx, &alice, "logout").await;
    let r = http
        .post(format!("{}/api/v1/logout", setup.urls[1]))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    let ended = Instant::now();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!((status, &body["code"]), (200, &json!(0)), "{body}");
    let (logout_took, _) = refused_everywhere(&setup, &nginx, &alice.token, "logout", ended).await;
    assert!(
        logout_took < LOGOUT_BOUND,
        "a logout reached every instance after {logout_took:?}"
    );
    // Another user's session is untouched.
    let (status, _, body) = through(http, &nginx, "/api/orders?bob", Some(&bob.token), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["subject"],
        json!([bob.account])
    );

    // A revocation of the refresh token on instance 3 (RFC 7009) ends the session the same way.
    warm(&setup, &nginx, &bob, "revoke").await;
    let form = serde_urlencoded::to_string([("token", bob.refresh.as_str())]).unwrap();
    let r = http
        .post(format!("{}/oauth2/revoke", setup.urls[2]))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let ended = Instant::now();
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    let (revoke_took, _) = refused_everywhere(&setup, &nginx, &bob.token, "revoke", ended).await;
    assert!(
        revoke_took < LOGOUT_BOUND,
        "a revocation reached every instance after {revoke_took:?}"
    );

    drop(nginx);
    let mut c = PgConnection::connect(PG).await.unwrap();
    c.execute(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{}\" CASCADE",
        setup.schema
    )))
    .await
    .unwrap();
    eprintln!("forward auth test ran in {:?}", started.elapsed());
}
