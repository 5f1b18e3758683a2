//! Behaviour of the storage layer, written once and run against both backends: SQLite (a file in a fresh temp
//! dir) and PostgreSQL (a fresh schema per test, dropped at the end).
//!
//! PostgreSQL: with `WXLOGIN_TEST_POSTGRES` set (to a URL, or `1` for the default URL) those tests must run and
//! fail if the server is unreachable; unset, they try the default URL and skip with a message if it is down.

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, SqliteConnection};
use wxlogin::store::{
    self, NewSession, NewTicket, Store, StoreError, TicketRecord, TicketReservation, UnixTime,
    UserRecord, UserUpsert,
};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const APPID: &str = "wx0123456789abcdef";
const NOW: UnixTime = 1_800_000_000;

// ---------------------------------------------------------------------------------------------------------------
// The suite. Cases taking `Arc<dyn Store>` see only the trait; the few taking `TestDb` also look at the raw
// tables (or reopen the database).

/// Generates one `#[tokio::test]` per case and backend: `sqlite::<case>` and `postgres::<case>`.
macro_rules! store_cases {
    (store: [$($store_case:ident),* $(,)?], db: [$($db_case:ident),* $(,)?] $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $store_case() {
                    crate::run_sqlite(|db| async move { crate::$store_case(db.open().await).await }).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $db_case() {
                    crate::run_sqlite(crate::$db_case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $store_case() {
                    crate::run_postgres(|db| async move { crate::$store_case(db.open().await).await }).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $db_case() {
                    crate::run_postgres(crate::$db_case).await;
                }
            )*
        }
    };
}

store_cases! {
    store: [
        upsert_inserts_then_updates,
        login_writes_user_and_session_or_neither,
        session_lookup_expiry_and_deletion,
        ticket_is_single_use_under_concurrency,
        expired_ticket_is_refused_and_kept,
        consuming_a_ticket_updates_a_known_user,
        distinct_users_upserted_concurrently,
        a_failing_write_among_concurrent_ones_fails_alone,
        same_user_upserted_concurrently,
        update_phone_changes_only_the_phone,
        purge_removes_only_expired_rows,
        ping_and_count,
        a_session_belongs_to_its_app,
        a_ticket_is_reserved_for_one_request,
        refused_phone_codes_spend_a_ticket_at_the_cap,
        meta_keeps_the_first_value,
    ],
    db: [
        deleting_a_user_cascades_to_sessions,
        phone_bytes_are_stored_as_given,
        migrations_are_idempotent,
    ],
}

async fn upsert_inserts_then_updates(store: Arc<dyn Store>) {
    let first = store
        .upsert_user_with_session(
            user("o1", Some("un1"), b"\x00enc-1\xff", 1, NOW),
            session(NOW),
        )
        .await
        .unwrap();
    assert!(first.id > 0);
    assert_eq!(
        first,
        UserRecord {
            id: first.id,
            appid: APPID.into(),
            openid: "o1".into(),
            unionid: Some("un1".into()),
            phone_enc: b"\x00enc-1\xff".to_vec(),
            phone_hash: vec![1; 32],
            created_at: NOW,
            updated_at: NOW,
        }
    );
    assert_eq!(
        store.find_user(APPID, "o1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.count_users().await.unwrap(), 1);

    // WeChat does not always send the unionid: None keeps the stored one; the phone is replaced.
    let second = store
        .upsert_user_with_session(user("o1", None, b"enc-2", 2, NOW + 10), session(NOW + 10))
        .await
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.unionid.as_deref(), Some("un1"));
    assert_eq!(second.phone_enc, b"enc-2");
    assert_eq!(second.phone_hash, vec![2; 32]);
    assert_eq!((second.created_at, second.updated_at), (NOW, NOW + 10));

    let third = store
        .upsert_user_with_session(
            user("o1", Some("un2"), b"enc-2", 2, NOW + 20),
            session(NOW + 20),
        )
        .await
        .unwrap();
    assert_eq!(third.unionid.as_deref(), Some("un2"));
    assert_eq!(
        store.find_user(APPID, "o1").await.unwrap(),
        Some(third.clone())
    );
    assert_eq!(store.count_users().await.unwrap(), 1);

    // The same openid in another app is another user.
    let mut other_app = user("o1", None, b"enc-3", 3, NOW);
    other_app.appid = "wxfedcba9876543210".into();
    let other = store
        .upsert_user_with_session(other_app, session(NOW))
        .await
        .unwrap();
    assert_ne!(other.id, first.id);
    assert_eq!(store.count_users().await.unwrap(), 2);
    assert_eq!(store.find_user(APPID, "nobody").await.unwrap(), None);
}

async fn login_writes_user_and_session_or_neither(store: Arc<dyn Store>) {
    let taken = session(NOW);
    store
        .upsert_user_with_session(user("o1", None, b"enc", 1, NOW), taken.clone())
        .await
        .unwrap();
    // The session insert fails (its hash is taken): the new user must not be left behind.
    let err = store
        .upsert_user_with_session(user("o2", None, b"enc", 2, NOW), taken.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert_eq!(store.find_user(APPID, "o2").await.unwrap(), None);
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert_eq!(
        store
            .session_user(&taken.token_hash, APPID, NOW)
            .await
            .unwrap()
            .unwrap()
            .openid,
        "o1"
    );
}

async fn session_lookup_expiry_and_deletion(store: Arc<dyn Store>) {
    let first = NewSession {
        expires_at: NOW + 100,
        ..session(NOW)
    };
    let user = store
        .upsert_user_with_session(user("o1", None, b"enc", 1, NOW), first.clone())
        .await
        .unwrap();
    let hash = first.token_hash;
    assert_eq!(
        store.session_user(&hash, APPID, NOW).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        store.session_user(&hash, APPID, NOW + 99).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        store.session_user(&hash, APPID, NOW + 100).await.unwrap(),
        None,
        "expires_at is exclusive"
    );
    assert_eq!(
        store.session_user(&token(), APPID, NOW).await.unwrap(),
        None
    );

    let second = NewSession {
        expires_at: NOW + 50,
        ..session(NOW)
    };
    store.create_session(user.id, second.clone()).await.unwrap();
    assert_eq!(
        store
            .session_user(&second.token_hash, APPID, NOW)
            .await
            .unwrap(),
        Some(user.clone())
    );
    assert!(
        store
            .delete_session(&second.token_hash, APPID)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_session(&second.token_hash, APPID)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .session_user(&second.token_hash, APPID, NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.session_user(&hash, APPID, NOW).await.unwrap(),
        Some(user.clone()),
        "other sessions stay"
    );

    // Foreign keys are enforced (SQLite only does so with the pragma on), and token hashes are unique.
    let err = store
        .create_session(user.id + 1000, session(NOW))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    let err = store.create_session(user.id, first).await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}

async fn ticket_is_single_use_under_concurrency(store: Arc<dyn Store>) {
    let hash = token();
    store
        .create_ticket(ticket(hash, "o-ticket", Some("un-t"), NOW + 300))
        .await
        .unwrap();
    let expected = TicketRecord {
        appid: APPID.into(),
        openid: "o-ticket".into(),
        unionid: Some("un-t".into()),
        expires_at: NOW + 300,
    };
    // Looking does not consume.
    assert_eq!(
        store.find_ticket(&hash, NOW).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store.find_ticket(&hash, NOW + 1).await.unwrap(),
        Some(expected)
    );

    let consumers = (0..20).map(|i| {
        let store = store.clone();
        let session = session(NOW + 1);
        tokio::spawn(async move {
            let phone = format!("enc-{i}").into_bytes();
            let user = store
                .consume_ticket_with_user(&hash, phone, vec![9; 32], session.clone())
                .await;
            (user.unwrap(), session)
        })
    });
    let outcomes = futures::future::join_all(consumers).await;
    let mut winners = Vec::new();
    for outcome in outcomes {
        let (user, session) = outcome.unwrap();
        match user {
            Some(user) => winners.push((user, session)),
            None => assert_eq!(
                store
                    .session_user(&session.token_hash, APPID, NOW + 1)
                    .await
                    .unwrap(),
                None
            ),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one consumer wins the ticket");
    let (winner, winner_session) = winners.pop().unwrap();
    assert_eq!(
        (
            winner.appid.as_str(),
            winner.openid.as_str(),
            winner.unionid.as_deref()
        ),
        (APPID, "o-ticket", Some("un-t"))
    );
    assert_eq!(winner.phone_hash, vec![9; 32]);
    assert_eq!(
        store
            .session_user(&winner_session.token_hash, APPID, NOW + 1)
            .await
            .unwrap(),
        Some(winner)
    );
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert_eq!(store.find_ticket(&hash, NOW + 1).await.unwrap(), None);
    let again = store.consume_ticket_with_user(&hash, vec![1], vec![1; 32], session(NOW + 2));
    assert_eq!(again.await.unwrap(), None);
}

async fn expired_ticket_is_refused_and_kept(store: Arc<dyn Store>) {
    let hash = token();
    store
        .create_ticket(ticket(hash, "o1", None, NOW + 300))
        .await
        .unwrap();
    assert!(store.find_ticket(&hash, NOW + 299).await.unwrap().is_some());
    assert_eq!(store.find_ticket(&hash, NOW + 300).await.unwrap(), None);
    assert_eq!(store.find_ticket(&token(), NOW).await.unwrap(), None);

    let late = session(NOW + 300);
    let consumed = store.consume_ticket_with_user(&hash, vec![1], vec![1; 32], late.clone());
    assert_eq!(consumed.await.unwrap(), None);
    // Nothing was written: no user, no session, and the ticket was not deleted.
    assert_eq!(store.count_users().await.unwrap(), 0);
    assert_eq!(
        store
            .session_user(&late.token_hash, APPID, NOW)
            .await
            .unwrap(),
        None
    );
    assert!(store.find_ticket(&hash, NOW).await.unwrap().is_some());
    let in_time = store.consume_ticket_with_user(&hash, vec![1], vec![1; 32], session(NOW + 1));
    assert!(in_time.await.unwrap().is_some());
}

async fn a_session_belongs_to_its_app(store: Arc<dyn Store>) {
    let login = session(NOW);
    store
        .upsert_user_with_session(user("o1", None, b"enc", 1, NOW), login.clone())
        .await
        .unwrap();
    let other = "wxffffffffffffffff";
    assert_eq!(
        store
            .session_user(&login.token_hash, other, NOW)
            .await
            .unwrap(),
        None,
        "another app's instance does not accept it"
    );
    assert!(
        !store
            .delete_session(&login.token_hash, other)
            .await
            .unwrap()
    );
    assert!(
        store
            .session_user(&login.token_hash, APPID, NOW)
            .await
            .unwrap()
            .is_some(),
        "another app's logout left it alone"
    );
}

async fn a_ticket_is_reserved_for_one_request(store: Arc<dyn Store>) {
    let hash = token();
    store
        .create_ticket(ticket(hash, "o1", Some("un1"), NOW + 300))
        .await
        .unwrap();
    let first = store
        .reserve_ticket(&hash, APPID, NOW, NOW + 60)
        .await
        .unwrap();
    let TicketReservation::Reserved(record) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        (record.openid.as_str(), record.unionid.as_deref()),
        ("o1", Some("un1"))
    );
    assert_eq!(
        store
            .reserve_ticket(&hash, APPID, NOW + 1, NOW + 61)
            .await
            .unwrap(),
        TicketReservation::InUse
    );
    assert_eq!(
        store
            .reserve_ticket(&hash, "wxffffffffffffffff", NOW + 1, NOW + 61)
            .await
            .unwrap(),
        TicketReservation::Invalid,
        "another app's ticket"
    );
    assert_eq!(
        store
            .reserve_ticket(&token(), APPID, NOW, NOW + 60)
            .await
            .unwrap(),
        TicketReservation::Invalid
    );
    // A holder that crashed: its reservation runs out and the ticket can be taken again.
    assert!(matches!(
        store
            .reserve_ticket(&hash, APPID, NOW + 60, NOW + 120)
            .await
            .unwrap(),
        TicketReservation::Reserved(_)
    ));
    // Released after a failure that was not the phone code's: free again at once, not spent.
    assert!(!store.release_ticket(&hash, false, Some(1)).await.unwrap());
    assert!(matches!(
        store
            .reserve_ticket(&hash, APPID, NOW + 61, NOW + 121)
            .await
            .unwrap(),
        TicketReservation::Reserved(_)
    ));
    // Consuming works for the holder.
    let consumed = store.consume_ticket_with_user(&hash, vec![1], vec![1; 32], session(NOW + 62));
    assert!(consumed.await.unwrap().is_some());
    assert_eq!(
        store
            .reserve_ticket(&hash, APPID, NOW + 63, NOW + 123)
            .await
            .unwrap(),
        TicketReservation::Invalid
    );
    // An expired ticket cannot be reserved.
    let old = token();
    store
        .create_ticket(ticket(old, "o2", None, NOW + 10))
        .await
        .unwrap();
    assert_eq!(
        store
            .reserve_ticket(&old, APPID, NOW + 10, NOW + 70)
            .await
            .unwrap(),
        TicketReservation::Invalid
    );
}

async fn refused_phone_codes_spend_a_ticket_at_the_cap(store: Arc<dyn Store>) {
    let hash = token();
    store
        .create_ticket(ticket(hash, "o1", None, NOW + 300))
        .await
        .unwrap();
    for attempt in 1..=3 {
        assert!(matches!(
            store
                .reserve_ticket(&hash, APPID, NOW, NOW + 60)
                .await
                .unwrap(),
            TicketReservation::Reserved(_)
        ));
        let spent = store.release_ticket(&hash, true, Some(3)).await.unwrap();
        assert_eq!(spent, attempt == 3, "attempt {attempt}");
    }
    assert_eq!(
        store
            .reserve_ticket(&hash, APPID, NOW, NOW + 60)
            .await
            .unwrap(),
        TicketReservation::Invalid
    );
    assert_eq!(store.find_ticket(&hash, NOW).await.unwrap(), None);
}

async fn meta_keeps_the_first_value(store: Arc<dyn Store>) {
    assert_eq!(store.meta_get("k").await.unwrap(), None);
    assert_eq!(
        store.meta_get_or_insert("k", b"first").await.unwrap(),
        b"first"
    );
    assert_eq!(
        store.meta_get_or_insert("k", b"second").await.unwrap(),
        b"first"
    );
    assert_eq!(
        store.meta_get("k").await.unwrap().as_deref(),
        Some(&b"first"[..])
    );
}

async fn consuming_a_ticket_updates_a_known_user(store: Arc<dyn Store>) {
    let known = store
        .upsert_user_with_session(user("o1", Some("un1"), b"old", 1, NOW), session(NOW))
        .await
        .unwrap();
    let hash = token();
    store
        .create_ticket(ticket(hash, "o1", None, NOW + 300))
        .await
        .unwrap();
    let consumed = store
        .consume_ticket_with_user(&hash, b"new".to_vec(), vec![2; 32], session(NOW + 5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(consumed.id, known.id);
    assert_eq!(consumed.unionid.as_deref(), Some("un1"));
    assert_eq!(
        (consumed.phone_enc.as_slice(), consumed.updated_at),
        (&b"new"[..], NOW + 5)
    );
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn distinct_users_upserted_concurrently(store: Arc<dyn Store>) {
    let started = Instant::now();
    let logins = (0..200).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let openid = format!("o-{i}");
            store
                .upsert_user_with_session(user(&openid, None, b"enc", 1, NOW), session(NOW))
                .await
        })
    });
    let users: Vec<UserRecord> = futures::future::join_all(logins)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().expect("no login fails under concurrency"))
        .collect();
    eprintln!(
        "200 concurrent upserts of distinct users: {:?}",
        started.elapsed()
    );
    let ids: HashSet<i64> = users.iter().map(|user| user.id).collect();
    assert_eq!(ids.len(), 200);
    assert_eq!(store.count_users().await.unwrap(), 200);
}

/// SQLite commits concurrent login writes in groups; a write that fails (here: a session for a user that does not
/// exist) must fail alone, and every other write of its group must still land, each all or nothing.
async fn a_failing_write_among_concurrent_ones_fails_alone(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 20 == 10 {
                store
                    .create_session(9_999_999, session(NOW))
                    .await
                    .map(|_| false)
            } else {
                let openid = format!("batch-{i}");
                store
                    .upsert_user_with_session(user(&openid, None, b"enc", 1, NOW), session(NOW))
                    .await
                    .map(|_| true)
            }
        }));
    }
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let failed = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(
        failed, 3,
        "only the three sessions of a missing user fail: {results:?}"
    );
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .all(|login| *login)
    );
    assert_eq!(store.count_users().await.unwrap(), 57);
}

