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
    let account_id = account.as_str().unwrap();
    // One refresh, so a spent refresh token of hers is held too (refresh_spent names her session by its hash).
    let alice = ok(&product
        .post(
            "/api/v1/refresh",
            json!({ "refreshToken": p.alice["refreshToken"] }),
        )
        .await)
    .clone();
    let phone_hash = product.phone_hash_of(&account).await;
    let before = product.rows_holding(&phone_hash).await;
    assert_eq!(
        before,
        ["accounts.phone_hash"],
        "the needle is found where it is"
    );
    assert!(!product.rows_holding(p.alice_a.as_bytes()).await.is_empty());
    // Every key of a row that is hers, read from the tables themselves before the deletion: her identities' ids,
    // her sessions' token and refresh hashes, her spent refresh tokens, her unionid.
    let mine = format!("SELECT id FROM identities WHERE account_id = '{account_id}'");
    let identity_ids: Vec<i64> = product.column(&mine).await;
    assert_eq!(identity_ids.len(), 2);
    let session_keys: Vec<Vec<u8>> = product
        .column(&format!(
            "SELECT token_hash FROM sessions WHERE identity_id IN ({mine}) \
             UNION ALL SELECT refresh_hash FROM sessions WHERE identity_id IN ({mine}) AND refresh_hash IS NOT NULL \
             UNION ALL SELECT secret_hash FROM refresh_spent WHERE session_id IN \
               (SELECT token_hash FROM sessions WHERE identity_id IN ({mine}))"
        ))
        .await;
    assert_eq!(
        session_keys.len(),
        2 + 2 + 1,
        "two sessions, one refresh spent"
    );
    let unionid: Vec<String> = product
        .column(&format!(
            "SELECT unionid FROM accounts WHERE id = '{account_id}'"
        ))
        .await;
    assert_eq!(unionid.len(), 1, "A and B share an Open Platform account");
    // Integer ids are found by the columns that hold them: every column the catalogue calls identity_id, and the
    // identities' own key. The search finds them now, so finding none afterwards means something.
    let mut identity_columns = product.columns_named("identity_id").await;
    identity_columns.push("identities.id".to_owned());
    assert_eq!(
        product.rows_keyed(&identity_columns, &identity_ids).await,
        ["sessions.identity_id", "identities.id"]
    );
    for key in &session_keys {
        assert!(
            product
                .rows_holding(key)
                .await
                .iter()
                .any(|c| c.starts_with("sessions.") || c.starts_with("refresh_spent.")),
            "a session key is found where it is"
        );
    }
    assert!(
        product
            .rows_holding(session_keys.last().unwrap())
            .await
            .contains(&"refresh_spent.secret_hash".to_owned())
    );
    assert!(
        product
            .rows_holding(unionid[0].as_bytes())
            .await
            .contains(&"accounts.unionid".to_owned())
    );
    // Her phone is never held in clear, before as after.
    assert_eq!(
        product.rows_holding(ALICE.as_bytes()).await,
        Vec::<String>::new()
    );
    // Forward auth answers for her token now, which also puts her session in this instance's short memory.
    assert_eq!(product.verify(alice["token"].as_str().unwrap()).await, 200);

    let deleted = product
        .with_token(reqwest::Method::DELETE, "/api/v1/me", &alice["token"])
        .await;
    ok(&deleted);
    // At once on the deleting instance: it forgot every live session it remembered (logins::privacy).
    assert_eq!(product.verify(alice["token"].as_str().unwrap()).await, 401);

    // No row anywhere holds her phone (hashed or clear), her openids, her unionid, her identities' ids, her
    // sessions' or refresh tokens' hashes, or her account id (but the audit log's).
    assert_eq!(
        product.rows_keyed(&identity_columns, &identity_ids).await,
        Vec::<String>::new()
    );
    for needle in session_keys.iter().chain([
        &phone_hash,
        &ALICE.as_bytes().to_vec(),
        &unionid[0].as_bytes().to_vec(),
        &p.alice_a.as_bytes().to_vec(),
        &p.alice_b.as_bytes().to_vec(),
        &p.scan_id.as_bytes().to_vec(),
    ]) {
        assert_eq!(
            product.rows_holding(needle).await,
            Vec::<String>::new(),
            "{}",
            String::from_utf8_lossy(needle)
        );
    }
    assert_eq!(
        product.rows_holding(account_id.as_bytes()).await,
        ["audit_log.account_id"]
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
    for token in [&p.alice["token"], &alice["token"]] {
        refused(&product.me(A, token).await, 401, "unauthorized");
    }
    refused(
        &product
            .post(
                "/api/v1/refresh",
                json!({ "refreshToken": alice["refreshToken"] }),
            )
            .await,
        401,
        "refresh_invalid",
    );
    refused(
        &product
            .with_token(reqwest::Method::DELETE, "/api/v1/me", &alice["token"])
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
