//! A person's data from outside (design.md, "Personal data and operations"): a deletion leaves no row of the
//! account in any table of the database (read from the database's own catalogue, not a list kept here), its tokens
//! stop at once, and the next login is a new account. The export is tests/privacy_export.rs.

mod common;

use common::privacy::{ALICE, on, people};
use common::product::{A, Product, ok, refused};
use serde_json::json;

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
