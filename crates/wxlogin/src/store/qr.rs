//! What the store keeps of a web login through the mini program (`qr_logins`): the code shown on a web page, who
//! scanned it, what they decided, and whether the web's tokens were collected. Each change is one conditional
//! `UPDATE`, so two instances (or a double tap) cannot both make it.

use super::queries::{Arg, Query, bytes, query, text};
use super::{StoreError, UnixTime};

/// A scan login's status as stored. `expired` is not stored: it is `pending` or `scanned` past `expires_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QrStatus {
    Pending,
    Scanned,
    Confirmed,
    Denied,
}

impl QrStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QrStatus::Pending => "pending",
            QrStatus::Scanned => "scanned",
            QrStatus::Confirmed => "confirmed",
            QrStatus::Denied => "denied",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "pending" => Ok(QrStatus::Pending),
            "scanned" => Ok(QrStatus::Scanned),
            "confirmed" => Ok(QrStatus::Confirmed),
            "denied" => Ok(QrStatus::Denied),
            other => Err(StoreError::Database(sqlx::Error::Decode(
                format!("unknown scan login status {other:?}").into(),
            ))),
        }
    }
}

/// The web page's request, shown on the phone so a user can tell their own browser from a phishing page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebClient {
    pub ip: String,
    pub user_agent: Option<String>,
    pub origin: Option<String>,
}

/// The mini program user who scanned a code: only they may confirm or deny it, and the web's session is theirs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scanner {
    pub appid: String,
    pub openid: String,
}

/// A scan login to create.
#[derive(Clone, Debug)]
pub struct NewQrLogin {
    pub id: String,
    pub appid: String,
    /// SHA-256 of the poll token.
    pub poll_hash: [u8; 32],
    pub web: WebClient,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A scan login as stored.
#[derive(Clone, Debug)]
pub struct QrLoginRecord {
    pub id: String,
    pub appid: String,
    pub poll_hash: Vec<u8>,
    pub status: QrStatus,
    /// What the web's last poll was answered.
    pub reported: QrStatus,
    pub web: WebClient,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub scanned_by: Option<Scanner>,
    /// The web's tokens were collected.
    pub delivered: bool,
}

/// A change [`super::Store::change_qr_login`] makes only from the state it expects.
#[derive(Clone, Copy, Debug)]
pub enum QrChange<'a> {
    /// `pending` → `scanned` by this user (again by the same user: unchanged, still a success). Before expiry.
    Scan(&'a Scanner),
    /// `scanned` by this user → `confirmed` or `denied`. Before expiry.
    Decide { by: &'a Scanner, to: QrStatus },
    /// The web's poll was answered this status.
    Reported(QrStatus),
}

#[derive(sqlx::FromRow)]
pub(super) struct QrLoginRow {
    id: String,
    appid: String,
    poll_hash: Vec<u8>,
    status: String,
    reported: String,
    web_ip: String,
    web_user_agent: Option<String>,
    web_origin: Option<String>,
    created_at: i64,
    expires_at: i64,
    scanned_appid: Option<String>,
    scanned_openid: Option<String>,
    delivered_at: Option<i64>,
}

impl TryFrom<QrLoginRow> for QrLoginRecord {
    type Error = StoreError;

    fn try_from(row: QrLoginRow) -> Result<Self, StoreError> {
        let scanned_by = match (row.scanned_appid, row.scanned_openid) {
            (Some(appid), Some(openid)) => Some(Scanner { appid, openid }),
            _ => None,
        };
        Ok(QrLoginRecord {
            id: row.id,
            appid: row.appid,
            poll_hash: row.poll_hash,
            status: QrStatus::parse(&row.status)?,
            reported: QrStatus::parse(&row.reported)?,
            web: WebClient {
                ip: row.web_ip,
                user_agent: row.web_user_agent,
                origin: row.web_origin,
            },
            created_at: row.created_at,
            expires_at: row.expires_at,
            scanned_by,
            delivered: row.delivered_at.is_some(),
        })
    }
}

// ---- statements ----

pub(super) fn insert(login: &NewQrLogin) -> Query {
    query(
        "INSERT INTO qr_logins (id, appid, poll_hash, status, reported, web_ip, web_user_agent, web_origin, \
         created_at, expires_at) VALUES ($1, $2, $3, 'pending', 'pending', $4, $5, $6, $7, $8)",
        vec![
            text(&login.id),
            text(&login.appid),
            bytes(&login.poll_hash),
            text(&login.web.ip),
            Arg::OptText(login.web.user_agent.clone()),
            Arg::OptText(login.web.origin.clone()),
            Arg::Int(login.created_at),
            Arg::Int(login.expires_at),
        ],
    )
}

pub(super) fn select(id: &str) -> Query {
    query(
        "SELECT id, appid, poll_hash, status, reported, web_ip, web_user_agent, web_origin, created_at, \
         expires_at, scanned_appid, scanned_openid, delivered_at FROM qr_logins WHERE id = $1",
        vec![text(id)],
    )
}

pub(super) fn change(id: &str, change: QrChange<'_>, now: UnixTime) -> Query {
    match change {
        QrChange::Scan(by) => query(
            "UPDATE qr_logins SET status = 'scanned', scanned_appid = $2, scanned_openid = $3, \
             scanned_at = COALESCE(scanned_at, $4) \
             WHERE id = $1 AND appid = $2 AND expires_at > $4 AND (status = 'pending' \
             OR (status = 'scanned' AND scanned_appid = $2 AND scanned_openid = $3))",
            vec![text(id), text(&by.appid), text(&by.openid), Arg::Int(now)],
        ),
        QrChange::Decide { by, to } => query(
            "UPDATE qr_logins SET status = $5, decided_at = $4 \
             WHERE id = $1 AND expires_at > $4 AND status = 'scanned' \
             AND scanned_appid = $2 AND scanned_openid = $3",
            vec![
                text(id),
                text(&by.appid),
                text(&by.openid),
                Arg::Int(now),
                text(to.as_str()),
            ],
        ),
        QrChange::Reported(status) => query(
            "UPDATE qr_logins SET reported = $2 WHERE id = $1",
            vec![text(id), text(status.as_str())],
        ),
    }
}

/// Marks a confirmed login's tokens collected, if they were not and it is still collectable (`collectable_after`:
/// the oldest `expires_at` still collectable); part of the same write as the web's session.
pub(super) fn claim(id: &str, now: UnixTime, collectable_after: UnixTime) -> Query {
    query(
        "UPDATE qr_logins SET delivered_at = $2, reported = 'confirmed' \
         WHERE id = $1 AND status = 'confirmed' AND delivered_at IS NULL AND expires_at > $3",
        vec![text(id), Arg::Int(now), Arg::Int(collectable_after)],
    )
}
