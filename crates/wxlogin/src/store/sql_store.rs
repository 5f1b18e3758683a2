//! The [`Store`] trait, implemented once over a [`Backend`]: each method is a query from `queries.rs` (or a plan's
//! statements from `writes.rs`) and what its rows become (`rows.rs`). A backend only runs statements: a query and
//! its rows, or a write's statements in one transaction.

use super::queries::{self, Dialect, Expect, Query, Statement};
use super::rows::{
    AccountRow, AuditRow, CandidateRow, IdentityRow, SessionRow, SigningKeyRow, TicketRow,
};
use super::writes;
use super::{
    AccountId, AccountRecord, AuditRecord, Candidate, IdentityRecord, NewTicket, Plan, QuickLogin,
    QuickOutcome, Rotation, RotationOutcome, SessionKeys, SessionRecord, SigningKeyRecord, Store,
    StoreError, StoredPhone, TicketReservation, UnixTime,
};
use super::{Announcements, NewQrLogin, QrChange, QrLoginRecord, qr};
use super::{ScanSummary, SessionSummary, privacy};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

/// A store on one database.
pub struct SqlStore<B> {
    pub(super) db: B,
}

impl<B: Backend> SqlStore<B> {
    async fn one<R: Record, T: From<R>>(
        &self,
        query: queries::Query,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.db.read_optional::<R>(query).await?.map(T::from))
    }

    async fn all<R: Record, T: From<R>>(
        &self,
        query: queries::Query,
    ) -> Result<Vec<T>, StoreError> {
        Ok(self
            .db
            .read_all::<R>(query)
            .await?
            .into_iter()
            .map(T::from)
            .collect())
    }
}

