//! A person's copy of their data from outside (design.md, "Personal data and operations"; PIPL's right to a copy):
//! `GET /api/v1/me/export` answers every row held about the account, field by field as the database's own rows
//! hold them, and nothing of anyone else.

mod common;

use common::privacy::{ALICE, BOB, on, people};
use common::product::{A, Product, ok, refused};
use serde_json::{Value, json};

/// One text per row of `from`: `columns` as text (`-` for NULL), joined by `|`, sorted. The database's own rows.
async fn held(product: &Product, columns: &[&str], from: &str) -> Vec<String> {
    let text = columns
        .iter()
        .map(|c| format!("COALESCE(CAST({c} AS TEXT), '-')"))
        .collect::<Vec<_>>()
        .join(" || '|' || ");
    let mut rows: Vec<String> = product.column(&format!("SELECT {text} {from}")).await;
    rows.sort();
    rows
}

/// The same of the export's `items`: `fields` (JSON pointers) as text, `-` for null. A field the export lacks fails.
fn exported(items: &Value, fields: &[&str]) -> Vec<String> {
    let mut rows: Vec<String> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            fields
                .iter()
                .map(|f| match item.pointer(f) {
                    None => panic!("the export lacks {f}: {item}"),
                    Some(Value::Null) => "-".to_owned(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    rows.sort();
    rows
}

/// Every column of `table`, by the catalogue: each must be compared with the export or be withheld for a reason.
async fn every_column_accounted_for(
    product: &Product,
    table: &str,
    compared: &[&str],
    withheld: &[&str],
) {
    let mut named: Vec<String> = compared
        .iter()
        .chain(withheld)
        .map(|c| c.rsplit('.').next().unwrap().to_owned())
        .collect();
    named.sort();
    let sql = match product.database_url {
        Some(_) => format!(
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = '{table}' ORDER BY 1"
        ),
        None => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY 1"),
    };
    let mut held: Vec<String> = product.column(&sql).await;
    held.sort();
    assert_eq!(
        held, named,
        "{table}: a column neither exported nor withheld on purpose"
    );
}

/// A table, its columns compared with the export's, those withheld on purpose, its rows of hers (`FROM …`), and
/// the export's items with the fields that carry the compared columns.
type Comparison<'a> = (
    &'a str,
    Vec<&'a str>,
    Vec<&'a str>,
    String,
    &'a Value,
    Vec<&'a str>,
);

async fn export(product: Product) {
    let p = people(&product).await;
    // A second web page, which tells about itself; Alice scans and confirms it, and the page collects its tokens.
    let created: Value = product
        .http
        .post(format!("{}/api/v1/qr-login", product.base))
        .header("user-agent", "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0")
        .header("origin", "https://admin.example.com")
        .json(&json!({ "appid": A }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let web = &created["data"];
    let id = web["id"].as_str().unwrap();
    for action in ["scan", "confirm"] {
        let path = format!("/api/v1/qr-login/{id}/{action}");
        ok(&product
            .with_token(reqwest::Method::POST, &path, &p.alice["token"])
            .await);
    }
    let path = format!("/api/v1/qr-login/{id}?wait=0");
    let collected = product
        .with_token(reqwest::Method::GET, &path, &web["pollToken"])
        .await;
    assert_eq!(ok(&collected)["status"], "confirmed", "{collected:?}");

    let export = product
        .with_token(reqwest::Method::GET, "/api/v1/me/export", &p.alice["token"])
        .await;
    let data = ok(&export);
    let account = p.alice["accountId"].as_str().unwrap();
    assert_eq!(data["accountId"], account);
    assert_eq!(
        data["phone"], ALICE,
        "in full (held sealed: the test knows it as the phone it gave)"
    );
    assert_eq!(data["phoneVerifiedBy"]["openid"], p.alice_a.as_str());
    assert!(data["unionid"].is_string(), "{data}");
    // Field by field, against the database's own rows of her account, its identities, sessions, scan logins and
    // audit events. Each column is either compared or withheld for the reason said.
    let subject = match product.database_url {
        Some(_) => "encode(subject, 'hex')",
        None => "CASE WHEN subject IS NULL THEN NULL ELSE lower(hex(subject)) END",
    };
    let mine = format!("SELECT id FROM identities WHERE account_id = '{account}'");
    let tables: [Comparison; 5] = [
        (
            "accounts",
            vec![
                "id",
                "unionid",
                "phone_appid",
                "phone_openid",
                "created_at",
                "updated_at",
            ],
            // The phone is exported in clear instead of sealed; its lookup hash is a keyed HMAC, not readable.
            vec!["phone_enc", "phone_hash"],
            format!("FROM accounts WHERE id = '{account}'"),
            &json!([data]),
            vec![
                "/accountId",
                "/unionid",
                "/phoneVerifiedBy/appid",
                "/phoneVerifiedBy/openid",
                "/createdAt",
                "/updatedAt",
            ],
        ),
        (
            "identities",
            vec!["appid", "openid", "created_at", "updated_at"],
            // Our row key, and her account (the export's accountId).
            vec!["id", "account_id"],
            format!("FROM identities WHERE account_id = '{account}'"),
            &data["identities"],
            vec!["/appid", "/openid", "/createdAt", "/updatedAt"],
        ),
        (
            "sessions",
            vec![
                "i.appid",
                "i.openid",
                "s.created_at",
                "s.expires_at",
                "s.ends_at",
            ],
            // Hashes of her tokens (the tokens are not held); the identity is exported as its appid and openid.
            vec!["token_hash", "refresh_hash", "identity_id"],
            format!(
                "FROM sessions s JOIN identities i ON i.id = s.identity_id WHERE i.id IN ({mine})"
            ),
            &data["sessions"],
            vec!["/appid", "/openid", "/createdAt", "/expiresAt", "/endsAt"],
        ),
        (
            "qr_logins",
            vec![
                "q.id",
                "q.appid",
                "q.status",
                "q.web_ip",
                "q.web_user_agent",
                "q.web_origin",
                "q.created_at",
                "q.expires_at",
                "q.scanned_appid",
                "q.scanned_openid",
                "q.scanned_at",
                "q.decided_at",
                "q.delivered_at",
            ],
            // The hash of the web page's secret; what the last poll was told (the protocol's, not about her).
            vec!["poll_hash", "reported"],
            format!(
                "FROM qr_logins q JOIN identities i ON i.appid = q.scanned_appid AND i.openid = q.scanned_openid \
                 WHERE i.account_id = '{account}'"
            ),
            &data["scanLogins"],
            vec![
                "/id",
                "/appid",
                "/status",
                "/webIp",
                "/webUserAgent",
                "/webOrigin",
                "/createdAt",
                "/expiresAt",
                "/scannedBy/appid",
                "/scannedBy/openid",
                "/scannedAt",
                "/decidedAt",
                "/deliveredAt",
            ],
        ),
        (
            "audit_log",
            vec!["at", "event", "appid", subject, "reason"],
            // Our row key; her account (the export's accountId); the other account of a merge is someone else's.
            vec!["id", "account_id", "other_account"],
            format!("FROM audit_log WHERE account_id = '{account}' OR other_account = '{account}'"),
            &data["audit"],
            vec!["/at", "/event", "/appid", "/subject", "/reason"],
        ),
    ];
    for (table, compared, withheld, from, items, fields) in &tables {
        // The columns of this table (the identities' appid and openid name a session's identity_id).
        let compared_columns: Vec<&str> = compared
            .iter()
            .filter(|c| !c.starts_with("i."))
            .map(|c| if c.contains('(') { &"subject" } else { c })
            .copied()
            .collect();
        every_column_accounted_for(&product, table, &compared_columns, withheld).await;
        let rows = held(&product, compared, from).await;
        assert!(!rows.is_empty(), "{table}: something of hers is held");
        assert_eq!(exported(items, fields), rows, "{table}");
    }
    assert_eq!(data["scanLogins"].as_array().unwrap().len(), 2, "{data}");
    assert_eq!(
        data["sessions"].as_array().unwrap().len(),
        3,
        "two logins and the web's"
    );
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
