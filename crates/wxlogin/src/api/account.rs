//! The logged-in user's routes, and health checks.

use super::edge::{self, AppState, Empty, Success};
use super::error::ApiError;
use crate::logins::Me;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::ToSchema;

/// `GET /api/v1/me`: the account behind the session, phone masked, with its identities.
#[utoipa::path(get, path = "/api/v1/me", tag = "account", security(("session" = [])),
    responses((status = 200, description = "the account", body = Success<MeAnswer>)))]
pub async fn me(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Success<MeAnswer>>, ApiError> {
    let bearer = edge::required_bearer(&headers)?;
    let auth = state
        .logins
        .authenticate(&bearer, || state.app(&headers, None))
        .await?;
    let me = state.logins.me(auth).await?;
    Ok(Success::new(MeAnswer::from(me)))
}

/// `POST /api/v1/logout`: the session stops working at once.
#[utoipa::path(post, path = "/api/v1/logout", tag = "account", security(("session" = [])),
    responses((status = 200, description = "the session is ended", body = Success<Empty>)))]
pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Success<Empty>>, ApiError> {
    let bearer = edge::required_bearer(&headers)?;
    let auth = state
        .logins
        .authenticate(&bearer, || state.app(&headers, None))
        .await?;
    state.logins.logout(&auth).await?;
    Ok(Success::new(Empty {}))
}

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{\"status\":\"ok\"}`", body = Object)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers, and Redis too when the access token is shared through it. An instance
/// whose Redis is down still logs users in (it caches the token itself), so Redis is reported but only the
/// database decides readiness.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready", body = Object), (status = 503, description = "not ready, or draining", body = Object)))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let database = state.logins.store.ping().await;
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
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
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

// ---- answers ----

/// One WeChat user of the account in one app.
#[derive(Serialize, ToSchema)]
pub struct IdentityAnswer {
    pub appid: String,
    pub openid: String,
}

/// `/api/v1/me`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeAnswer {
    pub account_id: String,
    /// The app and WeChat user of this session.
    pub appid: String,
    pub openid: String,
    pub unionid: Option<String>,
    /// Masked (`138****8000`); `null` after the phone moved to another account.
    pub phone: Option<String>,
    pub identities: Vec<IdentityAnswer>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Me> for MeAnswer {
    fn from(me: Me) -> Self {
        let account = me.session.account;
        Self {
            account_id: account.id.as_str().to_owned(),
            appid: me.session.identity.appid,
            openid: me.session.identity.openid,
            unionid: account.unionid,
            phone: me.phone.as_deref().map(weixin::mask_phone),
            identities: me
                .identities
                .into_iter()
                .map(|i| IdentityAnswer {
                    appid: i.appid,
                    openid: i.openid,
                })
                .collect(),
            created_at: account.created_at,
            updated_at: account.updated_at,
        }
    }
}
