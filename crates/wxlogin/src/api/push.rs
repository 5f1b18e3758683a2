//! WeChat's message push, one URL per app (`/wechat/push/{appid}`, configured in WeChat's console with the app's
//! `push_token` and, for safe mode, `push_aes_key`). WeChat checks the URL with a GET and POSTs events; the ones
//! about personal data (`user_authorization_revoke`, `user_authorization_cancellation`) go to the login core.
//!
//! Signatures, decryption and both formats are `weixin::push`'s; here the answer is parsed once into a
//! [`WechatEvent`], and every failure is a 4xx of our error table: a push that cannot be trusted changes nothing,
//! and never looks like our fault (a 5xx would only make WeChat retry it).

use super::edge::AppState;
use super::error::ApiError;
use crate::logins::privacy::{Delivery, Handled, WechatEvent};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use weixin::push::{PushError, PushKeys, PushMessage, PushQuery};

/// `GET /wechat/push/{appid}`: WeChat's URL check. Answers `echostr` as it came when `signature` is the app's.
#[utoipa::path(get, path = "/wechat/push/{appid}", tag = "wechat",
    params(("appid" = String, Path, description = "the app whose push URL this is"),
           ("signature" = String, Query, description = "sha1 of the sorted push_token, timestamp and nonce"),
           ("timestamp" = String, Query), ("nonce" = String, Query), ("echostr" = String, Query)),
    responses((status = 200, description = "`echostr`, verbatim", content_type = "text/plain", body = String)))]
pub async fn check(
    State(state): State<Arc<AppState>>,
    Path(appid): Path<String>,
    Query(query): Query<PushQuery>,
) -> Result<String, ApiError> {
    keys(&state, &appid)?.check_url(&query).map_err(refusal)
}

/// `POST /wechat/push/{appid}`: an event, in plaintext or safe mode, JSON or XML. Answers `success` once it is
/// handled; a revoke of the phone deletes the account's phone and ends its sessions, a cancellation deletes the
/// identity (and the account when it has no other). Events for unknown users, and others, are acknowledged.
#[utoipa::path(post, path = "/wechat/push/{appid}", tag = "wechat",
    params(("appid" = String, Path, description = "the app whose push URL this is"),
           ("signature" = String, Query), ("timestamp" = String, Query), ("nonce" = String, Query),
           ("encrypt_type" = Option<String>, Query, description = "`aes` in safe mode"),
           ("msg_signature" = Option<String>, Query, description = "safe mode: sha1 of the sorted push_token, timestamp, nonce and Encrypt")),
    request_body(content = String, description = "the event as WeChat sends it (JSON or XML)", content_type = "application/json"),
    responses((status = 200, description = "`success`", content_type = "text/plain", body = String)))]
pub async fn receive(
    State(state): State<Arc<AppState>>,
    Path(appid): Path<String>,
    Query(query): Query<PushQuery>,
    body: Bytes,
) -> Result<&'static str, ApiError> {
    let (event, handled) = handle(&state, &appid, &query, &body).await;
    // Every push is counted, refused ones too: a push_token that differs from WeChat's console shows as a stream of
    // push_signature_invalid (the WxloginWechatPushesRefused alert).
    let outcome = match &handled {
        Ok(Handled::Deleted) => "deleted",
        Ok(Handled::Nothing) => "nothing",
        Err(e) => e.row().error,
    };
    metrics::counter!("wxlogin_wechat_pushes_total", "event" => event, "outcome" => outcome)
        .increment(1);
    handled?;
    tracing::info!(%appid, event, outcome, "WeChat push handled");
    Ok("success")
}

/// Opens, reads and acts on one push; names its event (`unread` when it could not be opened).
async fn handle(
    state: &AppState,
    appid: &str,
    query: &PushQuery,
    body: &[u8],
) -> (&'static str, Result<Handled, ApiError>) {
    let read = keys(state, appid).and_then(|keys| {
        let message = keys.open(appid, query, body).map_err(refusal)?;
        Ok((delivery(appid, query)?, event(appid, message)?))
    });
    match read {
        Err(e) => ("unread", Err(e)),
        Ok((delivery, event)) => {
            let name = event_name(&event);
            (name, state.logins.wechat_push(appid, delivery, event).await)
        }
    }
}

fn keys<'a>(state: &'a AppState, appid: &str) -> Result<&'a PushKeys, ApiError> {
    state
        .logins
        .apps
        .get(appid)
        .and_then(|app| app.push.as_ref())
        .ok_or(ApiError::PushNotConfigured)
}

fn refusal(err: PushError) -> ApiError {
    match err {
        PushError::MissingParameter(_) | PushError::BadSignature | PushError::BadMsgSignature => {
            ApiError::PushSignatureInvalid
        }
        PushError::NoKey
        | PushError::BadCiphertext
        | PushError::WrongAppid
        | PushError::Malformed(_)
        | PushError::BadKey => ApiError::PushMalformed,
    }
}

/// What makes this delivery unique: everything signed that WeChat changes between deliveries.
fn delivery(appid: &str, query: &PushQuery) -> Result<Delivery, ApiError> {
    let timestamp = query
        .timestamp
        .as_deref()
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or(ApiError::PushSignatureInvalid)?;
    let mut hash = Sha256::new();
    for part in [
        Some(appid),
        query.signature.as_deref(),
        query.msg_signature.as_deref(),
        query.timestamp.as_deref(),
        query.nonce.as_deref(),
    ] {
        hash.update(part.unwrap_or("").as_bytes());
        hash.update([0]);
    }
    Ok(Delivery {
        digest: hash.finalize().into(),
        timestamp,
    })
}

/// The event, as far as personal data goes. An event that names another app than its URL's is not ours to act on.
fn event(appid: &str, message: PushMessage) -> Result<WechatEvent, ApiError> {
    if message.appid.as_deref().is_some_and(|a| a != appid) {
        return Err(ApiError::PushMalformed);
    }
    let openid = || {
        message
            .openid
            .clone()
            .filter(|o| !o.is_empty())
            .unwrap_or_else(|| message.from_user_name.clone())
    };
    Ok(
        match (message.msg_type.as_str(), message.event.as_deref()) {
            ("event", Some("user_authorization_revoke")) => {
                // Guess: RevokeInfo may list several codes ("8,6"); any 8 is the phone.
                let phone = message
                    .revoke_info
                    .as_deref()
                    .is_some_and(|info| info.split([',', '|', ' ']).any(|code| code.trim() == "8"));
                if phone {
                    WechatEvent::PhoneRevoked { openid: openid() }
                } else {
                    WechatEvent::OtherRevoked { openid: openid() }
                }
            }
            ("event", Some("user_authorization_cancellation")) => {
                WechatEvent::Cancelled { openid: openid() }
            }
            _ => WechatEvent::Other,
        },
    )
}

fn event_name(event: &WechatEvent) -> &'static str {
    match event {
        WechatEvent::PhoneRevoked { .. } => "revoke_phone",
        WechatEvent::OtherRevoked { .. } => "revoke_other",
        WechatEvent::Cancelled { .. } => "cancellation",
        WechatEvent::Other => "other",
    }
}
