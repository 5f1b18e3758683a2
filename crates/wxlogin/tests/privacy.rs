//! A person's data from outside (design.md, "Personal data and operations"): the export answers everything held
//! and nothing of anyone else; a deletion leaves no row of the account in any table of the database (read from
//! the database's own catalogue, not a list kept here), its tokens stop at once, and the next login is a new
//! account.

mod common;

use common::pg_cluster::{fresh_schema, postgres_available};
use common::product::{A, B, Options, Product, ok, refused};
use serde_json::{Value, json};

const ALICE: &str = "13800138000";
const BOB: &str = "13900139000";

impl Product {
    async fn with_token(&self, method: reqwest::Method, path: &str, token: &Value) -> (u16, Value) {
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

    async fn phone_hash_of(&self, account: &Value) -> Vec<u8> {
        self.bytes(&format!(
            "SELECT phone_hash FROM accounts WHERE id = '{}'",
            account.as_str().unwrap()
        ))
        .await
    }
}

/// Alice in two apps (one account), with a scan login she scanned; Bob in one.
struct People {
    alice_a: String,
    alice_b: String,
    alice: Value,
    bob: Value,
    scan_id: String,
}

async fn people(product: &Product) -> People {
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

async fn export(product: Product) {
    let p = people(&product).await;
    let export = product
        .with_token(reqwest::Method::GET, "/api/v1/me/export", &p.alice["token"])
        .await;
    let data = ok(&export);
    assert_eq!(data["accountId"], p.alice["accountId"]);
    assert_eq!(data["phone"], ALICE, "in full");
    assert_eq!(data["phoneVerifiedBy"]["appid"], A);
    assert_eq!(data["phoneVerifiedBy"]["openid"], p.alice_a.as_str());
    assert!(data["unionid"].is_string(), "{data}");
    let identities: Vec<(&str, &str)> = data["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["appid"].as_str().unwrap(), i["openid"].as_str().unwrap()))
        .collect();
    assert_eq!(
        identities,
        [(A, p.alice_a.as_str()), (B, p.alice_b.as_str())]
    );
    let sessions = data["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "one per login: {data}");
    assert!(
        sessions
            .iter()
            .all(|s| s["expiresAt"].as_i64() > s["createdAt"].as_i64())
    );
    let scans = data["scanLogins"].as_array().unwrap();
    assert_eq!(scans.len(), 1, "{data}");
    assert_eq!(scans[0]["id"], p.scan_id.as_str());
    assert_eq!(scans[0]["status"], "scanned");
    assert_eq!(scans[0]["webIp"], "127.0.0.1");
    assert!(data["audit"].is_array());
    // Every row the database holds about Alice's account is in it: counted by the database itself.
    let held = product
        .count(&format!(
            "SELECT (SELECT COUNT(*) FROM identities WHERE account_id = '{0}') * 1000 \
                  + (SELECT COUNT(*) FROM sessions WHERE identity_id IN \
                       (SELECT id FROM identities WHERE account_id = '{0}')) * 10 \
                  + (SELECT COUNT(*) FROM audit_log WHERE account_id = '{0}' OR other_account = '{0}')",
            p.alice["accountId"].as_str().unwrap()
        ))
        .await;
    let answered = data["identities"].as_array().unwrap().len() as i64 * 1000
        + sessions.len() as i64 * 10
        + data["audit"].as_array().unwrap().len() as i64;
    assert_eq!(answered, held);
    // Nothing of Bob's: his account id, openid and phone are nowhere in it.
    let text = data.to_string();
    for other in [
        p.bob["accountId"].as_str().unwrap(),
        p.bob["openid"].as_str().unwrap(),
        BOB,
        "139****9000",
    ] {
        assert!(!text.contains(other), "{other} in {text}");
    }
    // The export is for the holder of a session only, and never cached.
    refused(
        &product
            .with_token(reqwest::Method::GET, "/api/v1/me/export", &json!("eyJnope"))
            .await,
        401,
        "unauthorized",
    );
    let response = product
        .http
        .get(format!("{}/api/v1/me/export", product.base))
        .bearer_auth(p.alice["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
}

async fn deletion(product: Product) {
    let p = people(&product).await;
    let account = p.alice["accountId"].clone();
    let phone_hash = product.phone_hash_of(&account).await;
    let before = product.rows_holding(&phone_hash).await;
    assert_eq!(
        before,
        ["accounts.phone_hash"],
        "the needle is found where it is"
    );
    assert!(!product.rows_holding(p.alice_a.as_bytes()).await.is_empty());

    let deleted = product
        .with_token(reqwest::Method::DELETE, "/api/v1/me", &p.alice["token"])
        .await;
    ok(&deleted);

    // No row anywhere holds her phone hash, her openids, her unionid or her account id (but the audit log's).
    assert_eq!(
        product.rows_holding(&phone_hash).await,
        Vec::<String>::new()
    );
    for openid in [&p.alice_a, &p.alice_b] {
        assert_eq!(
            product.rows_holding(openid.as_bytes()).await,
            Vec::<String>::new()
        );
    }
    assert_eq!(
        product
            .rows_holding(account.as_str().unwrap().as_bytes())
            .await,
        ["audit_log.account_id"]
    );
    assert_eq!(
        product.rows_holding(p.scan_id.as_bytes()).await,
        Vec::<String>::new()
    );
    // The audit log says what happened, naming her by account id only.
    assert_eq!(
        product
            .count(&format!(
                "SELECT COUNT(*) FROM audit_log WHERE account_id = '{}' AND event = 'account_deleted' \
                 AND reason = 'user'",
                account.as_str().unwrap()
            ))
            .await,
        1
    );
    assert_eq!(
        product
            .count("SELECT COUNT(*) FROM audit_log WHERE event = 'identity_deleted'")
            .await,
        2
    );

    // Her access token and refresh token stop at once; Bob's go on.
    refused(&product.me(A, &p.alice["token"]).await, 401, "unauthorized");
    refused(
        &product
            .post(
                "/api/v1/refresh",
                json!({ "refreshToken": p.alice["refreshToken"] }),
            )
            .await,
        401,
        "refresh_invalid",
    );
    refused(
        &product
            .with_token(reqwest::Method::DELETE, "/api/v1/me", &p.alice["token"])
            .await,
        401,
        "unauthorized",
    );
    assert_eq!(
        ok(&product.me(A, &p.bob["token"]).await)["accountId"],
        p.bob["accountId"]
    );

    // The same WeChat user logging in again is somebody new.
    let again = product.get_phone(A, &p.alice_a, None).await;
    assert_ne!(ok(&again)["accountId"], account);
    assert_eq!(product.count("SELECT COUNT(*) FROM accounts").await, 2);
}

/// The product on SQLite, or on a PostgreSQL schema of its own (`None`: PostgreSQL is not there, skip).
async fn on(postgres: bool) -> Option<Product> {
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

#[tokio::test]
async fn the_export_answers_every_field_held_and_nothing_of_anyone_else_sqlite() {
    export(on(false).await.unwrap()).await;
}

#[tokio::test]
async fn the_export_answers_every_field_held_and_nothing_of_anyone_else_postgres() {
    if let Some(product) = on(true).await {
        export(product).await;
    }
}

#[tokio::test]
async fn a_deleted_account_leaves_no_row_its_tokens_stop_and_the_next_login_is_new_sqlite() {
    deletion(on(false).await.unwrap()).await;
}

#[tokio::test]
async fn a_deleted_account_leaves_no_row_its_tokens_stop_and_the_next_login_is_new_postgres() {
    if let Some(product) = on(true).await {
        deletion(product).await;
    }
}
