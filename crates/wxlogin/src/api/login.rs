//! The login routes: HTTP in, a call to the login core ([`crate::logins`]), HTTP out.

use super::answers::{PhoneRequiredAnswer, SessionAnswer, Success};
use super::auth;
use super::body::JsonObject;
use super::client::ClientIp;
use super::error::{ApiError, FieldProblem};
use super::state::AppState;
use crate::logins::Silent;
use crate::tokens::Ticket;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use std::sync::Arc;
use weixin::{LoginCode, PhoneCode};

/// `POST /api/getPhone {phoneCode, loginCode, appid?}`: the seed's one call.
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
pub async fn login(
    State(state): State<Arc<AppState>>,
    client: ClientIp,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Json<Success<serde_json::Value>>, ApiError> {
    let code: LoginCode = body.required("loginCode")?;
    let app = state.app(&headers, Some(&body))?;
    state.limit_ip(&client).await?;
    let answer = match state.logins.silent(app, &code).await? {
        Silent::LoggedIn(logged_in) => serde_json::to_value(SessionAnswer::v1(logged_in)),
        Silent::PhoneRequired { ticket, expires_in } => serde_json::to_value(PhoneRequiredAnswer {
            status: "phone_required",
            ticket: ticket.expose().to_owned(),
            expires_in: expires_in.as_secs(),
        }),
    };
    Ok(Success::new(answer.map_err(|_| ApiError::Internal)?))
}

/// `POST /api/v1/phone {phoneCode, ticket, appid?}`, or with a Bearer session instead of the ticket to change
/// the account's phone.
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
