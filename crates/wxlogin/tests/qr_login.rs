//! Web login through the mini program, over HTTP against the sandbox (the service in process, WeChat simulated):
//! the web page creates a login and long-polls; the phone scans the code (the simulator reads the PNG), sees what
//! is asking, and confirms or denies. The code itself is read here with a real QR decoder (rqrr).

mod common;

use base64::Engine as _;
use common::qr::{create, phone, phone_call, poll, spawn_poll, until_waiting};
use common::{TestApp, assert_error, spawn_app};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// What the QR code in a `data:image/png;base64,…` URL says, read by rqrr from the PNG's pixels.
fn decode_qr(data_url: &str) -> String {
    let b64 = data_url
        .strip_prefix("data:image/png;base64,")
        .expect("a PNG data URL");
    let png = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let (width, height) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        pixels[(y * width + x) * channels]
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

/// The launch options the mini program gets when `openid` scans `image` (the simulator's device API).
async fn scan_with_wechat(app: &TestApp, openid: &str, image: &str) -> Value {
    let (status, options) = app
        .post(
            "/sandbox/v1/scan",
            json!({ "openid": openid, "image": image }),
        )
        .await;
    assert_eq!(status, 200, "{options}");
    options
}

/// `decodeURIComponent(options.scene)`, for the ids we mint (base64url: nothing to decode but `%XX`).
fn scene_of(options: &Value) -> String {
    let raw = options["query"]["scene"].as_str().unwrap();
    let mut out = String::new();
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex: String = [bytes.next().unwrap(), bytes.next().unwrap()]
                .iter()
                .map(|&c| c as char)
                .collect();
            out.push(u8::from_str_radix(&hex, 16).unwrap() as char);
        } else {
            out.push(b as char);
        }
    }
    out
}

