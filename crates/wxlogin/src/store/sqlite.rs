//! SQLite: the default store, one file under the data dir.
//!
//! SQLite allows one writer at a time. Rather than let concurrent logins race for the write lock (and fail with
//! `SQLITE_BUSY` when a deferred transaction that has read tries to upgrade to a write), every write goes
//! through a pool of exactly one connection, so writers queue in the pool, in process, fairly. Multi-statement
//! writes also start with `BEGIN IMMEDIATE`, taking the write lock up front, so another process on the same file
//! makes us wait (busy_timeout) instead of failing mid-transaction. Reads use a separate pool: in WAL mode readers
//! never block the writer nor wait for it.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::sql::{self, TicketRow, UserRow};
use super::{
    NewSession, NewTicket, Store, StoreError, TicketRecord, UnixTime, UserRecord, UserUpsert,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Readers in WAL mode run in parallel with the writer and each other; a few cover a small machine.
const READERS: u32 = 4;
/// How long another process may hold the write lock before a write fails with BUSY (→ Unavailable).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may queue for a connection (the writer queue under a burst of logins) before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub struct SqliteStore {
    /// Exactly one connection: all writes, in order.
    writer: SqlitePool,
    /// Read-only (`query_only`) connections. For an in-memory database, the writer's pool again.
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing, with its parent directory) the database at `sqlite://PATH`, `sqlite:PATH`, a
    /// bare path, or `sqlite::memory:`; runs the migrations.
    pub async fn open(url_or_path: &str) -> Result<Self, StoreError> {
        let in_memory = url_or_path.contains(":memory:") || url_or_path.contains("mode=memory");
        let options = if url_or_path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url_or_path)?
        } else {
            SqliteConnectOptions::new().filename(url_or_path)
        };
        let options = options
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);

        if in_memory {
            // Every connection to `:memory:` would be a different database: keep one connection, forever.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            MIGRATOR.run(&pool).await?;
            return Ok(SqliteStore {
                writer: pool.clone(),
                reader: pool,
            });
        }

        let path = options.get_filename().to_path_buf();
        prepare_file(&path).map_err(|err| StoreError::Unavailable(sqlx::Error::Io(err)))?;
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL never corrupts the database; a power loss may lose the last commits.
            .synchronous(SqliteSynchronous::Normal);

        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.pragma("query_only", "ON"))
            .await?;
        tracing::info!(path = %path.display(), "opened SQLite store");
        Ok(SqliteStore { writer, reader })
    }
}

/// Creates the parent directory (0700) and the database file (0600) if missing, and makes an existing file 0600:
/// it holds phone hashes and session hashes. SQLite creates the -wal and -shm files with the database's mode.
fn prepare_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    file.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn find_user(&self, appid: &str, openid: &str) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(sql::FIND_USER)
            .bind(appid)
            .bind(openid)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(UserRecord::from))
    }

    async fn upsert_user_with_session(
        &self,
        user: UserUpsert,
        session: NewSession,
    ) -> Result<UserRecord, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row: UserRow = sqlx::query_as(sql::UPSERT_USER)
            .bind(&user.appid)
            .bind(&user.openid)
            .bind(&user.unionid)
            .bind(&user.phone_enc)
            .bind(&user.phone_hash)
            .bind(user.now)
            .fetch_one(&mut *tx)
            .await?;
        let user = UserRecord::from(row);
        insert_session(&mut tx, user.id, &session).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn create_session(&self, user_id: i64, session: NewSession) -> Result<(), StoreError> {
        let mut conn = self.writer.acquire().await?;
        insert_session(&mut conn, user_id, &session).await?;
        Ok(())
    }

    async fn session_user(
        &self,
        token_hash: &[u8; 32],
        now: UnixTime,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(sql::SESSION_USER)
            .bind(&token_hash[..])
            .bind(now)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(UserRecord::from))
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::DELETE_SESSION)
            .bind(&token_hash[..])
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_ticket(&self, ticket: NewTicket) -> Result<(), StoreError> {
        sqlx::query(sql::INSERT_TICKET)
            .bind(&ticket.ticket_hash[..])
            .bind(&ticket.appid)
            .bind(&ticket.openid)
            .bind(&ticket.unionid)
            .bind(ticket.now)
            .bind(ticket.expires_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn find_ticket(
        &self,
        ticket_hash: &[u8; 32],
        now: UnixTime,
    ) -> Result<Option<TicketRecord>, StoreError> {
        let row: Option<TicketRow> = sqlx::query_as(sql::FIND_TICKET)
            .bind(&ticket_hash[..])
            .bind(now)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(TicketRecord::from))
    }

    async fn consume_ticket_with_user(
        &self,
        ticket_hash: &[u8; 32],
        phone_enc: Vec<u8>,
        phone_hash: Vec<u8>,
        session: NewSession,
    ) -> Result<Option<UserRecord>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let ticket: Option<TicketRow> = sqlx::query_as(sql::CONSUME_TICKET)
            .bind(&ticket_hash[..])
            .bind(session.now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(ticket) = ticket.map(TicketRecord::from) else {
            tx.rollback().await?;
            return Ok(None);
        };
        let row: UserRow = sqlx::query_as(sql::UPSERT_USER)
            .bind(&ticket.appid)
            .bind(&ticket.openid)
            .bind(&ticket.unionid)
            .bind(&phone_enc)
            .bind(&phone_hash)
            .bind(session.now)
            .fetch_one(&mut *tx)
            .await?;
        let user = UserRecord::from(row);
        insert_session(&mut tx, user.id, &session).await?;
        tx.commit().await?;
        Ok(Some(user))
    }

    async fn update_phone(
        &self,
        user_id: i64,
        phone_enc: Vec<u8>,
        phone_hash: Vec<u8>,
        now: UnixTime,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(sql::UPDATE_PHONE)
            .bind(user_id)
            .bind(&phone_enc)
            .bind(&phone_hash)
            .bind(now)
            .fetch_optional(&self.writer)
            .await?;
        Ok(row.map(UserRecord::from))
    }

    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let sessions = sqlx::query(sql::PURGE_SESSIONS)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let tickets = sqlx::query(sql::PURGE_TICKETS)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(sessions.rows_affected() + tickets.rows_affected())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let ping = sqlx::query(sql::PING).execute(&self.reader);
        match tokio::time::timeout(PING_TIMEOUT, ping).await {
            Ok(done) => done.map(drop).map_err(StoreError::from),
            Err(_elapsed) => Err(StoreError::timed_out("ping")),
        }
    }

    async fn count_users(&self) -> Result<i64, StoreError> {
        let count: i64 = sqlx::query_scalar(sql::COUNT_USERS)
            .fetch_one(&self.reader)
            .await?;
        Ok(count)
    }
}

async fn insert_session(
    conn: &mut sqlx::SqliteConnection,
    user_id: i64,
    session: &NewSession,
) -> Result<(), sqlx::Error> {
    sqlx::query(sql::INSERT_SESSION)
        .bind(&session.token_hash[..])
        .bind(user_id)
        .bind(session.now)
        .bind(session.expires_at)
        .execute(conn)
        .await?;
    Ok(())
}
