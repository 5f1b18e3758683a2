//! The OAuth 2.0 endpoints, in the shapes their RFCs define (form-encoded requests, RFC error bodies): the refresh
//! grant (RFC 6749 §6), revocation (RFC 7009) and introspection (RFC 7662), and the mini program's own refresh
//! route in our JSON envelope.

use super::edge::{AppState, ClientIp, JsonObject, Success};
use super::error::{ApiError, ErrorId, FieldProblem};
use crate::logins::Refreshed;
use crate::tokens::{Bearer, RefreshToken};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// `POST /api/v1/refresh {refreshToken}`: a new access token and the next refresh token.
#[utoipa::path(post, path = "/api/v1/refresh", tag = "tokens", request_body = RefreshRequest,
    description = "Rotates the refresh token: the answer's `refreshToken` replaces the one sent, which stops working. \
                   Sent again, the old one ends the whole session: 401 `refresh_reused`.",
    responses((status = 200, description = "refreshed", body = Success<RefreshAnswer>)))]
pub async fn refresh(
    State(state): State<Arc<AppState>>,
    client: ClientIp,
    body: JsonObject,
) -> Result<Json<Success<RefreshAnswer>>, ApiError> {
    let text = body
        .optional_text("refreshToken")?
        .ok_or(ApiError::field("refreshToken", FieldProblem::Missing))?;
    let token = RefreshToken::parse(text).ok_or(ApiError::RefreshInvalid)?;
    // A refresh writes to the database, like a login: it spends the client address's budget too.
    state.limit_ip(&client).await?;
    let refreshed = state.logins.refresh(&token).await?;
    Ok(Success::new(RefreshAnswer::from(refreshed)))
}

/// `POST /oauth2/token` (RFC 6749 §6): `grant_type=refresh_token`.
#[utoipa::path(post, path = "/oauth2/token", tag = "tokens",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    description = "The refresh grant (RFC 6749 §6) for a public client: no client authentication; `client_id`, if \
                   sent, must be the token's app. Errors as RFC 6749 §5.2.",
    responses((status = 200, description = "RFC 6749 §5.1", body = TokenAnswer),
        (status = 400, description = "RFC 6749 §5.2", body = OAuthErrorBody)))]
pub async fn token(
    State(state): State<Arc<AppState>>,
    client: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let form = Form::parse(&headers, &body)?;
    state.limit_ip(&client).await.map_err(OAuthError::Api)?;
    match form.get("grant_type") {
        Some("refresh_token") => {}
        Some(_) => {
            return Err(OAuthError::bad(
                "unsupported_grant_type",
                "only refresh_token is supported",
            ));
        }
        None => return Err(OAuthError::bad("invalid_request", "grant_type is missing")),
    }
    let text = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::bad("invalid_request", "refresh_token is missing"))?;
    let token = RefreshToken::parse(text).ok_or_else(OAuthError::grant)?;
    let refreshed = state.logins.refresh(&token).await.map_err(|e| match e {
        ApiError::RefreshInvalid => OAuthError::grant(),
        ApiError::RefreshReused => OAuthError::bad(
            "invalid_grant",
            "the refresh token was used before: the session is ended",
        ),
        other => OAuthError::Api(other),
    })?;
    if form
        .get("client_id")
        .is_some_and(|id| id != refreshed.logged_in_as.identity.appid)
    {
        // Rotated already: the token is spent either way, as it would be for its rightful client.
        return Err(OAuthError::grant());
    }
    let answer = TokenAnswer {
        access_token: refreshed.access_token,
        token_type: "Bearer",
        expires_in: refreshed.expires_in.as_secs(),
        refresh_token: refreshed.refresh_token.expose().to_owned(),
    };
    Ok(no_store(Json(answer)))
}

