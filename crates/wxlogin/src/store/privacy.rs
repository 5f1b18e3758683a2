//! Personal data: what is held about an account (for its export and for operators), and the writes that delete
//! it (design.md, "Personal data and operations").
//!
//! A deletion leaves no row that holds the account's phone (sealed or hashed), unionid, identities, sessions,
//! refresh tokens, login tickets or scan logins. What stays is the audit log, which names people by account id and
//! keyed hashes only.

use super::queries::{Arg, Expect, Query, Statement, bytes, query, text};
use super::{AccountId, IdentityId, UnixTime};

/// A session of an account as its owner may see it: never its token or refresh hashes.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionSummary {
    pub appid: String,
    pub openid: String,
    pub created_at: UnixTime,
    /// The refresh token's expiry (it moves on at each refresh).
    pub expires_at: UnixTime,
    /// The session's absolute end (`None`: an opaque session of an earlier release).
    pub ends_at: Option<UnixTime>,
}

/// A scan login (web login through the mini program) one of the account's identities scanned: what the web page
/// that asked told us about itself.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ScanSummary {
    pub id: String,
    pub appid: String,
    pub status: String,
    pub web_ip: String,
    pub web_user_agent: Option<String>,
    pub web_origin: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// Which of the account's identities scanned it.
    pub scanned_appid: String,
    pub scanned_openid: String,
    pub scanned_at: Option<UnixTime>,
    pub decided_at: Option<UnixTime>,
    /// When the web page collected the tokens of her confirmation (the web login happened).
    pub delivered_at: Option<UnixTime>,
}

// ---- reads ----

pub(super) fn sessions_of(id: &AccountId) -> Query {
    query(
        "SELECT i.appid, i.openid, s.created_at, s.expires_at, s.ends_at \
         FROM sessions s JOIN identities i ON i.id = s.identity_id \
         WHERE i.account_id = $1 ORDER BY s.created_at, i.id",
        vec![text(id.as_str())],
    )
}

pub(super) fn scans_of(id: &AccountId) -> Query {
    query(
        "SELECT q.id, q.appid, q.status, q.web_ip, q.web_user_agent, q.web_origin, q.created_at, q.expires_at, \
                i.appid AS scanned_appid, i.openid AS scanned_openid, q.scanned_at, q.decided_at, q.delivered_at \
         FROM qr_logins q JOIN identities i ON i.appid = q.scanned_appid AND i.openid = q.scanned_openid \
         WHERE i.account_id = $1 ORDER BY q.created_at, q.id",
        vec![text(id.as_str())],
    )
}

/// The account holding the phone with this lookup hash (the unique index on `phone_hash`).
pub(super) fn account_by_phone(hash: &[u8]) -> Query {
    query(
        "SELECT a.id, a.unionid, a.phone_enc, a.phone_hash, a.phone_appid, a.phone_openid, a.created_at, a.updated_at \
         FROM accounts a WHERE a.phone_hash = $1",
        vec![bytes(hash)],
    )
}

/// The identities with this openid, whatever their app (openids are per app, so at most one in practice), with
/// their accounts (the columns of `queries::identity`).
pub(super) fn identities_by_openid(openid: &str) -> Query {
    query(
        "SELECT a.id, a.unionid, a.phone_enc, a.phone_hash, a.phone_appid, a.phone_openid, a.created_at, a.updated_at, \
             i.id AS identity_id, i.appid, i.openid, i.created_at AS identity_created_at, i.updated_at AS identity_updated_at \
         FROM identities i JOIN accounts a ON a.id = i.account_id WHERE i.openid = $1 ORDER BY i.id",
        vec![text(openid)],
    )
}

/// Audit events about one identity (its keyed hash), also after it was deleted.
pub(super) fn audit_by_subject(subject: &[u8]) -> Query {
    query(
        "SELECT at, event, account_id, other_account, appid, subject, reason FROM audit_log \
         WHERE subject = $1 ORDER BY id",
        vec![bytes(subject)],
    )
}

/// Remembers a push delivery; no row inserted means it was seen already (a replay).
pub(super) fn note_push(digest: &[u8; 32], expires_at: UnixTime) -> Statement {
    Statement::counted(query(
        "INSERT INTO wechat_pushes (digest, expires_at) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
        vec![bytes(digest), Arg::Int(expires_at)],
    ))
}

pub(super) fn forget_push(digest: &[u8; 32]) -> Statement {
    Statement::any(query(
        "DELETE FROM wechat_pushes WHERE digest = $1",
        vec![bytes(digest)],
    ))
}

