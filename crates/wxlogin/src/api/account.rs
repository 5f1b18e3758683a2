//! The logged-in user's routes, and health checks.

use super::auth;
use super::error::ApiError;
use super::state::{AppState, success};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// `GET /api/v1/me`: the user behind the session, phone masked.
pub async fn me(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, user) = auth::require_user(&state, &headers).await?;
    let phone = state.open_phone(&user)?;
    Ok(success(json!({
        "openid": user.openid,
        "unionid": user.unionid,
        "phone": weixin::mask_phone(&phone),
        "createdAt": user.created_at,
        "updatedAt": user.updated_at,
    })))
}

/// `POST /api/v1/logout`: the session stops working at once.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let token = auth::bearer(&headers)?.ok_or(ApiError::Unauthorized)?;
    if !state.store.delete_session(&token.hash()).await? {
        return Err(ApiError::Unauthorized);
    }
    Ok(success(json!({})))
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers.
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "database": "ok" })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not_ready", "database": "unavailable" })),
            )
        }
    }
}
