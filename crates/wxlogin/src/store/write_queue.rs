//! Group commit for SQLite: a small queue of writes, committed together.
//!
//! Profiling the login benchmark showed the SQLite write path at three quarters of a login's cost
//! (bench/results/profile.md): every statement is a round trip to the connection's own thread (sqlx's SQLite
//! driver), and every commit appends each page it touched to the WAL. So writes go through one queue: a task takes
//! whatever is waiting (up to [`MAX_BATCH`]) and writes it in one `BEGIN IMMEDIATE … COMMIT`. Pages that
//! consecutive logins share (table leaves, the sequential indexes) are written once per batch. Under light load a
//! batch is one write; nobody waits for a batch to fill. A caller is answered only after the commit that holds its
//! write.
//!
//! If anything in a batch fails (an error, or a statement that did not find what it expects), the batch is rolled
//! back and each write is retried alone in its own transaction, so one write never fails another, and each is
//! still all or nothing.

use super::StoreError;
use super::backend::{bind, check};
use super::queries::Statement;
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 64;
/// Writes waiting beyond this make callers wait to enqueue (back-pressure instead of unbounded memory).
const QUEUE: usize = 4096;

struct Write {
    statements: Vec<Statement>,
    reply: oneshot::Sender<Result<u64, StoreError>>,
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

    /// Queues the statements of one write and waits for their commit; answers the rows they changed.
    pub(super) async fn submit(&self, statements: Vec<Statement>) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Write { statements, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable(sqlx::Error::PoolClosed)
}

async fn run(writer: SqlitePool, mut queue: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let writes = std::mem::take(&mut batch);
        if writes.len() > 1 {
            match write_batch(&writer, &writes).await {
                Ok(rows) => {
                    for (write, rows) in writes.into_iter().zip(rows) {
                        // A caller that went away (request cancelled) no longer needs the answer.
                        let _ = write.reply.send(Ok(rows));
                    }
                    continue;
                }
                Err(err) => {
                    tracing::debug!(error = %err, writes = writes.len(), "batched write failed; retrying each alone")
                }
            }
        }
        for write in writes {
            let outcome = write_alone(&writer, &write.statements).await;
            let _ = write.reply.send(outcome);
        }
    }
}

async fn write_batch(writer: &SqlitePool, writes: &[Write]) -> Result<Vec<u64>, StoreError> {
    let mut conn = writer.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut rows = Vec::with_capacity(writes.len());
    for write in writes {
        rows.push(apply(&mut tx, &write.statements).await?);
    }
    tx.commit().await?;
    Ok(rows)
}

async fn write_alone(writer: &SqlitePool, statements: &[Statement]) -> Result<u64, StoreError> {
    let mut conn = writer.acquire().await?;
    if let [statement] = statements {
        // One statement is a transaction by itself.
        return run_statement(&mut conn, statement).await;
    }
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let rows = apply(&mut tx, statements).await?;
    tx.commit().await?;
    Ok(rows)
}

async fn apply(conn: &mut SqliteConnection, statements: &[Statement]) -> Result<u64, StoreError> {
    let mut rows = 0;
    for statement in statements {
        rows += run_statement(conn, statement).await?;
    }
    Ok(rows)
}

async fn run_statement(
    conn: &mut SqliteConnection,
    statement: &Statement,
) -> Result<u64, StoreError> {
    let done = bind(&statement.query).execute(&mut *conn).await?;
    check(statement.expect, done.rows_affected())?;
    Ok(done.rows_affected())
}
