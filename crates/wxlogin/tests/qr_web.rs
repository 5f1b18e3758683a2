//! Scan login as the web page sees it: a waiting poll is woken by the scan and by the confirm themselves (timed
//! over many cycles, so a service that re-read the row on an interval would fail), the real binary's CORS answers
//! for a listed and an unlisted origin, and docs/scan-login.md's script is the one the e2e runs.

mod common;

use common::qr::{create, phone, phone_call, poll, spawn_poll, until_waiting};
use common::{sandbox_args, spawn_with, temp_dir};
use serde_json::json;
use std::time::{Duration, Instant};
use wxlogin::config::{RateLimitSwitch, ServeArgs};

/// The middle of `delays` (the upper one of an even count).
fn median(delays: &[Duration]) -> Duration {
    let mut sorted = delays.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_poll_is_answered_within_milliseconds_of_the_scan_and_of_the_confirm() {
    // Rate limits off: the cycles create more logins than a minute's per-IP burst allows on a slow machine.
    let app = spawn_with(ServeArgs {
        rate_limits: Some(RateLimitSwitch::Off),
        ..sandbox_args(&temp_dir("qrwake"))
    })
    .await;
    let phone = phone(&app, "13800138071").await;
    const CYCLES: usize = 10;
    let (mut scans, mut confirms) = (Vec::new(), Vec::new());
    for _ in 0..CYCLES {
        let created = create(&app).await;
        let id = created["id"].as_str().unwrap();
        let poll_token = created["pollToken"].as_str().unwrap();
        // Each change is made only once the poll is held (the gauge counts it), so the answer can only come from
        // the change reaching the waiting poll: not from the poll's first read, nor from its 25 s wait ending.
        for (action, status, delays) in [
            ("scan", "scanned", &mut scans),
            ("confirm", "confirmed", &mut confirms),
        ] {
            let waiting = spawn_poll(&app, id, poll_token);
            until_waiting(&app, 1.0).await;
            let (code, body) = phone_call(&app, id, action, Some(&phone.token)).await;
            assert_eq!(code, 200, "{action}: {body}");
            let changed_at = Instant::now();
            let (answer, answered_at) = waiting.await.unwrap();
            assert_eq!(answer["data"]["status"], status, "{answer}");
            delays.push(answered_at.saturating_duration_since(changed_at));
        }
    }
    eprintln!("poll answered after the scan's answer: {scans:?}");
    eprintln!("poll answered after the confirm's answer: {confirms:?}");
    // A service that re-read the row every P instead of being woken would answer up to P after the change, and
    // about P here, where each change comes just after the poll starts waiting: with the wake-up replaced by a
    // 200 ms re-read, the scans' median was 191 ms. Even unsynchronised (a median of P/2), under 50 ms needs P under
    // ~100 ms, ten database reads a second per waiting poll; the 25 s wait, the one timer a long poll has, is 500
    // times the bound. Woken, the delays are about a millisecond. The max allows for a debug build on a loaded
    // 2-core machine (the confirm's answer mints the web's session).
    for (what, delays) in [("scan", &scans), ("confirm", &confirms)] {
        let (median, max) = (median(delays), *delays.iter().max().unwrap());
        assert!(
            median < Duration::from_millis(50),
            "{what}: median {median:?} ({delays:?})"
        );
        assert!(
            max < Duration::from_secs(1),
            "{what}: max {max:?} ({delays:?})"
        );
    }
}

/// The real binary listening with `WXLOGIN_CORS_ORIGINS` (two origins, as docs/scan-login.md sets it): its base URL.
async fn serve_with_cors() -> (tokio::process::Child, String) {
    let dir = temp_dir("qrcors");
    let command = common::serve_command(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
        ],
        &[(
            "WXLOGIN_CORS_ORIGINS",
            "https://admin.example.com,http://localhost:5173",
        )],
        common::SERVE_LOG,
    );
    let (child, addr, _) = common::spawn_listening(command, common::serve_announced).await;
    (child, format!("http://{addr}"))
}

