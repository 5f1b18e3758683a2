//! The caller's rights over their data (China's PIPL): a copy of everything held (`GET /api/v1/me/export`) and
//! deletion (`DELETE /api/v1/me`). The login core does the work (`logins::privacy`).

use super::edge::{self, AppState, Empty, Success};
use super::error::ApiError;
use crate::logins::privacy::Export;
use crate::store::AuditRecord;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// `DELETE /api/v1/me`: the account is deleted with everything of it (phone, unionid, identities in every app,
/// sessions, refresh tokens, login tickets, scan logins). Every token of it stops working at once; the next login
/// of the same WeChat user makes a new account. The audit log keeps that it happened, by account id only.
#[utoipa::path(delete, path = "/api/v1/me", tag = "account", security(("session" = [])),
    responses((status = 200, description = "the account is deleted", body = Success<Empty>)))]
pub async fn delete_me(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Success<Empty>>, ApiError> {
    let bearer = edge::required_bearer(&headers)?;
    let auth = state
        .logins
        .authenticate(&bearer, || state.app(&headers, None))
        .await?;
    state.logins.delete_me(&auth).await?;
    Ok(Success::new(Empty {}))
}

/// `GET /api/v1/me/export`: every field held about the caller's account, the phone in full.
#[utoipa::path(get, path = "/api/v1/me/export", tag = "account", security(("session" = [])),
    responses((status = 200, description = "everything held about the account", body = Success<ExportAnswer>)))]
pub async fn export(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Success<ExportAnswer>>, ApiError> {
    let bearer = edge::required_bearer(&headers)?;
    let auth = state
        .logins
        .authenticate(&bearer, || state.app(&headers, None))
        .await?;
    let export = state.logins.export(auth).await?;
    let now = state.logins.clock.now();
    Ok(Success::new(ExportAnswer::new(export, now)))
}

// ---- answers ----

/// `/api/v1/me/export`: the account row, and every row that names it or one of its identities.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportAnswer {
    pub account_id: String,
    pub unionid: Option<String>,
    /// In full, as WeChat verified it (`null`: none held).
    pub phone: Option<String>,
    /// The identity that verified the phone (the phone is sealed to it).
    pub phone_verified_by: Option<ExportIdentityRef>,
    pub created_at: i64,
    pub updated_at: i64,
    pub identities: Vec<ExportIdentity>,
    /// Every session (never its tokens: only their hashes are held, and those are not personal).
    pub sessions: Vec<ExportSession>,
    /// Web logins the account confirmed or was asked to, with what the web page said about itself.
    pub scan_logins: Vec<ExportScan>,
    /// The account's audit events.
    pub audit: Vec<ExportAudit>,
    pub exported_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ExportIdentityRef {
    pub appid: String,
    pub openid: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportIdentity {
    pub appid: String,
    pub openid: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportSession {
    pub appid: String,
    pub openid: String,
    pub created_at: i64,
    /// When its refresh token expires (it moves on with each refresh).
    pub expires_at: i64,
    /// When it ends whatever the refreshes.
    pub ends_at: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportScan {
    pub id: String,
    pub appid: String,
    pub status: String,
    pub web_ip: String,
    pub web_user_agent: Option<String>,
    pub web_origin: Option<String>,
    pub created_at: i64,
    /// When the code stopped being good for a login.
    pub expires_at: i64,
    /// Which of the account's identities scanned it.
    pub scanned_by: ExportIdentityRef,
    pub scanned_at: Option<i64>,
    pub decided_at: Option<i64>,
    /// When the web page collected the tokens of the confirmation (`null`: it did not).
    pub delivered_at: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportAudit {
    pub at: i64,
    pub event: String,
    pub appid: Option<String>,
    /// The keyed hash the log names the identity by (hex).
    pub subject: Option<String>,
    /// Why (`user`, `operator`, `wechat_revoke`, `phone`, …). The other account of a `phone_moved` or
    /// `accounts_merged` is someone else's and is left out.
    pub reason: Option<String>,
}

impl ExportAnswer {
    fn new(export: Export, now: i64) -> Self {
        let Export {
            me,
            sessions,
            scans,
            audit,
        } = export;
        let account = me.session.account;
        Self {
            account_id: account.id.as_str().to_owned(),
            unionid: account.unionid,
            phone: me.phone,
            phone_verified_by: account.phone.map(|p| ExportIdentityRef {
                appid: p.appid,
                openid: p.openid,
            }),
            created_at: account.created_at,
            updated_at: account.updated_at,
            identities: me
                .identities
                .into_iter()
                .map(|i| ExportIdentity {
                    appid: i.appid,
                    openid: i.openid,
                    created_at: i.created_at,
                    updated_at: i.updated_at,
                })
                .collect(),
            sessions: sessions
                .into_iter()
                .map(|s| ExportSession {
                    appid: s.appid,
                    openid: s.openid,
                    created_at: s.created_at,
                    expires_at: s.expires_at,
                    ends_at: s.ends_at,
                })
                .collect(),
            scan_logins: scans
                .into_iter()
                .map(|q| ExportScan {
                    id: q.id,
                    appid: q.appid,
                    status: q.status,
                    web_ip: q.web_ip,
                    web_user_agent: q.web_user_agent,
                    web_origin: q.web_origin,
                    created_at: q.created_at,
                    expires_at: q.expires_at,
                    scanned_by: ExportIdentityRef {
                        appid: q.scanned_appid,
                        openid: q.scanned_openid,
                    },
                    scanned_at: q.scanned_at,
                    decided_at: q.decided_at,
                    delivered_at: q.delivered_at,
                })
                .collect(),
            audit: audit.into_iter().map(ExportAudit::from).collect(),
            exported_at: now,
        }
    }
}

impl From<AuditRecord> for ExportAudit {
    fn from(record: AuditRecord) -> Self {
        Self {
            at: record.at,
            event: <&'static str>::from(record.event).to_owned(),
            appid: record.appid,
            subject: record.subject.map(hex::encode),
            reason: record.reason,
        }
    }
}
