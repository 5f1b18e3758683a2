//! Web login through the mini program (scan to log in): HTTP in, a call to the login core
//! ([`crate::logins::qr`]), HTTP out. The web page creates a login and long-polls it with its poll token; the mini
//! program, with its own session, scans, then confirms or denies.

use super::edge::{self, AppState, ClientIp, JsonObject, Success};
use super::error::{ApiError, FieldProblem};
use crate::logins::qr::{Decision, QrState};
use crate::store::WebClient;
use crate::tokens::{PollToken, QrId};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::header::{ORIGIN, USER_AGENT};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// The most of a User-Agent or Origin header kept (and shown on the phone).
const HEADER_KEPT: usize = 512;

/// `POST /api/v1/qr-login {appid?}`: a mini program code for a web page to show.
#[utoipa::path(post, path = "/api/v1/qr-login", tag = "scan login", request_body = QrCreateRequest,
    description = "Creates a scan login for a web page: `image` is a mini program code (getwxacodeunlimit, \
                   `scene` = `id`) that opens the app's confirm page. Rate limited per client IP.",
    responses((status = 200, description = "created", body = Success<QrCreatedAnswer>)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    client: ClientIp,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Json<Success<QrCreatedAnswer>>, ApiError> {
    let app = state.app(&headers, Some(&body))?;
    state.limit_ip(&client).await?;
    let web = WebClient {
        ip: client.0.to_string(),
        user_agent: kept_header(&headers, USER_AGENT.as_str()),
        origin: kept_header(&headers, ORIGIN.as_str()),
    };
    let created = state.logins.qr_create(app, web).await?;
    Ok(Success::new(QrCreatedAnswer {
        id: created.id.as_str().to_owned(),
        poll_token: created.poll_token.expose().to_owned(),
        image: created.image.to_data_url(),
        expires_in: created.expires_in.as_secs(),
    }))
}

/// `GET /api/v1/qr-login/{id}?wait=25` with `Authorization: Bearer <pollToken>`: the long poll.
#[utoipa::path(get, path = "/api/v1/qr-login/{id}", tag = "scan login", security(("poll" = [])),
    params(("id" = String, Path, description = "The scan login's id"),
           ("wait" = Option<u64>, Query, minimum = 0, maximum = 25,
            description = "Seconds to wait for a change (0–25; default 0)")),
    description = "Answers at once when the status changed since the last answer (or is final), else after up \
                   to `wait` seconds. With `confirmed`, the first answer carries the web's login (a session of \
                   its own on the scanner's account); later ones only the status. Without the poll token: 401.",
    responses((status = 200, description = "the status", body = Success<QrPollAnswer>)))]
pub async fn poll(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Success<QrPollAnswer>>, ApiError> {
    let wait = wait(query.as_deref())?;
    let token = edge::bearer_text(&headers)
        .and_then(PollToken::parse)
        .ok_or(ApiError::Unauthorized)?;
    // An id of the wrong shape is as unknown as any other: 401, so a poll learns nothing without the token.
    let id = QrId::parse(&id).ok_or(ApiError::Unauthorized)?;
    let logins = &state.logins;
    // A shutdown ends the wait: the poll answers what is, and the client polls another instance.
    let stopping = state.drain.stopping();
    let answer = tokio::select! {
        answer = logins.qr_poll(&id, &token, wait) => answer?,
        () = stopping => logins.qr_poll(&id, &token, Duration::ZERO).await?,
    };
    Ok(Success::new(QrPollAnswer::from(answer)))
}

/// `POST /api/v1/qr-login/{id}/scan`: the mini program user scanned the code; answers what is asking.
#[utoipa::path(post, path = "/api/v1/qr-login/{id}/scan", tag = "scan login", security(("session" = [])),
    params(("id" = String, Path, description = "The code's scene (`decodeURIComponent(options.scene)`)")),
    description = "From the mini program with its session: the web page's IP, browser and time, for the user to \
                   check before confirming. Only this user may then confirm or deny.",
    responses((status = 200, description = "what is asking", body = Success<QrScanAnswer>)))]
pub async fn scan(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Success<QrScanAnswer>>, ApiError> {
    let auth = authenticated(&state, &headers).await?;
    let id = QrId::parse(&id).ok_or(ApiError::QrLoginNotFound)?;
    let scanned = state.logins.qr_scan(&auth, &id).await?;
    Ok(Success::new(QrScanAnswer {
        status: "scanned",
        ip: scanned.web.ip,
        user_agent: scanned.web.user_agent,
        origin: scanned.web.origin,
        created_at: scanned.created_at,
        expires_in: scanned.expires_in.as_secs(),
    }))
}

/// `POST /api/v1/qr-login/{id}/confirm`: the scanner logs the web page in.
#[utoipa::path(post, path = "/api/v1/qr-login/{id}/confirm", tag = "scan login", security(("session" = [])),
    params(("id" = String, Path, description = "The scan login's id")),
    responses((status = 200, description = "confirmed", body = Success<QrDecisionAnswer>)))]
