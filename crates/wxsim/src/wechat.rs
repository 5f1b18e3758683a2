//! The WeChat-compatible routes, at the same paths and with the same parameters as api.weixin.qq.com. Every
//! answer is HTTP 200; errors are `{"errcode","errmsg"}` (see `errcode.rs`).

use std::borrow::Cow;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::Response;
use axum::routing::any;
use serde::{Deserialize, Serialize};

use crate::Simulator;
use crate::clock::{FixedWindow, minute};
use crate::errcode::{Errcode, json_response, text_plain_json_response};
use crate::faults::Route;
use crate::ids;
use crate::query::param;
use crate::state::{AppState, Inner};

pub(crate) fn router(sim: Simulator) -> Router {
    // `any`: a wrong method gets WeChat's errcode (43001/43002), not axum's bare 405.
    Router::new()
        .route(Route::Token.path(), any(token))
        .route(Route::StableToken.path(), any(stable_token))
        .route(Route::Jscode2session.path(), any(jscode2session))
        .route(Route::PhoneNumber.path(), any(get_user_phone_number))
        .route(Route::CheckSession.path(), any(check_session))
        .route(
            Route::WxaCodeUnlimit.path(),
            any(crate::wxacode::get_unlimited),
        )
        .route(Route::ChargeUsage.path(), any(crate::charge::charge_usage))
        .route(
            Route::ChargeRecentAverage.path(),
            any(crate::charge::recent_average),
        )
        .with_state(sim)
}

pub(crate) type WxResult = Result<Response, Errcode>;

/// Counts the call, waits out injected latency, and answers an injected errcode before anything else happens.
// Guess: an injected errcode (a `-1` busy, say) changes nothing: no code is consumed, no token minted.
pub(crate) async fn enter(inner: &Inner, route: Route) -> Result<(), Errcode> {
    let injected = inner.routes.enter(route);
    if injected.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(injected.latency_ms)).await;
    }
    match injected.errcode {
        Some(code) => Err(Errcode(code)),
        None => Ok(()),
    }
}

pub(crate) fn finish(inner: &Inner, route: Route, result: WxResult) -> Response {
    match result {
        Ok(response) => response,
        Err(code) => {
            if code.0 != 0 {
                inner.routes.count_error(route);
            }
            code.into_response(inner.clock.now())
        }
    }
}

// Guess: the GET routes answer any other method with 43001 ("require GET method"), the POST routes with 43002.
pub(crate) fn require(method: &Method, wanted: Method) -> Result<(), Errcode> {
    match (method == wanted, wanted) {
        (true, _) => Ok(()),
        (false, Method::POST) => Err(Errcode::REQUIRE_POST),
        (false, _) => Err(Errcode::REQUIRE_GET),
    }
}

/// The app whose credentials these are.
// Guess: WeChat does not document the order of its checks; the simulator checks grant_type (40002), then
// presence of appid (41002) and secret (41004), then the appid (40013), then the secret.
fn authenticate<'a>(
    inner: &'a Inner,
    grant_type: Option<&str>,
    expected_grant: &str,
    appid: Option<&str>,
    secret: Option<&str>,
) -> Result<&'a AppState, Errcode> {
    if grant_type != Some(expected_grant) {
        return Err(Errcode::INVALID_GRANT_TYPE);
    }
    let appid = appid.ok_or(Errcode::APPID_MISSING)?;
    let secret = secret.ok_or(Errcode::APPSECRET_MISSING)?;
    let app = inner.app_by_id(appid).ok_or(Errcode::INVALID_APPID)?;
    if app.creds.secret != secret {
        return Err(Errcode::INVALID_APPSECRET);
    }
    Ok(app)
}

fn business_limit(inner: &Inner, window: &FixedWindow, now: u64) -> Result<(), Errcode> {
    match inner.limits.business_per_app_per_minute() {
        Some(limit) if !window.hit(minute(now), limit) => Err(Errcode::MINUTE_LIMIT),
        _ => Ok(()),
    }
}

#[derive(Serialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

async fn token(State(sim): State<Simulator>, method: Method, uri: Uri) -> Response {
    let inner = &*sim.inner;
    let result = match enter(inner, Route::Token).await {
        Err(e) => Err(e),
        Ok(()) => (|| {
            require(&method, Method::GET)?;
            let q = uri.query();
            // A wrong secret answers 40125 ("invalid appsecret") on both token routes, as WeChat does in
            // practice; /cgi-bin/token's table also lists 40001 for it, which clients must read as a bad token.
            let app = authenticate(
                inner,
                param(q, "grant_type").as_deref(),
                "client_credential",
                param(q, "appid").as_deref(),
                param(q, "secret").as_deref(),
            )?;
            let granted = inner.grant_token(app, inner.clock.now())?;
            Ok(json_response(&TokenAnswer {
                access_token: granted.access_token,
                expires_in: granted.expires_in,
            }))
        })(),
    };
    finish(inner, Route::Token, result)
}

async fn stable_token(State(sim): State<Simulator>, method: Method, body: Bytes) -> Response {
    let inner = &*sim.inner;
    let result = match enter(inner, Route::StableToken).await {
        Err(e) => Err(e),
        Ok(()) => (|| {
            require(&method, Method::POST)?;
            // Guess: the body is read as JSON whatever its Content-Type says; a body that is not a JSON object
            // answers 43002 ("POST with JSON only"), a field of the wrong type is treated as missing, and a
            // force_refresh that is not a boolean answers 47001.
            let body: serde_json::Value =
                serde_json::from_slice(&body).map_err(|_| Errcode::REQUIRE_POST)?;
            let body = body.as_object().ok_or(Errcode::REQUIRE_POST)?;
            let text = |name: &str| {
                body.get(name)
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty())
            };
            let force_refresh = match body.get("force_refresh") {
                None | Some(serde_json::Value::Null) => false,
                Some(v) => v.as_bool().ok_or(Errcode::DATA_FORMAT)?,
            };
            let app = authenticate(
                inner,
                text("grant_type"),
                "client_credential",
                text("appid"),
                text("secret"),
            )?;
            let granted = inner.grant_stable_token(app, force_refresh, inner.clock.now())?;
            Ok(json_response(&TokenAnswer {
                access_token: granted.access_token,
                expires_in: granted.expires_in,
            }))
        })(),
    };
    finish(inner, Route::StableToken, result)
}

