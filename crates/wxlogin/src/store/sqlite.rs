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

use super::StoreError;
use super::queries::{Dialect, Query, Statement};
use super::sql_store::SqlStore;
use super::sql_store::{Backend, Record, bind, bind_as};
use super::write_queue::WriteQueue;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Readers in WAL mode run in parallel with the writer and each other; a few cover a small machine.
const READERS: u32 = 4;
/// How long another process may hold the write lock before a write fails with BUSY (→ Unavailable).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may queue for a connection (the writer queue under a burst of logins) before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The SQLite store.
pub type SqliteStore = SqlStore<Sqlite>;

/// The connections of one SQLite database.
pub struct Sqlite {
    /// Exactly one connection: all writes, in order.
    writer: SqlitePool,
    /// Read-only (`query_only`) connections. For an in-memory database, the writer's pool again.
    reader: SqlitePool,
    /// Multi-statement writes, committed in groups on the writer connection.
    queue: WriteQueue,
}

#[async_trait::async_trait]
impl Backend for Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;

    async fn read_optional<T: Record>(&self, query: Query) -> Result<Option<T>, StoreError> {
        Ok(bind_as(&query).fetch_optional(&self.reader).await?)
    }

    async fn read_all<T: Record>(&self, query: Query) -> Result<Vec<T>, StoreError> {
        Ok(bind_as(&query).fetch_all(&self.reader).await?)
    }

    async fn write(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StoreError> {
        self.queue.submit(statements).await
    }

    async fn write_returning<T: Record>(&self, query: Query) -> Result<Option<T>, StoreError> {
        Ok(bind_as(&query).fetch_optional(&self.writer).await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let query = super::queries::ping();
        let ping = bind(&query).execute(&self.reader);
        match tokio::time::timeout(PING_TIMEOUT, ping).await {
            Ok(done) => done.map(drop).map_err(StoreError::from),
            Err(_elapsed) => Err(StoreError::timed_out("ping")),
        }
    }
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
            return Ok(SqlStore {
                db: Sqlite {
                    queue: WriteQueue::start(pool.clone()),
                    writer: pool.clone(),
                    reader: pool,
                },
            });
        }

        let path = options.get_filename().to_path_buf();
        prepare_file(&path).map_err(|err| StoreError::Unavailable(sqlx::Error::Io(err)))?;
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL never corrupts the database; a power loss may lose the last commits.
            .synchronous(SqliteSynchronous::Normal);

        // No ping before each use: a connection to a local file does not go stale, and on sqlx's SQLite driver a
        // ping is one more round trip to the connection's thread.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .test_before_acquire(false)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.pragma("query_only", "ON"))
            .await?;
        tracing::info!(path = %path.display(), "opened SQLite store");
        Ok(SqlStore {
            db: Sqlite {
                queue: WriteQueue::start(writer.clone()),
                writer,
                reader,
            },
        })
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
