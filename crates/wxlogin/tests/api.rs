//! The service end to end over HTTP: sandbox mode in process, the flows of the README, the error table's cases.

mod common;

use common::{assert_error, spawn_app, spawn_with, temp_dir};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use wxlogin::config::ServeArgs;

#[tokio::test]
async fn the_seeds_one_call_then_me_and_logout() {
    let app = spawn_app().await;
    let openid = app.user("13800138000").await;
    let (status, body) = app.get_phone(&openid).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], 0);
    assert_eq!(body["msg"], "success");
    assert_eq!(body["data"]["phone"], "13800138000");
    assert_eq!(body["data"]["openid"], openid.as_str());
    // An access token (a JWT) for 15 minutes, and a refresh token for the session's 30 days.
    assert_eq!(body["data"]["expiresIn"], 15 * 60);
    assert_eq!(body["data"]["refreshExpiresIn"], 30 * 86400);
    let token = body["data"]["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("eyJ"), "{token}");
    assert!(
        body["data"]["refreshToken"]
            .as_str()
            .unwrap()
            .starts_with("wxr_")
    );

    let (status, me) = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["phone"], "138****8000");
    assert_eq!(me["data"]["openid"], openid.as_str());

    assert_error(&app.get("/api/v1/me", None).await, 401, "unauthorized");
    assert_error(
        &app.get("/api/v1/me", Some("wxs_forged")).await,
        401,
        "unauthorized",
    );
    let forged = format!("wxs_{}", "A".repeat(43));
    assert_error(
        &app.get("/api/v1/me", Some(&forged)).await,
        401,
        "unauthorized",
    );

    let (status, _) = app.post_raw("/api/v1/logout", vec![], Some(&token)).await;
    assert_eq!(status, 200);
    assert_error(
        &app.get("/api/v1/me", Some(&token)).await,
        401,
        "unauthorized",
    );
    assert_error(
        &app.post_raw("/api/v1/logout", vec![], Some(&token)).await,
        401,
        "unauthorized",
    );
    assert_eq!(app.users().await, 1);
}

#[tokio::test]
async fn silent_login_needs_the_phone_only_once() {
    let app = spawn_app().await;
    let openid = app.user("13900139000").await;
    let (status, first) = app
        .post(
            "/api/v1/login",
            json!({ "loginCode": app.login_code(&openid).await }),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["data"]["status"], "phone_required");
    assert_eq!(first["data"]["expiresIn"], 300);
    let ticket = first["data"]["ticket"].as_str().unwrap().to_owned();
    assert_eq!(
        app.users().await,
        0,
        "no account before the phone is verified"
    );

    let phone_code = app.phone_code(&openid).await;
    let (status, bound) = app
        .post(
            "/api/v1/phone",
            json!({ "phoneCode": phone_code, "ticket": ticket }),
        )
        .await;
    assert_eq!(status, 200, "{bound}");
    assert_eq!(bound["data"]["phone"], "13900139000");
    assert_eq!(bound["data"]["openid"], openid.as_str());
    assert_eq!(app.users().await, 1);
    let token = bound["data"]["token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", Some(token)).await.0, 200);

    // The ticket works once.
    let again = app
        .post(
            "/api/v1/phone",
            json!({ "phoneCode": app.phone_code(&openid).await, "ticket": ticket }),
        )
        .await;
    assert_error(&again, 401, "ticket_invalid");

    // A returning user: one silent login, no phone code, no getuserphonenumber call.
    let calls = app.phone_calls().await;
    let (status, second) = app
        .post(
            "/api/v1/login",
            json!({ "loginCode": app.login_code(&openid).await }),
        )
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["data"]["status"], "ok");
    assert_eq!(second["data"]["phone"], "13900139000");
    assert!(second["data"]["token"].as_str().unwrap().starts_with("eyJ"));
    assert_eq!(app.phone_calls().await, calls);
    assert_eq!(app.users().await, 1);
}

