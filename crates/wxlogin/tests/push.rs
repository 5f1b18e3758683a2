//! WeChat's message push from outside: the real `wxlogin sim` pushes as WeChat does (its own signing and AES, not
//! the service's code) to the real `wxlogin serve` in production mode, app A in safe mode as JSON and app B in
//! plaintext as XML. A revoke of the phone deletes it and ends the sessions; a cancellation deletes the identity,
//! then the account; both on SQLite and on PostgreSQL. WeChat re-sending an event already handled changes nothing
//! more. Forged, stale and replayed pushes: tests/push_forged.rs.

mod common;

use common::pg_cluster::{fresh_schema, postgres_available};
use common::product::{A, B, C, Product, ok, refused};
use common::push::{TOKEN_A, TOKEN_B, error_of, now, push_product, sign};
use serde_json::json;

const ALICE: &str = "13800138000";
const BOB: &str = "13900139000";

async fn product() -> Product {
    push_product(None).await
}

#[tokio::test]
async fn the_url_check_answers_echostr_only_when_signed() {
    let product = product().await;
    let (ts, nonce) = (now().to_string(), "12345");
    let url = |app: &str, signature: &str| {
        format!(
            "{}/wechat/push/{app}?signature={signature}&timestamp={ts}&nonce={nonce}&echostr=7423452345",
            product.base
        )
    };
    let get = |url: String| async {
        let r = product.http.get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(
        get(url(A, &sign(&[TOKEN_A, &ts, nonce]))).await,
        (200, "7423452345".to_owned())
    );
    assert_eq!(get(url(B, &sign(&[TOKEN_B, &ts, nonce]))).await.0, 200);
    assert_eq!(get(url(A, &sign(&[TOKEN_B, &ts, nonce]))).await.0, 401);
    assert_eq!(get(url(C, &sign(&[TOKEN_A, &ts, nonce]))).await.0, 404);
    assert_eq!(get(url("wx0000000000000000", "x")).await.0, 404);
}

async fn revoke(product: Product) {
    let alice_a = product.user(A, ALICE).await;
    let alice_b = product.user(B, ALICE).await;
    let bob_b = product.user(B, BOB).await;
    let alice = ok(&product.get_phone(A, &alice_a, None).await).clone();
    let alice_in_b = ok(&product.get_phone(B, &alice_b, None).await).clone();
    let bob = ok(&product.get_phone(B, &bob_b, None).await).clone();
    let before = product.state().await;
    let phone_revoked =
        "SELECT COUNT(*) FROM audit_log WHERE event = 'phone_revoked' AND reason = 'wechat_revoke'";

    // She withdraws another authorization (6: nickname and avatar), which we do not hold: acknowledged, nothing
    // changes, her token still works (also through forward auth, which now remembers her session).
    let other = product
        .wechat_with("revoke", json!({ "openid": alice_a, "revokeInfo": "6" }))
        .await;
    assert!(
        other["sent"]["body"].as_str().unwrap().contains("Encrypt"),
        "{other}"
    );
    assert_eq!(other["answer"], json!({ "status": 200, "body": "success" }));
    assert_eq!(
        product.state().await,
        before,
        "RevokeInfo 6 changes nothing"
    );
    ok(&product.me(A, &alice["token"]).await);
    assert_eq!(product.verify(alice["token"].as_str().unwrap()).await, 200);

    // Safe mode, JSON: Alice withdraws the phone in app A.
    let pushed = product.wechat("revoke", &alice_a).await;
    assert!(
        pushed["sent"]["url"]
            .as_str()
            .unwrap()
            .contains("encrypt_type=aes&msg_signature="),
        "{pushed}"
    );
    assert!(
        pushed["sent"]["body"].as_str().unwrap().contains("Encrypt"),
        "{pushed}"
    );
    assert_eq!(
        pushed["answer"],
        json!({ "status": 200, "body": "success" })
    );
    // Her phone is gone and every session of her account ended (both apps); her identities stay; Bob is untouched.
    // Forward auth on this instance too, at once: the push forgot the sessions it remembered (logins::privacy).
    assert_eq!(product.verify(alice["token"].as_str().unwrap()).await, 401);
    refused(&product.me(A, &alice["token"]).await, 401, "unauthorized");
    refused(
        &product.me(B, &alice_in_b["token"]).await,
        401,
        "unauthorized",
    );
    ok(&product.me(B, &bob["token"]).await);
    let after = product.state().await;
    assert_eq!(after[1], before[1], "identities stay");
    assert_eq!(after[4], before[4] - 1, "one phone fewer");
    assert_eq!(product.count(phone_revoked).await, 1);
    // WeChat sends the same event again, as a new delivery (its own timestamp, nonce and signatures): idempotent,
    // acknowledged, and nothing more happens: no second audit event.
    let state = product.state().await;
    let again = product.wechat("revoke", &alice_a).await;
    assert_ne!(
        again["sent"]["url"], pushed["sent"]["url"],
        "a new delivery"
    );
    assert_eq!(again["answer"], json!({ "status": 200, "body": "success" }));
    assert_eq!(product.state().await, state);
    assert_eq!(
        product.count(phone_revoked).await,
        1,
        "no second audit event"
    );
    // Her next login asks for the phone again.
    assert_eq!(
        ok(&product.silent(A, &alice_a).await)["status"],
        "phone_required"
    );

    // Plaintext mode, XML: Bob withdraws the phone in app B.
    let pushed = product.wechat("revoke", &bob_b).await;
    assert!(
        pushed["sent"]["body"]
            .as_str()
            .unwrap()
            .starts_with("<xml>"),
        "{pushed}"
    );
    assert!(
        !pushed["sent"]["url"]
            .as_str()
            .unwrap()
            .contains("msg_signature"),
        "{pushed}"
    );
    assert_eq!(
        pushed["answer"],
        json!({ "status": 200, "body": "success" })
    );
    refused(&product.me(B, &bob["token"]).await, 401, "unauthorized");

    // The same delivery again is a replay: 409, nothing changes.
    let state = product.state().await;
    let sent = &pushed["sent"];
    let replay = product
        .raw(
            sent["url"].as_str().unwrap(),
            sent["contentType"].as_str().unwrap(),
            sent["body"].as_str().unwrap(),
        )
        .await;
    assert_eq!(
        (replay.0, error_of(&replay).as_str()),
        (409, "push_replayed")
    );
    assert_eq!(product.state().await, state);
}

async fn cancellation(product: Product) {
    let alice_a = product.user(A, ALICE).await;
    let alice_b = product.user(B, ALICE).await;
    let alice = ok(&product.get_phone(A, &alice_a, None).await).clone();
    let alice_in_b = ok(&product.get_phone(B, &alice_b, None).await).clone();
    let account = alice["accountId"].as_str().unwrap().to_owned();

    // Someone WeChat knows but we never saw: acknowledged, nothing changes.
    let stranger = product.user(A, "13600136000").await;
    let state = product.state().await;
    assert_eq!(
        product.wechat("cancel", &stranger).await["answer"]["body"],
        "success"
    );
    assert_eq!(
        product.wechat("revoke", &stranger).await["answer"]["body"],
        "success"
    );
    assert_eq!(product.state().await, state);

    // Alice closes her WeChat account; B's push comes first (plaintext XML): that identity goes, the account
    // stays with A's, which verified the phone (so the phone stays).
    assert_eq!(
        product.wechat("cancel", &alice_b).await["answer"]["body"],
        "success"
    );
    refused(
        &product.me(B, &alice_in_b["token"]).await,
        401,
        "unauthorized",
    );
    assert_eq!(
        ok(&product.me(A, &alice["token"]).await)["identities"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Then A's (safe mode JSON): the last identity, so the account and its phone go.
    assert_eq!(
        product.wechat("cancel", &alice_a).await["answer"]["body"],
        "success"
    );
    refused(&product.me(A, &alice["token"]).await, 401, "unauthorized");
    assert_eq!(
        product
            .count(&format!(
                "SELECT COUNT(*) FROM accounts WHERE id = '{account}'"
            ))
            .await,
        0
    );
    assert_eq!(
        product
            .count(&format!("SELECT COUNT(*) FROM audit_log WHERE account_id = '{account}' AND reason = 'wechat_cancellation'"))
            .await,
        3,
        "two identity_deleted, one account_deleted"
    );
    // WeChat's retry of a cancellation finds nothing left: acknowledged, and no audit event more.
    let state = product.state().await;
    assert_eq!(
        product.wechat("cancel", &alice_a).await["answer"]["body"],
        "success"
    );
    assert_eq!(product.state().await, state);
}

/// The product with pushes on SQLite, or on a PostgreSQL schema of its own (`None`: PostgreSQL is not there).
async fn on(postgres: bool) -> Option<Product> {
    if !postgres {
        return Some(product().await);
    }
    if !postgres_available("the push tests on PostgreSQL").await {
        return None;
    }
    Some(push_product(Some(fresh_schema("push").await)).await)
}

#[tokio::test]
async fn a_revoke_deletes_the_phone_and_ends_the_sessions_in_safe_json_and_plaintext_xml_sqlite() {
    revoke(on(false).await.unwrap()).await;
}

#[tokio::test]
async fn a_revoke_deletes_the_phone_and_ends_the_sessions_in_safe_json_and_plaintext_xml_postgres()
{
    if let Some(product) = on(true).await {
        revoke(product).await;
    }
}

#[tokio::test]
async fn a_cancellation_deletes_the_identity_then_the_account_and_unknown_users_change_nothing_sqlite()
 {
    cancellation(on(false).await.unwrap()).await;
}

#[tokio::test]
async fn a_cancellation_deletes_the_identity_then_the_account_and_unknown_users_change_nothing_postgres()
 {
    if let Some(product) = on(true).await {
        cancellation(product).await;
    }
}