/// `POST /oauth2/revoke` (RFC 7009): ends the session of a refresh or access token.
#[utoipa::path(post, path = "/oauth2/revoke", tag = "tokens",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    description = "Ends the session of the token (a refresh token, or an access token). 200 also for an unknown or \
                   expired token (RFC 7009 §2.2).",
    responses((status = 200, description = "revoked, or nothing to revoke"),
        (status = 400, description = "RFC 6749 §5.2", body = OAuthErrorBody)))]
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let form = Form::parse(&headers, &body)?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::bad("invalid_request", "token is missing"))?;
    state.logins.revoke(token).await.map_err(OAuthError::Api)?;
    Ok(no_store(StatusCode::OK))
}

/// `POST /oauth2/introspect` (RFC 7662), for resource servers listed in `[[clients]]`.
#[utoipa::path(post, path = "/oauth2/introspect", tag = "tokens",
    request_body(content = IntrospectForm, content_type = "application/x-www-form-urlencoded"),
    description = "Whether an access token is active (its signature, expiry and session). Client authentication: \
                   HTTP Basic (client_secret_basic) or `client_id`/`client_secret` in the form.",
    security(("client" = [])),
    responses((status = 200, description = "RFC 7662 §2.2: `{\"active\":false}` for anything not active", body = Object),
        (status = 400, description = "RFC 6749 §5.2", body = OAuthErrorBody),
        (status = 401, description = "no or wrong client credentials", body = OAuthErrorBody)))]
pub async fn introspect(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let form = Form::parse(&headers, &body)?;
    authenticate_client(&state, &headers, &form)?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::bad("invalid_request", "token is missing"))?;
    let inactive = || no_store(Json(json!({ "active": false })));
    let Some(bearer) = Bearer::parse(token) else {
        return Ok(inactive());
    };
    let checked = match state.logins.live(&bearer).await {
        Ok(checked) => checked,
        Err(ApiError::Unauthorized) => return Ok(inactive()),
        Err(other) => return Err(OAuthError::Api(other)),
    };
    let session = &checked.live.session;
    let mut answer = json!({
        "active": true,
        "token_type": "Bearer",
        "sub": session.account.id.as_str(),
        "client_id": session.identity.appid,
        "azp": session.identity.appid,
        "openid": session.identity.openid,
    });
    if let (Some(claims), Value::Object(map)) = (&checked.claims, &mut answer) {
        map.insert("iss".into(), json!(claims.iss));
        map.insert("aud".into(), json!(claims.aud));
        map.insert("exp".into(), json!(claims.exp));
        map.insert("iat".into(), json!(claims.iat));
        map.insert("jti".into(), json!(claims.jti));
        map.insert("sid".into(), json!(claims.sid));
    }
    Ok(no_store(Json(answer)))
}

/// The caller is one of `[[clients]]`: by HTTP Basic (RFC 6749 §2.3.1: id and secret form-encoded, then base64), or
/// by `client_id` and `client_secret` in the form; not both.
fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<(), OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(basic_credentials(value).ok_or(OAuthError::Client)?),
    };
    let posted = match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => Some((id.to_owned(), secret.to_owned())),
        (None, None) => None,
        _ => return Err(OAuthError::Client),
    };
    let (id, secret) = match (basic, posted) {
        (Some(credentials), None) | (None, Some(credentials)) => credentials,
        _ => return Err(OAuthError::Client),
    };
    let known = state.clients.iter().find(|c| c.id == id);
    let expected = known.map(|c| secrecy::ExposeSecret::expose_secret(&c.secret).as_bytes());
    // Compared in constant time; an unknown id is compared against itself so it takes as long.
    let matches = match expected {
        Some(expected) => bool::from(expected.ct_eq(secret.as_bytes())),
        None => {
            let _ = secret.as_bytes().ct_eq(secret.as_bytes());
            false
        }
    };
    if matches {
        Ok(())
    } else {
        tracing::info!(client = %id, "introspection refused: wrong client credentials");
        Err(OAuthError::Client)
    }
}

fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let text = value.to_str().ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(&format!("i={id}&s={secret}")).ok()?;
    match pairs.as_slice() {
        [(_, id), (_, secret)] => Some((id.clone(), secret.clone())),
        _ => None,
    }
}

/// The parameters the OAuth endpoints read.
const PARAMETERS: &[&str] = &[
    "grant_type",
    "refresh_token",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
    "scope",
];

