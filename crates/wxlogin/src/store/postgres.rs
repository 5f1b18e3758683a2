//! PostgreSQL: for several service instances sharing one database.
//!
//! The same SQL as SQLite. Concurrency comes from PostgreSQL itself: `INSERT … ON CONFLICT DO UPDATE` never fails
//! on the unique key when two logins of a new user race, and a concurrent `DELETE` of the same ticket waits on the
//! row lock and then finds nothing, so a ticket is consumed once.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};

use super::sql::{self, UserRow};
use super::{NewSession, StoreError, UserRecord, UserUpsert};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

const MAX_CONNECTIONS: u32 = 16;
/// A database that is down answers Unavailable after this long instead of hanging the request.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
const IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `postgres://…` (a `?options=-c search_path=…` parameter is honoured) and runs the migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = connect_options(url)?;
        connect_once(&options).await?.close().await?;
        let pool = pool_options().connect_with(options).await?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: PgPool) -> Result<Self, StoreError> {
        MIGRATOR.run(&pool).await?;
        tracing::info!("opened PostgreSQL store");
        Ok(PgStore { pool })
    }
}

/// Like [`PgStore::open`], with every table (and the migrations' bookkeeping) in `schema`, created if missing.
/// Each test uses a fresh schema; an operator may use one to share a database with other applications.
pub async fn open_pg_with_schema(url: &str, schema: &str) -> Result<PgStore, StoreError> {
    let options = connect_options(url)?;
    let quoted = quote_ident(schema);

    let create = async {
        let mut conn = PgConnection::connect_with(&options).await?;
        conn.execute(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted}"
        )))
        .await?;
        conn.close().await
    };
    tokio::time::timeout(ACQUIRE_TIMEOUT, create)
        .await
        .map_err(|_elapsed| StoreError::timed_out("creating the schema"))??;

    let set_search_path = format!("SET search_path TO {quoted}");
    let pool = pool_options()
        .after_connect(move |conn, _meta| {
            let statement = AssertSqlSafe(set_search_path.clone());
            Box::pin(async move {
                conn.execute(statement).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    PgStore::migrated(pool).await
}

/// One direct connection before the pool: a database that is down fails fast with the real cause ("connection
/// refused"), where the pool would retry until its acquire timeout and report only that it timed out.
async fn connect_once(options: &PgConnectOptions) -> Result<PgConnection, StoreError> {
    match tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(connected) => Ok(connected?),
        Err(_elapsed) => Err(StoreError::timed_out("connecting to PostgreSQL")),
    }
}

fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url).map_err(|err| StoreError::Config(err.to_string()))
}

fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(IDLE_TIMEOUT)
        .max_lifetime(MAX_LIFETIME)
}

/// `name` as a PostgreSQL identifier: double quotes, inner quotes doubled. Exact (case-sensitive) name.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

super::shared::impl_store! {
    store: PgStore,
    writer: pool,
    reader: pool,
    begin: begin(),
    ping_timeout: PING_TIMEOUT,
}

/// The login writes, each one statement: data-modifying CTEs let PostgreSQL upsert the user and insert its
/// session (and consume the ticket) in a single round trip, atomically, instead of BEGIN, two or three statements
/// and COMMIT over the network.
impl PgStore {
    async fn login_write(
        &self,
        user: UserUpsert,
        session: NewSession,
    ) -> Result<UserRecord, StoreError> {
        let row: UserRow = sqlx::query_as(LOGIN)
            .bind(&user.appid)
            .bind(&user.openid)
            .bind(&user.unionid)
            .bind(&user.phone_enc)
            .bind(&user.phone_hash)
            .bind(user.now)
            .bind(&session.token_hash[..])
            .bind(session.expires_at)
            .fetch_one(&self.pool)
            .await?;
        Ok(UserRecord::from(row))
    }

    async fn session_write(&self, user_id: i64, session: NewSession) -> Result<(), StoreError> {
        sqlx::query(sql::INSERT_SESSION)
            .bind(&session.token_hash[..])
            .bind(user_id)
            .bind(session.now)
            .bind(session.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn ticket_login_write(
        &self,
        ticket_hash: [u8; 32],
        phone_enc: Vec<u8>,
        phone_hash: Vec<u8>,
        session: NewSession,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(TICKET_LOGIN)
            .bind(&ticket_hash[..])
            .bind(session.now)
            .bind(&phone_enc)
            .bind(&phone_hash)
            .bind(&session.token_hash[..])
            .bind(session.expires_at)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(UserRecord::from))
    }
}

/// The user upsert of `sql::upsert_user!` ($1–$6) and the session ($7 token_hash, $8 expires_at) in one statement.
const LOGIN: &str = concat!(
    "WITH u AS (",
    sql::upsert_user!(),
    "), s AS (INSERT INTO sessions (token_hash, user_id, created_at, expires_at) SELECT $7, id, $6, $8 FROM u) \
     SELECT ",
    sql::user_columns!(),
    " FROM u"
);

/// $1 ticket_hash, $2 now, $3 phone_enc, $4 phone_hash, $5 token_hash, $6 expires_at. No row when the ticket is
/// unknown, used or expired; of concurrent consumers, the ones that wait on the ticket's row lock find it gone.
const TICKET_LOGIN: &str = concat!(
    "WITH t AS (DELETE FROM login_tickets WHERE ticket_hash = $1 AND expires_at > $2 \
         RETURNING appid, openid, unionid), \
     u AS (INSERT INTO users (appid, openid, unionid, phone_enc, phone_hash, created_at, updated_at) \
         SELECT appid, openid, unionid, $3, $4, $2, $2 FROM t ",
    sql::on_conflict_update_user!(),
    "), s AS (INSERT INTO sessions (token_hash, user_id, created_at, expires_at) SELECT $5, id, $2, $6 FROM u) \
     SELECT ",
    sql::user_columns!(),
    " FROM u"
);

#[cfg(test)]
mod tests {
    use super::quote_ident;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("wxlogin"), "\"wxlogin\"");
        assert_eq!(quote_ident("a\"b; DROP"), "\"a\"\"b; DROP\"");
    }
}
