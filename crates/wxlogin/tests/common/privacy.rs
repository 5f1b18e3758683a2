//! The privacy tests' people (Alice in two apps with a scan login she scanned, Bob in one) and their product on
//! either backend.

use super::pg_cluster::{fresh_schema, postgres_available};
use super::product::{A, B, Options, Product, ok};
use serde_json::{Value, json};

pub const ALICE: &str = "13800138000";
pub const BOB: &str = "13900139000";

impl Product {
    pub async fn with_token(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &Value,
    ) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token.as_str().unwrap())
            .header("user-agent", "Mozilla/5.0 (Macintosh) PrivacyTest/1.0")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn phone_hash_of(&self, account: &Value) -> Vec<u8> {
        self.bytes(&format!(
            "SELECT phone_hash FROM accounts WHERE id = '{}'",
            account.as_str().unwrap()
        ))
        .await
    }
}

/// Alice in two apps (one account), with a scan login she scanned; Bob in one.
pub struct People {
    pub alice_a: String,
    pub alice_b: String,
    pub alice: Value,
    pub bob: Value,
    pub scan_id: String,
}

pub async fn people(product: &Product) -> People {
    let alice_a = product.user(A, ALICE).await;
    let alice_b = product.user(B, ALICE).await;
    let bob_a = product.user(A, BOB).await;
    let alice = ok(&product.get_phone(A, &alice_a, None).await).clone();
    let in_b = ok(&product.get_phone(B, &alice_b, None).await).clone();
    assert_eq!(
        in_b["accountId"], alice["accountId"],
        "one person, one account"
    );
    let bob = ok(&product.get_phone(A, &bob_a, None).await).clone();
    // A web page asks to log in; Alice scans its code (Bob's web page is never scanned by her).
    let created = product
        .post("/api/v1/qr-login", json!({ "appid": A }))
        .await;
    let scan_id = ok(&created)["id"].as_str().unwrap().to_owned();
    let scanned = product
        .with_token(
            reqwest::Method::POST,
            &format!("/api/v1/qr-login/{scan_id}/scan"),
            &alice["token"],
        )
        .await;
    ok(&scanned);
    People {
        alice_a,
        alice_b,
        alice,
        bob,
        scan_id,
    }
}

/// The product on SQLite, or on a PostgreSQL schema of its own (`None`: PostgreSQL is not there, skip).
pub async fn on(postgres: bool) -> Option<Product> {
    if !postgres {
        return Some(Product::start("").await);
    }
    if !postgres_available("the privacy tests on PostgreSQL").await {
        return None;
    }
    Some(
        Product::start_with(Options {
            database_url: Some(fresh_schema("privacy").await),
            ..Options::default()
        })
        .await,
    )
}
