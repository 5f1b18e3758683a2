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

use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Connection, SqliteConnection, SqlitePool};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;
use super::queries::{Dialect, Expect, Query, Statement};
use super::sql_store::SqlStore;
use super::sql_store::{Backend, Record, bind, bind_args, bind_as, check};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Readers in WAL mode run in parallel with the writer and each other; a few cover a small machine.
const READERS: u32 = 4;
/// How long another process may hold the write lock before a write fails with BUSY (→ Unavailable).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may queue for a connection (the writer queue under a burst of logins) before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// WAL pages after which a commit copies the log into the database file (SQLite's default: 1000). A checkpoint
/// copies each page once however often it changed since the last one, and a new account changes four pages at
/// random places (the unionid, phone, identity and session indexes), so a longer log copies fewer pages and syncs
/// less often. `perf trace -s` of the new-user benchmark (bench/profile.sh), 1000 → 4000, per request: `pread64`
/// ÷ 1.7, `pwrite64` −4 %, `fsync` ÷ 3.7; throughput about +15 %. The price: a WAL file of ~16 MiB, and each
/// checkpoint holds the writer longer (p99 of the saturated benchmark ~25 → ~40 ms). 8000 pages: 2 % more
/// throughput for a p99 of ~54 ms; not taken. A task checkpointing (PASSIVE) beside the writer every 200 ms cost
/// more CPU per login than it saved (bench/run: 212 against 167 µs); not kept.
const WRITER_AUTOCHECKPOINT: &str = "4000";

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

    async fn write_then_read<T: Record>(
        &self,
        statements: Vec<Statement>,
        read: Query,
    ) -> Result<Option<T>, StoreError> {
        let row = self.queue.submit_then_read(statements, read).await?;
        Ok(row.map(|row| T::from_row(&row)).transpose()?)
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
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT),
            )
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

// ---- the write queue ----
//
// Group commit for SQLite: a small queue of writes, committed together.
//
// Profiling the login benchmark showed the SQLite write path at three quarters of a login's cost
// (bench/results/profile.md): every statement is a round trip to the connection's own thread (sqlx's SQLite
// driver), and every commit appends each page it touched to the WAL. So writes go through one queue: a task takes
// whatever is waiting (up to [`MAX_BATCH`]) and writes it in one `BEGIN IMMEDIATE … COMMIT`. Pages that
// consecutive logins share (table leaves, the sequential indexes) are written once per batch. Under light load a
// batch is one write; nobody waits for a batch to fill. A caller is answered only after the commit that holds its
// write.
//
// Each write's statements also go to SQLite as one multi-statement query: sqlx's SQLite driver runs a query on the
// connection's own thread, and every round trip to it is a pair of thread switches, which profiling showed to be
// most of a new account's cost when each statement went alone. Each statement whose row count matters is followed
// by `SELECT <its index>, changes()`, so the rows that come back still say how many rows it changed, and it is
// checked against what it expects. (`RETURNING` would say the same, but SQLite builds a temporary table for it.)
//
// If anything in a batch fails (an error, or a statement that did not find what it expects), the batch is rolled
// back and each write is retried alone in its own transaction, so one write never fails another, and each is
// still all or nothing.

/// The most writes one transaction takes.
const MAX_BATCH: usize = 64;
/// Writes waiting beyond this make callers wait to enqueue (back-pressure instead of unbounded memory).
const QUEUE: usize = 4096;

struct Write {
    statements: Vec<Statement>,
    /// A read after the statements, in their transaction ([`Backend::write_then_read`]).
    read: Option<Query>,
    reply: oneshot::Sender<Result<Written, StoreError>>,
}

/// What one write answers: the rows each statement changed, and its read's row.
struct Written {
    rows: Vec<u64>,
    read: Option<SqliteRow>,
}

