//! The edge of the HTTP API: what a handler reads from a request, parsed once into typed values, and the envelope
//! of every success. Handlers (`login.rs`, `account.rs`) use these and the login core, and nothing else.
//!
//! - the body: a JSON object whose string fields are parsed into typed values, every problem reported with the
//!   field's name (the body limit, 16 KiB, is enforced before any parsing);
//! - the client's address, as rate limits see it: the peer, or the address a trusted proxy forwarded for;
//! - `Authorization: Bearer <access token>` (or an opaque session token of an earlier release);
//! - the app a request is for, and the state every handler shares;
//! - `{"code":0,"msg":"success","data":…}`.

use super::error::{ApiError, FieldProblem};
use crate::client_ip::TrustedProxies;
use crate::logins::Logins;
use crate::logins::apps::{App, AppClaim};
use crate::ratelimit::Limit;
use crate::tokens::Bearer;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, REFERER};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::{Map, Value};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use utoipa::ToSchema;

// ---- the shared state and the app ----

/// Shared by every handler.
pub struct AppState {
    pub logins: Logins,
    /// The shared access-token store, when the cluster has one (checked by /readyz).
    pub redis: Option<Arc<weixin::RedisTokenStore>>,
    /// In-flight API requests, and whether a shutdown is draining them.
    pub drain: Arc<super::drain::Drain>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// `/openapi.json`, rendered once when the routes are built (from the routes themselves).
    pub openapi: std::sync::OnceLock<Arc<str>>,
    /// Resource servers that may introspect tokens (`[[clients]]`).
    pub clients: Vec<crate::config::ClientCredentials>,
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
    pub async fn limit_ip(&self, client: &ClientIp) -> Result<(), ApiError> {
        self.logins.limit(Limit::Ip, &client.rate_key()).await
    }
}

// ---- the body ----

/// The largest body any route accepts. Codes are ~32 characters; 16 KiB leaves room for any honest client.
pub const BODY_LIMIT: usize = 16 * 1024;

/// A JSON object body. Any Content-Type is accepted: `wx.request` sends JSON with its own header, and some
/// stacks send text/plain; what matters is that the bytes are a JSON object.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.into_response().status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::BodyTooLarge
            } else {
                ApiError::InvalidJson
            }
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            _ => Err(ApiError::InvalidJson),
        }
    }
}

/// A value parsed from a non-empty string field.
pub trait FromField: Sized {
    fn from_field(text: &str) -> Option<Self>;
}

impl FromField for weixin::LoginCode {
    fn from_field(text: &str) -> Option<Self> {
        Self::parse(text).ok()
    }
}

impl FromField for weixin::PhoneCode {
    fn from_field(text: &str) -> Option<Self> {
        Self::parse(text).ok()
    }
}

/// Longest field text accepted before parsing: no code or ticket comes near it.
const FIELD_MAX: usize = 256;

impl JsonObject {
    /// The required field `name`, parsed.
    pub fn required<T: FromField>(&self, name: &'static str) -> Result<T, ApiError> {
        self.optional(name)?
            .ok_or(ApiError::field(name, FieldProblem::Missing))
    }

    /// The field `name` if present (null counts as absent), parsed.
    pub fn optional<T: FromField>(&self, name: &'static str) -> Result<Option<T>, ApiError> {
        match self.optional_text(name)? {
            None => Ok(None),
            Some(text) => T::from_field(text)
                .map(Some)
                .ok_or(ApiError::field(name, FieldProblem::Malformed)),
        }
    }

    /// The field `name` as non-empty text of sane length, if present (null counts as absent).
    pub fn optional_text(&self, name: &'static str) -> Result<Option<&str>, ApiError> {
        let text = match self.0.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s,
            Some(_) => return Err(ApiError::field(name, FieldProblem::NotString)),
        };
        if text.trim().is_empty() {
            return Err(ApiError::field(name, FieldProblem::Empty));
        }
        if text.len() > FIELD_MAX {
            return Err(ApiError::field(name, FieldProblem::TooLong));
        }
        Ok(Some(text))
    }
}

// ---- the client's address ----

/// The client address of a request.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The rate-limit key (an IPv6 client by its /64).
    pub fn rate_key(&self) -> String {
        crate::client_ip::rate_key(self.0)
    }
}

impl FromRequestParts<Arc<AppState>> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Infallible> {
        // The server puts the peer address on every request; a request without one (driven in process, with no
        // socket) is keyed as one unknown client rather than refused.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0)
            .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        Ok(Self(crate::client_ip::client_ip(
            peer,
            &parts.headers,
            &state.trusted_proxies,
        )))
    }
}

// ---- the Bearer token ----

/// The token the request carries (an access token, or an opaque session token of an earlier release), if it
/// carries an Authorization header at all. A header that is not a well-formed Bearer token of ours is refused
/// outright.
pub fn bearer(headers: &HeaderMap) -> Result<Option<Bearer>, ApiError> {
    if !headers.contains_key(AUTHORIZATION) {
        return Ok(None);
    }
    let token = bearer_text(headers)
        .and_then(Bearer::parse)
        .ok_or(ApiError::Unauthorized)?;
    Ok(Some(token))
}

/// The credentials of `Authorization: Bearer <credentials>`, unparsed; `None` without one.
pub fn bearer_text(headers: &HeaderMap) -> Option<&str> {
    let text = headers.get(AUTHORIZATION)?.to_str().ok()?;
    // RFC 9110 §11.1: the scheme is case-insensitive ("Bearer", "bearer", "BEARER").
    text.trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
}

/// The Bearer token a route requires, or 401.
pub fn required_bearer(headers: &HeaderMap) -> Result<Bearer, ApiError> {
    bearer(headers)?.ok_or(ApiError::Unauthorized)
}

// ---- answers ----

/// `{"code":0,"msg":"success","data":…}`: every success.
#[derive(Serialize, ToSchema)]
pub struct Success<T> {
    /// Always 0.
    pub code: i32,
    /// `"success"`.
    #[schema(value_type = String)]
    pub msg: &'static str,
    pub data: T,
}

impl<T: Serialize> Success<T> {
    pub fn new(data: T) -> axum::Json<Self> {
        axum::Json(Self {
            code: 0,
            msg: "success",
            data,
        })
    }
}

/// `{}`: a success with nothing to say (logout).
#[derive(Serialize, ToSchema)]
pub struct Empty {}