#[tokio::test]
async fn a_stale_ticket_costs_no_phone_code() {
    let app = spawn_app().await;
    let openid = app.user("13900139001").await;
    let phone_code = app.phone_code(&openid).await;
    let forged = format!("wxt_{}", "B".repeat(43));
    assert_error(
        &app.post(
            "/api/v1/phone",
            json!({ "phoneCode": phone_code, "ticket": forged }),
        )
        .await,
        401,
        "ticket_invalid",
    );
    assert_eq!(app.phone_calls().await, 0, "WeChat was not asked");
    // The same phone code still works with a real ticket.
    let (_, first) = app
        .post(
            "/api/v1/login",
            json!({ "loginCode": app.login_code(&openid).await }),
        )
        .await;
    let ticket = first["data"]["ticket"].as_str().unwrap();
    let (status, _) = app
        .post(
            "/api/v1/phone",
            json!({ "phoneCode": phone_code, "ticket": ticket }),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_logged_in_user_changes_the_phone_with_a_session() {
    let app = spawn_app().await;
    let openid = app.user("13900139002").await;
    let (_, body) = app.get_phone(&openid).await;
    let token = body["data"]["token"].as_str().unwrap().to_owned();
    let code = app.phone_code(&openid).await;
    let (status, changed) = app
        .post_raw(
            "/api/v1/phone",
            json!({ "phoneCode": code }).to_string().into_bytes(),
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["data"]["openid"], openid.as_str());
    assert_error(
        &app.post(
            "/api/v1/phone",
            json!({ "phoneCode": app.phone_code(&openid).await }),
        )
        .await,
        400,
        "invalid_field",
    );
}

#[tokio::test]
async fn verify_mode_refuses_a_phone_code_of_another_user() {
    let app = spawn_app().await;
    let (a, b) = (app.user("13700137000").await, app.user("13700137001").await);
    let answer = app
        .post(
            "/api/getPhone",
            json!({ "loginCode": app.login_code(&a).await, "phoneCode": app.phone_code(&b).await }),
        )
        .await;
    assert_error(&answer, 403, "phone_code_mismatch");
    assert!(answer.1["msg"].as_str().unwrap().contains("不一致"));
    assert_eq!(app.users().await, 0, "no row written");
}

#[tokio::test]
async fn concurrent_mode_logs_in_with_both_exchanges_at_once() {
    let dir = temp_dir("concurrent");
    let mut args = common::sandbox_args(&dir);
    args.phone_binding = Some(wxlogin::config::PhoneBinding::Concurrent);
    let app = spawn_with(args).await;
    let openid = app.user("13700137002").await;
    let (status, body) = app.get_phone(&openid).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["phone"], "13700137002");
}

#[tokio::test]
async fn used_and_expired_codes_are_refused_and_write_nothing_twice() {
    let app = spawn_app().await;
    let openid = app.user("13600136000").await;
    let body = json!({ "loginCode": app.login_code(&openid).await, "phoneCode": app.phone_code(&openid).await });
    assert_eq!(app.post("/api/getPhone", body.clone()).await.0, 200);
    assert_error(
        &app.post("/api/getPhone", body).await,
        400,
        "login_code_used",
    );
    assert_eq!(app.users().await, 1);

    let (login, phone) = (app.login_code(&openid).await, app.phone_code(&openid).await);
    app.post("/sandbox/v1/clock", json!({ "advanceSeconds": 301 }))
        .await;
    assert_error(
        &app.post(
            "/api/getPhone",
            json!({ "loginCode": login, "phoneCode": phone }),
        )
        .await,
        400,
        "login_code_invalid",
    );
    assert_error(
        &app.post("/api/v1/login", json!({ "loginCode": login }))
            .await,
        400,
        "login_code_invalid",
    );

    // A valid login code with a stale phone code: the phone step names the phone code.
    let other = app.user("13600136001").await;
    let stale_phone = app.phone_code(&other).await;
    app.post("/sandbox/v1/clock", json!({ "advanceSeconds": 301 }))
        .await;
    let answer = app
        .post(
            "/api/getPhone",
            json!({ "loginCode": app.login_code(&other).await, "phoneCode": stale_phone }),
        )
        .await;
    assert_error(&answer, 400, "phone_code_invalid");
    assert_eq!(app.users().await, 1);
}

#[tokio::test]
async fn bad_bodies_get_400_or_413_never_5xx() {
    let app = spawn_app().await;
    let long = "x".repeat(3000);
    let bodies: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{}".to_vec(), 400, "invalid_field"),
        (
            br#"{"loginCode":"","phoneCode":""}"#.to_vec(),
            400,
            "invalid_field",
        ),
        (
            br#"{"loginCode":"   ","phoneCode":"  "}"#.to_vec(),
            400,
            "invalid_field",
        ),
        (
            br#"{"loginCode":123,"phoneCode":456}"#.to_vec(),
            400,
            "invalid_field",
        ),
        (
            br#"{"loginCode":null,"phoneCode":null}"#.to_vec(),
            400,
            "invalid_field",
        ),
        (
            br#"{"loginCode":{},"phoneCode":[]}"#.to_vec(),
            400,
            "invalid_field",
        ),
        (b"null".to_vec(), 400, "invalid_json"),
        (b"[]".to_vec(), 400, "invalid_json"),
        (b"123".to_vec(), 400, "invalid_json"),
        (b"not json".to_vec(), 400, "invalid_json"),
        (b"".to_vec(), 400, "invalid_json"),
        (b"{\"loginCode\":".to_vec(), 400, "invalid_json"),
        (
            format!(r#"{{"loginCode":"{long}","phoneCode":"{long}","ticket":"{long}"}}"#)
                .into_bytes(),
            400,
            "invalid_field",
        ),
        (vec![b'a'; 1024 * 1024], 413, "body_too_large"),
        (
            format!(r#"{{"loginCode":"{}"}}"#, "y".repeat(20_000)).into_bytes(),
            413,
            "body_too_large",
        ),
    ];
    for route in ["/api/getPhone", "/api/v1/login", "/api/v1/phone"] {
        for (body, status, error) in &bodies {
            let answer = app.post_raw(route, body.clone(), None).await;
            assert_error(&answer, *status, error);
        }
    }
    assert_error(
        &app.get("/api/getPhone", None).await,
        405,
        "method_not_allowed",
    );
    assert_error(&app.get("/api/nope", None).await, 404, "not_found");
    assert_eq!(app.users().await, 0);
}

#[tokio::test]
async fn field_errors_name_the_field() {
    let app = spawn_app().await;
    let (_, body) = app
        .post("/api/getPhone", json!({ "loginCode": "abc" }))
        .await;
    assert!(
        body["msg"].as_str().unwrap().contains("phoneCode"),
        "{body}"
    );
    let (_, body) = app.post("/api/v1/login", json!({ "loginCode": 5 })).await;
    assert!(
        body["msg"].as_str().unwrap().contains("loginCode"),
        "{body}"
    );
}

#[tokio::test]
async fn a_session_survives_a_restart_and_no_phone_is_stored_in_clear() {
    let dir = temp_dir("restart");
    // The tokens' issuer must stay the same across the restart (by default it names the listen address, which
    // port 0 changes): as in production, it is the public URL.
    let args = || ServeArgs {
        tokens: wxlogin::config::TokenArgs {
            issuer: Some("http://login.example.test".into()),
            ..Default::default()
        },
        ..common::sandbox_args(&dir)
    };
    let mut app = spawn_with(args()).await;
    let openid = app.user("13512345678").await;
    let (_, body) = app.get_phone(&openid).await;
    let token = body["data"]["token"].as_str().unwrap().to_owned();
    app.stop().await;

    let app = spawn_with(args()).await;
    let (status, me) = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["phone"], "135****5678");
    // The sandbox keeps its identity seed: the same phone is the same WeChat user after a restart, so a silent
    // login recognises them with no phone code.
    assert_eq!(app.user("13512345678").await, openid);
    let (_, again) = app
        .post(
            "/api/v1/login",
            json!({ "loginCode": app.login_code(&openid).await }),
        )
        .await;
    assert_eq!(again["data"]["status"], "ok", "{again}");

    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(11).any(|w| w == b"13512345678"),
            "{} holds the phone in clear",
            path.display()
        );
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "{} holds the session token",
            path.display()
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("data.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn upstream_faults_are_absorbed_or_reported_clearly() {
    let app = spawn_app().await;
    let openid = app.user("13312345678").await;
    assert_eq!(app.get_phone(&openid).await.0, 200);
    let before = app.stats().await["tokensIssued"].as_u64().unwrap();

    // A revoked token mid-run: every login still succeeds, with one refresh.
    let revoke = app
        .http
        .put(format!("{}/sandbox/v1/faults", app.base))
        .json(&json!({ "revokeToken": true }))
        .send()
        .await
        .unwrap();
    assert!(revoke.status().is_success());
    let users: Vec<String> = futures::future::join_all((0..20).map(|i| {
        let app = &app;
        async move { app.user(&format!("1331000{:04}", i)).await }
    }))
    .await;
    let answers = futures::future::join_all(users.iter().map(|u| app.get_phone(u))).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert_eq!(
        app.stats().await["tokensIssued"].as_u64().unwrap(),
        before + 1
    );

    // Busy on 10 % of calls: retried, every login succeeds.
    app.http
        .put(format!("{}/sandbox/v1/faults", app.base))
        .json(&json!({ "errcode": -1, "rate": 0.1 }))
        .send()
        .await
        .unwrap();
    for u in &users {
        let (status, body) = app.get_phone(u).await;
        assert_eq!(status, 200, "{body}");
    }

    // Busy on every call: a clear 503 within a bounded time.
    app.http
        .put(format!("{}/sandbox/v1/faults", app.base))
        .json(&json!({ "errcode": -1, "rate": 1.0 }))
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    let answer = app.get_phone(&openid).await;
    assert_error(&answer, 503, "wechat_busy");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    app.http
        .delete(format!("{}/sandbox/v1/faults", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(app.get_phone(&openid).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_logins() {
    // A load test from one address: the limits (tested in tests/limits.rs) would refuse most of it.
    let mut args = common::sandbox_args(&temp_dir("load"));
    args.rate_limits = Some(wxlogin::config::RateLimitSwitch::Off);
    let app = spawn_with(args).await;
    let batch: Value = app
        .post("/sandbox/v1/batch", json!({ "count": 200 }))
        .await
        .1;
    let items = batch["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 200);
    let answers = futures::future::join_all(items.iter().map(|item| {
        app.post(
            "/api/getPhone",
            json!({ "loginCode": item["loginCode"], "phoneCode": item["phoneCode"] }),
        )
    }))
    .await;
    assert!(
        answers.iter().all(|(s, b)| *s == 200 && b["code"] == 0),
        "{:?}",
        answers.iter().find(|(s, _)| *s != 200)
    );
    assert_eq!(app.users().await, 200);

    // 50 concurrent logins of one user: one row.
    let openid = app.user("13212345678").await;
    let mut bodies = Vec::new();
    for _ in 0..50 {
        bodies.push(json!({ "loginCode": app.login_code(&openid).await, "phoneCode": app.phone_code(&openid).await }));
    }
    let answers =
        futures::future::join_all(bodies.into_iter().map(|b| app.post("/api/getPhone", b))).await;
    assert!(
        answers.iter().all(|(s, _)| *s == 200),
        "{:?}",
        answers.iter().find(|(s, _)| *s != 200)
    );
    assert_eq!(app.users().await, 201);
}

#[tokio::test]
async fn with_real_credentials_there_is_no_sandbox_and_a_data_key_is_required() {
    let wechat_app = wxsim::AppCredentials::generate();
    let upstream = wxsim::spawn(wxsim::SimConfig::with_apps(vec![wechat_app.clone()]))
        .await
        .unwrap();
    let dir = temp_dir("prod");
    let env = |k: &str| match k {
        "WX_APPID" => Some(wechat_app.appid.clone()),
        "WX_SECRET" => Some(wechat_app.secret.clone()),
        _ => None,
    };
    let mut args = common::sandbox_args(&dir);
    args.wechat_base_url = Some(upstream.base_url.clone());
    let settings = wxlogin::config::Settings::resolve(args.clone(), env).unwrap();
    let err = wxlogin::app::start(settings, std::future::pending())
        .await
        .err()
        .expect("refuses to start");
    assert!(err.to_string().contains("WXLOGIN_DATA_KEY"), "{err}");

    args.data_key = Some("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into());
    let settings = wxlogin::config::Settings::resolve(args, env).unwrap();
    let running = wxlogin::app::start(settings, std::future::pending())
        .await
        .unwrap();
    let base = running.base_url();
    let http = reqwest::Client::new();
    for path in [
        "/sandbox/",
        "/sandbox/v1/stats",
        "/sandbox/wechat/cgi-bin/token",
    ] {
        assert_eq!(
            http.get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .status(),
            404,
            "{path}"
        );
    }
    // And it logs in against the external WeChat (simulator) it was pointed at.
    let user = upstream
        .sim
        .create_user(wxsim::NewUser {
            appid: None,
            phone_number: "13012345678".into(),
            country_code: None,
        })
        .unwrap();
    let body = json!({ "loginCode": upstream.sim.login_code(&user.openid).unwrap().code, "phoneCode": upstream.sim.phone_code(&user.openid).unwrap().code });
    let answer: Value = http
        .post(format!("{base}/api/getPhone"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["phone"], "13012345678", "{answer}");
}

#[tokio::test]
async fn the_browser_sandbox_page_is_served() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/sandbox/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let response = app
        .http
        .get(format!("{}/sandbox/miniprogram/utils/auth.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = app
        .http
        .get(format!("{}/sandbox/miniprogram/package.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_outcome() {
    let app = spawn_app().await;
    let openid = app.user("13100131000").await;
    assert_eq!(app.get_phone(&openid).await.0, 200);
    assert_error(
        &app.post("/api/v1/login", json!({})).await,
        400,
        "invalid_field",
    );
    let response = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("wxlogin_requests_total{"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("wxlogin_requests_total{")
                && l.contains(r#"route="/api/getPhone""#)
                && l.contains(r#"outcome="ok""#)),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(r#"route="/api/v1/login""#)
                && l.contains(r#"outcome="invalid_field""#)),
        "{text}"
    );
    assert!(
        text.contains("wxlogin_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(!text.contains("13100131000"));
}

/// The document is generated from the router's own registrations (utoipa-axum `routes!`): every documented
/// operation is served, every other method of a documented path is 405, and the WeChat-facing routes of the sandbox
/// are not in it.
#[tokio::test]
async fn the_openapi_document_is_the_served_routes() {
    let app = spawn_app().await;
    let spec: Value = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() >= 9, "{:?}", paths.keys());
    // A path parameter that names an app is given the sandbox's own (`/wechat/push/{appid}` of an app that is
    // not served answers 404 like a route that is not).
    let appid = app.running.as_ref().unwrap().appids[0].clone();
    for (path, item) in paths {
        let documented: Vec<&String> = item.as_object().unwrap().keys().collect();
        for method in ["get", "post", "put", "delete", "patch"] {
            let request = app.http.request(
                method.to_uppercase().parse().unwrap(),
                format!("{}{}", app.base, path.replace("{appid}", &appid)),
            );
            let status = request.send().await.unwrap().status().as_u16();
            if documented.iter().any(|m| m.as_str() == method) {
                assert!(
                    status != 404 && status != 405,
                    "{method} {path} is documented but answers {status}"
                );
            } else {
                assert_eq!(status, 405, "{method} {path} is served but not documented");
            }
        }
    }
    assert!(paths.keys().all(|p| !p.starts_with("/sandbox")));
    let (status, _) = app.get("/api/v1/nothing-here", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn wechat_errcodes_map_to_the_error_table() {
    let app = spawn_app().await;
    let openid = app.user("13100131001").await;
    let cases = [
        (45011, "/sns/jscode2session", 429, "rate_limited"),
        (40226, "/sns/jscode2session", 403, "user_blocked"),
        (40013, "/sns/jscode2session", 503, "wechat_config"),
        (99999, "/sns/jscode2session", 502, "wechat_error"),
        (
            45011,
            "/wxa/business/getuserphonenumber",
            429,
            "rate_limited",
        ),
        // getuserphonenumber's documented errcode for a phone code of another app: the user's, not ours.
        (
            40013,
            "/wxa/business/getuserphonenumber",
            400,
            "phone_code_invalid",
        ),
        // The operator's problems (quota, entitlement, frozen secret or account): never "too frequent".
        (45009, "/sns/jscode2session", 503, "wechat_config"),
        (
            48001,
            "/wxa/business/getuserphonenumber",
            503,
            "wechat_config",
        ),
        (50007, "/sns/jscode2session", 503, "wechat_config"),
    ];
    for (errcode, path, status, error) in cases {
        app.http
            .put(format!("{}/sandbox/v1/faults", app.base))
            .json(&json!({ "errcode": errcode, "paths": [path] }))
            .send()
            .await
            .unwrap();
        assert_error(&app.get_phone(&openid).await, status, error);
    }
    assert_eq!(app.users().await, 0);

    // The token route's refusals (wrong secret, frozen secret, daily quota, the admin confirmation family and
    // its IP blocks) are the operator's: each on a fresh app, so its token cache is cold. 40013 from the token
    // route is our AppID, not a user's code.
    for errcode in [
        40125, 40013, 40243, 45009, 50004, 89501, 89503, 89506, 89507,
    ] {
        let app = spawn_app().await;
        let openid = app.user("13100131002").await;
        app.http
            .put(format!("{}/sandbox/v1/faults", app.base))
            .json(&json!({ "errcode": errcode, "paths": ["/cgi-bin/stable_token"] }))
            .send()
            .await
            .unwrap();
        let answer = app.get_phone(&openid).await;
        assert_eq!(answer.0, 503, "{errcode}: {}", answer.1);
        assert_error(&answer, 503, "wechat_config");
    }
}

#[tokio::test]
async fn wechat_frequency_limit_answers_retry_after() {
    let app = spawn_app().await;
    let openid = app.user("13100131003").await;
    app.http
        .put(format!("{}/sandbox/v1/faults", app.base))
        .json(&json!({ "errcode": 45011, "paths": ["/sns/jscode2session"] }))
        .send()
        .await
        .unwrap();
    let login = app.login_code(&openid).await;
    let response = app
        .http
        .post(format!("{}/api/v1/login", app.base))
        .json(&json!({ "loginCode": login }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "60");
}

/// A fake WeChat for what the simulator never does: a watermark of another app.
async fn fake_wechat(watermark_appid: &'static str) -> String {
    use axum::routing::{get, post};
    let router = axum::Router::new()
        .route("/cgi-bin/stable_token", post(|| async { axum::Json(json!({ "access_token": "T", "expires_in": 7200 })) }))
        .route("/sns/jscode2session", get(|| async { axum::Json(json!({ "openid": "o-fake", "session_key": "AAAAAAAAAAAAAAAAAAAAAA==" })) }))
        .route(
            "/wxa/business/getuserphonenumber",
            post(move || async move {
                axum::Json(json!({ "errcode": 0, "errmsg": "ok", "phone_info": {
                    "phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": "86",
                    "watermark": { "timestamp": 1, "appid": watermark_appid } } }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn production_app(wechat_base_url: String) -> common::TestApp {
    let dir = temp_dir("prod-errors");
    let mut args = common::sandbox_args(&dir);
    args.wechat_base_url = Some(wechat_base_url);
    args.data_key = Some("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into());
    let env = |k: &str| match k {
        "WX_APPID" => Some("wx0123456789abcdef".to_owned()),
        "WX_SECRET" => Some("0123456789abcdef0123456789abcdef".to_owned()),
        _ => None,
    };
    let settings = wxlogin::config::Settings::resolve(args, env).unwrap();
    let running = wxlogin::app::start(settings, std::future::pending())
        .await
        .unwrap();
    let base = running.base_url();
    common::TestApp {
        running: Some(running),
        base,
        http: reqwest::Client::new(),
        data_dir: dir,
    }
}

#[tokio::test]
async fn a_watermark_of_another_app_is_refused_and_nothing_is_written() {
    let app = production_app(fake_wechat("wxffffffffffffffff").await).await;
    let answer = app
        .post(
            "/api/getPhone",
            json!({ "loginCode": "l", "phoneCode": "p" }),
        )
        .await;
    assert_error(&answer, 502, "watermark_mismatch");
    assert_eq!(app.users().await, 0);
    let app = production_app(fake_wechat("wx0123456789abcdef").await).await;
    assert_eq!(
        app.post(
            "/api/getPhone",
            json!({ "loginCode": "l", "phoneCode": "p" })
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn an_unreachable_wechat_is_a_quick_503() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = production_app(format!("http://127.0.0.1:{port}")).await;
    let started = Instant::now();
    let answer = app.post("/api/v1/login", json!({ "loginCode": "l" })).await;
    assert_error(&answer, 503, "wechat_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