/// A response's header, as text (absent: `None`).
fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn the_binary_answers_cors_for_a_listed_origin_only() {
    let (_child, base) = serve_with_cors().await;
    let http = reqwest::Client::new();
    let create = |origin: &'static str| {
        http.post(format!("{base}/api/v1/qr-login"))
            .header("origin", origin)
            .json(&json!({}))
            .send()
    };

    // A listed origin: the creation and the long poll (held for its second, then answered) carry
    // Access-Control-Allow-Origin naming it, so the page may read them; never credentials (Bearer tokens only).
    let created = create("https://admin.example.com").await.unwrap();
    assert_eq!(created.status(), 200);
    assert_eq!(
        header(&created, "access-control-allow-origin").as_deref(),
        Some("https://admin.example.com")
    );
    assert_eq!(header(&created, "access-control-allow-credentials"), None);
    // Caches must not hand one origin's answer to another.
    assert!(
        header(&created, "vary").unwrap().contains("origin"),
        "{:?}",
        created.headers()
    );
    let data = created.json::<serde_json::Value>().await.unwrap()["data"].clone();
    let (id, poll_token) = (
        data["id"].as_str().unwrap(),
        data["pollToken"].as_str().unwrap(),
    );
    let polled = http
        .get(format!("{base}/api/v1/qr-login/{id}?wait=1"))
        .header("origin", "http://localhost:5173")
        .bearer_auth(poll_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&polled, "access-control-allow-origin").as_deref(),
        Some("http://localhost:5173")
    );
    assert_eq!(
        polled.json::<serde_json::Value>().await.unwrap()["data"]["status"],
        "pending"
    );

    // The browser's preflight before a poll with the Bearer poll token (and before the JSON POST): allowed.
    let preflight = |origin: &'static str, path: String, method: &'static str| {
        http.request(reqwest::Method::OPTIONS, format!("{base}{path}"))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    for (path, method) in [
        (format!("/api/v1/qr-login/{id}"), "GET"),
        ("/api/v1/qr-login".to_owned(), "POST"),
    ] {
        let answer = preflight("https://admin.example.com", path, method)
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{}", answer.status());
        assert_eq!(
            header(&answer, "access-control-allow-origin").as_deref(),
            Some("https://admin.example.com")
        );
        let allowed = header(&answer, "access-control-allow-headers").unwrap();
        let allowed: Vec<&str> = allowed.split(',').map(str::trim).collect();
        assert!(
            allowed.contains(&"authorization") && allowed.contains(&"content-type"),
            "{allowed:?}"
        );
        let methods = header(&answer, "access-control-allow-methods").unwrap();
        assert!(methods.split(',').any(|m| m.trim() == method), "{methods}");
    }

    // An unlisted origin: the service still answers (CORS is the browser's rule), but with no
    // Access-Control-Allow-Origin, so the browser keeps the answer from that page and fails its preflight. (The
    // layer sends its other Access-Control-* headers to any origin: without Allow-Origin they allow nothing.)
    let foreign = create("https://evil.example.com").await.unwrap();
    assert_eq!(foreign.status(), 200);
    assert_eq!(header(&foreign, "access-control-allow-origin"), None);
    let foreign = preflight(
        "https://evil.example.com",
        format!("/api/v1/qr-login/{id}"),
        "GET",
    )
    .await
    .unwrap();
    assert_eq!(header(&foreign, "access-control-allow-origin"), None);
    // Origins are compared exactly: another scheme or port of a listed host is another origin.
    for near in ["http://admin.example.com", "http://localhost:5174"] {
        let answer = http
            .get(format!("{base}/api/v1/qr-login/{id}"))
            .header("origin", near)
            .bearer_auth(poll_token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            header(&answer, "access-control-allow-origin"),
            None,
            "{near}"
        );
    }
}

/// Code lines as a reader compares them: trimmed, without blank lines or whole-line `//` comments.
fn code_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .collect()
}

#[test]
fn the_guides_script_is_the_example_page_the_e2e_runs() {
    // docs/scan-login.md shows the script of docs/examples/scan-login.html, which e2e/test/qr-login.test.js runs in
    // Chromium: the guide's copy must be that script's beginning (all of it but the lines that start it on load),
    // so a fix to the page that the e2e proves cannot leave the guide showing the old code.
    let guide = include_str!("../../../docs/scan-login.md");
    let page = include_str!("../../../docs/examples/scan-login.html");
    let snippet = guide
        .split("```js\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/scan-login.md has a ```js block");
    let script = page
        .split("<script>")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("scan-login.html has a <script>");
    let (snippet, script) = (code_lines(snippet), code_lines(script));
    assert!(snippet.len() >= 30, "the guide's script: {snippet:?}");
    for (n, (shown, run)) in snippet.iter().zip(&script).enumerate() {
        assert_eq!(
            shown,
            run,
            "docs/scan-login.md's script differs from docs/examples/scan-login.html at code line {}",
            n + 1
        );
    }
    assert!(
        snippet.len() <= script.len(),
        "the guide shows more than the page runs: {:?}",
        &snippet[script.len()..]
    );
    // What the guide leaves out only starts the login and offers a new code: nothing of the protocol.
    let rest = script[snippet.len()..].join("\n");
    for call in ["fetch(", "call(", "qr-login", "sessionStorage"] {
        assert!(!rest.contains(call), "the guide omits {call}: {rest}");
    }
}

#[tokio::test]
async fn over_http_a_code_expires_120_seconds_after_creation() {
    // The service on a clock the test moves (as tests/core.rs does for the login core), started at the real time
    // so the access tokens it signs are current.
    let data_dir = temp_dir("qrexpiry");
    let settings = wxlogin::config::Settings::resolve(sandbox_args(&data_dir), |_| None).unwrap();
    let clock = std::sync::Arc::new(wxlogin::logins::clock::ManualClock::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    ));
    let running = wxlogin::app::start_on(settings, clock.clone(), std::future::pending())
        .await
        .unwrap();
    let app = common::TestApp {
        base: running.base_url(),
        running: Some(running),
        http: reqwest::Client::new(),
        data_dir,
    };
    let phone = phone(&app, "13800138072").await;
    let created = create(&app).await;
    let (id, poll_token) = (
        created["id"].as_str().unwrap(),
        created["pollToken"].as_str().unwrap(),
    );
    let scanned = create(&app).await;
    let scanned_id = scanned["id"].as_str().unwrap();
    assert_eq!(
        phone_call(&app, scanned_id, "scan", Some(&phone.token))
            .await
            .0,
        200
    );
    clock.advance(119);
    let (status, body) = poll(&app, id, Some(poll_token), 0).await;
    assert_eq!((status, &body["data"]["status"]), (200, &json!("pending")));

    // 120 s: the web page's poll says `expired` at once (a final status, even with a wait), and the phone is refused
    // with the error the confirm page shows: 409 qr_login_expired (2013), also for a code it had scanned in time.
    clock.advance(1);
    let started = Instant::now();
    let (status, body) = poll(&app, id, Some(poll_token), 25).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({ "status": "expired" }));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it did not wait"
    );
    for (id, action) in [
        (id, "scan"),
        (scanned_id, "scan"),
        (scanned_id, "confirm"),
        (scanned_id, "deny"),
    ] {
        let answer = phone_call(&app, id, action, Some(&phone.token)).await;
        common::assert_error(&answer, 409, "qr_login_expired");
        assert_eq!(answer.1["code"], 2013, "{action}: {}", answer.1);
    }
}
