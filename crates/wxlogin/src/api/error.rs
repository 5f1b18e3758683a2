//! Every failure of the HTTP API, and the one table that maps it to an HTTP status, a stable numeric `code`, a
//! snake_case `error` id and a message a user can read. docs/errors.md is checked against [`TABLE`] by a test.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What went wrong, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    LoginCodeInvalid,
    LoginCodeUsed,
    PhoneCodeInvalid,
    PhoneCodeMismatch,
    TicketInvalid,
    /// Another request is redeeming a phone code with this ticket right now (a double tap).
    TicketInUse,
    Unauthorized,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldProblem {
    Missing,
    NotString,
    Empty,
    TooLong,
    Malformed,
}

/// One row of the error table.
pub struct Row {
    pub status: StatusCode,
    pub code: u32,
    pub error: &'static str,
    pub msg: &'static str,
    pub when: &'static str,
}

macro_rules! table {
    ($($variant:pat => $status:ident, $code:literal, $id:literal, $msg:literal, $when:literal;)*) => {
        /// The error table, in order.
        pub const TABLE: &[Row] = &[$(Row { status: StatusCode::$status, code: $code, error: $id, msg: $msg, when: $when }),*];

        impl ApiError {
            /// This error's row.
            pub fn row(&self) -> &'static Row {
                let mut i = 0;
                $(
                    if matches!(self, $variant) {
                        return &TABLE[i];
                    }
                    i += 1;
                )*
                let _ = i;
                unreachable!("every variant has a row")
            }
        }
    };
}

table! {
    ApiError::InvalidJson => BAD_REQUEST, 1001, "invalid_json", "请求格式错误：请求体必须是 JSON 对象", "the body is not JSON, or not a JSON object";
    ApiError::InvalidField { .. } => BAD_REQUEST, 1002, "invalid_field", "请求参数错误", "a field is missing, empty, not a string, too long or malformed (msg names the field)";
    ApiError::BodyTooLarge => PAYLOAD_TOO_LARGE, 1003, "body_too_large", "请求体过大", "the body is over 16 KiB";
    ApiError::NotFound => NOT_FOUND, 1004, "not_found", "接口不存在", "no such route";
    ApiError::MethodNotAllowed => METHOD_NOT_ALLOWED, 1005, "method_not_allowed", "请求方法不支持", "wrong HTTP method for the route";
    ApiError::RequestTimeout => REQUEST_TIMEOUT, 1006, "request_timeout", "请求超时，请重试", "the request (headers, body and handling) took longer than --request-timeout (30 s)";
    ApiError::LoginCodeInvalid => BAD_REQUEST, 2001, "login_code_invalid", "登录凭证无效或已过期，请重新登录", "WeChat 40029 on jscode2session: unknown, expired (5 min) or another app's login code";
    ApiError::LoginCodeUsed => BAD_REQUEST, 2002, "login_code_used", "登录凭证已被使用，请重新登录", "WeChat 40163: the login code was used before";
    ApiError::PhoneCodeInvalid => BAD_REQUEST, 2003, "phone_code_invalid", "手机号授权已失效，请重新点击按钮授权", "WeChat 40029 on getuserphonenumber: unknown, expired (5 min) or used phone code; 40013: another app's phone code";
    ApiError::PhoneCodeMismatch => FORBIDDEN, 2004, "phone_code_mismatch", "手机号授权与当前微信用户不一致，请重新授权", "the phone code belongs to another WeChat user than the login (WeChat's openid check)";
    ApiError::TicketInvalid => UNAUTHORIZED, 2005, "ticket_invalid", "登录已过期，请重新登录", "the ticket from /api/v1/login is unknown, used, another app's, older than 5 minutes, or spent by too many refused phone codes (`phone_failures_per_ticket`)";
    ApiError::TicketInUse => CONFLICT, 2008, "ticket_in_use", "正在登录中，请稍候", "another /api/v1/phone request with this ticket is in flight (a double tap): its phone code was not spent; wait for the first request's answer, and only if that failed resend this phone code with the same ticket";
    ApiError::Unauthorized => UNAUTHORIZED, 2006, "unauthorized", "未登录或登录已过期，请重新登录", "no, a forged, an expired or a logged-out session token";
    ApiError::UserBlocked => FORBIDDEN, 2007, "user_blocked", "当前微信账号存在风险，暂时无法登录", "WeChat 40226: high-risk user";
    ApiError::RateLimited { .. } => TOO_MANY_REQUESTS, 3001, "rate_limited", "操作过于频繁，请稍后再试", "too many requests from this client IP, WeChat user or app (`[rate_limits]`), or WeChat 45011; retry after the `Retry-After` seconds";
    ApiError::WechatBusy => SERVICE_UNAVAILABLE, 3002, "wechat_busy", "微信服务繁忙，请稍后再试", "WeChat -1 (busy) after the retries";
    ApiError::WechatUnavailable => SERVICE_UNAVAILABLE, 3003, "wechat_unavailable", "暂时无法连接微信服务，请稍后再试", "WeChat unreachable, timed out, or a gateway error";
    ApiError::WechatConfig => SERVICE_UNAVAILABLE, 3004, "wechat_config", "服务配置有误，请联系管理员", "WeChat refused this deployment: AppID/AppSecret or IP (40013, 40125, 41002, 41004, 40164), frozen secret or account (40243, 50004, 50007), API not entitled (48001), daily quota used (45009), admin confirmation (89501, 89503, 89506, 89507); logged with the errcode, an operator must act";
    ApiError::WatermarkMismatch => BAD_GATEWAY, 3005, "watermark_mismatch", "手机号数据校验失败，请重试", "the phone data's watermark names another app";
    ApiError::WechatError => BAD_GATEWAY, 3006, "wechat_error", "微信服务返回异常，请稍后再试", "any other WeChat errcode or an unreadable answer";
    ApiError::DatabaseUnavailable => SERVICE_UNAVAILABLE, 3007, "database_unavailable", "服务暂时不可用，请稍后再试", "the database cannot be reached";
    ApiError::Internal => INTERNAL_SERVER_ERROR, 5000, "internal_error", "服务内部错误，请稍后再试", "a bug or an unexpected failure (logged with the request id)";
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
        let codes: HashSet<_> = TABLE.iter().map(|r| r.code).collect();
        let ids: HashSet<_> = TABLE.iter().map(|r| r.error).collect();
        assert_eq!(codes.len(), TABLE.len());
        assert_eq!(ids.len(), TABLE.len());
        assert!(!codes.contains(&0));
        assert!(
            TABLE
                .iter()
                .all(|r| r.status.is_client_error() || r.status.is_server_error())
        );
    }

    #[test]
    fn docs_list_every_row() {
        let doc = include_str!("../../../../docs/errors.md");
        for row in TABLE {
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