async fn same_user_upserted_concurrently(store: Arc<dyn Store>) {
    let logins = (0..50).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let session = session(NOW + i);
            let user = store
                .upsert_user_with_session(
                    user("o-same", Some("un"), b"enc", 1, NOW + i),
                    session.clone(),
                )
                .await;
            (user, session)
        })
    });
    let mut ids = HashSet::new();
    let mut sessions = Vec::new();
    for joined in futures::future::join_all(logins).await {
        let (user, session) = joined.unwrap();
        ids.insert(user.expect("no login fails under concurrency").id);
        sessions.push(session);
    }
    assert_eq!(ids.len(), 1, "one row for one (appid, openid)");
    assert_eq!(store.count_users().await.unwrap(), 1);
    for session in &sessions {
        let owner = store
            .session_user(&session.token_hash, APPID, NOW)
            .await
            .unwrap();
        assert_eq!(
            owner.map(|user| user.id),
            ids.iter().next().copied(),
            "all 50 sessions exist"
        );
    }
}

async fn update_phone_changes_only_the_phone(store: Arc<dyn Store>) {
    let login = session(NOW);
    let before = store
        .upsert_user_with_session(user("o1", Some("un1"), b"old", 1, NOW), login.clone())
        .await
        .unwrap();
    let after = store
        .update_phone(before.id, b"new".to_vec(), vec![2; 32], NOW + 7)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after,
        UserRecord {
            phone_enc: b"new".to_vec(),
            phone_hash: vec![2; 32],
            updated_at: NOW + 7,
            ..before.clone()
        }
    );
    assert_eq!(
        store.find_user(APPID, "o1").await.unwrap(),
        Some(after.clone())
    );
    assert_eq!(
        store
            .session_user(&login.token_hash, APPID, NOW)
            .await
            .unwrap(),
        Some(after)
    );
    let unknown = store
        .update_phone(before.id + 1000, vec![1], vec![1; 32], NOW)
        .await;
    assert_eq!(unknown.unwrap(), None);
}