/// The queue and the task that drains it; the task stops when the store is dropped.
pub(super) struct WriteQueue {
    queue: mpsc::Sender<Write>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WriteQueue {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WriteQueue {
    pub(super) fn start(writer: SqlitePool) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        Self {
            queue,
            task: tokio::spawn(run(writer, rx)),
        }
    }

    /// Queues the statements of one write and waits for their commit; answers the rows each changed.
    pub(super) async fn submit(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StoreError> {
        Ok(self.send(statements, None).await?.rows)
    }

    /// As [`submit`](Self::submit), then `read` on the writer in the same transaction: its first row.
    pub(super) async fn submit_then_read(
        &self,
        statements: Vec<Statement>,
        read: Query,
    ) -> Result<Option<SqliteRow>, StoreError> {
        Ok(self.send(statements, Some(read)).await?.read)
    }

    async fn send(
        &self,
        statements: Vec<Statement>,
        read: Option<Query>,
    ) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        let write = Write {
            statements,
            read,
            reply,
        };
        self.queue.send(write).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable(sqlx::Error::PoolClosed)
}

async fn run(writer: SqlitePool, mut queue: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut combined = Combined::default();
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let writes = std::mem::take(&mut batch);
        if writes.len() > 1 {
            match write_batch(&writer, &writes, &mut combined).await {
                Ok(done) => {
                    for (write, done) in writes.into_iter().zip(done) {
                        // A caller that went away (request cancelled) no longer needs the answer.
                        let _ = write.reply.send(Ok(done));
                    }
                    continue;
                }
                Err(err) => {
                    tracing::debug!(error = %err, writes = writes.len(), "batched write failed; retrying each alone")
                }
            }
        }
        for write in writes {
            let outcome = write_alone(&writer, &write, &mut combined).await;
            let _ = write.reply.send(outcome);
        }
    }
}

async fn write_batch(
    writer: &SqlitePool,
    writes: &[Write],
    combined: &mut Combined,
) -> Result<Vec<Written>, StoreError> {
    let mut conn = writer.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut done = Vec::with_capacity(writes.len());
    for write in writes {
        done.push(apply_then_read(&mut tx, write, combined).await?);
    }
    tx.commit().await?;
    Ok(done)
}

async fn write_alone(
    writer: &SqlitePool,
    write: &Write,
    combined: &mut Combined,
) -> Result<Written, StoreError> {
    let mut conn = writer.acquire().await?;
    if write.statements.len() == 1 {
        // One statement is a transaction by itself: no BEGIN and COMMIT round trips to the connection's thread
        // (a returning user's silent login writes only its session). A statement that expects one row is keyed by
        // a unique key, so one whose check fails has written nothing. A read right after it on this connection
        // still sees the database as the statement left it: every write goes through this one connection.
        return apply_then_read(&mut conn, write, combined).await;
    }
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let done = apply_then_read(&mut tx, write, combined).await?;
    tx.commit().await?;
    Ok(done)
}

async fn apply_then_read(
    conn: &mut SqliteConnection,
    write: &Write,
    combined: &mut Combined,
) -> Result<Written, StoreError> {
    let rows = apply(conn, &write.statements, combined).await?;
    let read = match &write.read {
        Some(query) => bind(query).fetch_optional(&mut *conn).await?,
        None => None,
    };
    Ok(Written { rows, read })
}

/// Runs one write's statements in one round trip and checks each statement's row count.
async fn apply(
    conn: &mut SqliteConnection,
    statements: &[Statement],
    combined: &mut Combined,
) -> Result<Vec<u64>, StoreError> {
    if let [statement] = statements {
        // Nothing to combine: the driver's own row count.
        let done = bind(&statement.query).execute(&mut *conn).await?;
        check(statement.expect, done.rows_affected())?;
        return Ok(vec![done.rows_affected()]);
    }
    let sql = combined.sql(statements);
    let query = sqlx::query_as::<sqlx::Sqlite, (i64, i64)>(AssertSqlSafe(sql));
    let query = bind_args!(
        query,
        statements
            .iter()
            .flat_map(|statement| &statement.query.args)
    );
    // Only the statements whose count is checked report it (`SELECT <index>, changes()`); the others' stay 0.
    let mut rows = vec![0u64; statements.len()];
    for (index, changed) in query.fetch_all(&mut *conn).await? {
        if let Some(count) = usize::try_from(index).ok().and_then(|i| rows.get_mut(i)) {
            *count = u64::try_from(changed).unwrap_or(0);
        }
    }
    for (statement, changed) in statements.iter().zip(&rows) {
        check(statement.expect, *changed)?;
    }
    Ok(rows)
}

/// The combined SQL of each shape of write seen (a shape: its statements' SQL, in order), built once: the
/// shapes are the few kinds of login, and building the text was a visible share of a login's cost.
#[derive(Default)]
struct Combined {
    shapes: HashMap<Vec<(usize, bool)>, Arc<str>>,
}

/// More shapes than any plan makes; past it, SQL is built each time rather than kept.
const SHAPES_MAX: usize = 256;

impl Combined {
    fn sql(&mut self, statements: &[Statement]) -> Arc<str> {
        // A statement's SQL is a `&'static str`: its address names it.
        let shape: Vec<(usize, bool)> = statements
            .iter()
            .map(|s| (s.query.sql.as_ptr() as usize, s.expect != Expect::Any))
            .collect();
        if let Some(sql) = self.shapes.get(&shape) {
            return sql.clone();
        }
        let sql: Arc<str> = Arc::from(combine(statements));
        if self.shapes.len() < SHAPES_MAX {
            self.shapes.insert(shape, sql.clone());
        }
        sql
    }
}

/// The statements as one query: each statement's `$N` moved past the parameters of the ones before it (sqlx binds
/// `$N` across all statements of a query on SQLite), and after each statement whose row count is checked, a
/// `SELECT <its index>, changes()`.
fn combine(statements: &[Statement]) -> String {
    let mut sql = String::new();
    let mut offset = 0;
    for (index, statement) in statements.iter().enumerate() {
        renumber(statement.query.sql, offset, &mut sql);
        sql.push_str(";\n");
        if statement.expect != Expect::Any {
            sql.push_str(&format!("SELECT {index}, changes();\n"));
        }
        offset += statement.query.args.len();
    }
    sql
}

fn renumber(sql: &str, offset: usize, out: &mut String) {
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            digits.push(d);
        }
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queries::{Arg, Query};

    #[test]
    fn statements_combine_with_their_parameters_renumbered() {
        let statement = |sql, args, expect| Statement {
            query: Query { sql, args },
            expect,
        };
        let sql = combine(&[
            statement(
                "UPDATE t SET a = $2 WHERE id = $1",
                vec![Arg::Int(1), Arg::Int(2)],
                Expect::Any,
            ),
            statement(
                "DELETE FROM u WHERE x = $1 AND y = $1",
                vec![Arg::Int(3)],
                Expect::OneElseConflict,
            ),
        ]);
        assert_eq!(
            sql,
            "UPDATE t SET a = $2 WHERE id = $1;\nDELETE FROM u WHERE x = $3 AND y = $3;\nSELECT 1, changes();\n"
        );
    }
}
