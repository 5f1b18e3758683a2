//! Values parsed once at the edge: ids and codes that reject malformed input, so the rest of the code never
//! re-validates a bare string.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value was refused at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ParseError {
    /// The field that was refused, e.g. `loginCode`.
    pub field: &'static str,
    /// Why, in plain words.
    pub reason: &'static str,
}

/// Codes and ids are short printable ASCII tokens. WeChat does not publish their alphabet or length; login and
/// phone codes seen in the wild are 32–64 characters of `[A-Za-z0-9_-]`. We accept up to 256 printable ASCII
/// characters without spaces, which keeps a 3,000-character garbage field from ever reaching WeChat.
fn check_token(field: &'static str, value: &str, max: usize) -> Result<(), ParseError> {
    if value.is_empty() {
        return Err(ParseError {
            field,
            reason: "must not be empty",
        });
    }
    if value.len() > max {
        return Err(ParseError {
            field,
            reason: "is too long",
        });
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ParseError {
            field,
            reason: "contains characters a WeChat code never has",
        });
    }
    Ok(())
}

macro_rules! token_type {
    ($(#[$meta:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses the value, refusing empty, over-long or non-printable input.
            pub fn parse(value: impl Into<String>) -> Result<Self, ParseError> {
                let value = value.into();
                check_token($field, &value, $max)?;
                Ok(Self(value))
            }

            /// The value as WeChat expects it on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(value: String) -> Result<Self, ParseError> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

token_type!(
    /// A mini program's AppID (`wx` + 16 hex characters for real apps; the simulator's follow the same shape).
    AppId, "appid", 64
);
token_type!(
    /// A user's openid: unique per (user, app).
    OpenId, "openid", 128
);
token_type!(
    /// A user's unionid: unique per (user, Open Platform account).
    UnionId, "unionid", 128
);
token_type!(
    /// The one-time code `wx.login()` gives (5 minutes, single use). Secret-ish: it never prints.
    LoginCode, "loginCode", 256
);
token_type!(
    /// The one-time code the getPhoneNumber button gives (5 minutes, single use). It never prints.
    PhoneCode, "phoneCode", 256
);

// Ids are fine in logs; codes are bearer credentials for a few minutes, so they print redacted.
impl fmt::Debug for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppId({})", self.0)
    }
}
impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for OpenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpenId({})", self.0)
    }
}
impl fmt::Display for OpenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for UnionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnionId({})", self.0)
    }
}
impl fmt::Debug for LoginCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginCode([redacted])")
    }
}
impl fmt::Debug for PhoneCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneCode([redacted])")
    }
}

/// A phone number as WeChat returns it. `Debug` and `Display` show it masked (`138****8000`): personal data
/// (China's PIPL) must not reach logs in clear.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumber {
    /// With the country code for numbers outside mainland China (`+852…`), as WeChat's `phoneNumber`.
    pub phone_number: String,
    /// Without the country code, as WeChat's `purePhoneNumber`.
    pub pure_phone_number: String,
    /// The country code, e.g. `86`.
    pub country_code: String,
}

impl PhoneNumber {
    /// The number masked for display and logs: the first 3 and last 4 digits kept (`138****8000`).
    pub fn masked(&self) -> String {
        mask_phone(&self.phone_number)
    }
}

/// Masks a phone number: keeps the first 3 and the last 4 characters, stars in between. Short input is
/// fully starred, so nothing personal survives even for odd formats.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len().max(4));
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// WeChat's watermark: which app the data was produced for, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// Unix seconds.
    pub timestamp: i64,
    /// The app the data belongs to; checked against ours before anything is returned.
    pub appid: String,
}

/// A verified phone number: the number and the watermark that was checked against our appid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneInfo {
    /// The number.
    pub phone: PhoneNumber,
    /// WeChat's watermark (its appid equals ours).
    pub watermark: Watermark,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_are_parsed_once() {
        assert!(LoginCode::parse("").is_err());
        assert!(LoginCode::parse("a b").is_err());
        assert!(LoginCode::parse("x".repeat(3000)).is_err());
        assert!(LoginCode::parse("0a3Xyz-_").is_ok());
        assert_eq!(
            format!("{:?}", PhoneCode::parse("abc").unwrap()),
            "PhoneCode([redacted])"
        );
    }

    #[test]
    fn masks_like_the_logs_promise() {
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert_eq!(mask_phone("+85291234567"), "+85****4567");
        assert_eq!(mask_phone("123"), "****");
    }

    proptest! {
        #[test]
        fn a_mask_never_holds_the_middle_digits(phone in "[0-9]{8,15}") {
            let masked = mask_phone(&phone);
            prop_assert!(masked.contains("****"));
            prop_assert!(!masked.contains(&phone));
            prop_assert_eq!(masked.len(), 11);
        }

        #[test]
        fn parse_accepts_exactly_printable_tokens(s in "\\PC{0,300}") {
            let ok = !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic());
            prop_assert_eq!(LoginCode::parse(s.clone()).is_ok(), ok);
        }
    }
}
