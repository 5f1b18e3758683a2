//! The SQL both backends run. It is written once: SQLite (3.35+) and PostgreSQL both accept `$N` parameters,
//! `INSERT … ON CONFLICT … DO UPDATE` with `excluded`, and `RETURNING`.

use super::{TicketRecord, UserRecord};

/// The columns of [`UserRow`], in order.
macro_rules! user_columns {
    () => {
        "id, appid, openid, unionid, phone_enc, phone_hash, created_at, updated_at"
    };
}
pub(super) use user_columns;

/// $1 appid, $2 openid.
pub const FIND_USER: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE appid = $1 AND openid = $2"
);

/// $1 appid, $2 openid, $3 unionid, $4 phone_enc, $5 phone_hash, $6 now.
///
/// One statement, so concurrent logins of the same new user cannot both try to insert: the loser of the race
/// takes the DO UPDATE branch instead of failing on the unique key. A `NULL` unionid keeps the stored one.
// (The upsert is a macro rather than a constant so each backend can build its login statement around it at
// compile time: SQLite appends the session insert, PostgreSQL wraps both in CTEs.)
macro_rules! upsert_user {
    () => {
        concat!(
            "INSERT INTO users (appid, openid, unionid, phone_enc, phone_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) ",
            $crate::store::sql::on_conflict_update_user!()
        )
    };
}

/// What a login does to a user who exists already, and the row it answers: shared by every statement that
/// upserts a user, so the rule (a `NULL` unionid keeps the stored one) lives in one place.
macro_rules! on_conflict_update_user {
    () => {
        concat!(
            "ON CONFLICT (appid, openid) DO UPDATE SET \
                 unionid = COALESCE(excluded.unionid, users.unionid), \
                 phone_enc = excluded.phone_enc, \
                 phone_hash = excluded.phone_hash, \
                 updated_at = excluded.updated_at \
             RETURNING ",
            $crate::store::sql::user_columns!()
        )
    };
}
pub(super) use on_conflict_update_user;
pub(super) use upsert_user;

/// $1 token_hash, $2 user_id, $3 now, $4 expires_at.
pub const INSERT_SESSION: &str =
    "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";

/// $1 token_hash, $2 now, $3 appid.
///
/// A session belongs to its app: one minted for another app (or by a sandbox) on a shared database is not found.
pub const SESSION_USER: &str = "SELECT u.id, u.appid, u.openid, u.unionid, u.phone_enc, u.phone_hash, u.created_at, u.updated_at \
     FROM sessions s JOIN users u ON u.id = s.user_id \
     WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.appid = $3";

/// $1 token_hash, $2 appid.
pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE token_hash = $1 \
     AND user_id IN (SELECT id FROM users WHERE appid = $2)";

/// $1 ticket_hash, $2 appid, $3 openid, $4 unionid, $5 now, $6 expires_at.
pub const INSERT_TICKET: &str = "INSERT INTO login_tickets (ticket_hash, appid, openid, unionid, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// $1 ticket_hash, $2 now.
pub const FIND_TICKET: &str = "SELECT appid, openid, unionid, expires_at FROM login_tickets \
     WHERE ticket_hash = $1 AND expires_at > $2";

/// $1 ticket_hash, $2 now.
///
/// Deleting is what makes a ticket single use: of concurrent consumers only one sees the row come back
/// (PostgreSQL makes the others wait on the row lock and then find it gone; SQLite serializes writers).
pub const CONSUME_TICKET: &str = "DELETE FROM login_tickets WHERE ticket_hash = $1 AND expires_at > $2 \
     RETURNING appid, openid, unionid, expires_at";

/// $1 ticket_hash, $2 now, $3 reserved_until, $4 appid.
///
/// Takes the ticket for one request: only a live ticket of this app that nobody holds (or whose holder's lease
/// ran out, e.g. the instance crashed) comes back.
pub const RESERVE_TICKET: &str = "UPDATE login_tickets SET reserved_until = $3 \
     WHERE ticket_hash = $1 AND expires_at > $2 AND reserved_until <= $2 AND appid = $4 \
     RETURNING appid, openid, unionid, expires_at";

/// $1 ticket_hash, $2 now, $3 appid: is the ticket live (then a failed reservation means it is held)?
pub const TICKET_LIVE: &str =
    "SELECT COUNT(*) FROM login_tickets WHERE ticket_hash = $1 AND expires_at > $2 AND appid = $3";

/// $1 ticket_hash: gives the ticket back after a failure that was not the phone code's (WeChat busy, …).
pub const RELEASE_TICKET: &str =
    "UPDATE login_tickets SET reserved_until = 0 WHERE ticket_hash = $1";

/// $1 ticket_hash: gives the ticket back after WeChat refused the phone code; answers the failures so far.
pub const FAIL_TICKET: &str = "UPDATE login_tickets SET reserved_until = 0, failures = failures + 1 \
     WHERE ticket_hash = $1 RETURNING CAST(failures AS BIGINT)";

/// $1 ticket_hash.
pub const DELETE_TICKET: &str = "DELETE FROM login_tickets WHERE ticket_hash = $1";

/// $1 name.
pub const META_GET: &str = "SELECT value FROM meta WHERE name = $1";
/// $1 name, $2 value: a first writer wins; later ones read its value back.
pub const META_INSERT: &str =
    "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";

/// One user, any: to check the data key against a database written before key check values existed.
pub const ANY_USER: &str = concat!("SELECT ", user_columns!(), " FROM users LIMIT 1");

/// $1 user_id, $2 phone_enc, $3 phone_hash, $4 now.
pub const UPDATE_PHONE: &str = concat!(
    "UPDATE users SET phone_enc = $2, phone_hash = $3, updated_at = $4 WHERE id = $1 RETURNING ",
    user_columns!()
);

/// $1 now.
pub const PURGE_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1";
/// $1 now.
pub const PURGE_TICKETS: &str = "DELETE FROM login_tickets WHERE expires_at <= $1";

pub const PING: &str = "SELECT 1";
pub const COUNT_USERS: &str = "SELECT COUNT(*) FROM users";

/// A `users` row as both drivers decode it.
#[derive(sqlx::FromRow)]
pub struct UserRow {
    id: i64,
    appid: String,
    openid: String,
    unionid: Option<String>,
    phone_enc: Vec<u8>,
    phone_hash: Vec<u8>,
    created_at: i64,
    updated_at: i64,
}

impl From<UserRow> for UserRecord {
    fn from(row: UserRow) -> Self {
        UserRecord {
            id: row.id,
            appid: row.appid,
            openid: row.openid,
            unionid: row.unionid,
            phone_enc: row.phone_enc,
            phone_hash: row.phone_hash,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A `login_tickets` row.
#[derive(sqlx::FromRow)]
pub struct TicketRow {
    appid: String,
    openid: String,
    unionid: Option<String>,
    expires_at: i64,
}

impl From<TicketRow> for TicketRecord {
    fn from(row: TicketRow) -> Self {
        TicketRecord {
            appid: row.appid,
            openid: row.openid,
            unionid: row.unionid,
            expires_at: row.expires_at,
        }
    }
}
