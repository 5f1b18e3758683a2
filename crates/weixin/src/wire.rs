//! WeChat's wire format: the one module that knows WeChat's field names.

use serde::{Deserialize, Deserializer, Serialize};

/// The errcode/errmsg pair every answer may carry. A missing errcode means success (jscode2session and the
/// token routes omit it on success).
#[derive(Debug, Deserialize)]
pub(crate) struct Status {
    #[serde(default)]
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct StableTokenRequest<'a> {
    pub grant_type: &'static str,
    pub appid: &'a str,
    pub secret: &'a str,
    pub force_refresh: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenAnswer {
    pub access_token: String,
    pub expires_in: u64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SessionAnswer {
    pub openid: String,
    pub session_key: String,
    #[serde(default)]
    pub unionid: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct PhoneRequest<'a> {
    pub code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openid: Option<&'a str>,
}

/// getwxacodeunlimit's JSON body. `page` is left out for the home page; auto_color, line_color and is_hyaline are
/// left to WeChat's defaults.
#[derive(Debug, Serialize)]
pub(crate) struct UnlimitedQrRequest<'a> {
    pub scene: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<&'a str>,
    pub check_path: bool,
    pub env_version: &'static str,
    pub width: u32,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PhoneAnswer {
    pub phone_info: PhoneFields,
}

/// The phone fields, shared by getuserphonenumber's `phone_info` and the legacy decrypted JSON.
#[derive(Debug, Deserialize)]
pub(crate) struct PhoneFields {
    #[serde(rename = "phoneNumber")]
    pub phone_number: String,
    #[serde(rename = "purePhoneNumber")]
    pub pure_phone_number: String,
    #[serde(rename = "countryCode", deserialize_with = "string_or_number")]
    pub country_code: String,
    pub watermark: WatermarkFields,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WatermarkFields {
    pub timestamp: i64,
    pub appid: String,
}

/// WeChat's field table types `countryCode` as a string but its own example shows a number: take both.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        N(i64),
    }
    Ok(match Either::deserialize(d)? {
        Either::S(s) => s,
        Either::N(n) => n.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_code_as_string_or_number() {
        let a: PhoneFields = serde_json::from_str(r#"{"phoneNumber":"1","purePhoneNumber":"1","countryCode":86,"watermark":{"timestamp":1,"appid":"wx"}}"#).unwrap();
        let b: PhoneFields = serde_json::from_str(r#"{"phoneNumber":"1","purePhoneNumber":"1","countryCode":"86","watermark":{"timestamp":1,"appid":"wx"}}"#).unwrap();
        assert_eq!(a.country_code, "86");
        assert_eq!(b.country_code, "86");
    }

    #[test]
    fn missing_errcode_is_success() {
        let s: Status = serde_json::from_str(r#"{"openid":"o","session_key":"k"}"#).unwrap();
        assert_eq!(s.errcode, 0);
    }
}
