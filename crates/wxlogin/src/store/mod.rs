//! Storage: accounts, their identities and sessions, login tickets and the audit log, behind one narrow trait.
//!
//! The login core ([`crate::logins`]) reads what a login may touch ([`Store::link_candidates`]), decides what to
//! do (a [`Plan`] of [`Step`]s), and hands the plan back to be written in one transaction ([`Store::apply`]).
//! Each step states what it expects to find; when a concurrent login changed it in between, the whole plan is
//! refused with [`StoreError::Conflict`] and the core decides again on fresh data. The unique indexes (one
//! identity per `(appid, openid)`, one account per unionid, one account per phone) are the last word: no
//! interleaving of logins can give one phone to two accounts.
//!
//! Two backends with identical behaviour and the same SQL (`queries.rs`, `writes.rs`): [`SqliteStore`] (the
//! default, a file under the data dir; writes are group-committed by a write queue in `sqlite.rs`) and [`PgStore`] (several
//! instances sharing one database). What differs between them is only how a statement reaches the database (the
//! `Backend` trait in `sql_store.rs`).
//!
//! The store never sees secrets in the clear: phones arrive encrypted with a keyed lookup hash, session tokens
//! and tickets as their SHA-256.

mod error;
mod plan;
mod postgres;
mod privacy;
mod qr;
mod queries;
mod rows;
mod sql_store;
mod sqlite;
mod tokens;
mod writes;

use std::sync::Arc;

pub use error::StoreError;
pub use plan::{Holder, Plan, QuickLogin, QuickOutcome, Step};
pub use postgres::{PgStore, open_pg_with_schema};
pub use privacy::{ScanSummary, SessionSummary};
pub use qr::{NewQrLogin, QrChange, QrLoginRecord, QrStatus, Scanner, WebClient};
pub use queries::PURGE_BATCH;
pub use sqlite::SqliteStore;
pub use tokens::{Refresh, Rotation, RotationOutcome, SigningKeyRecord};

/// Unix time in seconds.
pub type UnixTime = i64;

/// An account's public id: `acc_` and 24 lowercase hex digits, the first 12 the creation time in milliseconds and
/// the last 12 random (48 bits), like a UUIDv7. It is what clients see (`accountId`) and never changes, also when
/// another account is merged into it. Time first, because ids that grow keep inserts at the right edge of the
/// accounts b-tree and its indexes: random ids made every new account dirty a random page (profiled).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    pub fn generate() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let random = rand::random::<[u8; 6]>();
        Self(format!(
            "acc_{:012x}{}",
            millis & 0xffff_ffff_ffff,
            hex::encode(random)
        ))
    }

    /// Accepts only the shape [`AccountId::generate`] (and the migration) make.
    pub fn parse(text: &str) -> Option<Self> {
        let digits = text.strip_prefix("acc_")?;
        (digits.len() == 24
            && digits
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An identity's row id (internal: sessions point at it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdentityId(pub i64);

/// A phone as stored: sealed (AES-GCM) to the identity that verified it, with its keyed lookup hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPhone {
    pub enc: Vec<u8>,
    pub hash: Vec<u8>,
    /// The identity the ciphertext is sealed to (its associated data).
    pub appid: String,
    pub openid: String,
}

/// A person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: AccountId,
    pub unionid: Option<String>,
    /// `None` after the phone moved to another account, or before any was verified.
    pub phone: Option<StoredPhone>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// A WeChat user in one app, part of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityRecord {
    pub id: IdentityId,
    pub account_id: AccountId,
    pub appid: String,
    pub openid: String,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// An account a login may touch, and how it relates to the login's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub account: AccountRecord,
    /// This account holds the login's identity `(appid, openid)`.
    pub holds_identity: bool,
    /// This account has an identity in the login's app (this one or another WeChat user's).
    pub has_app_identity: bool,
}

/// A live session: its identity and that identity's account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub identity: IdentityRecord,
    pub account: AccountRecord,
}

