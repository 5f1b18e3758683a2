//! Every statement the store runs, written once for both backends (SQLite 3.35+ and PostgreSQL both take `$N`
//! parameters, `ON CONFLICT`, `RETURNING`). Each statement is built by a function whose arguments are its
//! parameters in order, so the order lives in the signature, not in a comment.

use super::{AccountId, SessionKeys, UnixTime};

/// One value bound to a statement.
#[derive(Clone, Debug)]
pub enum Arg {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Bytes(Vec<u8>),
    OptBytes(Option<Vec<u8>>),
}

/// SQL and its parameters.
#[derive(Clone, Debug)]
pub struct Query {
    pub sql: &'static str,
    pub args: Vec<Arg>,
}

pub(super) fn query(sql: &'static str, args: Vec<Arg>) -> Query {
    Query { sql, args }
}

pub(super) fn text(value: &str) -> Arg {
    Arg::Text(value.to_owned())
}

pub(super) fn bytes(value: &[u8]) -> Arg {
    Arg::Bytes(value.to_vec())
}

/// A statement of a write, and what its row count must be.
#[derive(Clone, Debug)]
pub struct Statement {
    pub query: Query,
    pub expect: Expect,
}

impl Statement {
    /// A statement whose row count does not matter.
    pub(super) fn any(query: Query) -> Self {
        Self {
            query,
            expect: Expect::Any,
        }
    }

