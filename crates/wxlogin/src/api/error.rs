//! Every failure of the HTTP API, and the one table that maps it to an HTTP status, a stable numeric `code`, a
//! snake_case `error` id and a message a user can read. docs/errors.md is checked against [`ApiError::table`] by a test.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strum::IntoEnumIterator;

/// What went wrong, as the API reports it.
// EnumIter: every variant once (data fields at their defaults), so the table is listed without a copy of it.
#[derive(Debug, Clone, PartialEq, Eq, strum::EnumIter)]
pub enum ApiError {
    /// The body is not JSON (or not a JSON object).
    InvalidJson,
    /// A field is missing, empty, of the wrong type or malformed. The message names the field.
    InvalidField {
        field: &'static str,
        problem: FieldProblem,
    },
    /// The body is over the limit.
    BodyTooLarge,
    NotFound,
    MethodNotAllowed,
    /// Headers, body and handling together took longer than the request timeout.
    RequestTimeout,
    /// Several apps are configured and the request names none.
    AppRequired,
    /// The request names an app this service does not serve.
    AppUnknown,
    LoginCodeInvalid,
    LoginCodeUsed,
    PhoneCodeInvalid,
    PhoneCodeMismatch,
    TicketInvalid,
    /// Another request is redeeming a phone code with this ticket right now (a double tap).
    TicketInUse,
    /// The verified phone belongs to another account and `phone_conflict = "deny"`.
    PhoneInUse,
    Unauthorized,
    /// The refresh token is unknown, expired, ended or malformed.
    RefreshInvalid,
    /// A refresh token that was rotated away was presented again: its session is ended.
    RefreshReused,
    /// No scan login has this id (the mini program read a code that is not one of ours, or one long gone).
    QrLoginNotFound,
    /// The scan login's 120 s have passed.
    QrLoginExpired,
    /// The scan login was confirmed or denied already, or another WeChat user scanned it first.
    QrLoginUsed,
    /// Confirm or deny before this user scanned the code.
    QrLoginNotScanned,
    /// `/wechat/push/{appid}` for an app without `push_token`.
    PushNotConfigured,
    /// A push whose signature or msg_signature is missing or wrong.
    PushSignatureInvalid,
    /// A signed push that cannot be read: bad ciphertext, another appid inside, not the JSON or XML of an event.
    PushMalformed,
    /// A push signed more than [`crate::logins::privacy::PUSH_WINDOW`] away from now.
    PushStale,
    /// The very same delivery (signature, timestamp, nonce) again.
    PushReplayed,
    UserBlocked,
    /// Too many requests (our limits, or WeChat's 45011); `Retry-After` says when one would pass.
    RateLimited {
        retry_after_secs: u64,
    },
    WechatBusy,
    WechatUnavailable,
    WechatConfig,
    WatermarkMismatch,
    WechatError,
    DatabaseUnavailable,
    Internal,
}

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldProblem {
    #[default]
    Missing,
    NotString,
    Empty,
    TooLong,
    Malformed,
}

/// One row of the error table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub status: StatusCode,
    pub code: u32,
    pub error: &'static str,
    pub msg: &'static str,
    pub when: &'static str,
}

