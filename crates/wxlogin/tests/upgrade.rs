//! Upgrade in place: what earlier releases wrote (tests/fixtures/release-*, each made with that release's binary)
//! is opened by this build: 2bbe8a1 (users, before accounts) and 68eac3b (accounts, opaque `wxs_` session tokens
//! stored time first, before access and refresh tokens). Their session tokens still open `/api/v1/me` and forward
//! auth until they expire, their users still log in silently (no phone code spent), and the data key is checked
//! against the stored phones and then recorded.

mod common;

use common::temp_dir;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::path::{Path, PathBuf};
use wxlogin::config::ServeArgs;

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";

fn fixture(release: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/release-{release}"))
        .join(name)
}

/// A copy of the fixture's data dir (the test writes to it).
fn data_dir_copy(release: &str, name: &str) -> PathBuf {
    let dir = temp_dir(&format!("upgrade-{release}-{name}"));
    for file in ["data.key", "sandbox-app.json", "wxlogin.db"] {
        let from = fixture(release, name).join(file);
        if from.exists() {
            std::fs::copy(&from, dir.join(file)).unwrap();
        }
    }
    dir
}

/// Every user of the fixture: the old session works, and a silent login finds the user without a phone code.
async fn old_users_keep_their_logins(app: &common::TestApp, users: &Value) {
    for user in users.as_array().unwrap() {
        let (phone, openid, token) = (
            user["phone"].as_str().unwrap(),
            user["openid"].as_str().unwrap(),
            user["token"].as_str().unwrap(),
        );
        let (status, me) = app.get("/api/v1/me", Some(token)).await;
        assert_eq!(status, 200, "the old session of {openid}: {me}");
        assert_eq!(me["data"]["openid"], openid);
        let verified = app
            .http
            .get(format!("{}/auth/verify", app.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(verified.status(), 200, "forward auth of the old session");
        assert_eq!(verified.headers()["x-auth-openid"], openid);
        assert_eq!(
            me["data"]["phone"],
            format!("{}****{}", &phone[..3], &phone[7..])
        );

        // The sandbox kept its identity seed: the same phone is the same WeChat user.
        assert_eq!(app.user(phone).await, openid);
        let phone_calls = app.phone_calls().await;
        let login = app.login_code(openid).await;
        let (status, body) = app
            .post("/api/v1/login", json!({ "loginCode": login }))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["status"], "ok", "a returning user: {body}");
        assert_eq!(body["data"]["phone"], phone);
        assert_eq!(app.phone_calls().await, phone_calls, "no phone code spent");
    }
}

fn users(release: &str, name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(fixture(release, name).join("users.json")).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_sqlite_data_dir_of_release_2bbe8a1_is_migrated_in_place() {
    sqlite_data_dir_is_migrated_in_place("2bbe8a1").await;
}

#[tokio::test]
async fn a_sqlite_data_dir_of_release_68eac3b_is_migrated_in_place() {
    sqlite_data_dir_is_migrated_in_place("68eac3b").await;
}

#[tokio::test]
async fn a_postgres_database_of_release_2bbe8a1_is_migrated_in_place() {
    postgres_database_is_migrated_in_place("2bbe8a1").await;
}

#[tokio::test]
async fn a_postgres_database_of_release_68eac3b_is_migrated_in_place() {
    postgres_database_is_migrated_in_place("68eac3b").await;
}

async fn sqlite_data_dir_is_migrated_in_place(release: &str) {
    let dir = data_dir_copy(release, "sqlite");
    let mut app = common::spawn_with(common::sandbox_args(&dir)).await;
    assert_eq!(app.users().await, 2);
    old_users_keep_their_logins(&app, &users(release, "sqlite")).await;
    app.stop().await;

    let url = format!("sqlite://{}", dir.join("wxlogin.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let checks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM meta WHERE name = 'data_key_check'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(
        checks, 1,
        "the key was checked against the old rows, then recorded"
    );
}

async fn postgres_database_is_migrated_in_place(release: &str) {
    let mut c = match PgConnection::connect(PG).await {
        Ok(c) => c,
        Err(e) if std::env::var_os("WXLOGIN_TEST_POSTGRES").is_some() => {
            panic!("PostgreSQL required by WXLOGIN_TEST_POSTGRES but not reachable: {e}")
        }
        Err(e) => {
            eprintln!("skipping: PostgreSQL not reachable: {e}");
            return;
        }
    };
    let schema = format!("upgrade_{:012x}", rand::random::<u64>() >> 16);
    let dump = std::fs::read_to_string(fixture(release, "postgres").join("dump.sql")).unwrap();
    sqlx::raw_sql(AssertSqlSafe(dump.replace("wxlogin_fixture", &schema)))
        .execute(&mut c)
        .await
        .unwrap();

    let dir = data_dir_copy(release, "postgres");
    let args = ServeArgs {
        database_url: Some(format!("{PG}?options=-c%20search_path%3D{schema}")),
        // Sandbox mode on a database: asked for explicitly, as the release that wrote it never had to.
        sandbox: true,
        ..common::sandbox_args(&dir)
    };
    let mut app = common::spawn_with(args).await;
    assert_eq!(app.users().await, 2);
    old_users_keep_their_logins(&app, &users(release, "postgres")).await;
    app.stop().await;

    let checks: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM \"{schema}\".meta WHERE name = 'data_key_check'"
    )))
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(checks, 1);
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(&mut c)
        .await
        .unwrap();
}