async fn purge_removes_only_expired_rows(store: Arc<dyn Store>) {
    let live = NewSession {
        expires_at: NOW + 100,
        ..session(NOW - 10)
    };
    let user = store
        .upsert_user_with_session(user("o1", None, b"enc", 1, NOW - 10), live.clone())
        .await
        .unwrap();
    for expires_at in [NOW - 1, NOW] {
        let expired = NewSession {
            expires_at,
            ..session(NOW - 10)
        };
        store.create_session(user.id, expired).await.unwrap();
    }
    let (old_ticket, live_ticket) = (token(), token());
    store
        .create_ticket(ticket(old_ticket, "o2", None, NOW - 5))
        .await
        .unwrap();
    store
        .create_ticket(ticket(live_ticket, "o3", None, NOW + 300))
        .await
        .unwrap();

    assert_eq!(store.purge_expired(NOW).await.unwrap(), 3);
    assert_eq!(store.purge_expired(NOW).await.unwrap(), 0);
    assert_eq!(
        store
            .session_user(&live.token_hash, APPID, NOW)
            .await
            .unwrap(),
        Some(user)
    );
    assert!(
        store
            .find_ticket(&live_ticket, NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn ping_and_count(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 0);
    store
        .upsert_user_with_session(user("o1", None, b"enc", 1, NOW), session(NOW))
        .await
        .unwrap();
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn deleting_a_user_cascades_to_sessions(db: TestDb) {
    let store = db.open().await;
    let first = session(NOW);
    let user = store
        .upsert_user_with_session(user("o1", None, b"enc", 1, NOW), first.clone())
        .await
        .unwrap();
    store.create_session(user.id, session(NOW)).await.unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM sessions").await, 2);

    assert_eq!(
        db.execute_with_id("DELETE FROM users WHERE id = $1", user.id)
            .await,
        1
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM sessions").await, 0);
    assert_eq!(
        store
            .session_user(&first.token_hash, APPID, NOW)
            .await
            .unwrap(),
        None
    );
}

async fn phone_bytes_are_stored_as_given(db: TestDb) {
    let store = db.open().await;
    // Ciphertext is arbitrary bytes: NULs, invalid UTF-8, every value.
    let phone_enc: Vec<u8> = (0..=255).collect();
    let phone_hash = vec![0xab; 32];
    let mut login = user("o1", None, b"", 1, NOW);
    (login.phone_enc, login.phone_hash) = (phone_enc.clone(), phone_hash.clone());
    let stored = store
        .upsert_user_with_session(login, session(NOW))
        .await
        .unwrap();
    assert_eq!(
        (&stored.phone_enc, &stored.phone_hash),
        (&phone_enc, &phone_hash)
    );

    let raw = db
        .bytes_with_id("SELECT phone_enc FROM users WHERE id = $1", stored.id)
        .await;
    assert_eq!(raw, phone_enc);
    let raw = db
        .bytes_with_id("SELECT phone_hash FROM users WHERE id = $1", stored.id)
        .await;
    assert_eq!(raw, phone_hash);
}

async fn migrations_are_idempotent(db: TestDb) {
    let first = db.open().await;
    let user = first
        .upsert_user_with_session(user("o1", None, b"enc", 1, NOW), session(NOW))
        .await
        .unwrap();
    // Open again while the first is still open (a second instance starting), then once more.
    let second = db.open().await;
    assert_eq!(
        second.find_user(APPID, "o1").await.unwrap(),
        Some(user.clone())
    );
    drop((first, second));
    let third = db.open().await;
    assert_eq!(third.find_user(APPID, "o1").await.unwrap(), Some(user));
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
        assert!(!path.parent().unwrap().exists());
        let store = db.open().await;
        store.ping().await.unwrap();
        assert!(path.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "the database file is private");
        }
        let mut conn = SqliteConnection::connect(&sqlite_url(path)).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");

        // A bare path names the same database as the URL.
        let bare = store::open(path.to_str().unwrap()).await.unwrap();
        store
            .upsert_user_with_session(user("o1", None, b"enc", 1, NOW), session(NOW))
            .await
            .unwrap();
        assert!(bare.find_user(APPID, "o1").await.unwrap().is_some());
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
                let openid = format!("o-{}", i % 50);
                store
                    .upsert_user_with_session(user(&openid, None, b"enc", 1, NOW), session(NOW))
                    .await
            })
        });
        for joined in futures::future::join_all(logins).await {
            joined.unwrap().expect("no BUSY across writers");
        }
        assert_eq!(stores[0].count_users().await.unwrap(), 50);
    })
    .await;
}

