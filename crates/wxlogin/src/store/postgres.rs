//! PostgreSQL: for several service instances sharing one database.
//!
//! The same SQL as SQLite. Concurrency comes from PostgreSQL itself: two logins that race to create the same
//! identity or to take the same phone collide on a unique index (the loser's plan is refused and decided again),
//! and a concurrent `DELETE` of the same ticket waits on the row lock and then finds nothing, so a ticket is
//! consumed once.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};

use super::queries::{Dialect, Query, Statement};
use super::sql_store::SqlStore;
use super::sql_store::{Backend, Record, bind, bind_as, check};
use super::{Announcements, StoreError};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

const MAX_CONNECTIONS: u32 = 16;
/// A database that is down answers Unavailable after this long instead of hanging the request.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
const IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The PostgreSQL store.
pub type PgStore = SqlStore<Postgres>;

/// A pool of connections to one PostgreSQL database.
pub struct Postgres {
    pool: PgPool,
}

#[async_trait::async_trait]
impl Backend for Postgres {
    const DIALECT: Dialect = Dialect::Postgres;

    async fn read_optional<T: Record>(&self, query: Query) -> Result<Option<T>, StoreError> {
        Ok(bind_as(&query).fetch_optional(&self.pool).await?)
    }

    async fn read_all<T: Record>(&self, query: Query) -> Result<Vec<T>, StoreError> {
        Ok(bind_as(&query).fetch_all(&self.pool).await?)
    }

    async fn write(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StoreError> {
        if let [statement] = statements.as_slice() {
            // One statement is a transaction by itself: no BEGIN/COMMIT round trips.
            let done = bind(&statement.query).execute(&self.pool).await?;
            check(statement.expect, done.rows_affected())?;
            return Ok(vec![done.rows_affected()]);
        }
        let mut tx = self.pool.begin().await?;
        let mut rows = Vec::with_capacity(statements.len());
        for statement in &statements {
            let done = bind(&statement.query).execute(&mut *tx).await?;
            check(statement.expect, done.rows_affected())?;
            rows.push(done.rows_affected());
        }
        tx.commit().await?;
        Ok(rows)
    }

    async fn write_returning<T: Record>(&self, query: Query) -> Result<Option<T>, StoreError> {
        Ok(bind_as(&query).fetch_optional(&self.pool).await?)
    }

    async fn write_then_read<T: Record>(
        &self,
        statements: Vec<Statement>,
        read: Query,
    ) -> Result<Option<T>, StoreError> {
        let mut tx = self.pool.begin().await?;
        for statement in &statements {
            let done = bind(&statement.query).execute(&mut *tx).await?;
            check(statement.expect, done.rows_affected())?;
        }
        let row = bind_as(&read).fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let query = super::queries::ping();
        let ping = bind(&query).execute(&self.pool);
        match tokio::time::timeout(PING_TIMEOUT, ping).await {
            Ok(done) => done.map(drop).map_err(StoreError::from),
            Err(_elapsed) => Err(StoreError::timed_out("ping")),
        }
    }

    async fn announce(&self, channel: &'static str, payload: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One connection of the pool, held for the listener's life (it reconnects by itself).
    async fn listen(
        &self,
        channel: &'static str,
    ) -> Result<Option<Box<dyn Announcements>>, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(channel).await?;
        Ok(Some(Box::new(Listening(listener))))
    }
}

/// A `LISTEN`ing connection.
struct Listening(PgListener);

#[async_trait::async_trait]
impl Announcements for Listening {
    async fn next(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self
            .0
            .try_recv()
            .await?
            .map(|notification| notification.payload().to_owned()))
    }
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
        Ok(SqlStore {
            db: Postgres { pool },
        })
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

#[cfg(test)]
mod tests {
    use super::quote_ident;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("wxlogin"), "\"wxlogin\"");
        assert_eq!(quote_ident("a\"b; DROP"), "\"a\"\"b; DROP\"");
    }
}