/// One event of the audit log. People are named by account id and a keyed hash of the identity, never by phone,
/// openid or unionid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: UnixTime,
    pub event: AuditEvent,
    pub account_id: AccountId,
    /// `PhoneMoved`: the account that lost the phone; `AccountsMerged`: the account merged away.
    pub other_account: Option<AccountId>,
    pub appid: Option<String>,
    pub subject: Option<Vec<u8>>,
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum AuditEvent {
    IdentityLinked,
    PhoneMoved,
    /// A new account, at its first login (`reason`: `login`).
    AccountCreated,
    AccountsMerged,
    /// The account and everything of it were deleted (`reason`: `user`, `operator` or `wechat_cancellation`).
    AccountDeleted,
    /// One identity was deleted (`reason`: `wechat_cancellation`); its account lives on with its others.
    IdentityDeleted,
    /// The phone was deleted and the sessions ended (`reason`: `wechat_revoke`).
    PhoneRevoked,
    /// Every session was ended by an operator (`wxlogin sessions revoke`).
    SessionsRevoked,
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

/// What a presented session token is looked up by: the key sessions are written under now, and the one an earlier
/// release wrote the same token under (its sessions stay valid until they expire). Either matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionKeys {
    pub key: [u8; 32],
    pub legacy: [u8; 32],
}

/// Scan logins other instances changed (see [`Store::announce_qr_login`]).
#[async_trait::async_trait]
pub trait Announcements: Send {
    /// The next changed id. `Ok(None)`: the connection was lost and is back; announcements in between may have
    /// been missed.
    async fn next(&mut self) -> Result<Option<String>, StoreError>;
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// One write, no read before it: a new person gets an account, a returning identity whose account holds this
    /// phone gets a session; anything else writes nothing ([`QuickOutcome::Neither`]). Both shapes are exactly
    /// what the linking rules decide for them, so this only saves the read (a round trip per login).
    async fn quick_login(
        &self,
        login: QuickLogin,
        now: UnixTime,
    ) -> Result<QuickOutcome, StoreError>;

    /// The accounts a login of `(appid, openid)` may touch: the one holding that identity, the one with
    /// `unionid`, the one with `phone_hash` (at most three, fewer when they coincide or do not exist).
    async fn link_candidates(
        &self,
        appid: &str,
        openid: &str,
        unionid: Option<&str>,
        phone_hash: Option<&[u8]>,
    ) -> Result<Vec<Candidate>, StoreError>;

