//! Meta, ping, counts; what the raw tables hold; migrations; and what only one backend does (SQLite's file,
//! PostgreSQL's connection handling).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use sqlx::{Connection, SqliteConnection};
use wxlogin::store::{self, AccountId, Step, Store, StoreError};

use crate::fixtures::*;
use crate::{TestDb, run_postgres, run_sqlite, sqlite_url};

pub async fn meta_keeps_the_first_value(store: Arc<dyn Store>) {
    assert_eq!(store.meta_get("k").await.unwrap(), None);
    assert_eq!(
        store.meta_get_or_insert("k", b"first").await.unwrap(),
        b"first"
    );
    assert_eq!(
        store.meta_get_or_insert("k", b"second").await.unwrap(),
        b"first"
    );
    assert_eq!(store.meta_get("k").await.unwrap(), Some(b"first".to_vec()));

    // Instances starting together: one value wins, and every one of them reads that value.
    let writers = (0..10u8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.meta_get_or_insert("race", &[i, 0, 0xff]).await })
    });
    let values: Vec<_> = join_all(writers)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect();
    let stored = store.meta_get("race").await.unwrap().unwrap();
    assert!(values.iter().all(|value| *value == stored), "{values:?}");
}

pub async fn ping_counts_and_any_phone(store: Arc<dyn Store>) {
    let store = &*store;
    store.ping().await.unwrap();
    assert_eq!(store.count_accounts().await.unwrap(), 0);
    assert_eq!(store.any_phone().await.unwrap(), None);
    signup(store, APPID, "o1", None, None).await;
    assert_eq!(store.count_accounts().await.unwrap(), 1);
    assert_eq!(store.any_phone().await.unwrap(), None, "no account has one");
    signup(store, OTHER_APP, "o2", None, Some(4)).await;
    assert_eq!(store.count_accounts().await.unwrap(), 2);
    assert_eq!(
        store.any_phone().await.unwrap(),
        Some(phone(4, OTHER_APP, "o2"))
    );
}

pub async fn phone_bytes_are_stored_as_given(db: TestDb) {
    let store = db.open().await;
    // Ciphertext is arbitrary bytes: NULs, invalid UTF-8, every value.
    let sealed = wxlogin::store::StoredPhone {
        enc: (0..=255).collect(),
        hash: vec![0xab; 32],
        ..phone(0, APPID, "o1")
    };
    let id = AccountId::generate();
    let mut steps = signup_steps(&id, APPID, "o1", None, None);
    steps.push(Step::SetPhone {
        account: id.clone(),
        phone: sealed.clone(),
    });
    apply(&*store, NOW, steps).await.unwrap();
    let account = store.account(&id).await.unwrap().unwrap();
    assert_eq!(account.phone.as_ref(), Some(&sealed));

    let raw = db
        .bytes_with_text("SELECT phone_enc FROM accounts WHERE id = $1", id.as_str())
        .await;
    assert_eq!(raw, sealed.enc);
    let raw = db
        .bytes_with_text("SELECT phone_hash FROM accounts WHERE id = $1", id.as_str())
        .await;
    assert_eq!(raw, sealed.hash);
}

pub async fn deleting_an_account_cascades_to_identities_and_sessions(db: TestDb) {
    let store = db.open().await;
    let (id, login) = signup(&*store, APPID, "o1", None, Some(1)).await;
    let steps = vec![
        create_identity(&id, OTHER_APP, "o2"),
        login_session(OTHER_APP, "o2", token()),
    ];
    apply(&*store, NOW, steps).await.unwrap();
    let (_, other) = signup(&*store, APPID, "o3", None, Some(2)).await;
    assert_eq!(db.count("SELECT COUNT(*) FROM sessions").await, 3);

    let deleted = db
        .execute_with_text("DELETE FROM accounts WHERE id = $1", id.as_str())
        .await;
    assert_eq!(deleted, 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM identities").await, 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM sessions").await, 1);
    assert_eq!(session_account(&*store, &login, APPID).await, None);
    assert!(session_account(&*store, &other, APPID).await.is_some());
}

