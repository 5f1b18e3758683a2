//! The store's error type and the one place that decides which database failures are "unavailable" (the
//! service answers 503 and a retry may succeed) rather than a bug or a bad row.

use sqlx::migrate::MigrateError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connection refused or reset, pool timed out, I/O: the service answers 503.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("invalid database url: {0}")]
    Config(String),
    /// A write did not find what it was decided on (another login changed it first, a unique index refused it,
    /// or the account it names is gone): decide again on fresh data.
    #[error("a concurrent write changed the rows this write expected")]
    Conflict,
    /// The login ticket to consume is no longer live.
    #[error("the login ticket is no longer live")]
    TicketGone,
    /// The scan login's tokens were collected already, or can no longer be.
    #[error("the scan login's tokens were collected already")]
    QrCollected,
}

impl StoreError {
    /// A database that did not answer in time is as good as down.
    pub(super) fn timed_out(what: &'static str) -> Self {
        let timed_out =
            std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timed out"));
        StoreError::Unavailable(sqlx::Error::Io(timed_out))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Configuration(cause) => StoreError::Config(cause.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            // A step that names an account a concurrent login deleted (merged it away): `CreateIdentity` or
            // `Merge { into }` then fails on `identities.account_id`'s foreign key. Like a step that finds no row,
            // the plan was decided on stale data: decide again.
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::Conflict,
            _ if is_unavailable(&err) => StoreError::Unavailable(err),
            _ => StoreError::Database(err),
        }
    }
}

impl From<MigrateError> for StoreError {
    fn from(err: MigrateError) -> Self {
        match err {
            // A migration that failed because the database went away is an outage, not a broken migration.
            MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _)
                if is_unavailable(&inner) =>
            {
                StoreError::Unavailable(inner)
            }
            other => StoreError::Database(sqlx::Error::Migrate(Box::new(other))),
        }
    }
}

fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_unavailable_code(&code)),
        _ => false,
    }
}

/// SQLSTATEs (PostgreSQL) and result codes (SQLite) that mean "the database cannot serve now".
fn is_unavailable_code(code: &str) -> bool {
    // PostgreSQL, https://www.postgresql.org/docs/current/errcodes-appendix.html:
    // class 08 connection exception; class 53 insufficient resources (too many connections, disk full, out of
    // memory); 57P01..57P05 admin/crash shutdown, cannot connect now, idle timeouts.
    if code.starts_with("08") || code.starts_with("53") || code.starts_with("57P") {
        return true;
    }
    // SQLite reports extended result codes; the primary code is the low byte
    // (https://www.sqlite.org/rescode.html). BUSY/LOCKED after busy_timeout, IOERR, FULL, CANTOPEN.
    match code.parse::<i32>() {
        Ok(extended) => matches!(extended & 0xff, 5 | 6 | 10 | 13 | 14),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_that_mean_unavailable() {
        for code in [
            "08006", "08001", "53300", "57P01", "57P03", "5", "517", "10", "3850", "14",
        ] {
            assert!(is_unavailable_code(code), "{code}");
        }
        for code in ["23505", "23503", "42P01", "40P01", "19", "2067", "787"] {
            assert!(!is_unavailable_code(code), "{code}");
        }
    }

    #[test]
    fn transport_errors_are_unavailable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            StoreError::from(sqlx::Error::Io(refused)),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::Database(_)
        ));
    }
}