    /// The identity `(appid, openid)` and its account, if the identity exists.
    async fn identity(
        &self,
        appid: &str,
        openid: &str,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Writes every step of the plan in one transaction, or nothing: [`StoreError::Conflict`] when a step did not
    /// find what it expects (a concurrent login got there first; decide again), [`StoreError::TicketGone`] when
    /// the ticket to consume is no longer live.
    async fn apply(&self, plan: Plan) -> Result<(), StoreError>;

    /// The identity and account behind a session that exists, has `expires_at > now` and belongs to `appid`.
    async fn session(
        &self,
        keys: &SessionKeys,
        appid: &str,
        now: UnixTime,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// The identity and account behind a live session, whatever its app (a refresh token names its session, and
    /// the caller checks the app is served).
    async fn session_by_id(
        &self,
        session: &[u8; 32],
        now: UnixTime,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Rotates a session's refresh token (see [`Rotation`]).
    async fn rotate_refresh(&self, rotation: Rotation) -> Result<RotationOutcome, StoreError>;

    /// Deletes a session whose current refresh secret hashes to `secret_hash` (revocation by the holder of the
    /// refresh token); true if one was deleted.
    async fn end_session_with_refresh(
        &self,
        session: &[u8; 32],
        secret_hash: &[u8; 32],
    ) -> Result<bool, StoreError>;

    /// Every signing key, oldest generation first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;

    /// Stores a signing key; false if its generation exists already (another instance or `keys rotate` was
    /// first: read the keys again).
    async fn add_signing_key(&self, key: SigningKeyRecord) -> Result<bool, StoreError>;

    /// Deletes the session if it belongs to `appid`; true if one was deleted.
    async fn delete_session(&self, keys: &SessionKeys, appid: &str) -> Result<bool, StoreError>;

    async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError>;

    /// An account's identities, oldest first.
    async fn identities(&self, id: &AccountId) -> Result<Vec<IdentityRecord>, StoreError>;

    /// The audit events naming an account (as `account_id` or `other_account`), oldest first.
    async fn audit(&self, id: &AccountId) -> Result<Vec<AuditRecord>, StoreError>;

    /// The account holding the phone with this lookup hash.
    async fn account_by_phone(&self, hash: &[u8]) -> Result<Option<AccountRecord>, StoreError>;

    /// The identities with this openid in any app, with their accounts.
    async fn identities_by_openid(&self, openid: &str) -> Result<Vec<SessionRecord>, StoreError>;

    /// Every session of an account (expired ones too, until purged), oldest first.
    async fn sessions_of(&self, id: &AccountId) -> Result<Vec<SessionSummary>, StoreError>;

    /// The scan logins the account's identities scanned (until purged), oldest first.
    async fn scans_of(&self, id: &AccountId) -> Result<Vec<ScanSummary>, StoreError>;

    /// The audit events about one identity (its keyed hash), also after it was deleted, oldest first.
    async fn audit_by_subject(&self, subject: &[u8]) -> Result<Vec<AuditRecord>, StoreError>;

    /// Remembers a WeChat push delivery until `expires_at`; false if it was seen already (a replay).
    async fn note_push(&self, digest: &[u8; 32], expires_at: UnixTime) -> Result<bool, StoreError>;

    /// Forgets a push delivery noted by [`Store::note_push`] (acting on it failed: WeChat will retry it).
    async fn forget_push(&self, digest: &[u8; 32]) -> Result<(), StoreError>;

    async fn create_ticket(&self, ticket: NewTicket) -> Result<(), StoreError>;

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

    /// Some stored phone, if there is any (to check the data key against it).
    async fn any_phone(&self) -> Result<Option<StoredPhone>, StoreError>;

    /// Deletes sessions and tickets with `expires_at <= now`; how many rows went.
    /// A new scan login (web login through the mini program).
    async fn create_qr_login(&self, login: NewQrLogin) -> Result<(), StoreError>;

    /// A scan login by id, also past its expiry (until purged).
    async fn qr_login(&self, id: &str) -> Result<Option<QrLoginRecord>, StoreError>;

    /// Makes `change` if the scan login is in the state the change expects; `false`: it was not, nothing changed.
    async fn change_qr_login(
        &self,
        id: &str,
        change: QrChange<'_>,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// Tells every instance sharing this store that scan login `id` changed (PostgreSQL: `NOTIFY`, sent when the
    /// change is already committed). A store only one instance can use has nobody to tell.
    async fn announce_qr_login(&self, id: &str) -> Result<(), StoreError>;

    /// What other instances announce; `None` when only one instance can use this store.
    async fn qr_announcements(&self) -> Result<Option<Box<dyn Announcements>>, StoreError>;

    /// One batch of the purge: at most [`PURGE_BATCH`] expired rows of each table (sessions, login tickets, spent
    /// refresh tokens, push deliveries, scan logins), each table's batch a transaction of its own. Answers the rows
    /// deleted: fewer than [`PURGE_BATCH`] means nothing expired is left.
    async fn purge_expired_batch(&self, now: UnixTime) -> Result<u64, StoreError>;

    /// Every expired row, batch after batch. After each batch it waits `pace` times as long as the batch took, so
    /// it holds the database (SQLite's one writer) at most 1/(1 + `pace`) of the time; 0 runs them back to back.
    async fn purge_expired(&self, now: UnixTime, pace: u32) -> Result<u64, StoreError> {
        let mut purged = 0;
        loop {
            let batch = std::time::Instant::now();
            let deleted = self.purge_expired_batch(now).await?;
            purged += deleted;
            if deleted < PURGE_BATCH as u64 {
                return Ok(purged);
            }
            if pace > 0 {
                tokio::time::sleep(batch.elapsed() * pace).await;
            }
        }
    }

    /// Cheap liveness check for /readyz, bounded by a short timeout.
    async fn ping(&self) -> Result<(), StoreError>;

    async fn count_accounts(&self) -> Result<i64, StoreError>;
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

    #[test]
    fn account_ids_parse_only_their_shape() {
        let id = AccountId::generate();
        assert_eq!(AccountId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.as_str().len(), 28);
        assert_eq!(AccountId::parse("acc_XYZ"), None);
        assert_eq!(AccountId::parse(&id.as_str().to_uppercase()), None);
    }
}
