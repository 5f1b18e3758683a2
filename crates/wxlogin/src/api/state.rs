//! What every handler shares.

use super::body::JsonObject;
use super::error::ApiError;
use crate::client_ip::TrustedProxies;
use crate::logins::Logins;
use crate::logins::apps::{App, AppClaim};
use crate::ratelimit::Limit;
use axum::http::HeaderMap;
use axum::http::header::REFERER;
use std::sync::Arc;

/// Shared by every handler.
pub struct AppState {
    pub logins: Logins,
    /// The shared access-token store, when the cluster has one (checked by /readyz).
    pub redis: Option<Arc<weixin::RedisTokenStore>>,
    /// In-flight API requests, and whether a shutdown is draining them.
    pub drain: Arc<super::drain::Drain>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
}

impl AppState {
    /// The app a request is for (see [`crate::logins::apps::Apps::select`]).
    pub fn app(
        &self,
        headers: &HeaderMap,
        body: Option<&JsonObject>,
    ) -> Result<&Arc<App>, ApiError> {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let body_appid = match body {
            Some(body) => body.optional_text("appid")?,
            None => None,
        };
        self.logins.apps.select(AppClaim {
            body: body_appid,
            header: header("x-wx-appid"),
            referer: header(REFERER.as_str()),
        })
    }

    /// The client address's budget: the first limit every login route passes.
    pub async fn limit_ip(&self, client: &super::client::ClientIp) -> Result<(), ApiError> {
        self.logins.limit(Limit::Ip, &client.rate_key()).await
    }
}