impl ApiError {
    /// This error's row of the table: one `match`, so a new variant does not compile until it has its row.
    pub fn row(&self) -> Row {
        use StatusCode as S;
        match self {
            Self::InvalidJson => Row {
                status: S::BAD_REQUEST,
                code: 1001,
                error: "invalid_json",
                msg: "请求格式错误：请求体必须是 JSON 对象",
                when: "the body is not JSON, or not a JSON object",
            },
            Self::InvalidField { .. } => Row {
                status: S::BAD_REQUEST,
                code: 1002,
                error: "invalid_field",
                msg: "请求参数错误",
                when: "a field is missing, empty, not a string, too long or malformed (msg names the field)",
            },
            Self::BodyTooLarge => Row {
                status: S::PAYLOAD_TOO_LARGE,
                code: 1003,
                error: "body_too_large",
                msg: "请求体过大",
                when: "the body is over 16 KiB",
            },
            Self::NotFound => Row {
                status: S::NOT_FOUND,
                code: 1004,
                error: "not_found",
                msg: "接口不存在",
                when: "no such route",
            },
            Self::MethodNotAllowed => Row {
                status: S::METHOD_NOT_ALLOWED,
                code: 1005,
                error: "method_not_allowed",
                msg: "请求方法不支持",
                when: "wrong HTTP method for the route",
            },
            Self::RequestTimeout => Row {
                status: S::REQUEST_TIMEOUT,
                code: 1006,
                error: "request_timeout",
                msg: "请求超时，请重试",
                when: "the request (headers, body and handling) took longer than --request-timeout (30 s)",
            },
            Self::AppRequired => Row {
                status: S::BAD_REQUEST,
                code: 1007,
                error: "app_required",
                msg: "请求缺少小程序 appid",
                when: "several apps are configured and the request names none (body `appid`, `X-WX-AppId`, or WeChat's Referer)",
            },
            Self::AppUnknown => Row {
                status: S::BAD_REQUEST,
                code: 1008,
                error: "app_unknown",
                msg: "小程序 appid 未配置",
                when: "the appid the request names (body, `X-WX-AppId` or Referer) is not one of this service's apps",
            },
            Self::LoginCodeInvalid => Row {
                status: S::BAD_REQUEST,
                code: 2001,
                error: "login_code_invalid",
                msg: "登录凭证无效或已过期，请重新登录",
                when: "WeChat 40029 on jscode2session: unknown, expired (5 min) or another app's login code",
            },
            Self::LoginCodeUsed => Row {
                status: S::BAD_REQUEST,
                code: 2002,
                error: "login_code_used",
                msg: "登录凭证已被使用，请重新登录",
                when: "WeChat 40163: the login code was used before",
            },
            Self::PhoneCodeInvalid => Row {
                status: S::BAD_REQUEST,
                code: 2003,
                error: "phone_code_invalid",
                msg: "手机号授权已失效，请重新点击按钮授权",
                when: "WeChat 40029 on getuserphonenumber: unknown, expired (5 min) or used phone code; 40013: another app's phone code",
            },
            Self::PhoneCodeMismatch => Row {
                status: S::FORBIDDEN,
                code: 2004,
                error: "phone_code_mismatch",
                msg: "手机号授权与当前微信用户不一致，请重新授权",
                when: "the phone code belongs to another WeChat user than the login (WeChat's openid check)",
            },
            Self::TicketInvalid => Row {
                status: S::UNAUTHORIZED,
                code: 2005,
                error: "ticket_invalid",
                msg: "登录已过期，请重新登录",
                when: "the ticket from /api/v1/login is unknown, used, another app's, older than 5 minutes, or spent by too many refused phone codes (`phone_failures_per_ticket`)",
            },
            Self::TicketInUse => Row {
                status: S::CONFLICT,
                code: 2008,
                error: "ticket_in_use",
                msg: "正在登录中，请稍候",
                when: "another /api/v1/phone request with this ticket is in flight (a double tap): its phone code was not spent; wait for the first request's answer, and only if that failed resend this phone code with the same ticket",
            },
            Self::PhoneInUse => Row {
                status: S::CONFLICT,
                code: 2009,
                error: "phone_in_use",
                msg: "该手机号已绑定其他账号",
                when: "the verified phone belongs to another account and `phone_conflict = \"deny\"`; nothing was written",
            },
            Self::Unauthorized => Row {
                status: S::UNAUTHORIZED,
                code: 2006,
                error: "unauthorized",
                msg: "未登录或登录已过期，请重新登录",
                when: "no, a forged, an expired or a logged-out session token",
            },
            Self::RefreshInvalid => Row {
                status: S::UNAUTHORIZED,
                code: 2010,
                error: "refresh_invalid",
                msg: "登录已过期，请重新登录",
                when: "the refresh token is unknown, malformed, expired (`refresh_token_ttl` since its last use, or `refresh_absolute_ttl` since the login), or its session ended (logout, revocation)",
            },
            Self::RefreshReused => Row {
                status: S::UNAUTHORIZED,
                code: 2011,
                error: "refresh_reused",
                msg: "登录状态异常，请重新登录",
                when: "a refresh token that was already used (rotated) was presented again: the whole session is ended, its newer refresh token too (reuse detection); log in again",
            },
            Self::QrLoginNotFound => Row {
                status: S::NOT_FOUND,
                code: 2012,
                error: "qr_login_not_found",
                msg: "二维码无效，请在电脑上刷新后重新扫码",
                when: "scan, confirm or deny of a scan-login id that does not exist (not a code of this service, or purged 10 minutes after it expired)",
            },
            // 409 like the other states a scan login can no longer leave (design.md's statuses have no 410).
            Self::QrLoginExpired => Row {
                status: S::CONFLICT,
                code: 2013,
                error: "qr_login_expired",
                msg: "二维码已过期，请在电脑上刷新后重新扫码",
                when: "scan, confirm or deny of a scan login created more than 120 s ago",
            },
            Self::QrLoginUsed => Row {
                status: S::CONFLICT,
                code: 2014,
                error: "qr_login_used",
                msg: "该二维码已被使用",
                when: "scan, confirm or deny of a scan login already confirmed or denied, or scanned by another WeChat user",
            },
            Self::QrLoginNotScanned => Row {
                status: S::CONFLICT,
                code: 2015,
                error: "qr_login_not_scanned",
                msg: "请先扫码",
                when: "confirm or deny before this WeChat user's scan (POST /api/v1/qr-login/{id}/scan)",
            },
            Self::PushNotConfigured => Row {
                status: S::NOT_FOUND,
                code: 4001,
                error: "push_not_configured",
                msg: "该小程序未配置消息推送",
                when: "`/wechat/push/{appid}` of an app this service does not serve, or one without `push_token`",
            },
            Self::PushSignatureInvalid => Row {
                status: S::UNAUTHORIZED,
                code: 4002,
                error: "push_signature_invalid",
                msg: "消息推送签名错误",
                when: "a WeChat push (or URL check) whose `signature`, or in safe mode `msg_signature`, is missing or not made with this app's `push_token`; nothing changed",
            },
            Self::PushMalformed => Row {
                status: S::BAD_REQUEST,
                code: 4003,
                error: "push_malformed",
                msg: "消息推送内容无法解析",
                when: "a signed push whose ciphertext does not decrypt with `push_aes_key`, names another appid inside, or is not the JSON or XML of an event; nothing changed",
            },
            Self::PushStale => Row {
                status: S::UNAUTHORIZED,
                code: 4004,
                error: "push_stale",
                msg: "消息推送已过期",
                when: "a push whose `timestamp` is more than 5 minutes from the service's clock (an old delivery replayed); nothing changed",
            },
            Self::PushReplayed => Row {
                status: S::CONFLICT,
                code: 4005,
                error: "push_replayed",
                msg: "消息推送重复",
                when: "the same delivery (signature, timestamp and nonce) a second time; the first was handled, nothing changed",
            },
            Self::UserBlocked => Row {
                status: S::FORBIDDEN,
                code: 2007,
                error: "user_blocked",
                msg: "当前微信账号存在风险，暂时无法登录",
                when: "WeChat 40226: high-risk user",
            },
            Self::RateLimited { .. } => Row {
                status: S::TOO_MANY_REQUESTS,
                code: 3001,
                error: "rate_limited",
                msg: "操作过于频繁，请稍后再试",
                when: "too many requests from this client IP, WeChat user or app (`[rate_limits]`), or WeChat 45011; retry after the `Retry-After` seconds",
            },
            Self::WechatBusy => Row {
                status: S::SERVICE_UNAVAILABLE,
                code: 3002,
                error: "wechat_busy",
                msg: "微信服务繁忙，请稍后再试",
                when: "WeChat -1 (busy) after the retries",
            },
            Self::WechatUnavailable => Row {
                status: S::SERVICE_UNAVAILABLE,
                code: 3003,
                error: "wechat_unavailable",
                msg: "暂时无法连接微信服务，请稍后再试",
                when: "WeChat unreachable, timed out, or a gateway error",
            },
            Self::WechatConfig => Row {
                status: S::SERVICE_UNAVAILABLE,
                code: 3004,
                error: "wechat_config",
                msg: "服务配置有误，请联系管理员",
                when: "WeChat refused this deployment: AppID/AppSecret or IP (40013, 40125, 41002, 41004, 40164), frozen secret or account (40243, 50004, 50007), API not entitled (48001), daily quota used (45009), admin confirmation (89501, 89503, 89506, 89507); logged with the errcode, an operator must act",
            },
            Self::WatermarkMismatch => Row {
                status: S::BAD_GATEWAY,
                code: 3005,
                error: "watermark_mismatch",
                msg: "手机号数据校验失败，请重试",
                when: "the phone data's watermark names another app",
            },
            Self::WechatError => Row {
                status: S::BAD_GATEWAY,
                code: 3006,
                error: "wechat_error",
                msg: "微信服务返回异常，请稍后再试",
                when: "any other WeChat errcode or an unreadable answer",
            },
            Self::DatabaseUnavailable => Row {
                status: S::SERVICE_UNAVAILABLE,
                code: 3007,
                error: "database_unavailable",
                msg: "服务暂时不可用，请稍后再试",
                when: "the database cannot be reached",
            },
            Self::Internal => Row {
                status: S::INTERNAL_SERVER_ERROR,
                code: 5000,
                error: "internal_error",
                msg: "服务内部错误，请稍后再试",
                when: "a bug or an unexpected failure (logged with the request id)",
            },
        }
    }

