//! SIGTERM stops the real binary gracefully: a login already in flight (held up by a slow WeChat) finishes with
//! a 200, then the process exits 0.

mod common;

use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn sigterm_lets_in_flight_logins_finish() {
    let dir = std::env::temp_dir().join(format!(
        "wxlogin-shutdown-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let (mut child, base) =
        common::sandbox_binary(&dir, "warn", Stdio::null(), Stdio::inherit()).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| http.post(format!("{base}{path}")).json(&body).send();
    let user: Value = post("/sandbox/v1/users", json!({ "phoneNumber": "13800138123" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let openid = user["openid"].as_str().unwrap();
    let login: Value = post("/sandbox/v1/login-code", json!({ "openid": openid }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let phone: Value = post("/sandbox/v1/phone-code", json!({ "openid": openid }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Every WeChat call now takes 400 ms: the login below is still running when SIGTERM arrives.
    http.put(format!("{base}/sandbox/v1/faults"))
        .json(&json!({ "latencyMs": 400 }))
        .send()
        .await
        .unwrap();

    let in_flight = tokio::spawn(post(
        "/api/getPhone",
        json!({ "loginCode": login["code"], "phoneCode": phone["code"] }),
    ));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let answer = in_flight
        .await
        .unwrap()
        .expect("the in-flight login got its answer");
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["data"]["phone"], "13800138123");

    let exited = Instant::now();
    loop {
        if let Some(code) = child.try_wait().unwrap() {
            assert!(code.success(), "exit status {code}");
            break;
        }
        assert!(
            exited.elapsed() < Duration::from_secs(10),
            "the process did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "no longer listening"
    );
}
