//! WeChat's message push in the product tests: `serve` with app A in safe mode as JSON and app B in plaintext as
//! XML, the simulator pushing to both; the pushes a test makes itself are sealed by `weixin::push` (WeChat's rules,
//! with the Token and key configured here), never by crypto written in a test.

use super::product::{A, B, Options, Product, ok};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use weixin::push::SealedPush;

pub const TOKEN_A: &str = "tokenForAppA1";
pub const KEY_A: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const TOKEN_B: &str = "tokenForAppB2";

/// The product with pushes configured for A (safe, JSON) and B (plaintext, XML), on SQLite or on `database_url`.
pub async fn push_product(database_url: Option<String>) -> Product {
    let product = Product::start_with(Options {
        per_app: [
            "push_token_env = \"PUSH_TOKEN_A\"\npush_aes_key_env = \"PUSH_KEY_A\"",
            &format!("push_token = \"{TOKEN_B}\""),
            "",
        ],
        env: vec![
            ("PUSH_TOKEN_A", TOKEN_A.to_owned()),
            ("PUSH_KEY_A", KEY_A.to_owned()),
        ],
        database_url,
        ..Options::default()
    })
    .await;
    let target = |appid: &str, token: &str, key: Option<&str>, format: &str| {
        let mut t = json!({ "url": format!("{}/wechat/push/{appid}", product.base), "token": token, "format": format });
        if let Some(key) = key {
            t["encodingAesKey"] = json!(key);
        }
        t
    };
    for (appid, body) in [
        (A, target(A, TOKEN_A, Some(KEY_A), "json")),
        (B, target(B, TOKEN_B, None, "xml")),
    ] {
        let response = product
            .http
            .put(format!("{}/sandbox/v1/apps/{appid}/push", product.sim))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    product
}

/// WeChat's signature: sha1 of the sorted parts.
pub fn sign(parts: &[&str]) -> String {
    let mut parts = parts.to_vec();
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A user-data event about `openid` of `appid`, as WeChat words it.
pub fn event(
    appid: &str,
    openid: &str,
    event: &str,
    revoke_info: Option<&str>,
) -> weixin::push::PushMessage {
    weixin::push::PushMessage {
        to_user_name: "gh_x".into(),
        from_user_name: openid.to_owned(),
        create_time: now(),
        msg_type: "event".into(),
        event: Some(event.to_owned()),
        openid: Some(openid.to_owned()),
        appid: Some(appid.to_owned()),
        revoke_info: revoke_info.map(str::to_owned),
    }
}

/// A sealed push's query string.
pub fn query_of(sealed: &weixin::push::SealedPush) -> String {
    sealed
        .query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `query` with `name`'s value replaced.
pub fn with_param(query: &str, name: &str, value: &str) -> String {
    query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k == name => format!("{k}={value}"),
            _ => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub fn error_of(answer: &(u16, String)) -> String {
    serde_json::from_str::<Value>(&answer.1).unwrap_or(Value::Null)["error"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

impl Product {
    /// The user revokes or cancels through the simulator (`body`: at least the openid): what WeChat sent, and the
    /// answer.
    pub async fn wechat_with(&self, what: &str, body: Value) -> Value {
        self.device(&format!("/users/{what}"), body).await
    }

    /// As [`Product::wechat_with`] with only the openid (a revoke is then of the phone, `RevokeInfo` 8).
    pub async fn wechat(&self, what: &str, openid: &str) -> Value {
        self.wechat_with(what, json!({ "openid": openid })).await
    }

    /// POSTs exactly `url` and `body`: (status, body).
    pub async fn raw(&self, url: &str, content_type: &str, body: &str) -> (u16, String) {
        let response = self
            .http
            .post(url)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// POSTs a push to `appid`'s URL: the query and body as given.
    pub async fn push_raw(
        &self,
        appid: &str,
        query: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, String) {
        self.raw(
            &format!("{}/wechat/push/{appid}?{query}", self.base),
            content_type,
            body,
        )
        .await
    }

    /// Rows that a push may change, to see that a refused one changed nothing.
    pub async fn state(&self) -> Vec<i64> {
        let mut counts = self.counts().await;
        counts.push(
            self.count("SELECT COUNT(*) FROM accounts WHERE phone_hash IS NOT NULL")
                .await,
        );
        counts
    }
}

/// Alice (13800138000), logged in with her phone in `appid`: her login's answer.
pub struct Alice {
    pub openid: String,
    pub login: Value,
}

impl Alice {
    pub async fn log_in(product: &Product, appid: &str) -> Self {
        let openid = product.user(appid, "13800138000").await;
        let login = ok(&product.get_phone(appid, &openid, None).await).clone();
        Self { openid, login }
    }

    /// Her phone is held, her session answers on our routes and through forward auth: `what` changed nothing.
    pub async fn untouched(&self, product: &Product, appid: &str, what: &str) {
        let account = self.login["accountId"].as_str().unwrap();
        assert_eq!(
            product
                .count(&format!(
                    "SELECT COUNT(*) FROM accounts WHERE id = '{account}' AND phone_hash IS NOT NULL"
                ))
                .await,
            1,
            "{what}: her phone is still held"
        );
        ok(&product.me(appid, &self.login["token"]).await);
        let token = self.login["token"].as_str().unwrap();
        assert_eq!(product.verify(token).await, 200, "{what}");
    }
}

/// POSTs a sealed push as it is.
pub async fn deliver(product: &Product, appid: &str, push: &SealedPush) -> (u16, String) {
    product
        .push_raw(appid, &query_of(push), push.content_type, &push.body)
        .await
}

pub fn assert_refused(answer: &(u16, String), status: u16, error: &str, what: &str) {
    assert_eq!(
        (answer.0, error_of(answer).as_str()),
        (status, error),
        "{what}: {}",
        answer.1
    );
}
