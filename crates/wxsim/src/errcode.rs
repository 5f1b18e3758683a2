//! WeChat's error answers: HTTP 200, `{"errcode":N,"errmsg":"<text>, rid: <id>"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::ids;

/// A WeChat errcode the simulator answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Errcode(pub(crate) i64);

impl Errcode {
    pub(crate) const SYSTEM_ERROR: Self = Self(-1);
    pub(crate) const INVALID_CREDENTIAL: Self = Self(40001);
    pub(crate) const INVALID_GRANT_TYPE: Self = Self(40002);
    pub(crate) const INVALID_OPENID: Self = Self(40003);
    pub(crate) const INVALID_APPID: Self = Self(40013);
    pub(crate) const INVALID_ACCESS_TOKEN: Self = Self(40014);
    pub(crate) const INVALID_CODE: Self = Self(40029);
    pub(crate) const INVALID_ARGS: Self = Self(40097);
    pub(crate) const INVALID_APPSECRET: Self = Self(40125);
    pub(crate) const INVALID_SCENE: Self = Self(40129);
    pub(crate) const CODE_BEEN_USED: Self = Self(40163);
    /// getwxacodeunlimit: scene empty or over 32 characters, or the body not JSON.
    pub(crate) const INVALID_SCENE_LENGTH: Self = Self(40169);
    pub(crate) const ACCESS_TOKEN_MISSING: Self = Self(41001);
    pub(crate) const APPID_MISSING: Self = Self(41002);
    pub(crate) const APPSECRET_MISSING: Self = Self(41004);
    pub(crate) const CODE_MISSING: Self = Self(41008);
    pub(crate) const INVALID_PAGE: Self = Self(41030);
    pub(crate) const ACCESS_TOKEN_EXPIRED: Self = Self(42001);
    pub(crate) const REQUIRE_GET: Self = Self(43001);
    pub(crate) const REQUIRE_POST: Self = Self(43002);
    pub(crate) const DAILY_LIMIT: Self = Self(45009);
    pub(crate) const MINUTE_LIMIT: Self = Self(45011);
    pub(crate) const DATA_FORMAT: Self = Self(47001);
    pub(crate) const INVALID_SIGNATURE: Self = Self(87009);

    /// WeChat's own wording where known.
    pub(crate) fn message(self) -> &'static str {
        match self.0 {
            -1 => "system error",
            0 => "ok",
            40001 => "invalid credential, access_token is invalid or not latest",
            40002 => "invalid grant_type",
            40003 => "invalid openid",
            40013 => "invalid appid",
            40014 => "invalid access_token",
            40029 => "invalid code",
            40097 => "invalid args",
            40125 => "invalid appsecret",
            40129 => "invalid scene",
            40163 => "code been used",
            40169 => "invalid length for scene, or the data is not json string",
            40164 => "invalid ip, not in whitelist",
            40226 => "high risk user",
            41001 => "access_token missing",
            41002 => "appid missing",
            41004 => "appsecret missing",
            41008 => "missing code",
            41030 => "invalid page",
            42001 => "access_token expired",
            43001 => "require GET method",
            43002 => "require POST method",
            45009 => "reach max api daily quota limit",
            45011 => "api minute-quota reach limit  mustslower  retry next minute",
            47001 => "data format error",
            87009 => "invalid signature",
            _ => "simulated error",
        }
    }

    /// The answer, stamped with a fresh rid like WeChat's.
    pub(crate) fn into_response(self, now: u64) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            errcode: i64,
            errmsg: &'a str,
        }
        let errmsg = if self.0 == 0 {
            "ok".to_owned()
        } else {
            format!("{}, rid: {}", self.message(), ids::rid(now))
        };
        json_response(&Body {
            errcode: self.0,
            errmsg: &errmsg,
        })
    }
}

/// WeChat's JSON content type (sic: `encoding`, not `charset`).
const WECHAT_JSON: &str = "application/json; encoding=utf-8";

/// A 200 with a JSON body and WeChat's JSON content type.
pub(crate) fn json_response<T: Serialize>(body: &T) -> Response {
    with_content_type(body, WECHAT_JSON)
}

/// A 200 with a JSON body labelled `text/plain`, as jscode2session sometimes answers.
pub(crate) fn text_plain_json_response<T: Serialize>(body: &T) -> Response {
    with_content_type(body, "text/plain")
}

fn with_content_type<T: Serialize>(body: &T, content_type: &'static str) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = bytes.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        // Our own structs always serialize; answer like WeChat's busy rather than panic.
        Err(_) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, WECHAT_JSON)],
            r#"{"errcode":-1,"errmsg":"system error"}"#,
        )
            .into_response(),
    }
}