    /// Every row, in the order of the variants (for docs/errors.md and the uniqueness checks).
    pub fn table() -> impl Iterator<Item = Row> {
        Self::iter().map(|e| e.row())
    }
}

impl ApiError {
    /// A field error.
    pub fn field(field: &'static str, problem: FieldProblem) -> Self {
        Self::InvalidField { field, problem }
    }

    /// The message for the user: the row's, or for a field the field and what is wrong with it.
    pub fn message(&self) -> String {
        match self {
            Self::InvalidField { field, problem } => {
                let what = match problem {
                    FieldProblem::Missing => format!("缺少参数 {field}"),
                    FieldProblem::NotString => format!("{field} 必须是字符串"),
                    FieldProblem::Empty => format!("{field} 不能为空"),
                    FieldProblem::TooLong => format!("{field} 过长"),
                    FieldProblem::Malformed => format!("{field} 格式不正确"),
                };
                format!("请求参数错误：{what}")
            }
            other => other.row().msg.to_owned(),
        }
    }
}

/// Marks a response with the error id, for the request log line.
#[derive(Clone, Copy, Debug)]
pub struct ErrorId(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let row = self.row();
        let body = json!({ "code": row.code, "msg": self.message(), "error": row.error });
        let mut response = (row.status, Json(body)).into_response();
        if self == Self::Unauthorized {
            // RFC 6750 §3: a 401 of a Bearer route says what to present.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(
                    "Bearer realm=\"wxlogin\", error=\"invalid_token\"",
                ),
            );
        }
        if let Self::RateLimited { retry_after_secs } = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        response.extensions_mut().insert(ErrorId(row.error));
        response
    }
}

