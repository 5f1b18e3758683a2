//! Runs the real binary, drives a full run of every flow over HTTP with every log level on, and checks that the
//! captured output holds no full phone number, session token, refresh token, ticket, poll token, AppSecret, access
//! token or session_key: logins, refresh, scan to log in, the copy of one's data (which answers the phone in full),
//! WeChat's revoke push and the deletion of an account included.

mod common;

use serde_json::{Value, json};
use std::io::Read;
use std::process::Stdio;

#[tokio::test]
async fn logs_hold_no_secret_and_no_full_phone() {
    let dir = common::temp_dir("logs");
    let log_path = dir.join("out.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let (mut child, base) = common::sandbox_binary(
        &dir,
        "trace",
        Stdio::from(log.try_clone().unwrap()),
        Stdio::from(log),
    )
    .await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value, bearer: Option<String>| {
        let mut r = http.post(format!("{base}{path}")).json(&body);
        if let Some(t) = bearer {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let get = |path: &str, bearer: &str| {
        let r = http.get(format!("{base}{path}")).bearer_auth(bearer);
        async move { r.send().await.unwrap().json::<Value>().await.unwrap() }
    };

    let mut secrets: Vec<String> = Vec::new();
    let phones = ["13811112222", "13911112222", "13733334444"];
    let mut openids = Vec::new();
    for phone in phones {
        openids.push(
            post("/sandbox/v1/users", json!({ "phoneNumber": phone }), None).await["openid"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let code = |kind: &'static str, openid: String| {
        let post = &post;
        async move {
            post(
                &format!("/sandbox/v1/{kind}"),
                json!({ "openid": openid }),
                None,
            )
            .await["code"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    // The seed's flow, then me and logout.
    let (l, p) = (
        code("login-code", openids[0].clone()).await,
        code("phone-code", openids[0].clone()).await,
    );
    secrets.extend([l.clone(), p.clone()]);
    let answer = post(
        "/api/getPhone",
        json!({ "loginCode": l, "phoneCode": p }),
        None,
    )
    .await;
    let token = answer["data"]["token"].as_str().unwrap().to_owned();
    secrets.push(token.clone());
    let refresh = answer["data"]["refreshToken"].as_str().unwrap().to_owned();
    secrets.push(refresh.clone());
    // A refresh (the next pair), then the copy of her data: the phone in full, in the answer only.
    let next = post("/api/v1/refresh", json!({ "refreshToken": refresh }), None).await;
    assert_eq!(next["code"], 0, "{next}");
    for field in ["token", "refreshToken"] {
        secrets.push(next["data"][field].as_str().unwrap().to_owned());
    }
    let export = get("/api/v1/me/export", &token).await;
    assert_eq!(export["code"], 0, "{export}");
    assert!(export.to_string().contains(phones[0]), "{export}");
    http.get(format!("{base}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    post("/api/v1/logout", json!({}), Some(token)).await;
    // Silent login, phone, second login.
    let l = code("login-code", openids[1].clone()).await;
    let first = post("/api/v1/login", json!({ "loginCode": l }), None).await;
    let ticket = first["data"]["ticket"].as_str().unwrap().to_owned();
    let p = code("phone-code", openids[1].clone()).await;
    let bound = post(
        "/api/v1/phone",
        json!({ "phoneCode": p, "ticket": ticket }),
        None,
    )
    .await;
    assert_eq!(bound["code"], 0, "{bound}");
    secrets.extend([
        l,
        p,
        ticket,
        bound["data"]["token"].as_str().unwrap().to_owned(),
    ]);
    let l = code("login-code", openids[1].clone()).await;
    secrets.push(
        post("/api/v1/login", json!({ "loginCode": l }), None).await["data"]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    // Scan to log in: the web's poll token is a secret; the phone scans, confirms; the web collects its tokens.
    let phone_token = secrets.last().unwrap().clone();
    let created = post("/api/v1/qr-login", json!({}), None).await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let poll_token = created["data"]["pollToken"].as_str().unwrap().to_owned();
    secrets.push(poll_token.clone());
    for step in ["scan", "confirm"] {
        let done = post(
            &format!("/api/v1/qr-login/{id}/{step}"),
            json!({}),
            Some(phone_token.clone()),
        )
        .await;
        assert_eq!(done["code"], 0, "{step}: {done}");
    }
    let web = get(&format!("/api/v1/qr-login/{id}"), &poll_token).await;
    for field in ["token", "refreshToken"] {
        secrets.push(web["data"][field].as_str().unwrap().to_owned());
    }
    // WeChat pushes that the second user withdrew the phone (the sandbox wires its pushes to itself), then the
    // first user, logged in again, deletes the account.
    let pushed = post(
        "/sandbox/v1/users/revoke",
        json!({ "openid": openids[1] }),
        None,
    )
    .await;
    assert_eq!(pushed["answer"]["body"], "success", "{pushed}");
    let (l, p) = (
        code("login-code", openids[0].clone()).await,
        code("phone-code", openids[0].clone()).await,
    );
    let again = post(
        "/api/getPhone",
        json!({ "loginCode": l, "phoneCode": p }),
        None,
    )
    .await;
    let again_token = again["data"]["token"].as_str().unwrap().to_owned();
    secrets.extend([l, p, again_token.clone()]);
    let deleted = http
        .delete(format!("{base}/api/v1/me"))
        .bearer_auth(&again_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);

    // Failures: a mismatched phone code, a used code, a bad body.
    let (l, p) = (
        code("login-code", openids[2].clone()).await,
        code("phone-code", openids[0].clone()).await,
    );
    post(
        "/api/getPhone",
        json!({ "loginCode": l, "phoneCode": p }),
        None,
    )
    .await;
    post(
        "/api/getPhone",
        json!({ "loginCode": l, "phoneCode": p }),
        None,
    )
    .await;
    post("/api/getPhone", json!({ "loginCode": 1 }), None).await;

    // What WeChat (the sandbox) holds: the AppSecret, and the current access token.
    let app: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sandbox-app.json")).unwrap())
            .unwrap();
    let secret = app["secret"].as_str().unwrap().to_owned();
    let token: Value = http
        .post(format!("{base}/sandbox/wechat/cgi-bin/stable_token"))
        .json(
            &json!({ "grant_type": "client_credential", "appid": app["appid"], "secret": secret }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    secrets.push(secret);
    secrets.push(token["access_token"].as_str().unwrap().to_owned());
    secrets.push(
        std::fs::read_to_string(dir.join("data.key"))
            .unwrap()
            .trim()
            .to_owned(),
    );

    child.kill().unwrap();
    child.wait().unwrap();
    let mut logs = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(
        logs.contains("sandbox mode"),
        "the start-up line says sandbox mode"
    );
    assert!(
        logs.contains("route=/api/getPhone") || logs.contains("route=\"/api/getPhone\""),
        "one line per request:\n{logs}"
    );
    for route in [
        "/api/v1/me/export",
        "/api/v1/qr-login/{id}",
        "/wechat/push/{appid}",
    ] {
        assert!(logs.contains(route), "the run's {route} is logged:\n{logs}");
    }
    assert!(logs.contains("138****2222"), "phones appear masked");
    for phone in phones {
        assert!(!logs.contains(phone), "full phone {phone} in the logs");
    }
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret ({}…) is in the logs",
            &secret[..6.min(secret.len())]
        );
    }
    // session_key: 16 bytes in base64 is 22 characters and "==".
    let looks_like_session_key = logs
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
        .any(|w| w.len() == 24 && w.ends_with("==") && !w[..22].contains('='));
    assert!(
        !looks_like_session_key,
        "something shaped like a session_key is in the logs"
    );
}