    /// A statement whose row count the caller reads.
    pub(super) fn counted(query: Query) -> Self {
        Self {
            query,
            expect: Expect::Counted,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Any number of rows, and nobody asks how many.
    Any,
    /// Any number of rows; the caller reads how many.
    Counted,
    /// Exactly one row; none means another login changed what the plan was decided on.
    OneElseConflict,
    /// Exactly one row; none means the ticket is no longer live.
    OneElseTicketGone,
    /// Exactly one row; none means a scan login's tokens were collected already.
    OneElseQrCollected,
}

/// Which database a statement is for, where the SQL must differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

// ---- reads ----

/// The accounts a login may touch (see `Store::link_candidates`). One query: the three lookups use the primary
/// key and the two unique indexes.
pub(super) fn link_candidates(
    appid: &str,
    openid: &str,
    unionid: Option<&str>,
    phone_hash: Option<&[u8]>,
) -> Query {
    query(
        "SELECT a.id, a.unionid, a.phone_enc, a.phone_hash, a.phone_appid, a.phone_openid, a.created_at, a.updated_at, \
             (SELECT COUNT(*) FROM identities i WHERE i.account_id = a.id AND i.appid = $1 AND i.openid = $2) AS holds_identity, \
             (SELECT COUNT(*) FROM identities i WHERE i.account_id = a.id AND i.appid = $1) AS app_identities \
         FROM accounts a \
         WHERE a.id = (SELECT account_id FROM identities WHERE appid = $1 AND openid = $2) \
            OR a.unionid = $3 OR a.phone_hash = $4",
        vec![
            text(appid),
            text(openid),
            Arg::OptText(unionid.map(str::to_owned)),
            Arg::OptBytes(phone_hash.map(<[u8]>::to_vec)),
        ],
    )
}

/// An identity with its account (the columns of [`session`]).
pub(super) fn identity(appid: &str, openid: &str) -> Query {
    query(
        "SELECT a.id, a.unionid, a.phone_enc, a.phone_hash, a.phone_appid, a.phone_openid, a.created_at, a.updated_at, \
             i.id AS identity_id, i.appid, i.openid, i.created_at AS identity_created_at, i.updated_at AS identity_updated_at \
         FROM identities i JOIN accounts a ON a.id = i.account_id WHERE i.appid = $1 AND i.openid = $2",
        vec![text(appid), text(openid)],
    )
}

/// A live session of `appid`, with its identity and account.
pub(super) fn session(keys: &SessionKeys, now: UnixTime, appid: &str) -> Query {
    query(
        "SELECT a.id, a.unionid, a.phone_enc, a.phone_hash, a.phone_appid, a.phone_openid, a.created_at, a.updated_at, \
             i.id AS identity_id, i.appid, i.openid, i.created_at AS identity_created_at, i.updated_at AS identity_updated_at \
         FROM sessions s JOIN identities i ON i.id = s.identity_id JOIN accounts a ON a.id = i.account_id \
         WHERE s.token_hash IN ($1, $2) AND s.expires_at > $3 AND i.appid = $4",
        vec![
            bytes(&keys.key),
            bytes(&keys.legacy),
            Arg::Int(now),
            text(appid),
        ],
    )
}

/// A live session, whatever its app.
pub(super) fn session_by_id(session: &[u8; 32], now: UnixTime) -> Query {
    query(
        "SELECT a.id, a.unionid, a.phone_enc, a.phone_hash, a.phone_appid, a.phone_openid, a.created_at, a.updated_at, \
             i.id AS identity_id, i.appid, i.openid, i.created_at AS identity_created_at, i.updated_at AS identity_updated_at \
         FROM sessions s JOIN identities i ON i.id = s.identity_id JOIN accounts a ON a.id = i.account_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2",
        vec![bytes(session), Arg::Int(now)],
    )
}

/// The session a spent refresh secret belonged to.
pub(super) fn refresh_spent(secret_hash: &[u8; 32]) -> Query {
    query(
        "SELECT session_id FROM refresh_spent WHERE secret_hash = $1",
        vec![bytes(secret_hash)],
    )
}

pub(super) fn delete_session_by_id(session: &[u8; 32]) -> Query {
    query(
        "DELETE FROM sessions WHERE token_hash = $1",
        vec![bytes(session)],
    )
}

pub(super) fn delete_session_with_refresh(session: &[u8; 32], secret_hash: &[u8; 32]) -> Query {
    query(
        "DELETE FROM sessions WHERE token_hash = $1 AND refresh_hash = $2",
        vec![bytes(session), bytes(secret_hash)],
    )
}

pub(super) fn signing_keys() -> Query {
    query(
        "SELECT generation, kid, private_key_enc, public_jwk, created_at FROM signing_keys ORDER BY generation",
        vec![],
    )
}

pub(super) fn delete_session(keys: &SessionKeys, appid: &str) -> Query {
    query(
        "DELETE FROM sessions WHERE token_hash IN ($1, $2) \
         AND identity_id IN (SELECT id FROM identities WHERE appid = $3)",
        vec![bytes(&keys.key), bytes(&keys.legacy), text(appid)],
    )
}

pub(super) fn account(id: &AccountId) -> Query {
    query(
        "SELECT a.id, a.unionid, a.phone_enc, a.phone_hash, a.phone_appid, a.phone_openid, a.created_at, a.updated_at \
         FROM accounts a WHERE a.id = $1",
        vec![text(id.as_str())],
    )
}

/// One account with a phone, any: to check the data key against what is stored.
pub(super) fn any_phone() -> Query {
    query(
        "SELECT a.id, a.unionid, a.phone_enc, a.phone_hash, a.phone_appid, a.phone_openid, a.created_at, a.updated_at \
         FROM accounts a WHERE a.phone_enc IS NOT NULL LIMIT 1",
        vec![],
    )
}

pub(super) fn identities(id: &AccountId) -> Query {
    query(
        "SELECT id AS identity_id, account_id, appid, openid, created_at AS identity_created_at, updated_at AS identity_updated_at \
         FROM identities WHERE account_id = $1 ORDER BY created_at, id",
        vec![text(id.as_str())],
    )
}

pub(super) fn audit(id: &AccountId) -> Query {
    query(
        "SELECT at, event, account_id, other_account, appid, subject, reason FROM audit_log \
         WHERE account_id = $1 OR other_account = $1 ORDER BY id",
        vec![text(id.as_str())],
    )
}

pub(super) fn count_accounts() -> Query {
    query("SELECT COUNT(*) FROM accounts", vec![])
}

pub(super) fn ping() -> Query {
    query("SELECT 1", vec![])
}

// ---- tickets ----

pub(super) fn insert_ticket(ticket: &super::NewTicket) -> Query {
    query(
        "INSERT INTO login_tickets (ticket_hash, appid, openid, unionid, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            bytes(&ticket.ticket_hash),
            text(&ticket.appid),
            text(&ticket.openid),
            Arg::OptText(ticket.unionid.clone()),
            Arg::Int(ticket.now),
            Arg::Int(ticket.expires_at),
        ],
    )
}

/// Takes the ticket for one request: only a live ticket of this app that nobody holds (or whose holder's lease
/// ran out, e.g. the instance crashed) comes back.
pub(super) fn reserve_ticket(
    ticket_hash: &[u8; 32],
    now: UnixTime,
    until: UnixTime,
    appid: &str,
) -> Query {
    query(
        "UPDATE login_tickets SET reserved_until = $3 \
         WHERE ticket_hash = $1 AND expires_at > $2 AND reserved_until <= $2 AND appid = $4 \
         RETURNING appid, openid, unionid, expires_at",
        vec![
            bytes(ticket_hash),
            Arg::Int(now),
            Arg::Int(until),
            text(appid),
        ],
    )
}

/// Is the ticket live (then a failed reservation means another request holds it)?
pub(super) fn ticket_live(ticket_hash: &[u8; 32], now: UnixTime, appid: &str) -> Query {
    query(
        "SELECT COUNT(*) FROM login_tickets WHERE ticket_hash = $1 AND expires_at > $2 AND appid = $3",
        vec![bytes(ticket_hash), Arg::Int(now), text(appid)],
    )
}

/// Gives the ticket back after a failure that was not the phone code's (WeChat busy, …).
pub(super) fn release_ticket(ticket_hash: &[u8; 32]) -> Query {
    query(
        "UPDATE login_tickets SET reserved_until = 0 WHERE ticket_hash = $1",
        vec![bytes(ticket_hash)],
    )
}

/// Gives the ticket back after WeChat refused the phone code; answers the failures so far.
pub(super) fn fail_ticket(ticket_hash: &[u8; 32]) -> Query {
    query(
        "UPDATE login_tickets SET reserved_until = 0, failures = failures + 1 \
         WHERE ticket_hash = $1 RETURNING CAST(failures AS BIGINT)",
        vec![bytes(ticket_hash)],
    )
}

pub(super) fn delete_ticket(ticket_hash: &[u8; 32]) -> Query {
    query(
        "DELETE FROM login_tickets WHERE ticket_hash = $1",
        vec![bytes(ticket_hash)],
    )
}

// ---- meta and upkeep ----

pub(super) fn meta_get(name: &str) -> Query {
    query("SELECT value FROM meta WHERE name = $1", vec![text(name)])
}

/// A first writer wins; later ones read its value back.
pub(super) fn meta_insert(name: &str, value: &[u8]) -> Query {
    query(
        "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        vec![text(name), bytes(value)],
    )
}

/// The most rows one purge statement deletes: one transaction of the purge is short, so logins queued behind it
/// on SQLite's one writer (or waiting on PostgreSQL's locks) wait milliseconds, not the seconds one `DELETE` of a
/// million expired sessions takes. Expired sessions lie at random places of the token and identity indexes, so a
/// batch dirties about three pages per row: 2,000 rows held SQLite's writer ~0.2 s at 3M sessions (bench g).
pub const PURGE_BATCH: i64 = 500;

/// One batch of expired rows per table, oldest key order irrelevant: each statement deletes at most
/// [`PURGE_BATCH`] rows; the caller repeats a table's statement until it deletes fewer. On PostgreSQL the rows are
/// picked `FOR UPDATE SKIP LOCKED`, so instances purging at once take different rows instead of waiting on (or
/// deadlocking with) each other.
pub(super) fn purge_batches(dialect: Dialect, now: UnixTime) -> Vec<Statement> {
    // PostgreSQL skips rows another purge (another instance) holds, so two purges share the work, never wait.
    macro_rules! batch {
        ($table:literal, $key:literal, $expired:literal) => {{
            macro_rules! delete {
                ($tail:literal) => {
                    concat!(
                        "DELETE FROM ",
                        $table,
                        " WHERE ",
                        $key,
                        " IN (SELECT ",
                        $key,
                        " FROM ",
                        $table,
                        " WHERE ",
                        $expired,
                        " LIMIT $2",
                        $tail,
                        ")"
                    )
                };
            }
            match dialect {
                Dialect::Sqlite => delete!(""),
                Dialect::Postgres => delete!(" FOR UPDATE SKIP LOCKED"),
            }
        }};
    }
    [
        batch!("sessions", "token_hash", "expires_at <= $1"),
        batch!("login_tickets", "ticket_hash", "expires_at <= $1"),
        batch!("refresh_spent", "secret_hash", "expires_at <= $1"),
        batch!("wechat_pushes", "digest", "expires_at <= $1"),
        // Kept 10 minutes past expiry, so a late poll reads `expired` rather than an unknown id.
        batch!("qr_logins", "id", "expires_at <= $1 - 600"),
    ]
    .into_iter()
    .map(|sql| Statement::counted(query(sql, vec![Arg::Int(now), Arg::Int(PURGE_BATCH)])))
    .collect()
}