/// Which WeChat exchange failed: the same errcode means different things for a login and a phone code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    Login,
    Phone,
    /// getwxacodeunlimit: a mini program code for a scan login.
    QrCode,
}

impl ApiError {
    /// Maps a client error. Logs what an operator needs (errcode, kind) without anything secret.
    pub fn from_wechat(exchange: Exchange, err: &weixin::Error) -> Self {
        use weixin::{Errcode as E, Error as W};
        let mapped = match err {
            W::Api { errcode, .. } => match (exchange, errcode) {
                (Exchange::Login, E::InvalidCode | E::MissingCode) => Self::LoginCodeInvalid,
                (Exchange::Login, E::CodeUsed) => Self::LoginCodeUsed,
                (Exchange::Phone, E::InvalidCode) => Self::PhoneCodeInvalid,
                // On getuserphonenumber itself 40013 is WeChat's documented "code of another appid": the user's
                // fault, not ours. (From the token route the same number means our AppID is wrong.)
                (Exchange::Phone, E::InvalidAppId)
                    if matches!(
                        err,
                        W::Api {
                            api: "getuserphonenumber",
                            ..
                        }
                    ) =>
                {
                    Self::PhoneCodeInvalid
                }
                // wechat-api.md: the errcode for "this phone code is not this openid's" is undocumented; the
                // simulator answers 40003 (invalid openid), which is what WeChat uses for a bad openid.
                (Exchange::Phone, E::InvalidOpenId) => Self::PhoneCodeMismatch,
                // On getwxacodeunlimit 45009 is its per-minute limit (5,000 a minute), not a daily quota.
                (Exchange::QrCode, E::DailyLimit) => Self::RateLimited {
                    retry_after_secs: 60,
                },
                // WeChat's frequency limit counts per minute ("retry next minute").
                (_, E::RateLimited) => Self::RateLimited {
                    retry_after_secs: 60,
                },
                (_, E::SystemBusy) => Self::WechatBusy,
                (_, E::RiskyUser) => Self::UserBlocked,
                (_, c) if c.is_configuration() => Self::WechatConfig,
                _ => Self::WechatError,
            },
            W::Timeout { .. } | W::Connect { .. } | W::Http { .. } | W::TokenStore(_) => {
                Self::WechatUnavailable
            }
            W::WatermarkMismatch { .. } => Self::WatermarkMismatch,
            W::Decode { .. } | W::Decrypt(_) => Self::WechatError,
            _ => Self::Internal,
        };
        match mapped {
            Self::WechatConfig => tracing::error!(
                error = %err,
                errcode = err.errcode().map(|c| c.code()),
                "WeChat refused this deployment (configuration, entitlement or quota): an operator must act"
            ),
            Self::WechatError | Self::WatermarkMismatch | Self::Internal => {
                tracing::warn!(error = %err, "WeChat call failed")
            }
            _ => tracing::debug!(error = %err, "WeChat call failed"),
        }
        mapped
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        match err {
            crate::store::StoreError::Unavailable(_) => {
                tracing::warn!(error = %err, "database unavailable");
                Self::DatabaseUnavailable
            }
            // Concurrent logins kept changing the same accounts, past the retries: busy, try again.
            crate::store::StoreError::Conflict => {
                tracing::warn!("write conflicts persisted past the retries");
                Self::DatabaseUnavailable
            }
            crate::store::StoreError::TicketGone => Self::TicketInvalid,
            other => {
                tracing::error!(error = %other, source = ?std::error::Error::source(&other).map(|s| s.to_string()), "database error");
                Self::Internal
            }
        }
    }
}

