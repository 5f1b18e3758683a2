//! Shared helpers: a simulator on 127.0.0.1:0 and a reqwest client that reads bodies as JSON whatever the
//! Content-Type says.
#![allow(dead_code)]

use serde_json::{Value, json};
use wxsim::{AppCredentials, NewUser, RunningSim, SandboxUser, SimConfig, Simulator, spawn};

pub struct TestSim {
    pub running: RunningSim,
    pub http: reqwest::Client,
    pub app: AppCredentials,
}

pub async fn start() -> TestSim {
    start_with(SimConfig::default()).await
}

pub async fn start_with(config: SimConfig) -> TestSim {
    let running = spawn(config).await.expect("simulator starts");
    // Rate limits count in fixed minute windows and daily quotas reset at midnight UTC+8: start every test just
    // past such a midnight, so no window boundary falls inside a test however slow the machine.
    let now = running.sim.now();
    let day = 86_400;
    let next_midnight = ((now + 8 * 3600) / day + 1) * day - 8 * 3600;
    running.sim.advance_clock(next_midnight - now + 1);
    let app = running.sim.apps()[0].clone();
    TestSim {
        running,
        http: reqwest::Client::new(),
        app,
    }
}

pub fn errcode(v: &Value) -> i64 {
    v.get("errcode").and_then(Value::as_i64).unwrap_or(0)
}

/// A well-shaped token the simulator never minted.
pub fn foreign_token() -> String {
    format!("86_{}", "A".repeat(132))
}

impl TestSim {
    pub fn sim(&self) -> &Simulator {
        &self.running.sim
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url)
    }

    pub async fn read(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    /// A WeChat GET: HTTP 200 always, the JSON body.
    pub async fn get(&self, path: &str) -> Value {
        let (status, v) =
            Self::read(self.http.get(self.url(path)).send().await.expect("send")).await;
        assert_eq!(status, 200, "{path}: {v}");
        v
    }

    /// A WeChat POST with a raw body.
    pub async fn post_raw(&self, path: &str, body: &str) -> Value {
        let resp = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("send");
        let (status, v) = Self::read(resp).await;
        assert_eq!(status, 200, "{path}: {v}");
        v
    }

    pub async fn post(&self, path: &str, body: &Value) -> Value {
        self.post_raw(path, &body.to_string()).await
    }

    /// A device-API call under /sandbox/v1: status and JSON body.
    pub async fn device(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, self.url(&format!("/sandbox/v1{path}")));
        if let Some(body) = body {
            req = req.body(body.to_owned());
        }
        Self::read(req.send().await.expect("send")).await
    }

    pub fn user(&self, phone: &str) -> SandboxUser {
        self.sim()
            .create_user(NewUser {
                phone_number: phone.into(),
                ..NewUser::default()
            })
            .expect("user")
    }

    pub fn login_code(&self, user: &SandboxUser) -> String {
        self.sim()
            .login_code(&user.openid)
            .expect("login code")
            .code
    }

    pub fn phone_code(&self, user: &SandboxUser) -> String {
        self.sim()
            .phone_code(&user.openid)
            .expect("phone code")
            .code
    }

    pub async fn stable_token_as(&self, app: &AppCredentials, force: bool) -> Value {
        self.post(
            "/cgi-bin/stable_token",
            &json!({"grant_type": "client_credential", "appid": app.appid, "secret": app.secret,
                    "force_refresh": force}),
        )
        .await
    }

    pub async fn stable_token(&self, force: bool) -> Value {
        self.stable_token_as(&self.app, force).await
    }

    /// A valid stable token.
    pub async fn access_token(&self) -> String {
        let v = self.stable_token(false).await;
        v["access_token"].as_str().expect("token").to_owned()
    }

    pub async fn token_route(&self) -> Value {
        self.get(&format!(
            "/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
            self.app.appid, self.app.secret
        ))
        .await
    }

    pub async fn code2session_as(&self, app: &AppCredentials, code: &str) -> Value {
        self.get(&format!(
            "/sns/jscode2session?appid={}&secret={}&js_code={code}&grant_type=authorization_code",
            app.appid, app.secret
        ))
        .await
    }

    pub async fn code2session(&self, code: &str) -> Value {
        self.code2session_as(&self.app, code).await
    }

    pub async fn phone_number(&self, token: &str, body: &Value) -> Value {
        self.post(
            &format!("/wxa/business/getuserphonenumber?access_token={token}"),
            body,
        )
        .await
    }

    /// The errcode a business route gives `token` when the token is the only thing wrong-or-right: 40029 (an
    /// unknown phone code) means the token passed.
    pub async fn token_errcode(&self, token: &str) -> i64 {
        errcode(
            &self
                .phone_number(token, &json!({"code": "no-such-code"}))
                .await,
        )
    }
}
