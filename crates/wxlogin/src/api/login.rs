//! The login routes: HTTP in, a call to the login core ([`crate::logins`]), HTTP out; and their bodies as the
//! OpenAPI document describes them.

use super::edge::{self, AppState, ClientIp, JsonObject, Success};
use super::error::{ApiError, FieldProblem};
use crate::logins::{LoggedIn, Silent};
use crate::tokens::Ticket;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use weixin::{LoginCode, PhoneCode};

/// `POST /api/getPhone {phoneCode, loginCode, appid?}`: the seed's one call.
#[utoipa::path(post, path = "/api/getPhone", tag = "login", request_body = GetPhoneRequest,
    description = "Login and phone number in one call (the seed's). The answer has no `status` field.",
    responses((status = 200, description = "logged in", body = Success<SessionAnswer>)))]
pub async fn get_phone(
    State(state): State<Arc<AppState>>,
    client: ClientIp,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Json<Success<SessionAnswer>>, ApiError> {
    let login_code: LoginCode = body.required("loginCode")?;
    let phone_code: PhoneCode = body.required("phoneCode")?;
    let kind = phone_kind(&body)?;
    let app = state.app(&headers, Some(&body))?;
    state.limit_ip(&client).await?;
    let logged_in = state.logins.one_call(app, &login_code, &phone_code).await?;
    crate::telemetry::record_phone_verification(&logged_in.appid, kind);
    Ok(Success::new(SessionAnswer::seed(logged_in)))
}

/// `POST /api/v1/login {loginCode, appid?}`: silent login.
#[utoipa::path(post, path = "/api/v1/login", tag = "login", request_body = LoginRequest,
    description = "Silent login at launch: `status: ok` with a session, or `status: phone_required` with a ticket.",
    responses((status = 200, description = "logged in, or a ticket for the phone step", body = Success<LoginAnswer>)))]
pub async fn login(
    State(state): State<Arc<AppState>>,
    client: ClientIp,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Json<Success<LoginAnswer>>, ApiError> {
    let code: LoginCode = body.required("loginCode")?;
    let app = state.app(&headers, Some(&body))?;
    state.limit_ip(&client).await?;
    let answer = match state.logins.silent(app, &code).await? {
        Silent::LoggedIn(logged_in) => LoginAnswer::LoggedIn(SessionAnswer::v1(logged_in)),
        Silent::PhoneRequired { ticket, expires_in } => {
            LoginAnswer::PhoneRequired(PhoneRequiredAnswer {
                status: "phone_required",
                ticket: ticket.expose().to_owned(),
                expires_in: expires_in.as_secs(),
            })
        }
    };
    Ok(Success::new(answer))
}

/// `POST /api/v1/phone {phoneCode, ticket, appid?}`, or with a Bearer session instead of the ticket to change
/// the account's phone.
#[utoipa::path(post, path = "/api/v1/phone", tag = "login", request_body = PhoneRequest,
    description = "The phone step: with the ticket, or with a session (`Authorization: Bearer`) to change the \
                   account's phone. WeChat checks the phone code belongs to the ticket's or session's WeChat user.",
    security((), ("session" = [])),
    responses((status = 200, description = "logged in", body = Success<SessionAnswer>)))]
pub async fn phone(
    State(state): State<Arc<AppState>>,
    client: ClientIp,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Json<Success<SessionAnswer>>, ApiError> {
    let phone_code: PhoneCode = body.required("phoneCode")?;
    let kind = phone_kind(&body)?;
    let bearer = edge::bearer(&headers)?;
    let ticket = match bearer {
        Some(_) => None,
        // A ticket of the wrong shape is as stale as an expired one: the client's remedy is the same (log in
        // again).
        None => Some(
            body.optional_text("ticket")?
                .ok_or(ApiError::field("ticket", FieldProblem::Missing))
                .map(Ticket::parse)?
                .ok_or(ApiError::TicketInvalid)?,
        ),
    };
    state.limit_ip(&client).await?;
    let logged_in = match (bearer, ticket) {
        (Some(bearer), _) => {
            let current = state
                .logins
                .authenticate(&bearer, || state.app(&headers, Some(&body)))
                .await?;
            state
                .logins
                .change_phone(&current.app, &current, &phone_code)
                .await?
        }
        (None, Some(ticket)) => {
            let app = state.app(&headers, Some(&body))?;
            state
                .logins
                .phone_with_ticket(app, &ticket, &phone_code)
                .await?
        }
        (None, None) => return Err(ApiError::field("ticket", FieldProblem::Missing)),
    };
    crate::telemetry::record_phone_verification(&logged_in.appid, kind);
    Ok(Success::new(SessionAnswer::v1(logged_in)))
}

/// The optional `phoneKind` (`quick`: getPhoneNumber, the default; `realtime`: getRealtimePhoneNumber): which
/// verification the phone code was, so `/metrics` counts it at its price. The answer does not depend on it.
fn phone_kind(body: &JsonObject) -> Result<weixin::PhoneVerificationKind, ApiError> {
    match body.optional_text("phoneKind")? {
        None => Ok(weixin::PhoneVerificationKind::Quick),
        Some(text) => text
            .parse()
            .map_err(|_| ApiError::field("phoneKind", FieldProblem::Malformed)),
    }
}

// ---- answers ----

/// A logged-in user: a new session on an account.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionAnswer {
    /// `"ok"` on the v1 routes; absent on `/api/getPhone`, whose answer stays exactly the seed's.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable = false)]
    pub status: Option<&'static str>,
    pub account_id: String,
    pub appid: String,
    /// WeChat's `phoneNumber`.
    pub phone: String,
    pub openid: String,
    /// The access token: a JWT (RFC 9068) other services verify with `/.well-known/jwks.json`.
    pub token: String,
    /// The access token's lifetime in seconds (`access_token_ttl`).
    pub expires_in: u64,
    /// Opaque (`wxr_…`): for `/api/v1/refresh` or the refresh grant; each use rotates it.
    pub refresh_token: String,
    /// Seconds the refresh token stays valid unused (`refresh_token_ttl`, sliding; never past
    /// `refresh_absolute_ttl` after the login).
    pub refresh_expires_in: u64,
}