impl From<crate::phone_crypto::CryptoError> for ApiError {
    fn from(err: crate::phone_crypto::CryptoError) -> Self {
        tracing::error!(error = %err, "phone decryption failed");
        Self::Internal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_and_ids_are_unique_and_never_zero() {
        let table: Vec<Row> = ApiError::table().collect();
        let codes: HashSet<_> = table.iter().map(|r| r.code).collect();
        let ids: HashSet<_> = table.iter().map(|r| r.error).collect();
        assert_eq!(codes.len(), table.len());
        assert_eq!(ids.len(), table.len());
        assert!(!codes.contains(&0));
        assert!(
            table
                .iter()
                .all(|r| r.status.is_client_error() || r.status.is_server_error())
        );
    }

    #[test]
    fn docs_list_every_row() {
        let doc = include_str!("../../../../docs/errors.md");
        for row in ApiError::table() {
            let line = format!(
                "| {} | `{}` | {} | {} | {} |",
                row.code,
                row.error,
                row.status.as_u16(),
                row.msg,
                row.when
            );
            assert!(
                doc.contains(&line),
                "docs/errors.md lacks or differs on: {line}"
            );
        }
    }

    #[test]
    fn field_messages_name_the_field() {
        assert_eq!(
            ApiError::field("loginCode", FieldProblem::Missing).message(),
            "请求参数错误：缺少参数 loginCode"
        );
        assert_eq!(
            ApiError::field("loginCode", FieldProblem::Missing)
                .row()
                .error,
            "invalid_field"
        );
    }
}
