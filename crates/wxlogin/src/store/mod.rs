//! Storage: users, sessions and login tickets behind one narrow trait.
//!
//! Two implementations with identical behaviour: [`SqliteStore`] (the default, a file under the data dir) and
//! [`PgStore`] (for several instances sharing one database). Both run the same SQL (in `sql.rs`); only
//! connection handling differs. Migrations are embedded in the binary and run by [`open`].
//!
//! The store never sees secrets in the clear: phones arrive encrypted with a keyed lookup hash, and session
//! tokens and tickets arrive as their SHA-256.

mod error;
mod postgres;
mod shared;
mod sql;
mod sqlite;
mod sqlite_batch;

use std::sync::Arc;

pub use error::StoreError;
pub use postgres::{PgStore, open_pg_with_schema};
pub use sqlite::SqliteStore;

/// Unix time in seconds.
pub type UnixTime = i64;

/// A user, keyed by (appid, openid).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub appid: String,
    pub openid: String,
    pub unionid: Option<String>,
    /// AES-GCM nonce + ciphertext of the phone number, as the caller encrypted it.
    pub phone_enc: Vec<u8>,
    /// HMAC-SHA256 of the phone number (32 bytes), for lookups without decrypting.
    pub phone_hash: Vec<u8>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// What a login knows about a user; written with [`Store::upsert_user_with_session`].
#[derive(Clone, Debug)]
pub struct UserUpsert {
    pub appid: String,
    pub openid: String,
    /// `None` keeps a unionid already stored (WeChat only sends it in some cases).
    pub unionid: Option<String>,
    pub phone_enc: Vec<u8>,
    pub phone_hash: Vec<u8>,
    pub now: UnixTime,
}

/// A session to create; the token itself never reaches the store, only its SHA-256.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub token_hash: [u8; 32],
    pub expires_at: UnixTime,
    pub now: UnixTime,
}

/// A login ticket to create (an unknown user between silent login and the phone step).
#[derive(Clone, Debug)]
pub struct NewTicket {
    pub ticket_hash: [u8; 32],
    pub appid: String,
    pub openid: String,
    pub unionid: Option<String>,
    pub expires_at: UnixTime,
    pub now: UnixTime,
}

/// A live login ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketRecord {
    pub appid: String,
    pub openid: String,
    pub unionid: Option<String>,
    pub expires_at: UnixTime,
}

/// What [`Store::reserve_ticket`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketReservation {
    /// The ticket is this request's until the reservation ends or it is released or consumed.
    Reserved(TicketRecord),
    /// Another request holds it (a double tap): that request's outcome decides.
    InUse,
    /// Unknown, used, expired, or another app's.
    Invalid,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The user with this openid in this app, if any.
    async fn find_user(&self, appid: &str, openid: &str) -> Result<Option<UserRecord>, StoreError>;

    /// One transaction: upsert the user by (appid, openid) — insert, or update `unionid` (only when the new one
    /// is `Some`), `phone_enc`, `phone_hash` and `updated_at` — then insert the session for that user. Both or
    /// neither. Concurrent calls for the same (appid, openid) all succeed and leave one row.
    async fn upsert_user_with_session(
        &self,
        user: UserUpsert,
        session: NewSession,
    ) -> Result<UserRecord, StoreError>;

    /// A new session for an existing user (silent login of a known user).
    async fn create_session(&self, user_id: i64, session: NewSession) -> Result<(), StoreError>;

    /// The user behind a session that exists, has `expires_at > now` and belongs to a user of `appid`.
    async fn session_user(
        &self,
        token_hash: &[u8; 32],
        appid: &str,
        now: UnixTime,
    ) -> Result<Option<UserRecord>, StoreError>;

    /// Deletes the session if it belongs to a user of `appid`; true if one was deleted.
    async fn delete_session(&self, token_hash: &[u8; 32], appid: &str) -> Result<bool, StoreError>;

    async fn create_ticket(&self, ticket: NewTicket) -> Result<(), StoreError>;

    /// The ticket if it exists and `expires_at > now` (does not consume it).
    async fn find_ticket(
        &self,
        ticket_hash: &[u8; 32],
        now: UnixTime,
    ) -> Result<Option<TicketRecord>, StoreError>;

    /// Reserves a live ticket of `appid` for one request until `until` (see [`TicketReservation`]).
    async fn reserve_ticket(
        &self,
        ticket_hash: &[u8; 32],
        appid: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<TicketReservation, StoreError>;

    /// Gives a reserved ticket back. `phone_code_refused`: WeChat refused the phone code, which counts against
    /// the ticket; with `max_failures` reached the ticket is deleted (true: it is spent).
    async fn release_ticket(
        &self,
        ticket_hash: &[u8; 32],
        phone_code_refused: bool,
        max_failures: Option<u32>,
    ) -> Result<bool, StoreError>;

    /// The value stored under `name` in `meta`, storing `value` first if there is none (the first writer wins,
    /// also across instances).
    async fn meta_get_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// The value stored under `name` in `meta`.
    async fn meta_get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Some user, if there is any.
    async fn any_user(&self) -> Result<Option<UserRecord>, StoreError>;

    /// One transaction: consume the ticket if it is live at `session.now` (else `Ok(None)`, nothing written),
    /// then upsert the user it names with this phone and insert the session. Of N concurrent callers with the
    /// same ticket exactly one gets `Some`.
    async fn consume_ticket_with_user(
        &self,
        ticket_hash: &[u8; 32],
        phone_enc: Vec<u8>,
        phone_hash: Vec<u8>,
        session: NewSession,
    ) -> Result<Option<UserRecord>, StoreError>;

    /// Sets a new phone for an existing user; the updated user, or `None` if the id is unknown.
    async fn update_phone(
        &self,
        user_id: i64,
        phone_enc: Vec<u8>,
        phone_hash: Vec<u8>,
        now: UnixTime,
    ) -> Result<Option<UserRecord>, StoreError>;

    /// Deletes sessions and tickets with `expires_at <= now`; how many rows went.
    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError>;

    /// Cheap liveness check for /readyz, bounded by a short timeout.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Count of users.
    async fn count_users(&self) -> Result<i64, StoreError>;
}

/// Opens the store named by the URL and runs its migrations: `sqlite://PATH`, `sqlite:PATH` or a bare path →
/// [`SqliteStore`]; `postgres://…` / `postgresql://…` → [`PgStore`].
pub async fn open(database_url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match Backend::of(database_url)? {
        Backend::Sqlite => Ok(Arc::new(SqliteStore::open(database_url).await?)),
        Backend::Postgres => Ok(Arc::new(PgStore::open(database_url).await?)),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of(database_url: &str) -> Result<Self, StoreError> {
        let url = database_url.trim();
        if url.is_empty() {
            return Err(StoreError::Config("empty database url".into()));
        }
        if url.starts_with("sqlite:") {
            return Ok(Backend::Sqlite);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres);
        }
        match url.split_once("://") {
            // The rest of the URL may hold a password: name only the scheme.
            Some((scheme, _)) => Err(StoreError::Config(format!(
                "unsupported scheme {scheme:?} (use sqlite:// or postgres://)"
            ))),
            None => Ok(Backend::Sqlite),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_chosen_by_scheme() {
        assert_eq!(Backend::of("sqlite://data/wx.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of("sqlite::memory:").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of("./wxlogin-data/wxlogin.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(Backend::of("postgres://u@h/db").unwrap(), Backend::Postgres);
        assert_eq!(
            Backend::of("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(matches!(Backend::of(""), Err(StoreError::Config(_))));
        let err = Backend::of("mysql://root:hunter2@h/db").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