#[async_trait::async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn link_candidates(
        &self,
        appid: &str,
        openid: &str,
        unionid: Option<&str>,
        phone_hash: Option<&[u8]>,
    ) -> Result<Vec<Candidate>, StoreError> {
        self.all::<CandidateRow, _>(queries::link_candidates(appid, openid, unionid, phone_hash))
            .await
    }

    async fn quick_login(
        &self,
        login: QuickLogin,
        now: UnixTime,
    ) -> Result<QuickOutcome, StoreError> {
        let (statements, account_row) = writes::quick_login(&login, now, B::DIALECT);
        match self.db.write(statements).await {
            Ok(rows) if rows[account_row] == 1 => Ok(QuickOutcome::Created),
            Ok(_) => Ok(QuickOutcome::Returning),
            // The session found no account holding the phone, or a concurrent login took the identity, phone or
            // unionid first (a unique index): nothing was written.
            Err(StoreError::Conflict) => Ok(QuickOutcome::Neither),
            Err(other) => Err(other),
        }
    }

    async fn identity(
        &self,
        appid: &str,
        openid: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.one::<SessionRow, _>(queries::identity(appid, openid))
            .await
    }

    async fn apply(&self, plan: Plan) -> Result<(), StoreError> {
        self.db
            .write(writes::plan(&plan, B::DIALECT))
            .await
            .map(drop)
    }

    async fn session(
        &self,
        keys: &SessionKeys,
        appid: &str,
        now: UnixTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.one::<SessionRow, _>(queries::session(keys, now, appid))
            .await
    }

    async fn session_by_id(
        &self,
        session: &[u8; 32],
        now: UnixTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.one::<SessionRow, _>(queries::session_by_id(session, now))
            .await
    }

    async fn rotate_refresh(&self, rotation: Rotation) -> Result<RotationOutcome, StoreError> {
        // The session is read in the rotation's own transaction: one trip to the database per refresh, not a read
        // and then a write (on SQLite each trip is a handoff to another thread; bench scenario e).
        let rotated = self
            .db
            .write_then_read::<SessionRow>(
                writes::rotate_refresh(&rotation, B::DIALECT),
                queries::session_by_id(&rotation.session, rotation.now),
            )
            .await;
        match rotated {
            Ok(Some(session)) => return Ok(RotationOutcome::Rotated(Box::new(session.into()))),
            // Rotated, yet not live right after: nothing to mint from (the rotation never shortens a session to
            // now, so this does not happen); the spent token fails like any invalid one.
            Ok(None) => return Ok(RotationOutcome::Invalid),
            Err(StoreError::Conflict) => {}
            Err(other) => return Err(other),
        }
        // Not this session's current secret: a spent one of it is a reuse; anything else is just invalid.
        let spent: Option<(Vec<u8>,)> = self
            .db
            .read_optional(queries::refresh_spent(&rotation.presented))
            .await?;
        if spent.is_none_or(|(session,)| session != rotation.session) {
            return Ok(RotationOutcome::Invalid);
        }
        let end = Statement::any(queries::delete_session_by_id(&rotation.session));
        self.db.write(vec![end]).await?;
        Ok(RotationOutcome::Reused)
    }

    async fn end_session_with_refresh(
        &self,
        session: &[u8; 32],
        secret_hash: &[u8; 32],
    ) -> Result<bool, StoreError> {
        let end = Statement::counted(queries::delete_session_with_refresh(session, secret_hash));
        Ok(self.db.write(vec![end]).await?.iter().sum::<u64>() > 0)
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.all::<SigningKeyRow, _>(queries::signing_keys()).await
    }

    async fn add_signing_key(&self, key: SigningKeyRecord) -> Result<bool, StoreError> {
        let added = self.db.write(vec![writes::add_signing_key(&key)]).await?;
        Ok(added.iter().sum::<u64>() > 0)
    }

    async fn delete_session(&self, keys: &SessionKeys, appid: &str) -> Result<bool, StoreError> {
        let deleted = self
            .db
            .write(vec![Statement::any(queries::delete_session(keys, appid))])
            .await?;
        Ok(deleted.iter().sum::<u64>() > 0)
    }

    async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        self.one::<AccountRow, _>(queries::account(id)).await
    }

    async fn identities(&self, id: &AccountId) -> Result<Vec<IdentityRecord>, StoreError> {
        self.all::<IdentityRow, _>(queries::identities(id)).await
    }

    async fn audit(&self, id: &AccountId) -> Result<Vec<AuditRecord>, StoreError> {
        self.db
            .read_all::<AuditRow>(queries::audit(id))
            .await?
            .into_iter()
            .map(AuditRecord::try_from)
            .collect()
    }

    async fn account_by_phone(&self, hash: &[u8]) -> Result<Option<AccountRecord>, StoreError> {
        self.one::<AccountRow, _>(privacy::account_by_phone(hash))
            .await
    }

    async fn identities_by_openid(&self, openid: &str) -> Result<Vec<SessionRecord>, StoreError> {
        self.all::<SessionRow, _>(privacy::identities_by_openid(openid))
            .await
    }

    async fn sessions_of(&self, id: &AccountId) -> Result<Vec<SessionSummary>, StoreError> {
        self.all::<SessionSummary, _>(privacy::sessions_of(id))
            .await
    }

    async fn scans_of(&self, id: &AccountId) -> Result<Vec<ScanSummary>, StoreError> {
        self.all::<ScanSummary, _>(privacy::scans_of(id)).await
    }

    async fn audit_by_subject(&self, subject: &[u8]) -> Result<Vec<AuditRecord>, StoreError> {
        self.db
            .read_all::<AuditRow>(privacy::audit_by_subject(subject))
            .await?
            .into_iter()
            .map(AuditRecord::try_from)
            .collect()
    }

    async fn note_push(&self, digest: &[u8; 32], expires_at: UnixTime) -> Result<bool, StoreError> {
        let inserted = self
            .db
            .write(vec![privacy::note_push(digest, expires_at)])
            .await?;
        Ok(inserted.iter().sum::<u64>() > 0)
    }

    async fn forget_push(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.db
            .write(vec![privacy::forget_push(digest)])
            .await
            .map(drop)
    }

    async fn create_ticket(&self, ticket: NewTicket) -> Result<(), StoreError> {
        self.db
            .write(vec![Statement::any(queries::insert_ticket(&ticket))])
            .await
            .map(drop)
    }

    async fn reserve_ticket(
        &self,
        ticket_hash: &[u8; 32],
        appid: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<TicketReservation, StoreError> {
        // UPDATE … RETURNING on the writer: reads through the write path so the reservation is what decides.
        let reserved: Option<TicketRow> = self
            .db
            .write_returning(queries::reserve_ticket(ticket_hash, now, until, appid))
            .await?;
        if let Some(row) = reserved {
            return Ok(TicketReservation::Reserved(row.into()));
        }
        let live: Option<(i64,)> = self
            .db
            .read_optional(queries::ticket_live(ticket_hash, now, appid))
            .await?;
        let live = live.map_or(0, |(n,)| n);
        Ok(if live > 0 {
            TicketReservation::InUse
        } else {
            TicketReservation::Invalid
        })
    }

    async fn release_ticket(
        &self,
        ticket_hash: &[u8; 32],
        phone_code_refused: bool,
        max_failures: Option<u32>,
    ) -> Result<bool, StoreError> {
        if !phone_code_refused {
            let release = Statement::any(queries::release_ticket(ticket_hash));
            self.db.write(vec![release]).await?;
            return Ok(false);
        }
        let failures: Option<(i64,)> = self
            .db
            .write_returning(queries::fail_ticket(ticket_hash))
            .await?;
        let failures = failures.map(|(n,)| n);
        match (failures, max_failures) {
            (Some(failures), Some(max)) if failures >= i64::from(max) => {
                let delete = Statement::any(queries::delete_ticket(ticket_hash));
                self.db.write(vec![delete]).await?;
                Ok(true)
            }
            (Some(_), _) => Ok(false),
            // Gone already (consumed or purged): spent.
            (None, _) => Ok(true),
        }
    }

    async fn meta_get_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let insert = Statement::any(queries::meta_insert(name, value));
        self.db.write(vec![insert]).await?;
        self.meta_get(name)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    async fn meta_get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let value: Option<(Vec<u8>,)> = self.db.read_optional(queries::meta_get(name)).await?;
        Ok(value.map(|(v,)| v))
    }

    async fn any_phone(&self) -> Result<Option<StoredPhone>, StoreError> {
        let account: Option<AccountRecord> =
            self.one::<AccountRow, _>(queries::any_phone()).await?;
        Ok(account.and_then(|a| a.phone))
    }

    async fn create_qr_login(&self, login: NewQrLogin) -> Result<(), StoreError> {
        let insert = Statement::any(qr::insert(&login));
        self.db.write(vec![insert]).await.map(drop)
    }

    async fn qr_login(&self, id: &str) -> Result<Option<QrLoginRecord>, StoreError> {
        let row: Option<qr::QrLoginRow> = self.db.read_optional(qr::select(id)).await?;
        row.map(QrLoginRecord::try_from).transpose()
    }

    async fn change_qr_login(
        &self,
        id: &str,
        change: QrChange<'_>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let update = Statement::counted(qr::change(id, change, now));
        Ok(self.db.write(vec![update]).await?.iter().sum::<u64>() > 0)
    }

    async fn announce_qr_login(&self, id: &str) -> Result<(), StoreError> {
        self.db.announce(QR_CHANNEL, id).await
    }

    async fn qr_announcements(&self) -> Result<Option<Box<dyn Announcements>>, StoreError> {
        self.db.listen(QR_CHANNEL).await
    }

    async fn purge_expired_batch(&self, now: UnixTime) -> Result<u64, StoreError> {
        let mut purged = 0;
        for batch in queries::purge_batches(B::DIALECT, now) {
            // Each table's batch is a write of its own: other writes queue between them, not behind the purge.
            purged += self.db.write(vec![batch]).await?.iter().sum::<u64>();
        }
        Ok(purged)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await
    }

    async fn count_accounts(&self) -> Result<i64, StoreError> {
        let count: Option<(i64,)> = self.db.read_optional(queries::count_accounts()).await?;
        Ok(count.map_or(0, |(n,)| n))
    }
}