pub async fn migrations_are_idempotent(db: TestDb) {
    let first = db.open().await;
    let (id, login) = signup(&*first, APPID, "o1", Some("un1"), Some(1)).await;
    // Open again while the first is still open (a second instance starting), then once more.
    let second = db.open().await;
    let account = second.account(&id).await.unwrap();
    assert!(account.is_some());
    drop((first, second));
    let third = db.open().await;
    assert_eq!(third.account(&id).await.unwrap(), account);
    assert_eq!(session_account(&*third, &login, APPID).await, Some(id));
    assert_eq!(
        db.count("SELECT COUNT(*) FROM _sqlx_migrations WHERE NOT success")
            .await,
        0
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Backend-specific behaviour.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_creates_a_private_wal_file_in_a_new_directory() {
    run_sqlite(|db| async move {
        let TestDb::Sqlite { path } = &db else {
            unreachable!()
        };
        let dir = path.parent().unwrap();
        assert!(!dir.exists());
        let store = db.open().await;
        store.ping().await.unwrap();
        assert!(path.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |path: &std::path::Path| {
                std::fs::metadata(path).unwrap().permissions().mode() & 0o777
            };
            assert_eq!(mode(path), 0o600, "the database file is private");
            assert_eq!(mode(dir), 0o700, "so is its directory");
        }
        let mut conn = SqliteConnection::connect(&sqlite_url(path)).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");

        // A bare path names the same database as the URL.
        let bare = store::open(path.to_str().unwrap()).await.unwrap();
        let (id, _) = signup(&*store, APPID, "o1", None, None).await;
        assert!(bare.account(&id).await.unwrap().is_some());
    })
    .await;
}

/// Two stores on one file behave like two processes: each has its own writer, so they do contend for SQLite's
/// write lock. BEGIN IMMEDIATE + busy_timeout must make them wait for each other rather than fail with BUSY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_stores_on_one_file_do_not_fail_busy() {
    run_sqlite(|db| async move {
        let stores = [db.open().await, db.open().await];
        let logins = (0..200).map(|i| {
            let store = stores[i % 2].clone();
            tokio::spawn(async move {
                let id = AccountId::generate();
                let openid = format!("o-{i}");
                let mut steps = signup_steps(&id, APPID, &openid, None, None);
                steps.push(session(APPID, &openid, token(), NOW + 60));
                apply(&*store, NOW, steps).await
            })
        });
        for joined in join_all(logins).await {
            joined.unwrap().expect("no BUSY across writers");
        }
        assert_eq!(stores[0].count_accounts().await.unwrap(), 200);
    })
    .await;
}

#[tokio::test]
async fn sqlite_in_memory_works() {
    let store = store::open("sqlite::memory:").await.unwrap();
    let (id, login) = signup(&*store, APPID, "o1", None, Some(1)).await;
    assert_eq!(session_account(&*store, &login, APPID).await, Some(id));
    assert_eq!(store.count_accounts().await.unwrap(), 1);
    // Every in-memory store is its own database.
    let other = store::open("sqlite::memory:").await.unwrap();
    assert_eq!(other.count_accounts().await.unwrap(), 0);
}

#[tokio::test]
async fn unknown_scheme_is_a_config_error() {
    let err = store::open("mysql://root:secret@127.0.0.1/db")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert!(!err.to_string().contains("secret"));
}

#[tokio::test]
async fn postgres_down_is_unavailable_quickly() {
    let started = Instant::now();
    // Nothing listens on port 1: connection refused.
    let err = store::open("postgres://postgres@127.0.0.1:1/test")
        .await
        .err()
        .unwrap();
    // The real cause, not just "pool timed out", for the operator reading the start-up error.
    assert!(
        matches!(err, StoreError::Unavailable(sqlx::Error::Io(_))),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_search_path_in_the_url_is_honoured() {
    run_postgres(|db| async move {
        let TestDb::Postgres { url, schema } = &db else {
            unreachable!()
        };
        db.open().await; // creates the schema
        let url = format!("{url}?options=-c%20search_path%3D{schema}");
        let store = store::open(&url).await.unwrap();
        signup(&*store, APPID, "o1", None, Some(1)).await;
        assert_eq!(db.count("SELECT COUNT(*) FROM accounts").await, 1);
        assert_eq!(db.count("SELECT COUNT(*) FROM identities").await, 1);
    })
    .await;
}
