//! Every failure of the HTTP API, and the one table that maps it to an HTTP status, a stable numeric `code`, a
//! snake_case `error` id and a message a user can read. docs/errors.md is checked against [`ApiError::table`] by a test.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

mod from;
mod table;

pub use from::Exchange;

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
        let doc = include_str!("../../../../../docs/errors.md");
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
