//! The request bodies as the OpenAPI document describes them. Parsing itself happens in `body.rs` field by field
//! (so every problem names its field); these types state the same limits: codes are 1–256 printable ASCII
//! characters without spaces (`weixin`'s token types), tickets are exactly what we mint.

use utoipa::ToSchema;

/// Schemas with an `appid` property, which the running service narrows to the apps it serves.
pub const WITH_APPID: &[&str] = &["GetPhoneRequest", "LoginRequest", "PhoneRequest"];

/// `/api/getPhone`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct GetPhoneRequest {
    /// From `wx.login()`.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[!-~]+$")]
    login_code: String,
    /// From the getPhoneNumber button.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[!-~]+$")]
    phone_code: String,
    /// The app; else `X-WX-AppId`, WeChat's Referer, or the only app.
    appid: Option<String>,
}

/// `/api/v1/login`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct LoginRequest {
    #[schema(min_length = 1, max_length = 256, pattern = r"^[!-~]+$")]
    login_code: String,
    appid: Option<String>,
}

/// `/api/v1/phone`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct PhoneRequest {
    #[schema(min_length = 1, max_length = 256, pattern = r"^[!-~]+$")]
    phone_code: String,
    /// From `/api/v1/login`'s `phone_required` answer. Not needed with `Authorization: Bearer` (changing the
    /// phone of a logged-in account).
    #[schema(pattern = r"^wxt_[A-Za-z0-9_-]{43}$")]
    ticket: String,
    appid: Option<String>,
}
