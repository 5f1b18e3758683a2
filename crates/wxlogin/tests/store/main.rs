//! Behaviour of the storage layer through the public `Store` trait, written once and run against both backends:
//! SQLite (a file in a fresh temp dir) and PostgreSQL (a fresh schema per test, dropped at the end). Every case
//! below becomes `sqlite::<case>` and `postgres::<case>`.
//!
//! PostgreSQL: with `WXLOGIN_TEST_POSTGRES` set (to a URL, or `1` for the default URL) those tests must run and
//! fail if the server is unreachable; unset, they try the default URL and skip with a message if it is down.
//!
//! - `accounts.rs`: plans (accounts, identities, phones, sessions), all-or-nothing, the unique indexes;
//! - `moves.rs`: phone moves, merges, the audit log;
//! - `quick.rs`: logins written without a read, and when they write nothing;
//! - `tickets.rs`: login tickets (reserve, release, consume) and purging;
//! - `tokens.rs`: refresh rotation and reuse detection, revocation, signing keys;
//! - `concurrency.rs`: racing plans, and SQLite's group commit (a failing write fails alone);
//! - `upkeep.rs`: meta, ping, counts, raw-table checks, migrations, and what only one backend does;
//! - `fixtures.rs`: the steps and records the cases build.

mod accounts;
mod concurrency;
mod fixtures;
mod moves;
mod quick;
mod tickets;
mod tokens;
mod upkeep;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, SqliteConnection};
use wxlogin::store::{self, Store};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Generates one test per case and backend: `sqlite::<case>` and `postgres::<case>`. `store` cases see only the
/// trait; `db` cases get the database's location (to reopen it or read raw tables); `queue` cases run on a
/// current-thread runtime, so a thread-local tracing subscriber sees the SQLite write queue's events.
macro_rules! store_cases {
    (store: [$($store:ident),* $(,)?], db: [$($db:ident),* $(,)?], queue: [$($queue:ident),* $(,)?] $(,)?) => {
        mod sqlite {
            store_cases!(@backend run_sqlite; [$($store),*]; [$($db),*]; [$($queue),*]);
        }
        mod postgres {
            store_cases!(@backend run_postgres; [$($store),*]; [$($db),*]; [$($queue),*]);
        }
    };
    (@backend $run:ident; [$($store:ident),*]; [$($db:ident),*]; [$($queue:ident),*]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $store() {
                crate::$run(|db| async move { crate::$store(db.open().await).await }).await;
            }
        )*
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $db() {
                crate::$run(crate::$db).await;
            }
        )*
        $(
            #[tokio::test(flavor = "current_thread")]
            async fn $queue() {
                crate::$run(crate::$queue).await;
            }
        )*
    };
}

use accounts::*;
use concurrency::*;
use moves::*;
use quick::*;
use tickets::*;
use tokens::*;
use upkeep::*;

store_cases! {
    store: [
        // quick.rs
        a_quick_login_creates_a_new_person_then_finds_them_returning,
        a_quick_login_writes_nothing_when_the_rules_must_decide,
        a_quick_login_consumes_its_ticket_or_fails_with_it,
        // accounts.rs
        a_plan_creates_an_account_with_identity_phone_and_session,
        link_candidates_name_each_account_once,
        a_session_belongs_to_its_app_until_it_expires,
        a_session_needs_its_identity_and_when_required_a_phone,
        a_plan_that_fails_late_writes_nothing,
        a_step_on_a_missing_account_is_a_conflict,
        a_phone_or_a_unionid_belongs_to_one_account,
        // moves.rs
        take_phone_moves_the_phone_and_ends_the_losers_sessions,
        merge_moves_identities_and_their_sessions,
        audit_events_come_back_in_order,
        a_session_by_identity_id_needs_the_phone_still_there,
        // tickets.rs
        a_ticket_is_reserved_for_one_request,
        refused_phone_codes_spend_a_ticket_at_the_cap,
        an_expired_ticket_is_not_consumed,
        purge_removes_only_expired_rows,
        purge_deletes_in_batches_until_nothing_expired_is_left,
        // concurrency.rs
        concurrent_signups_of_one_identity_make_one_account,
        concurrent_claims_of_one_phone_leave_it_with_one_account,
        a_ticket_is_consumed_once_under_concurrency,
        a_phone_move_ends_the_losers_concurrent_logins,
        // tokens.rs
        a_refresh_rotates_once_and_a_reuse_ends_the_session,
        a_refresh_slides_the_expiry_but_never_past_the_absolute_end,
        a_session_without_a_refresh_token_cannot_be_refreshed,
        revocation_by_refresh_token_needs_its_current_secret,
        a_refresh_leaves_the_sessions_of_other_apps_untouched,
        signing_keys_are_stored_once_per_generation,
        // upkeep.rs
        meta_keeps_the_first_value,
        ping_counts_and_any_phone,
    ],
    db: [
        phone_bytes_are_stored_as_given,
        deleting_an_account_cascades_to_identities_and_sessions,
        migrations_are_idempotent,
    ],
    queue: [
        many_small_plans_commit,
        a_failing_plan_in_a_burst_fails_alone,
    ],
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

    /// A `SELECT COUNT(*) …` on the raw tables.
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

    /// A statement with one text parameter; how many rows it changed.
    async fn execute_with_text(&self, sql: &'static str, value: &str) -> u64 {
        match self {
            TestDb::Sqlite { path } => {
                let mut conn = SqliteConnection::connect(&sqlite_url(path)).await.unwrap();
                let done = sqlx::query(sql).bind(value).execute(&mut conn).await;
                done.unwrap().rows_affected()
            }
            TestDb::Postgres { .. } => {
                let mut conn = self.pg_connection().await;
                let done = sqlx::query(sql).bind(value).execute(&mut conn).await;
                done.unwrap().rows_affected()
            }
        }
    }

    /// A query with one text parameter answering one byte string.
    async fn bytes_with_text(&self, sql: &'static str, value: &str) -> Vec<u8> {
        match self {
            TestDb::Sqlite { path } => {
                let mut conn = SqliteConnection::connect(&sqlite_url(path)).await.unwrap();
                let row = sqlx::query_scalar(sql).bind(value).fetch_one(&mut conn);
                row.await.unwrap()
            }
            TestDb::Postgres { .. } => {
                let mut conn = self.pg_connection().await;
                let row = sqlx::query_scalar(sql).bind(value).fetch_one(&mut conn);
                row.await.unwrap()
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

fn random_name() -> String {
    format!("{:016x}", rand::random::<u64>())
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