pub async fn confirm(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Success<QrDecisionAnswer>>, ApiError> {
    decide(&state, &id, &headers, Decision::Confirm).await
}

/// `POST /api/v1/qr-login/{id}/deny`: the scanner refuses.
#[utoipa::path(post, path = "/api/v1/qr-login/{id}/deny", tag = "scan login", security(("session" = [])),
    params(("id" = String, Path, description = "The scan login's id")),
    responses((status = 200, description = "denied", body = Success<QrDecisionAnswer>)))]
pub async fn deny(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Success<QrDecisionAnswer>>, ApiError> {
    decide(&state, &id, &headers, Decision::Deny).await
}

async fn decide(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    decision: Decision,
) -> Result<Json<Success<QrDecisionAnswer>>, ApiError> {
    let auth = authenticated(state, headers).await?;
    let id = QrId::parse(id).ok_or(ApiError::QrLoginNotFound)?;
    state.logins.qr_decide(&auth, &id, decision).await?;
    let status = match decision {
        Decision::Confirm => "confirmed",
        Decision::Deny => "denied",
    };
    Ok(Success::new(QrDecisionAnswer { status }))
}

async fn authenticated(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<crate::logins::Authenticated, ApiError> {
    let bearer = edge::required_bearer(headers)?;
    state
        .logins
        .authenticate(&bearer, || state.app(headers, None))
        .await
}

/// `wait` from the query: whole seconds, at most [`crate::logins::qr::QR_WAIT_MAX`]; absent: 0.
fn wait(query: Option<&str>) -> Result<Duration, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|_| ApiError::field("wait", FieldProblem::Malformed))?;
    match pairs.iter().find(|(name, _)| name == "wait") {
        None => Ok(Duration::ZERO),
        Some((_, value)) => value
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
            .filter(|wait| *wait <= crate::logins::qr::QR_WAIT_MAX)
            .ok_or(ApiError::field("wait", FieldProblem::Malformed)),
    }
}

/// A header's text, cut to [`HEADER_KEPT`] bytes (at a character boundary); absent, empty or not text: `None`.
fn kept_header(headers: &HeaderMap, name: &str) -> Option<String> {
    let text = headers.get(name)?.to_str().ok()?.trim();
    let mut end = text.len().min(HEADER_KEPT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (!text.is_empty()).then(|| text[..end].to_owned())
}

// ---- answers ----

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QrCreatedAnswer {
    /// 22 characters of base64url: the code's `scene`.
    pub id: String,
    /// `wxq_…`: the web page's secret for the poll (`Authorization: Bearer`).
    pub poll_token: String,
    /// `data:image/png;base64,…`: the mini program code.
    pub image: String,
    /// Seconds the code can be scanned and confirmed (120).
    pub expires_in: u64,
}

/// The poll's answer: `status`, and with the first `confirmed` the web's login beside it.
#[derive(Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct QrPollAnswer {
    /// `pending`, `scanned`, `confirmed`, `denied` or `expired`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// The web's access token (a JWT, as every login's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Masked (`138****8000`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
}

impl From<QrState> for QrPollAnswer {
    fn from(state: QrState) -> Self {
        let status = |status| Self {
            status,
            ..Self::default()
        };
        match state {
            QrState::Pending => status("pending"),
            QrState::Scanned => status("scanned"),
            QrState::Denied => status("denied"),
            QrState::Expired => status("expired"),
            QrState::Confirmed(None) => status("confirmed"),
            QrState::Confirmed(Some(login)) => Self {
                status: "confirmed",
                token: Some(login.access_token),
                expires_in: Some(login.expires_in.as_secs()),
                refresh_token: Some(login.refresh_token.expose().to_owned()),
                refresh_expires_in: Some(login.refresh_expires_in.as_secs()),
                account_id: Some(login.account_id.as_str().to_owned()),
                phone: Some(weixin::mask_phone(&login.phone)),
                appid: Some(login.appid),
            },
        }
    }
}

/// What is asking, for the phone to show before the user confirms.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QrScanAnswer {
    /// `"scanned"`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// The web page's client IP (as rate limits see it: behind trusted proxies, the forwarded address).
    pub ip: String,
    pub user_agent: Option<String>,
    /// The web page's `Origin`, when its browser sent one.
    pub origin: Option<String>,
    /// When the web page asked (Unix seconds).
    pub created_at: i64,
    /// Seconds left to confirm.
    pub expires_in: u64,
}

#[derive(Serialize, ToSchema)]
pub struct QrDecisionAnswer {
    /// `confirmed` or `denied`.
    #[schema(value_type = String)]
    pub status: &'static str,
}

/// `/api/v1/qr-login`.
#[derive(ToSchema, serde::Deserialize)]
#[allow(dead_code)]
pub struct QrCreateRequest {
    /// The app whose code to show; else `X-WX-AppId`, or the only app.
    appid: Option<String>,
}