impl SessionAnswer {
    pub fn v1(logged_in: LoggedIn) -> Self {
        Self::with_status(Some("ok"), logged_in)
    }

    /// The seed's answer has no status field.
    pub fn seed(logged_in: LoggedIn) -> Self {
        Self::with_status(None, logged_in)
    }

    fn with_status(status: Option<&'static str>, l: LoggedIn) -> Self {
        Self {
            status,
            account_id: l.account_id.as_str().to_owned(),
            appid: l.appid,
            phone: l.phone,
            openid: l.openid,
            token: l.access_token,
            expires_in: l.expires_in.as_secs(),
            refresh_token: l.refresh_token.expose().to_owned(),
            refresh_expires_in: l.refresh_expires_in.as_secs(),
        }
    }
}

/// `/api/v1/login` for someone we cannot log in yet.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneRequiredAnswer {
    /// `"phone_required"`.
    #[schema(value_type = String)]
    pub status: &'static str,
    pub ticket: String,
    pub expires_in: u64,
}

/// `/api/v1/login`: logged in, or the phone step comes next.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    LoggedIn(SessionAnswer),
    PhoneRequired(PhoneRequiredAnswer),
}

// ---- request bodies ----
//
// As the OpenAPI document describes them. Parsing itself happens field by field (`edge::JsonObject`, so every
// problem names its field); these types state the same limits: codes are 1–256 printable ASCII characters without
// spaces (`weixin`'s code types), tickets are exactly what we mint.

/// Schemas with an `appid` property, which the running service narrows to the apps it serves.
pub const WITH_APPID: &[&str] = &[
    "GetPhoneRequest",
    "LoginRequest",
    "PhoneRequest",
    "QrCreateRequest",
];

/// `/api/getPhone`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct GetPhoneRequest {
    /// From `wx.login()`.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[!-~]+$")]
    login_code: String,
    /// From the getPhoneNumber button.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[!-~]+$")]
    phone_code: String,
    /// Which button gave the code: `quick` (getPhoneNumber, default) or `realtime` (getRealtimePhoneNumber).
    /// Only counted in `/metrics` (`wxlogin_phone_verifications_total`).
    phone_kind: Option<PhoneKind>,
    /// The app; else `X-WX-AppId`, WeChat's Referer, or the only app.
    appid: Option<String>,
}

/// Which phone button gave a phone code; WeChat bills the two at different prices.
#[derive(ToSchema, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum PhoneKind {
    Quick,
    Realtime,
}

/// `/api/v1/login`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct LoginRequest {
    #[schema(min_length = 1, max_length = 256, pattern = r"^[!-~]+$")]
    login_code: String,
    appid: Option<String>,
}

/// `/api/v1/phone`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct PhoneRequest {
    #[schema(min_length = 1, max_length = 256, pattern = r"^[!-~]+$")]
    phone_code: String,
    /// From `/api/v1/login`'s `phone_required` answer. Not needed with `Authorization: Bearer` (changing the
    /// phone of a logged-in account).
    #[schema(pattern = r"^wxt_[A-Za-z0-9_-]{43}$")]
    ticket: String,
    /// As in `/api/getPhone`: `quick` (default) or `realtime`.
    phone_kind: Option<PhoneKind>,
    appid: Option<String>,
}