// ---- writes (the statements of the privacy steps of a plan) ----

/// [`super::Step::EndSessions`]: every session of the account, and the spent refresh tokens that name them.
pub(super) fn end_sessions(account: &AccountId, out: &mut Vec<Statement>) {
    out.push(Statement::any(query(
        "DELETE FROM refresh_spent WHERE session_id IN (SELECT s.token_hash FROM sessions s \
         JOIN identities i ON i.id = s.identity_id WHERE i.account_id = $1)",
        vec![text(account.as_str())],
    )));
    out.push(Statement::any(query(
        "DELETE FROM sessions WHERE identity_id IN (SELECT id FROM identities WHERE account_id = $1)",
        vec![text(account.as_str())],
    )));
}

/// [`super::Step::RemovePhone`]: the account keeps its identities but no phone (the next login asks for one), and
/// its sessions end. Idempotent: an account without a phone only has its sessions ended.
pub(super) fn remove_phone(account: &AccountId, now: UnixTime, out: &mut Vec<Statement>) {
    out.push(Statement::any(query(
        "UPDATE accounts SET phone_enc = NULL, phone_hash = NULL, phone_appid = NULL, phone_openid = NULL, \
         updated_at = $2 WHERE id = $1 AND phone_hash IS NOT NULL",
        vec![text(account.as_str()), Arg::Int(now)],
    )));
    end_sessions(account, out);
}

/// [`super::Step::DeleteIdentity`]: the identity, its sessions, the login tickets and scan logins of its
/// `(appid, openid)`. Gone already → conflict (decide again).
pub(super) fn delete_identity(id: IdentityId, out: &mut Vec<Statement>) {
    let of_identity = |sql: &'static str| Statement::any(query(sql, vec![Arg::Int(id.0)]));
    out.push(of_identity(
        "DELETE FROM login_tickets WHERE EXISTS (SELECT 1 FROM identities i WHERE i.id = $1 \
         AND i.appid = login_tickets.appid AND i.openid = login_tickets.openid)",
    ));
    out.push(of_identity(
        "DELETE FROM qr_logins WHERE EXISTS (SELECT 1 FROM identities i WHERE i.id = $1 \
         AND i.appid = qr_logins.scanned_appid AND i.openid = qr_logins.scanned_openid)",
    ));
    out.push(of_identity(
        "DELETE FROM refresh_spent WHERE session_id IN (SELECT token_hash FROM sessions WHERE identity_id = $1)",
    ));
    out.push(of_identity("DELETE FROM sessions WHERE identity_id = $1"));
    out.push(Statement {
        query: query("DELETE FROM identities WHERE id = $1", vec![Arg::Int(id.0)]),
        expect: Expect::OneElseConflict,
    });
}

/// [`super::Step::DeleteAccount`]: the account and everything of its identities. `identities` is how many it had
/// when the deletion was decided: a login that linked another one since makes it a conflict (decide again).
pub(super) fn delete_account(
    account: &AccountId,
    identities: usize,
    now: UnixTime,
    out: &mut Vec<Statement>,
) {
    let id = || vec![text(account.as_str())];
    out.push(Statement {
        query: query(
            "UPDATE accounts SET updated_at = $3 WHERE id = $1 \
             AND (SELECT COUNT(*) FROM identities WHERE account_id = $1) = $2",
            vec![
                text(account.as_str()),
                Arg::Int(identities as i64),
                Arg::Int(now),
            ],
        ),
        expect: Expect::OneElseConflict,
    });
    out.push(Statement::any(query(
        "DELETE FROM login_tickets WHERE EXISTS (SELECT 1 FROM identities i WHERE i.account_id = $1 \
         AND i.appid = login_tickets.appid AND i.openid = login_tickets.openid)",
        id(),
    )));
    out.push(Statement::any(query(
        "DELETE FROM qr_logins WHERE EXISTS (SELECT 1 FROM identities i WHERE i.account_id = $1 \
         AND i.appid = qr_logins.scanned_appid AND i.openid = qr_logins.scanned_openid)",
        id(),
    )));
    end_sessions(account, out);
    out.push(Statement::any(query(
        "DELETE FROM identities WHERE account_id = $1",
        id(),
    )));
    out.push(Statement {
        query: query("DELETE FROM accounts WHERE id = $1", id()),
        expect: Expect::OneElseConflict,
    });
}
