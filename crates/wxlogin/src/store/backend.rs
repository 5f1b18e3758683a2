//! What a database must do for the store: run a query and decode its rows, and run a write's statements in one
//! transaction. Everything above this (`sql_store.rs`) is written once for both databases.

use super::StoreError;
use super::queries::{Arg, Dialect, Expect, Query, Statement};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

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

    /// Runs the statements in one transaction and answers how many rows each changed; a statement whose row
    /// count is not what it expects rolls all of them back (see [`check`]).
    async fn write(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StoreError>;

    /// One write that answers a row (`UPDATE … RETURNING`).
    async fn write_returning<T: Record>(&self, query: Query) -> Result<Option<T>, StoreError>;

    async fn ping(&self) -> Result<(), StoreError>;
}

/// The error for a statement that changed `rows` rows, if that is not what it expects.
pub(super) fn check(expect: Expect, rows: u64) -> Result<(), StoreError> {
    match (expect, rows) {
        (Expect::Any, _) | (_, 1) => Ok(()),
        (Expect::OneElseConflict, _) => Err(StoreError::Conflict),
        (Expect::OneElseTicketGone, _) => Err(StoreError::TicketGone),
    }
}

/// Binds a query's arguments for driver `DB`. (The bounds say: every kind of [`Arg`] encodes for this driver.)
pub(super) fn bind<'q, DB>(query: &'q Query) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q [u8]>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut bound = sqlx::query::<DB>(query.sql);
    for arg in &query.args {
        bound = match arg {
            Arg::Int(v) => bound.bind(*v),
            Arg::Text(v) => bound.bind(v.as_str()),
            Arg::OptText(v) => bound.bind(v.as_deref()),
            Arg::Bytes(v) => bound.bind(v.as_slice()),
            Arg::OptBytes(v) => bound.bind(v.as_deref()),
        };
    }
    bound
}

/// Like [`bind`], decoding rows as `T`.
pub(super) fn bind_as<'q, DB, T>(query: &'q Query) -> sqlx::query::QueryAs<'q, DB, T, DB::Arguments>
where
    DB: sqlx::Database,
    T: for<'r> sqlx::FromRow<'r, DB::Row>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q [u8]>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut bound = sqlx::query_as::<DB, T>(query.sql);
    for arg in &query.args {
        bound = match arg {
            Arg::Int(v) => bound.bind(*v),
            Arg::Text(v) => bound.bind(v.as_str()),
            Arg::OptText(v) => bound.bind(v.as_deref()),
            Arg::Bytes(v) => bound.bind(v.as_slice()),
            Arg::OptBytes(v) => bound.bind(v.as_deref()),
        };
    }
    bound
}
