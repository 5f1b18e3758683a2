//! What lets another service trust a login without our code: the OIDC discovery document, the published keys,
//! userinfo, and forward auth for a proxy in front of a team's backend.

use super::edge::{self, AppState};
use super::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "tokens",
    responses((status = 200, description = "the discovery document", body = Object)))]
pub async fn openid_configuration(State(state): State<Arc<AppState>>) -> Response {
    let issuer = &state.logins.access.policy.issuer;
    let url = |path: &str| format!("{issuer}{path}");
    let document = json!({
        "issuer": issuer,
        "jwks_uri": url("/.well-known/jwks.json"),
        "token_endpoint": url("/oauth2/token"),
        "userinfo_endpoint": url("/oauth2/userinfo"),
        "revocation_endpoint": url("/oauth2/revoke"),
        "introspection_endpoint": url("/oauth2/introspect"),
        "grant_types_supported": ["refresh_token"],
        // A login starts in the mini program (wx.login and the phone button), not at an authorization
        // endpoint: there is none, and so no response type.
        "response_types_supported": ["none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "phone"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "azp", "sid",
                             "phone_number", "phone_number_verified"],
    });
    cached(Json(document))
}

/// `GET /.well-known/jwks.json`: the public keys that sign access tokens (RFC 7517), newest first.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, description = "a JWK Set of ES256 keys", body = Object)))]
pub async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    let ring = state.logins.access.keys.ring();
    cached((
        [(header::CONTENT_TYPE, "application/json")],
        ring.jwks.to_string(),
    ))
}

/// `GET /oauth2/userinfo` (OIDC Core §5.3): the account's `sub` and verified phone.
#[utoipa::path(get, path = "/oauth2/userinfo", tag = "tokens", security(("session" = [])),
    responses((status = 200, description = "`sub`, `phone_number` (E.164), `phone_number_verified`", body = Object)))]
pub async fn userinfo(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let bearer = edge::required_bearer(&headers)?;
    let auth = state
        .logins
        .authenticate(&bearer, || state.app(&headers, None))
        .await?;
    let me = state.logins.me(auth).await?;
    let mut claims = json!({ "sub": me.session.account.id.as_str() });
    if let (Some(phone), Value::Object(map)) = (me.phone.as_deref(), &mut claims) {
        map.insert("phone_number".into(), json!(e164(phone)));
        map.insert("phone_number_verified".into(), json!(true));
    }
    Ok(Json(claims))
}

/// `GET /auth/verify`: forward auth (nginx `auth_request`, Traefik ForwardAuth, Caddy `forward_auth`). Any method:
/// proxies send the original request's. The phone, when configured, is in E.164 as userinfo's `phone_number`.
#[utoipa::path(method(get, head, post, put, patch, delete), path = "/auth/verify", tag = "tokens",
    security(("session" = [])),
    description = "200 with `X-Auth-Subject` (the account), `X-Auth-AppId`, `X-Auth-OpenId` (and `X-Auth-Phone` \
                   in E.164 with `forward_auth_phone`) for a live session's access token; else 401. A logout reaches every \
                   instance within half a second.",
    responses((status = 200, description = "the token is valid and its session live"),
        (status = 401, description = "no, an invalid or an expired token, or its session ended")))]
pub async fn verify(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let bearer = edge::required_bearer(&headers)?;
    let checked = state.logins.live(&bearer).await?;
    let session = &checked.live.session;
    let mut response = axum::http::StatusCode::OK.into_response();
    let out = response.headers_mut();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.insert(HeaderName::from_static(name), value);
        }
    };
    put("x-auth-subject", session.account.id.as_str());
    put("x-auth-appid", &session.identity.appid);
    put("x-auth-openid", &session.identity.openid);
    if let Some(phone) = &checked.live.phone {
        put("x-auth-phone", &e164(phone));
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Public documents: cacheable for a few minutes (a client that meets an unknown `kid` fetches the keys again).
fn cached(answer: impl IntoResponse) -> Response {
    let mut response = answer.into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// WeChat's `phoneNumber` in E.164. Guess: WeChat documents that foreign numbers carry their country code and
/// Chinese mainland ones do not ("国外手机号会有区号"); an 11-digit number starting with 1 is taken as +86.
fn e164(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    if phone.trim_start().starts_with('+') {
        format!("+{digits}")
    } else if digits.len() == 11 && digits.starts_with('1') {
        format!("+86{digits}")
    } else {
        format!("+{digits}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn phones_in_e164() {
        assert_eq!(super::e164("13800138000"), "+8613800138000");
        assert_eq!(super::e164("+1 415-555-0100"), "+14155550100");
        assert_eq!(super::e164("85261234567"), "+85261234567");
    }
}
