//! `Authorization: Bearer <session token>`: parsed at the edge, looked up by hash.

use super::error::ApiError;
use super::state::{AppState, unix_now};
use crate::store::UserRecord;
use crate::tokens::SessionToken;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// The session token the request carries, if it carries an Authorization header at all. A header that is not
/// a well-formed Bearer token of ours is refused outright.
pub fn bearer(headers: &HeaderMap) -> Result<Option<SessionToken>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| ApiError::Unauthorized)?;
    // RFC 9110 §11.1: the scheme is case-insensitive ("Bearer", "bearer", "BEARER").
    let token = text
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, t)| SessionToken::parse(t.trim()))
        .ok_or(ApiError::Unauthorized)?;
    Ok(Some(token))
}

/// The user of a live session, or 401.
pub async fn session_user(state: &AppState, token: &SessionToken) -> Result<UserRecord, ApiError> {
    state
        .store
        .session_user(&token.hash(), state.appid(), unix_now())
        .await?
        .ok_or(ApiError::Unauthorized)
}

/// The user behind the request's Bearer token, or 401.
pub async fn require_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(SessionToken, UserRecord), ApiError> {
    let token = bearer(headers)?.ok_or(ApiError::Unauthorized)?;
    let user = session_user(state, &token).await?;
    Ok((token, user))
}
