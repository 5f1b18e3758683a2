//! `Authorization: Bearer <session token>`, parsed at the edge.

use super::error::ApiError;
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

/// The Bearer token a route requires, or 401.
pub fn required(headers: &HeaderMap) -> Result<SessionToken, ApiError> {
    bearer(headers)?.ok_or(ApiError::Unauthorized)
}
