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
    if !state
        .store
        .delete_session(&token.hash(), state.appid())
        .await?
    {
        return Err(ApiError::Unauthorized);
    }
    Ok(success(json!({})))
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers, and Redis too when the access token is shared through it. An instance
/// whose Redis is down still logs users in (it caches the token itself), so Redis is reported but only the
/// database decides readiness.
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let database = state.store.ping().await;
    let redis = match &state.redis {
        Some(r) => Some(r.ping().await),
        None => None,
    };
    if let Err(e) = &database {
        tracing::warn!(error = %e, "not ready: database");
    }
    if let Some(Err(e)) = &redis {
        tracing::warn!(error = %e, "Redis unavailable");
    }
    if state.drain.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        );
    }
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = json!({
        "status": if database.is_ok() { "ready" } else { "not_ready" },
        "database": word(database.is_ok()),
        "redis": redis.as_ref().map(|r| word(r.is_ok())).unwrap_or("not_configured"),
    });
    let status = if database.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// `GET /metrics`: Prometheus text format (requests by route, status and outcome; latency histograms).
pub async fn metrics() -> impl axum::response::IntoResponse {
    let handle = crate::telemetry::prometheus();
    handle.run_upkeep();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        handle.render(),
    )
}