/// An `application/x-www-form-urlencoded` body, each parameter at most once (RFC 6749 §3.2).
struct Form(HashMap<String, String>);

impl Form {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let form_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return Err(OAuthError::bad(
                "invalid_request",
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::bad("invalid_request", "the body is not a valid form"))?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            // A parameter of ours sent twice is refused (RFC 6749 §3.2); others are ignored (§3.1).
            if !PARAMETERS.contains(&name.as_str()) {
                continue;
            }
            if map.insert(name, value).is_some() {
                return Err(OAuthError::bad(
                    "invalid_request",
                    "a parameter is repeated",
                ));
            }
        }
        Ok(Self(map))
    }

    /// A parameter; empty counts as absent (RFC 6749 §3.1).
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

fn no_store(answer: impl IntoResponse) -> Response {
    let mut response = answer.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An OAuth endpoint's failure: RFC 6749 §5.2's body, 401 `invalid_client` for client authentication, or our
/// own error shape for what is not the request's fault (database down).
#[derive(Debug)]
pub enum OAuthError {
    Bad {
        error: &'static str,
        description: &'static str,
    },
    Client,
    Api(ApiError),
}

impl OAuthError {
    fn bad(error: &'static str, description: &'static str) -> Self {
        Self::Bad { error, description }
    }

    fn grant() -> Self {
        Self::bad(
            "invalid_grant",
            "the refresh token is invalid, expired or revoked",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, error, description) = match self {
            Self::Api(err) => return err.into_response(),
            Self::Bad { error, description } => (StatusCode::BAD_REQUEST, error, description),
            Self::Client => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            ),
        };
        let body = Json(json!({ "error": error, "error_description": description }));
        let mut response = no_store((status, body));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"wxlogin\""),
            );
        }
        response.extensions_mut().insert(ErrorId(error));
        response
    }
}

// ---- bodies, as the OpenAPI document describes them ----

/// `/api/v1/refresh`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshAnswer {
    pub account_id: String,
    pub appid: String,
    pub openid: String,
    /// The new access token (a JWT).
    pub token: String,
    pub expires_in: u64,
    /// The next refresh token: the one sent no longer works.
    pub refresh_token: String,
    pub refresh_expires_in: u64,
}

impl From<Refreshed> for RefreshAnswer {
    fn from(r: Refreshed) -> Self {
        Self {
            account_id: r.logged_in_as.account.id.as_str().to_owned(),
            appid: r.logged_in_as.identity.appid,
            openid: r.logged_in_as.identity.openid,
            token: r.access_token,
            expires_in: r.expires_in.as_secs(),
            refresh_token: r.refresh_token.expose().to_owned(),
            refresh_expires_in: r.refresh_expires_in.as_secs(),
        }
    }
}

/// `/api/v1/refresh`'s body.
#[derive(ToSchema, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct RefreshRequest {
    #[schema(pattern = r"^wxr_[A-Za-z0-9_-]{86}$")]
    refresh_token: String,
}

/// RFC 6749 §5.1.
#[derive(Serialize, ToSchema)]
pub struct TokenAnswer {
    pub access_token: String,
    #[schema(value_type = String)]
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
}

/// RFC 6749 §5.2.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct OAuthErrorBody {
    error: String,
    error_description: String,
}

/// The refresh grant's form.
#[derive(ToSchema, serde::Deserialize)]
#[allow(dead_code)]
pub struct TokenForm {
    /// `refresh_token`.
    #[schema(pattern = "^refresh_token$")]
    grant_type: String,
    #[schema(min_length = 1)]
    refresh_token: String,
    client_id: Option<String>,
}

/// RFC 7009's form.
#[derive(ToSchema, serde::Deserialize)]
#[allow(dead_code)]
pub struct RevokeForm {
    #[schema(min_length = 1)]
    token: String,
    token_type_hint: Option<String>,
}

/// RFC 7662's form.
#[derive(ToSchema, serde::Deserialize)]
#[allow(dead_code)]
pub struct IntrospectForm {
    #[schema(min_length = 1)]
    token: String,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}
