//! The login routes: HTTP in, a call to the login core ([`crate::logins`]), HTTP out.

use super::answers::{LoginAnswer, PhoneRequiredAnswer, SessionAnswer, Success};
use super::auth;
use super::body::JsonObject;
use super::client::ClientIp;
use super::error::{ApiError, FieldProblem};
use super::requests::{GetPhoneRequest, LoginRequest, PhoneRequest};
use super::state::AppState;
use crate::logins::Silent;
use crate::tokens::Ticket;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use std::sync::Arc;
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
    let app = state.app(&headers, Some(&body))?;
    state.limit_ip(&client).await?;
    let logged_in = state.logins.one_call(app, &login_code, &phone_code).await?;
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
    let bearer = auth::bearer(&headers)?;
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
    let app = state.app(&headers, Some(&body))?;
    state.limit_ip(&client).await?;
    let logged_in = match (bearer, ticket) {
        (Some(token), _) => state.logins.change_phone(app, &token, &phone_code).await?,
        (None, Some(ticket)) => {
            state
                .logins
                .phone_with_ticket(app, &ticket, &phone_code)
                .await?
        }
        (None, None) => return Err(ApiError::field("ticket", FieldProblem::Missing)),
    };
    Ok(Success::new(SessionAnswer::v1(logged_in)))
}