#[tokio::test]
async fn scan_confirm_and_the_web_page_is_logged_in_as_the_same_account_once() {
    let app = spawn_app().await;
    let phone = phone(&app, "13800138001").await;
    let created = create(&app).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let poll_token = created["pollToken"].as_str().unwrap().to_owned();
    assert_eq!(created["expiresIn"], 120);
    assert_eq!(id.len(), 22);
    assert!(poll_token.starts_with("wxq_"));

    // The code is a real QR code that carries the id as its scene, for the confirm page.
    let text = decode_qr(created["image"].as_str().unwrap());
    assert!(text.contains(&format!("scene={id}")), "{text}");
    assert!(
        text.contains("page=pages%2Fqr-confirm%2Fqr-confirm"),
        "{text}"
    );

    // Nothing happened yet: a poll with no wait says so at once.
    let (status, body) = poll(&app, &id, Some(&poll_token), 0).await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("pending"))
    );

    // The web page waits; the phone scans; the waiting poll answers `scanned` as the scan happens.
    let waiting = spawn_poll(&app, &id, &poll_token);
    until_waiting(&app, 1.0).await;
    let options = scan_with_wechat(&app, &phone.openid, created["image"].as_str().unwrap()).await;
    assert_eq!(options["path"], "pages/qr-confirm/qr-confirm");
    assert_eq!(options["scene"], 1047);
    let scene = scene_of(&options);
    assert_eq!(scene, id);
    let (status, asking) = phone_call(&app, &scene, "scan", Some(&phone.token)).await;
    let scanned_at = Instant::now();
    assert_eq!(status, 200, "{asking}");
    assert_eq!(asking["data"]["status"], "scanned");
    assert_eq!(asking["data"]["ip"], "127.0.0.1");
    assert_eq!(asking["data"]["origin"], "https://admin.example.com");
    assert!(
        asking["data"]["userAgent"]
            .as_str()
            .unwrap()
            .contains("Chrome/131.0")
    );
    assert!(asking["data"]["expiresIn"].as_u64().unwrap() <= 120);
    let (answer, answered_at) = waiting.await.unwrap();
    assert_eq!(answer["data"]["status"], "scanned", "{answer}");
    // Woken by the scan, not by the end of its 25 s wait (qr_web.rs times many cycles against a tight bound).
    let delay = answered_at.saturating_duration_since(scanned_at);
    assert!(delay < Duration::from_secs(5), "{delay:?}");
    eprintln!("scan → waiting poll answered: {delay:?} after the scan's answer");

    // Confirm while the web waits again: the poll answers `confirmed` with the web's login.
    let waiting = spawn_poll(&app, &id, &poll_token);
    until_waiting(&app, 1.0).await;
    let (status, body) = phone_call(&app, &id, "confirm", Some(&phone.token)).await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("confirmed"))
    );
    let (answer, _) = waiting.await.unwrap();
    let web = &answer["data"];
    assert_eq!(web["status"], "confirmed", "{answer}");
    assert_eq!(web["accountId"], phone.account_id.as_str());
    assert_eq!(web["phone"], "138****8001");
    assert_eq!(web["expiresIn"], 900);
    let web_token = web["token"].as_str().unwrap();
    let web_refresh = web["refreshToken"].as_str().unwrap();
    assert!(web_refresh.starts_with("wxr_"));

    // Handed out once.
    let (status, again) = poll(&app, &id, Some(&poll_token), 0).await;
    assert_eq!(status, 200);
    assert_eq!(again["data"], json!({ "status": "confirmed" }));

    // The web's token opens /api/v1/me as the phone's account, in a session of its own: the web's logout leaves
    // the phone logged in.
    let (status, me) = app.get("/api/v1/me", Some(web_token)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["accountId"], phone.account_id.as_str());
    let (status, _) = app
        .post_raw(
            "/api/v1/refresh",
            json!({ "refreshToken": web_refresh })
                .to_string()
                .into_bytes(),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post_raw("/api/v1/logout", b"{}".to_vec(), Some(web_token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.get("/api/v1/me", Some(web_token)).await.0, 401);
    assert_eq!(app.get("/api/v1/me", Some(&phone.token)).await.0, 200);

    // A decided login takes no further decision.
    assert_error(
        &phone_call(&app, &id, "confirm", Some(&phone.token)).await,
        409,
        "qr_login_used",
    );
    assert_error(
        &phone_call(&app, &id, "deny", Some(&phone.token)).await,
        409,
        "qr_login_used",
    );
    assert_error(
        &phone_call(&app, &id, "scan", Some(&phone.token)).await,
        409,
        "qr_login_used",
    );
}

#[tokio::test]
async fn deny_and_every_refusal_answers_our_error_shape() {
    let app = spawn_app().await;
    let owner = phone(&app, "13800138002").await;
    let other = phone(&app, "13800138003").await;
    let created = create(&app).await;
    let id = created["id"].as_str().unwrap();
    let poll_token = created["pollToken"].as_str().unwrap();
    let second = create(&app).await;

    // The poll needs this login's poll token: none, garbage, another login's, or a session token → 401.
    assert_error(&poll(&app, id, None, 0).await, 401, "unauthorized");
    assert_error(
        &poll(&app, id, Some("wxq_garbage"), 0).await,
        401,
        "unauthorized",
    );
    assert_error(
        &poll(&app, id, Some(second["pollToken"].as_str().unwrap()), 0).await,
        401,
        "unauthorized",
    );
    assert_error(
        &poll(&app, id, Some(&owner.token), 0).await,
        401,
        "unauthorized",
    );
    assert_error(
        &poll(&app, "AAAAAAAAAAAAAAAAAAAAAA", Some(poll_token), 0).await,
        401,
        "unauthorized",
    );
    let (status, body) = poll(&app, id, Some(poll_token), 0).await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("pending"))
    );
    // A bad wait is the client's mistake, said as such.
    let (status, body) = app
        .get(
            &format!("/api/v1/qr-login/{id}?wait=soon"),
            Some(poll_token),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_field");

    // Scan, confirm and deny need a mini program session.
    for action in ["scan", "confirm", "deny"] {
        assert_error(
            &phone_call(&app, id, action, None).await,
            401,
            "unauthorized",
        );
        assert_error(
            &phone_call(&app, id, action, Some(poll_token)).await,
            401,
            "unauthorized",
        );
    }
    // Unknown ids, and a decision before the scan.
    assert_error(
        &phone_call(&app, "AAAAAAAAAAAAAAAAAAAAAA", "scan", Some(&owner.token)).await,
        404,
        "qr_login_not_found",
    );
    assert_error(
        &phone_call(&app, "not-an-id", "confirm", Some(&owner.token)).await,
        404,
        "qr_login_not_found",
    );
    assert_error(
        &phone_call(&app, id, "confirm", Some(&owner.token)).await,
        409,
        "qr_login_not_scanned",
    );

    // Scanned by one user: another can neither scan nor decide it; the same user may scan again.
    assert_eq!(
        phone_call(&app, id, "scan", Some(&owner.token)).await.0,
        200
    );
    assert_eq!(
        phone_call(&app, id, "scan", Some(&owner.token)).await.0,
        200
    );
    assert_error(
        &phone_call(&app, id, "scan", Some(&other.token)).await,
        409,
        "qr_login_used",
    );
    assert_error(
        &phone_call(&app, id, "confirm", Some(&other.token)).await,
        409,
        "qr_login_used",
    );

    // Deny: the web page learns `denied`, with no tokens, and nothing can confirm it after.
    let (status, body) = phone_call(&app, id, "deny", Some(&owner.token)).await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("denied"))
    );
    let (status, body) = poll(&app, id, Some(poll_token), 25).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!({ "status": "denied" }));
    assert_error(
        &phone_call(&app, id, "confirm", Some(&owner.token)).await,
        409,
        "qr_login_used",
    );
}

