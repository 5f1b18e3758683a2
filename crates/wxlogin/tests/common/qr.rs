//! Scan login over HTTP against a [`TestApp`]: the web page's calls (create, poll), the phone's (scan, confirm,
//! deny), and the wait for a poll to be held, shared by the scan-login test files.

use super::TestApp;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A logged-in phone: its openid and access token.
pub struct Phone {
    pub openid: String,
    pub token: String,
    pub account_id: String,
}

pub async fn phone(app: &TestApp, number: &str) -> Phone {
    let openid = app.user(number).await;
    let (status, body) = app.get_phone(&openid).await;
    assert_eq!(status, 200, "{body}");
    Phone {
        openid,
        token: body["data"]["token"].as_str().unwrap().to_owned(),
        account_id: body["data"]["accountId"].as_str().unwrap().to_owned(),
    }
}

/// A web page's scan login: `data` of the create answer.
pub async fn create(app: &TestApp) -> Value {
    let response = app
        .http
        .post(format!("{}/api/v1/qr-login", app.base))
        .header(
            "user-agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36",
        )
        .header("origin", "https://admin.example.com")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["data"].clone()
}

pub async fn poll(app: &TestApp, id: &str, token: Option<&str>, wait: u64) -> (u16, Value) {
    app.get(&format!("/api/v1/qr-login/{id}?wait={wait}"), token)
        .await
}

pub async fn phone_call(
    app: &TestApp,
    id: &str,
    action: &str,
    token: Option<&str>,
) -> (u16, Value) {
    app.post_raw(
        &format!("/api/v1/qr-login/{id}/{action}"),
        b"{}".to_vec(),
        token,
    )
    .await
}

/// A long poll (`wait=25`) answered later: its body and when it came.
pub fn spawn_poll(
    app: &TestApp,
    id: &str,
    token: &str,
) -> tokio::task::JoinHandle<(Value, Instant)> {
    let request = app
        .http
        .get(format!("{}/api/v1/qr-login/{id}?wait=25", app.base))
        .bearer_auth(token);
    tokio::spawn(async move {
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        (answer, Instant::now())
    })
}

/// Waits until the service's gauge shows `count` polls waiting for a change.
pub async fn until_waiting(app: &TestApp, count: f64) {
    let started = Instant::now();
    loop {
        let metrics = super::metrics_text(&app.http, &app.base).await;
        let waiting = super::metric_value(&metrics, "wxlogin_qr_polls_waiting");
        if waiting >= count {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no poll waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