#[tokio::test]
async fn sqlite_in_memory_works() {
    let store = store::open("sqlite::memory:").await.unwrap();
    store
        .upsert_user_with_session(user("o1", None, b"enc", 1, NOW), session(NOW))
        .await
        .unwrap();
    assert_eq!(store.count_users().await.unwrap(), 1);
    // Every in-memory store is its own database.
    let other = store::open("sqlite::memory:").await.unwrap();
    assert_eq!(other.count_users().await.unwrap(), 0);
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
        store
            .upsert_user_with_session(user("o1", None, b"enc", 1, NOW), session(NOW))
            .await
            .unwrap();
        assert_eq!(db.count("SELECT COUNT(*) FROM users").await, 1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------------
// Fixtures.

fn token() -> [u8; 32] {
    rand::random()
}

fn session(now: UnixTime) -> NewSession {
    NewSession {
        token_hash: token(),
        expires_at: now + 3600,
        now,
    }
}

fn user(
    openid: &str,
    unionid: Option<&str>,
    phone_enc: &[u8],
    hash_byte: u8,
    now: UnixTime,
) -> UserUpsert {
    UserUpsert {
        appid: APPID.into(),
        openid: openid.into(),
        unionid: unionid.map(Into::into),
        phone_enc: phone_enc.to_vec(),
        phone_hash: vec![hash_byte; 32],
        now,
    }
}

fn ticket(
    ticket_hash: [u8; 32],
    openid: &str,
    unionid: Option<&str>,
    expires_at: UnixTime,
) -> NewTicket {
    NewTicket {
        ticket_hash,
        appid: APPID.into(),
        openid: openid.into(),
        unionid: unionid.map(Into::into),
        expires_at,
        now: expires_at - 300,
    }
}

fn random_name() -> String {
    format!("{:016x}", rand::random::<u64>())
}

// ---------------------------------------------------------------------------------------------------------------
// The two backends.

/// Where a test's database lives, to open the store (again) and to look at raw tables.
#[derive(Clone, Debug)]
enum TestDb {
    Sqlite { path: PathBuf },
    Postgres { url: String, schema: String },
}

impl TestDb {
    async fn open(&self) -> Arc<dyn Store> {
        match self {
            TestDb::Sqlite { path } => store::open(&sqlite_url(path))
                .await
                .expect("open SQLite store"),
            TestDb::Postgres { url, schema } => Arc::new(
                store::open_pg_with_schema(url, schema)
                    .await
                    .expect("open PostgreSQL store"),
            ),
        }
    }

    async fn count(&self, sql: &'static str) -> i64 {
        match self {
            TestDb::Sqlite { path } => {
                let mut conn = SqliteConnection::connect(&sqlite_url(path)).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            TestDb::Postgres { .. } => {
                let mut conn = self.pg_connection().await;
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    async fn execute_with_id(&self, sql: &'static str, id: i64) -> u64 {
        match self {
            TestDb::Sqlite { path } => {
                let mut conn = SqliteConnection::connect(&sqlite_url(path)).await.unwrap();
                sqlx::query(sql)
                    .bind(id)
                    .execute(&mut conn)
                    .await
                    .unwrap()
                    .rows_affected()
            }
            TestDb::Postgres { .. } => {
                let mut conn = self.pg_connection().await;
                sqlx::query(sql)
                    .bind(id)
                    .execute(&mut conn)
                    .await
                    .unwrap()
                    .rows_affected()
            }
        }
    }

    async fn bytes_with_id(&self, sql: &'static str, id: i64) -> Vec<u8> {
        match self {
            TestDb::Sqlite { path } => {
                let mut conn = SqliteConnection::connect(&sqlite_url(path)).await.unwrap();
                sqlx::query_scalar(sql)
                    .bind(id)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
            TestDb::Postgres { .. } => {
                let mut conn = self.pg_connection().await;
                sqlx::query_scalar(sql)
                    .bind(id)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
        }
    }

    async fn pg_connection(&self) -> PgConnection {
        let TestDb::Postgres { url, schema } = self else {
            unreachable!()
        };
        let mut conn = PgConnection::connect(url).await.unwrap();
        conn.execute(AssertSqlSafe(format!("SET search_path TO \"{schema}\"")))
            .await
            .unwrap();
        conn
    }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Runs a case against a database file in a fresh temp dir (one level down, so the store must create the
/// directory), and removes the dir afterwards, also when the case panics.
async fn run_sqlite<F, Fut>(case: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = std::env::temp_dir().join(format!("wxlogin-store-{}", random_name()));
    let db = TestDb::Sqlite {
        path: dir.join("data").join("wxlogin.db"),
    };
    let outcome = tokio::spawn(case(db)).await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

/// Runs a case in a fresh schema, dropped afterwards (also when the case panics); or skips, see the module docs.
async fn run_postgres<F, Fut>(case: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = postgres_url().await else {
        return;
    };
    let schema = format!("wxlogin_test_{}", random_name());
    let db = TestDb::Postgres {
        url: url.clone(),
        schema: schema.clone(),
    };
    let outcome = tokio::spawn(case(db)).await;
    let mut conn = PgConnection::connect(&url)
        .await
        .expect("connect to drop the test schema");
    conn.execute(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .await
    .expect("drop the test schema");
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

async fn postgres_url() -> Option<String> {
    let required = std::env::var("WXLOGIN_TEST_POSTGRES").ok();
    let url = match required.as_deref() {
        None | Some("1") | Some("") => DEFAULT_POSTGRES_URL.to_string(),
        Some(url) => url.to_string(),
    };
    let probe = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&url)).await;
    let reason = match probe {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            return Some(url);
        }
        Ok(Err(err)) => err.to_string(),
        Err(_) => "connecting timed out".to_string(),
    };
    if required.is_some() {
        panic!("WXLOGIN_TEST_POSTGRES is set but PostgreSQL is unreachable: {reason}");
    }
    eprintln!("skipping PostgreSQL store tests: {reason}");
    None
}
