//! Test helpers: the simulator on an ephemeral port, a client for it, and a scriptable fake upstream for the
//! failure modes the simulator does not produce (timeouts, gateways, foreign watermarks).

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use weixin::{AppId, AppSecret, Client, Config, RetryPolicy};

pub struct Sim {
    pub running: wxsim::RunningSim,
    pub app: wxsim::AppCredentials,
}

impl Sim {
    pub async fn start() -> Self {
        let app = wxsim::AppCredentials::generate();
        let running = wxsim::spawn(wxsim::SimConfig::with_apps(vec![app.clone()]))
            .await
            .expect("simulator starts");
        // The simulator's rate limits count in fixed minute windows (daily quotas from midnight UTC+8): start just
        // past a midnight so no window boundary falls inside a test.
        let now = running.sim.now();
        let next_midnight = ((now + 8 * 3600) / 86_400 + 1) * 86_400 - 8 * 3600;
        running.sim.advance_clock(next_midnight - now + 1);
        Self { running, app }
    }

    pub fn sim(&self) -> &wxsim::Simulator {
        &self.running.sim
    }

    pub fn config(&self) -> Config {
        fast(
            Config::new(
                AppId::parse(self.app.appid.clone()).unwrap(),
                AppSecret::new(self.app.secret.clone()),
            )
            .with_base_url(&self.running.base_url),
        )
    }

    pub fn client(&self) -> Client {
        Client::new(self.config()).unwrap()
    }

    pub fn user(&self, phone: &str) -> wxsim::SandboxUser {
        self.sim()
            .create_user(wxsim::NewUser {
                appid: None,
                phone_number: phone.into(),
                country_code: None,
            })
            .unwrap()
    }

    pub fn login_code(&self, openid: &str) -> weixin::LoginCode {
        weixin::LoginCode::parse(self.sim().login_code(openid).unwrap().code).unwrap()
    }

    pub fn phone_code(&self, openid: &str) -> weixin::PhoneCode {
        weixin::PhoneCode::parse(self.sim().phone_code(openid).unwrap().code).unwrap()
    }

    pub fn stats(&self) -> serde_json::Value {
        serde_json::to_value(self.sim().stats()).unwrap()
    }

    pub fn calls(&self, route: &str) -> u64 {
        self.stats()["routes"][route]["calls"].as_u64().unwrap_or(0)
    }

    pub fn tokens_issued(&self) -> u64 {
        self.stats()["tokensIssued"].as_u64().unwrap()
    }
}

/// Test timing: tiny backoff so retry tests stay fast.
pub fn fast(config: Config) -> Config {
    Config {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        },
        request_timeout: Duration::from_millis(500),
        ..config
    }
}

/// A fake WeChat whose every route answers from a script: the n-th request gets `answers[min(n, len-1)]`,
/// after `delay`. Counts requests per path.
#[derive(Clone)]
pub struct Fake {
    pub base_url: String,
    pub hits: Arc<AtomicUsize>,
}

pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub delay: Duration,
}

pub fn json(body: serde_json::Value) -> Answer {
    Answer {
        status: 200,
        content_type: "application/json",
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

pub async fn fake(answers: Vec<Answer>) -> Fake {
    use axum::response::IntoResponse;
    let answers = Arc::new(answers);
    let hits = Arc::new(AtomicUsize::new(0));
    let (a, h) = (answers.clone(), hits.clone());
    let handler = move |uri: axum::http::Uri| {
        let (a, h) = (a.clone(), h.clone());
        async move {
            // Token fetches are answered by the script too only if the path asks for it; a fixed token otherwise.
            if uri.path() == "/cgi-bin/stable_token" {
                return axum::response::Response::builder()
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(
                        r#"{"access_token":"FAKE_TOKEN","expires_in":7200}"#,
                    ))
                    .unwrap();
            }
            let n = h.fetch_add(1, Ordering::SeqCst);
            let answer = &a[n.min(a.len() - 1)];
            tokio::time::sleep(answer.delay).await;
            (
                axum::http::StatusCode::from_u16(answer.status).unwrap(),
                [("content-type", answer.content_type)],
                answer.body.clone(),
            )
                .into_response()
        }
    };
    let app = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Fake {
        base_url: format!("http://{addr}"),
        hits,
    }
}

impl Fake {
    pub fn client(&self) -> Client {
        Client::new(fast(
            Config::new(
                AppId::parse("wx0123456789abcdef").unwrap(),
                AppSecret::new("s3cr3t-app-secret"),
            )
            .with_base_url(&self.base_url),
        ))
        .unwrap()
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