#[derive(Serialize)]
struct SessionAnswer<'a> {
    session_key: &'a str,
    openid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    unionid: Option<&'a str>,
}

async fn jscode2session(State(sim): State<Simulator>, method: Method, uri: Uri) -> Response {
    let inner = &*sim.inner;
    let result = match enter(inner, Route::Jscode2session).await {
        Err(e) => Err(e),
        Ok(()) => (|| {
            require(&method, Method::GET)?;
            // Extra parameters (wechatpy adds access_token) are ignored.
            let q = uri.query();
            let app = authenticate(
                inner,
                param(q, "grant_type").as_deref(),
                "authorization_code",
                param(q, "appid").as_deref(),
                param(q, "secret").as_deref(),
            )?;
            let js_code = param(q, "js_code").ok_or(Errcode::CODE_MISSING)?;
            let now = inner.clock.now();
            business_limit(inner, &app.windows.jscode2session, now)?;
            let (user, session_key) = inner.redeem_login_code(app.index, &js_code, now)?;
            // No errcode on success, and labelled text/plain as WeChat sometimes does: clients must parse the
            // body, not trust the header.
            Ok(text_plain_json_response(&SessionAnswer {
                session_key: session_key.as_str(),
                openid: &user.openid,
                // Read at redemption: a code minted before its app was bound answers the unionid.
                // Guess: WeChat does not say when a new binding takes effect; here at once.
                unionid: app.unionid_of(&user),
            }))
        })(),
    };
    finish(inner, Route::Jscode2session, result)
}

#[derive(Deserialize)]
struct PhoneRequest<'a> {
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    openid: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct PhoneAnswer<'a> {
    errcode: i64,
    errmsg: &'a str,
    phone_info: PhoneInfo<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhoneInfo<'a> {
    phone_number: String,
    pure_phone_number: &'a str,
    country_code: &'a str,
    watermark: Watermark<'a>,
}

#[derive(Serialize)]
struct Watermark<'a> {
    timestamp: u64,
    appid: &'a str,
}

async fn get_user_phone_number(
    State(sim): State<Simulator>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let inner = &*sim.inner;
    let result = match enter(inner, Route::PhoneNumber).await {
        Err(e) => Err(e),
        Ok(()) => (|| {
            require(&method, Method::POST)?;
            let now = inner.clock.now();
            let app =
                inner.check_access_token(param(uri.query(), "access_token").as_deref(), now)?;
            let app = inner.app(app);
            business_limit(inner, &app.windows.phone_number, now)?;
            // Guess: an empty code counts as missing (47001); an empty openid as absent.
            let request: PhoneRequest<'_> =
                serde_json::from_slice(&body).map_err(|_| Errcode::DATA_FORMAT)?;
            let code = request
                .code
                .filter(|c| !c.is_empty())
                .ok_or(Errcode::DATA_FORMAT)?;
            let openid = request.openid.filter(|o| !o.is_empty());
            let (user, other_phone) =
                inner.redeem_phone_code(app.index, &code, openid.as_deref(), now)?;
            let phone = other_phone.as_ref().unwrap_or(&user.phone);
            Ok(json_response(&PhoneAnswer {
                errcode: 0,
                errmsg: "ok",
                phone_info: PhoneInfo {
                    phone_number: phone.number(),
                    pure_phone_number: &phone.pure,
                    country_code: &phone.country_code,
                    watermark: Watermark {
                        timestamp: now,
                        appid: &app.creds.appid,
                    },
                },
            }))
        })(),
    };
    finish(inner, Route::PhoneNumber, result)
}

async fn check_session(State(sim): State<Simulator>, method: Method, uri: Uri) -> Response {
    let inner = &*sim.inner;
    let result = match enter(inner, Route::CheckSession).await {
        Err(e) => Err(e),
        Ok(()) => (|| {
            require(&method, Method::GET)?;
            let q = uri.query();
            let now = inner.clock.now();
            let app = inner.check_access_token(param(q, "access_token").as_deref(), now)?;
            business_limit(inner, &inner.app(app).windows.checksession, now)?;
            // Guess: a missing or other sig_method answers 87009 (the signature cannot be checked); a missing,
            // unknown or other app's openid answers 40003.
            if param(q, "sig_method").as_deref() != Some("hmac_sha256") {
                return Err(Errcode::INVALID_SIGNATURE);
            }
            let openid = param(q, "openid").ok_or(Errcode::INVALID_OPENID)?;
            let user = inner.user(&openid).map_err(|_| Errcode::INVALID_OPENID)?;
            if user.app != app {
                return Err(Errcode::INVALID_OPENID);
            }
            let signature = param(q, "signature").ok_or(Errcode::INVALID_SIGNATURE)?;
            let session_key = *user.session_key.lock();
            // Guess: the signature must be lowercase hex, as WeChat's docs write it; uppercase answers 87009.
            if ids::checksession_signature(session_key.as_str()) != *signature {
                return Err(Errcode::INVALID_SIGNATURE);
            }
            Ok(Errcode(0).into_response(now))
        })(),
    };
    finish(inner, Route::CheckSession, result)
}
