//! Connection bounds on the real binary: slow, idle, stuck and too many clients, played with raw sockets.
//! Every wait is on an event (a read returning end of file or an answer); the outer timeouts are failure bounds.

mod common;

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The binary in sandbox mode with `flags`, under `prlimit --nofile=N:N` when `nofile` is given.
async fn start(tag: &str, flags: &[&str], nofile: Option<u64>) -> (Child, String, u16) {
    let port = common::free_port();
    let binary = env!("CARGO_BIN_EXE_wxlogin");
    let mut command = match nofile {
        Some(n) => {
            // prlimit execs the binary: the child's pid is the service's.
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg(binary);
            c
        }
        None => Command::new(binary),
    };
    let child = command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(common::temp_dir(tag))
        .args(flags)
        .env("RUST_LOG", "warn")
        .env_remove("WX_APPID")
        .env_remove("WX_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start wxlogin");
    let base = format!("http://127.0.0.1:{port}");
    common::wait_up(&reqwest::Client::new(), &format!("{base}/healthz")).await;
    (child, base, port)
}

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the server closes `stream` (end of file or reset); fails after `bound`.
async fn closed_by_server(stream: &mut TcpStream, bound: Duration) {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server did not close the connection");
}

/// Reads one HTTP/1.1 response with a Content-Length body: (status, headers text, body).
async fn read_response(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let status: u16 = head[9..12].parse().unwrap();
            if status == 100 {
                data.drain(..end + 4);
                continue;
            }
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while data.len() < end + 4 + length {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed in the middle of a response");
                data.extend_from_slice(&buf[..n]);
            }
            return (status, head, data[end + 4..end + 4 + length].to_vec());
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before a response");
        data.extend_from_slice(&buf[..n]);
    }
}

const HEALTHZ: &[u8] =
    b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow-client\r\n\r\n";

#[tokio::test]
async fn a_client_dribbling_its_head_is_cut_at_the_header_timeout() {
    let (child, _base, port) = start("slow-head", &["--header-timeout", "1s"], None).await;
    let _stop = Stop(child);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let connected = Instant::now();
    let (mut read, mut write) = stream.split();
    let dribble = async {
        for byte in HEALTHZ {
            if write.write_all(&[*byte]).await.is_err() {
                break;
            }
            // Pacing a slow client, not synchronisation.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        connected.elapsed()
    };
    let closed = async {
        let mut buf = [0u8; 256];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return connected.elapsed(),
                Ok(_) => {}
            }
        }
    };
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::select! {
            at = closed => Ok(at),
            at = dribble => Err(at),
        }
    })
    .await
    .expect("nothing happened within 20 s");
    let at = outcome.expect("the client sent its whole head before the server closed");
    assert!(
        at >= Duration::from_millis(950) && at <= Duration::from_secs(3),
        "closed after {at:?}, expected about 1 s"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_lasts_the_idle_timeout_not_the_header_timeout() {
    let (child, _base, port) = start(
        "idle",
        &["--header-timeout", "1s", "--idle-timeout", "3s"],
        None,
    )
    .await;
    let _stop = Stop(child);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(HEALTHZ).await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 200);

    // Idle past the header timeout: still open, and serves the next request.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stream.write_all(HEALTHZ).await.unwrap();
    let (status, head, _) =
        tokio::time::timeout(Duration::from_secs(5), read_response(&mut stream))
            .await
            .expect("no answer on the kept-alive connection");
    assert_eq!(status, 200);
    assert!(!head.to_ascii_lowercase().contains("connection: close"));

    let idle_from = Instant::now();
    closed_by_server(&mut stream, Duration::from_secs(10)).await;
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(2900) && idle <= Duration::from_secs(5),
        "closed after {idle:?} idle, expected about 3 s"
    );
}

const ENDLESS_LOGIN: &[u8] =
    b"POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";

#[tokio::test]
async fn a_body_that_never_ends_is_answered_408_at_the_request_timeout() {
    let (child, _base, port) = start(
        "endless",
        &["--header-timeout", "1s", "--request-timeout", "2s"],
        None,
    )
    .await;
    let _stop = Stop(child);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(ENDLESS_LOGIN).await.unwrap();
    let sent = Instant::now();
    stream.write_all(b"1\r\n{\r\n").await.unwrap();
    let (status, head, body) =
        tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
            .await
            .expect("no answer within 10 s");
    let took = sent.elapsed();
    assert_eq!(status, 408, "{head}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    common::assert_error(&(status, body.clone()), 408, "request_timeout");
    assert_eq!(body["code"], 1006);
    assert!(head.to_ascii_lowercase().contains("x-request-id"), "{head}");
    assert!(
        took >= Duration::from_millis(1900) && took <= Duration::from_secs(4),
        "answered after {took:?}, expected about 2 s"
    );
}

#[tokio::test]
async fn idle_sockets_at_the_open_file_limit_do_not_lock_out_a_login() {
    // This process holds 1,100 sockets too.
    rlimit::increase_nofile_limit(4096).unwrap();
    let (child, base, port) = start(
        "crowd",
        &["--header-timeout", "30s", "--request-timeout", "31s"],
        Some(1024),
    )
    .await;
    let _stop = Stop(child);
    let mut idle = Vec::with_capacity(1100);
    for _ in 0..1100 {
        idle.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    let started = Instant::now();
    let login = async {
        let http = reqwest::Client::new();
        let post = |path: &str, body: Value| {
            let request = http.post(format!("{base}{path}")).json(&body);
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            }
        };
        let (status, user) =
            post("/sandbox/v1/users", json!({ "phoneNumber": "13800138555" })).await;
        assert!(status == 200 || status == 201, "{status} {user}");
        let openid = user["openid"].as_str().unwrap().to_owned();
        let (_, login) = post("/sandbox/v1/login-code", json!({ "openid": openid })).await;
        let (_, phone) = post("/sandbox/v1/phone-code", json!({ "openid": openid })).await;
        post(
            "/api/getPhone",
            json!({ "loginCode": login["code"], "phoneCode": phone["code"] }),
        )
        .await
    };
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), login)
        .await
        .expect("the login did not finish within 10 s");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["phone"], "13800138555");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    drop(idle);
}

#[tokio::test]
async fn sigterm_with_a_stuck_client_exits_within_drain_and_grace() {
    let (child, _base, port) = start(
        "stuck",
        &["--request-timeout", "60s", "--drain-timeout", "1s"],
        None,
    )
    .await;
    let mut child = Stop(child);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(ENDLESS_LOGIN).await.unwrap();
    // "100 Continue" is sent when the handler starts reading the body: the login is in flight.
    let mut interim = [0u8; 25];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut interim))
        .await
        .expect("no 100 Continue")
        .unwrap();
    assert!(interim.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"));
    stream.write_all(b"1\r\n{\r\n").await.unwrap();

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = Instant::now();
    // drain 1 s + grace 2 s + 2 s margin.
    let bound = Duration::from_secs(5);
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            signalled.elapsed() < bound,
            "still running {bound:?} after SIGTERM"
        );
        // Polling a child process's exit (no async wait on std's Child).
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "exit status {exit}");
    assert!(
        signalled.elapsed() >= Duration::from_millis(900),
        "exited before draining the login in flight"
    );
    closed_by_server(&mut stream, Duration::from_secs(1)).await;
}
