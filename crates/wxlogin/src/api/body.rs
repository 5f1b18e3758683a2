//! Request bodies parsed at the edge: a JSON object with string fields turned into typed values, every problem
//! reported with the field's name. The body limit (16 KiB) is enforced before any parsing.

use super::error::{ApiError, FieldProblem};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Map, Value};

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