/// A row type both drivers can decode.
pub trait Record:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin + 'static
{
}

impl<T> Record for T where
    T: for<'r> sqlx::FromRow<'r, SqliteRow>
        + for<'r> sqlx::FromRow<'r, PgRow>
        + Send
        + Unpin
        + 'static
{
}

#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    const DIALECT: Dialect;

    /// A read (on SQLite: a reader connection, never waiting for the writer).
    async fn read_optional<T: Record>(&self, query: Query) -> Result<Option<T>, StoreError>;

    async fn read_all<T: Record>(&self, query: Query) -> Result<Vec<T>, StoreError>;

    /// Runs the statements in one transaction and answers how many rows each changed (an `Expect::Any`
    /// statement's count is unspecified: SQLite's write queue does not count them); a statement whose row count
    /// is not what it expects rolls all of them back (see [`check`]).
    async fn write(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StoreError>;

    /// One write that answers a row (`UPDATE … RETURNING`).
    async fn write_returning<T: Record>(&self, query: Query) -> Result<Option<T>, StoreError>;

    /// The statements as [`write`](Self::write) runs them, then `read` in the same transaction: the row as the
    /// write left it, in one trip where a write and a read would take two. Nothing is read if the write fails.
    async fn write_then_read<T: Record>(
        &self,
        statements: Vec<Statement>,
        read: Query,
    ) -> Result<Option<T>, StoreError>;

    async fn ping(&self) -> Result<(), StoreError>;

    /// Announces `payload` on `channel` to every instance listening on this database (see
    /// [`Store::announce_qr_login`]). Only one instance uses an embedded database: nobody to tell.
    async fn announce(&self, _channel: &'static str, _payload: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Listens on `channel`; `None` where only one instance uses the database.
    async fn listen(
        &self,
        _channel: &'static str,
    ) -> Result<Option<Box<dyn Announcements>>, StoreError> {
        Ok(None)
    }
}

/// The channel scan-login changes are announced on.
const QR_CHANNEL: &str = "wxlogin_qr_login";

/// The error for a statement that changed `rows` rows, if that is not what it expects.
pub(super) fn check(expect: Expect, rows: u64) -> Result<(), StoreError> {
    match (expect, rows) {
        (Expect::Any | Expect::Counted, _) | (_, 1) => Ok(()),
        (Expect::OneElseConflict, _) => Err(StoreError::Conflict),
        (Expect::OneElseTicketGone, _) => Err(StoreError::TicketGone),
        (Expect::OneElseQrCollected, _) => Err(StoreError::QrCollected),
    }
}

/// Binds each [`queries::Arg`] of `$args` (an iterator of `&Arg`) to the sqlx query `$query`, in order.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut bound = $query;
        for arg in $args {
            bound = match arg {
                $crate::store::queries::Arg::Int(v) => bound.bind(*v),
                $crate::store::queries::Arg::OptInt(v) => bound.bind(*v),
                $crate::store::queries::Arg::Text(v) => bound.bind(v.as_str()),
                $crate::store::queries::Arg::OptText(v) => bound.bind(v.as_deref()),
                $crate::store::queries::Arg::Bytes(v) => bound.bind(v.as_slice()),
                $crate::store::queries::Arg::OptBytes(v) => bound.bind(v.as_deref()),
            };
        }
        bound
    }};
}
pub(super) use bind_args;

/// Binds a query's arguments for driver `DB`. (The bounds say: every kind of [`Arg`] encodes for this driver.)
pub(super) fn bind<'q, DB>(query: &'q Query) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q [u8]>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    bind_args!(sqlx::query::<DB>(query.sql), &query.args)
}

/// Like [`bind`], decoding rows as `T`.
pub(super) fn bind_as<'q, DB, T>(query: &'q Query) -> sqlx::query::QueryAs<'q, DB, T, DB::Arguments>
where
    DB: sqlx::Database,
    T: for<'r> sqlx::FromRow<'r, DB::Row>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q [u8]>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    bind_args!(sqlx::query_as::<DB, T>(query.sql), &query.args)
}