#[tokio::test]
async fn a_poll_of_an_unchanged_login_waits_and_answers_pending_when_its_wait_ends() {
    let app = spawn_app().await;
    let created = create(&app).await;
    let (id, token) = (
        created["id"].as_str().unwrap(),
        created["pollToken"].as_str().unwrap(),
    );
    let started = Instant::now();
    let (status, body) = poll(&app, id, Some(token), 1).await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("pending"))
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it waited its second"
    );
}

#[tokio::test]
async fn creation_is_rate_limited_per_ip() {
    // Behind a trusted proxy (the test's loopback peer), X-Forwarded-For names the client: two clients, one budget
    // each (README: `--trusted-proxies`). The per-IP budget, which logins spend too, is 20 an hour here, so nothing
    // refills while the test runs (the default, 120 a minute, refills every half second).
    let dir = common::temp_dir("qrlimit");
    let config = dir.join("wxlogin.toml");
    std::fs::write(&config, "[rate_limits]\nper_ip = \"20/hour\"\n").unwrap();
    let app = common::spawn_with(wxlogin::config::ServeArgs {
        config: Some(config),
        trusted_proxies: Some("127.0.0.1".into()),
        ..common::sandbox_args(&dir)
    })
    .await;
    let create_as = |client: &'static str| {
        app.http
            .post(format!("{}/api/v1/qr-login", app.base))
            .header("x-forwarded-for", client)
            .json(&json!({}))
            .send()
    };
    let mut refused = None;
    for n in 0..30 {
        let response = create_as("203.0.113.7").await.unwrap();
        if response.status() != 200 {
            refused = Some((n, response));
            break;
        }
    }
    let (n, response) = refused.expect("refused at some point");
    assert_eq!(n, 20, "creations before the limit");
    // The 429 says when to come back, in whole seconds: when the next of the 20 an hour is due, 180 s after the
    // first creation (less the time the 20 took).
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (120..=180).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let answer = (
        response.status().as_u16(),
        response.json::<Value>().await.unwrap(),
    );
    assert_error(&answer, 429, "rate_limited");
    // Another client is still served, while the first stays refused: the limit is that IP's, not the service's.
    assert_eq!(create_as("203.0.113.8").await.unwrap().status(), 200);
    assert_eq!(create_as("203.0.113.7").await.unwrap().status(), 429);
}

#[tokio::test]
async fn a_shutdown_answers_waiting_polls_at_once_instead_of_holding_the_drain() {
    let mut app = spawn_app().await;
    let created = create(&app).await;
    let (id, token) = (
        created["id"].as_str().unwrap(),
        created["pollToken"].as_str().unwrap(),
    );
    let waiting = spawn_poll(&app, id, token);
    until_waiting(&app, 1.0).await;
    let stopping = Instant::now();
    app.stop().await;
    let (answer, _) = waiting.await.unwrap();
    assert_eq!(answer["data"]["status"], "pending", "{answer}");
    // Well inside the poll's 25 s wait and the 15 s drain limit.
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
}
