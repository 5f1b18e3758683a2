//! Group commit for SQLite's login writes.
//!
//! Profiling scenario (a) showed the SQLite write path at three quarters of a login's cost (22k logins/s with
//! the write skipped, 5k with it; bench/results/profile.md). Two things made it expensive: every statement is a
//! round trip to the connection's own thread (sqlx's SQLite driver), four per login; and every commit appends
//! each page it touched to the WAL, about nine pages per login. So login writes go through one queue: a task
//! takes whatever is waiting (up to [`MAX_BATCH`]) and writes it in one `BEGIN IMMEDIATE … COMMIT`, each login
//! as one multi-statement round trip. Pages that consecutive logins share (table leaves, the sequential indexes)
//! are written once per batch. Under light load a batch is one login, as before; nobody waits for a batch to
//! fill. A caller is answered only after the commit that holds its write.
//!
//! If anything in a batch fails, the batch is rolled back and each write is retried alone in its own
//! transaction, so one bad write never fails the others, and a login is still all or nothing.

use super::sql::{self, TicketRow, UserRow};
use super::{NewSession, StoreError, TicketRecord, UserRecord, UserUpsert};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 64;
/// Writes waiting beyond this make callers wait to enqueue (back-pressure instead of unbounded memory).
const QUEUE: usize = 4096;

/// A user upserted with a new session, as one round trip: the session finds the user by its key, so the user's
/// id need not come back first. $1 appid, $2 openid, $3 unionid, $4 phone_enc, $5 phone_hash, $6 now,
/// $7 token_hash, $8 expires_at. (sqlx binds `$N` across the statements of one query on SQLite.)
const LOGIN: &str = concat!(
    sql::upsert_user!(),
    "; INSERT INTO sessions (token_hash, user_id, created_at, expires_at) \
     VALUES ($7, (SELECT id FROM users WHERE appid = $1 AND openid = $2), $6, $8)"
);

/// One login write.
pub(super) enum Write {
    Login {
        user: UserUpsert,
        session: NewSession,
        reply: oneshot::Sender<Result<UserRecord, StoreError>>,
    },
    Ticket {
        ticket_hash: [u8; 32],
        phone_enc: Vec<u8>,
        phone_hash: Vec<u8>,
        session: NewSession,
        reply: oneshot::Sender<Result<Option<UserRecord>, StoreError>>,
    },
    Session {
        user_id: i64,
        session: NewSession,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

enum Outcome {
    Login(UserRecord),
    Ticket(Option<UserRecord>),
    Session,
}

/// The queue and the task that drains it; the task stops when the store is dropped.
pub(super) struct Batcher {
    queue: mpsc::Sender<Write>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Batcher {
    pub(super) fn start(writer: SqlitePool) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        Self {
            queue,
            task: tokio::spawn(run(writer, rx)),
        }
    }

    /// Queues a write and waits for its commit.
    pub(super) async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Write,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(make(reply)).await.map_err(|_| stopped())?;
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
                Ok(outcomes) => {
                    for (write, outcome) in writes.into_iter().zip(outcomes) {
                        reply(write, Ok(outcome));
                    }
                    continue;
                }
                Err(err) => {
                    tracing::debug!(error = %err, writes = writes.len(), "batched write failed; retrying each alone")
                }
            }
        }
        for write in writes {
            let outcome = write_alone(&writer, &write).await;
            reply(write, outcome);
        }
    }
}

async fn write_batch(writer: &SqlitePool, writes: &[Write]) -> Result<Vec<Outcome>, StoreError> {
    let mut conn = writer.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut outcomes = Vec::with_capacity(writes.len());
    for write in writes {
        outcomes.push(apply(&mut tx, write).await?);
    }
    tx.commit().await?;
    Ok(outcomes)
}

async fn write_alone(writer: &SqlitePool, write: &Write) -> Result<Outcome, StoreError> {
    let mut conn = writer.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let outcome = apply(&mut tx, write).await?;
    tx.commit().await?;
    Ok(outcome)
}

fn reply(write: Write, outcome: Result<Outcome, StoreError>) {
    // A caller that went away (request cancelled) no longer needs the answer: ignore a closed channel.
    match (write, outcome) {
        (Write::Login { reply, .. }, Ok(Outcome::Login(user))) => drop(reply.send(Ok(user))),
        (Write::Ticket { reply, .. }, Ok(Outcome::Ticket(user))) => drop(reply.send(Ok(user))),
        (Write::Session { reply, .. }, Ok(Outcome::Session)) => drop(reply.send(Ok(()))),
        (Write::Login { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
        (Write::Ticket { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
        (Write::Session { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
        (_, Ok(_)) => unreachable!("apply answers each write with its own kind of outcome"),
    }
}

async fn apply(conn: &mut SqliteConnection, write: &Write) -> Result<Outcome, StoreError> {
    Ok(match write {
        Write::Login { user, session, .. } => Outcome::Login(login(conn, user, session).await?),
        Write::Ticket {
            ticket_hash,
            phone_enc,
            phone_hash,
            session,
            ..
        } => {
            let ticket: Option<TicketRow> = sqlx::query_as(sql::CONSUME_TICKET)
                .bind(&ticket_hash[..])
                .bind(session.now)
                .fetch_optional(&mut *conn)
                .await?;
            match ticket.map(TicketRecord::from) {
                None => Outcome::Ticket(None),
                Some(t) => {
                    let user = UserUpsert {
                        appid: t.appid,
                        openid: t.openid,
                        unionid: t.unionid,
                        phone_enc: phone_enc.clone(),
                        phone_hash: phone_hash.clone(),
                        now: session.now,
                    };
                    Outcome::Ticket(Some(login(conn, &user, session).await?))
                }
            }
        }
        Write::Session {
            user_id, session, ..
        } => {
            sqlx::query(sql::INSERT_SESSION)
                .bind(&session.token_hash[..])
                .bind(user_id)
                .bind(session.now)
                .bind(session.expires_at)
                .execute(&mut *conn)
                .await?;
            Outcome::Session
        }
    })
}

async fn login(
    conn: &mut SqliteConnection,
    user: &UserUpsert,
    session: &NewSession,
) -> Result<UserRecord, StoreError> {
    let rows: Vec<UserRow> = sqlx::query_as(LOGIN)
        .bind(&user.appid)
        .bind(&user.openid)
        .bind(&user.unionid)
        .bind(&user.phone_enc)
        .bind(&user.phone_hash)
        .bind(user.now)
        .bind(&session.token_hash[..])
        .bind(session.expires_at)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter()
        .next()
        .map(UserRecord::from)
        .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))
}
