//! One error type for the client, and WeChat's errcodes as a typed enum that keeps the raw number and message.

use std::fmt;

/// An errcode WeChat answered, typed where wxlogin acts on it, with the raw number always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Errcode {
    /// `-1`: system busy. Retried with bounded backoff.
    SystemBusy,
    /// `40001`: the access token is invalid (or the AppSecret is wrong, on `/cgi-bin/token`).
    InvalidCredential,
    /// `40002`: bad `grant_type`.
    InvalidGrantType,
    /// `40003`: invalid openid. The simulator also answers it when a phone code belongs to another user.
    InvalidOpenId,
    /// `40013`: invalid AppID.
    InvalidAppId,
    /// `40014`: malformed access token.
    InvalidAccessToken,
    /// `40029`: invalid code (unknown, expired, another app's; for phone codes also used).
    InvalidCode,
    /// `40125`: invalid AppSecret.
    InvalidAppSecret,
    /// `40163`: the login code was used already.
    CodeUsed,
    /// `40164`: the caller's IP is not in the allow-list.
    IpNotAllowed,
    /// `40226`: WeChat blocked a high-risk user.
    RiskyUser,
    /// `41001`: access token missing.
    MissingAccessToken,
    /// `41002`: AppID missing.
    MissingAppId,
    /// `41004`: AppSecret missing.
    MissingAppSecret,
    /// `41008`: code missing.
    MissingCode,
    /// `42001`: the access token expired.
    AccessTokenExpired,
    /// `43002`: must be POST.
    RequirePost,
    /// `45009`: daily quota reached (for getwxacodeunlimit WeChat uses it for its 5,000 calls/minute limit).
    DailyLimit,
    /// `45011`: frequency limit.
    RateLimited,
    /// `47001`: the body is not valid JSON (or misses a field).
    BadBody,
    /// `87009`: the session_key signature does not match.
    InvalidSignature,
    /// `40243`: the AppSecret is frozen (`/cgi-bin/token`).
    SecretFrozen,
    /// `48001`: the app is not entitled to this API (e.g. the phone number API needs a verified, non-personal app).
    ApiUnauthorized,
    /// `50004`: the token route is forbidden for this account (`/cgi-bin/token`).
    TokenForbidden,
    /// `50007`: the account is frozen (`/cgi-bin/token`).
    AccountFrozen,
    /// `89501`: the token call waits for the administrator's confirmation (stable_token's table).
    AdminConfirmPending,
    /// `89503`: the token call needs the administrator's confirmation.
    AdminConfirmRequired,
    /// `89506`: the administrator refused twice in 24 hours: this IP is blocked for 24 hours.
    AdminRefusedBlocked24h,
    /// `89507`: the administrator refused: this IP is blocked for 1 hour.
    AdminRefusedBlocked1h,
    /// `40097`: invalid arguments (getwxacodeunlimit: e.g. a width out of 280–1280, an unknown env_version).
    InvalidArgs,
    /// `40129`: invalid scene: a character outside getwxacodeunlimit's allowed set.
    InvalidScene,
    /// `40169`: invalid scene length: empty or longer than 32 characters (also the answer to a body that is not
    /// JSON).
    InvalidSceneLength,
    /// `41030`: invalid page: a leading `/`, or (with `check_path`) a page the published version does not have.
    InvalidPage,
    /// `85096`: `scancode_time` is not allowed (a parameter WeChat no longer accepts).
    ScancodeTimeNotAllowed,
    /// `10120002`: a charge API's parameter was refused (`/wxa/charge/usage/…`).
    ChargeBadParameter,
    /// `10120700`: a charge API does not know the spuId.
    ChargeInvalidSpuId,
    /// `10122000`: `get_recent_average` has no recent data.
    ChargeNoRecentData,
    /// Any other errcode, kept as is.
    Other(i64),
}

impl Errcode {
    /// Types a raw errcode.
    pub fn from_code(code: i64) -> Self {
        match code {
            -1 => Self::SystemBusy,
            40001 => Self::InvalidCredential,
            40002 => Self::InvalidGrantType,
            40003 => Self::InvalidOpenId,
            40013 => Self::InvalidAppId,
            40014 => Self::InvalidAccessToken,
            40029 => Self::InvalidCode,
            40125 => Self::InvalidAppSecret,
            40163 => Self::CodeUsed,
            40164 => Self::IpNotAllowed,
            40226 => Self::RiskyUser,
            41001 => Self::MissingAccessToken,
            41002 => Self::MissingAppId,
            41004 => Self::MissingAppSecret,
            41008 => Self::MissingCode,
            42001 => Self::AccessTokenExpired,
            43002 => Self::RequirePost,
            45009 => Self::DailyLimit,
            45011 => Self::RateLimited,
            47001 => Self::BadBody,
            87009 => Self::InvalidSignature,
            40243 => Self::SecretFrozen,
            48001 => Self::ApiUnauthorized,
            50004 => Self::TokenForbidden,
            50007 => Self::AccountFrozen,
            89501 => Self::AdminConfirmPending,
            89503 => Self::AdminConfirmRequired,
            89506 => Self::AdminRefusedBlocked24h,
            89507 => Self::AdminRefusedBlocked1h,
            40097 => Self::InvalidArgs,
            40129 => Self::InvalidScene,
            40169 => Self::InvalidSceneLength,
            41030 => Self::InvalidPage,
            85096 => Self::ScancodeTimeNotAllowed,
            10120002 => Self::ChargeBadParameter,
            10120700 => Self::ChargeInvalidSpuId,
            10122000 => Self::ChargeNoRecentData,
            other => Self::Other(other),
        }
    }

    /// The raw errcode.
    pub fn code(self) -> i64 {
        match self {
            Self::SystemBusy => -1,
            Self::InvalidCredential => 40001,
            Self::InvalidGrantType => 40002,
            Self::InvalidOpenId => 40003,
            Self::InvalidAppId => 40013,
            Self::InvalidAccessToken => 40014,
            Self::InvalidCode => 40029,
            Self::InvalidAppSecret => 40125,
            Self::CodeUsed => 40163,
            Self::IpNotAllowed => 40164,
            Self::RiskyUser => 40226,
            Self::MissingAccessToken => 41001,
            Self::MissingAppId => 41002,
            Self::MissingAppSecret => 41004,
            Self::MissingCode => 41008,
            Self::AccessTokenExpired => 42001,
            Self::RequirePost => 43002,
            Self::DailyLimit => 45009,
            Self::RateLimited => 45011,
            Self::BadBody => 47001,
            Self::InvalidSignature => 87009,
            Self::SecretFrozen => 40243,
            Self::ApiUnauthorized => 48001,
            Self::TokenForbidden => 50004,
            Self::AccountFrozen => 50007,
            Self::AdminConfirmPending => 89501,
            Self::AdminConfirmRequired => 89503,
            Self::AdminRefusedBlocked24h => 89506,
            Self::AdminRefusedBlocked1h => 89507,
            Self::InvalidArgs => 40097,
            Self::InvalidScene => 40129,
            Self::InvalidSceneLength => 40169,
            Self::InvalidPage => 41030,
            Self::ScancodeTimeNotAllowed => 85096,
            Self::ChargeBadParameter => 10120002,
            Self::ChargeInvalidSpuId => 10120700,
            Self::ChargeNoRecentData => 10122000,
            Self::Other(code) => code,
        }
    }

    /// The access token the call used is no good: drop it (if still cached), refresh once, retry once.
    pub fn is_token_rejected(self) -> bool {
        matches!(
            self,
            Self::InvalidCredential | Self::AccessTokenExpired | Self::InvalidAccessToken
        )
    }

    /// A problem of the deployment, not of the user or the moment: wrong AppID/secret, IP allow-list, a frozen
    /// secret or account, an API the app is not entitled to, the app's daily quota used up, the administrator's
    /// confirmation of the token call (the 8950x family), a QR code page the published version does not have
    /// (41030: with `check_path` the page must be released; the QR code types refuse a leading `/` before
    /// sending). Never retried; an operator must act.
    pub fn is_configuration(self) -> bool {
        matches!(
            self,
            Self::InvalidAppId
                | Self::InvalidAppSecret
                | Self::MissingAppId
                | Self::MissingAppSecret
                | Self::IpNotAllowed
                | Self::DailyLimit
                | Self::SecretFrozen
                | Self::ApiUnauthorized
                | Self::TokenForbidden
                | Self::AccountFrozen
                | Self::AdminConfirmPending
                | Self::AdminConfirmRequired
                | Self::AdminRefusedBlocked24h
                | Self::AdminRefusedBlocked1h
                | Self::InvalidGrantType
                | Self::InvalidPage
        )
    }

    fn describe(self) -> &'static str {
        match self {
            Self::SystemBusy => "WeChat is busy",
            Self::InvalidCredential => "the access token (or AppSecret) was refused",
            Self::InvalidGrantType => "the grant_type was refused",
            Self::InvalidOpenId => {
                "the openid was refused (for a phone code: it belongs to another user)"
            }
            Self::InvalidAppId => "the AppID is not valid",
            Self::InvalidAccessToken => "the access token is malformed",
            Self::InvalidCode => "the code is invalid, expired or already used",
            Self::InvalidAppSecret => "the AppSecret is wrong",
            Self::CodeUsed => "the login code was already used",
            Self::IpNotAllowed => "this server's IP is not in the app's IP allow-list",
            Self::RiskyUser => "WeChat blocked this user as high-risk",
            Self::MissingAccessToken => "the access token is missing",
            Self::MissingAppId => "the AppID is missing",
            Self::MissingAppSecret => "the AppSecret is missing",
            Self::MissingCode => "the code is missing",
            Self::AccessTokenExpired => "the access token expired",
            Self::RequirePost => "the call must be a POST",
            Self::DailyLimit => "the daily quota is used up",
            Self::RateLimited => "calls are too frequent",
            Self::BadBody => "the request body was refused",
            Self::InvalidSignature => "the session_key signature does not match",
            Self::SecretFrozen => "the AppSecret is frozen",
            Self::ApiUnauthorized => "the app is not entitled to this API",
            Self::TokenForbidden => "the token route is forbidden for this account",
            Self::AccountFrozen => "the account is frozen",
            Self::AdminConfirmPending => "waiting for the administrator to confirm the token call",
            Self::AdminConfirmRequired => "the token call needs the administrator's confirmation",
            Self::AdminRefusedBlocked24h => {
                "the administrator refused the token call; this IP is blocked for 24 hours"
            }
            Self::AdminRefusedBlocked1h => {
                "the administrator refused the token call; this IP is blocked for 1 hour"
            }
            Self::InvalidArgs => "the arguments were refused",
            Self::InvalidScene => "the scene has characters WeChat does not allow",
            Self::InvalidSceneLength => "the scene is empty or longer than 32 characters",
            Self::InvalidPage => {
                "the page is invalid or not in the published version of the mini program"
            }
            Self::ScancodeTimeNotAllowed => "scancode_time is not allowed",
            Self::ChargeBadParameter => "the charge API refused a parameter",
            Self::ChargeInvalidSpuId => "the charge API does not know this spuId",
            Self::ChargeNoRecentData => "the charge API has no recent data",
            Self::Other(_) => "WeChat refused the call",
        }
    }
}

impl fmt::Display for Errcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errcode {})", self.describe(), self.code())
    }
}

/// Why legacy `encryptedData` could not be decrypted, with the likely cause named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// A field is not base64 even after repairing `+` turned into a space.
    #[error("{0} is not valid base64")]
    Base64(&'static str),
    /// The session_key or iv does not decode to 16 bytes.
    #[error("{0} must decode to 16 bytes")]
    Length(&'static str),
    /// PKCS#7 padding is wrong: almost always a session_key rotated by a later `wx.login` (call `wx.login`
    /// before the button, not after), or data for another session.
    #[error(
        "bad padding: the session_key is probably not the one this data was encrypted with (rotated by a later wx.login?)"
    )]
    Padding,
    /// The plaintext is not the JSON WeChat sends.
    #[error("the decrypted data is not WeChat's JSON: {0}")]
    Json(String),
}

/// Every way a call to WeChat can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// WeChat answered with an errcode. `message` is WeChat's `errmsg` (it carries no secret; it may carry a
    /// request id such as `rid: …`).
    #[error("WeChat {api}: {errcode}: {message}")]
    Api {
        /// Which API was called, e.g. `jscode2session`.
        api: &'static str,
        /// The typed errcode (the raw number via [`Errcode::code`]).
        errcode: Errcode,
        /// WeChat's errmsg.
        message: String,
        /// How many attempts were made (more than 1 after retries on `-1`): a `40029` after a failed attempt may
        /// mean the failed attempt consumed the code.
        attempts: u32,
    },
    /// No answer in time.
    #[error("WeChat {api}: no answer within the timeout")]
    Timeout {
        /// Which API.
        api: &'static str,
    },
    /// The connection failed (DNS, refused, reset, TLS). The URL is stripped: it may hold a secret.
    #[error("WeChat {api}: connection failed: {source}")]
    Connect {
        /// Which API.
        api: &'static str,
        /// The transport error, without its URL.
        #[source]
        source: reqwest::Error,
    },
    /// A non-200 HTTP status (WeChat answers errors with 200; anything else is a gateway in between).
    #[error("WeChat {api}: HTTP status {status}")]
    Http {
        /// Which API.
        api: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// The answer was not the JSON WeChat documents.
    #[error("WeChat {api}: unexpected answer: {detail}")]
    Decode {
        /// Which API.
        api: &'static str,
        /// What was wrong (never the body itself: it may hold a session_key).
        detail: String,
    },
    /// The data's watermark names another app: it was not produced for us.
    #[error("the data's watermark is for app {got}, not ours ({expected})")]
    WatermarkMismatch {
        /// Our AppID.
        expected: String,
        /// The watermark's AppID.
        got: String,
    },
    /// Legacy decryption failed.
    #[error("decrypting encryptedData failed: {0}")]
    Decrypt(#[from] DecryptError),
    /// The token store failed (e.g. Redis unreachable).
    #[error("token store: {0}")]
    TokenStore(String),
    /// The client was configured wrongly.
    #[error("client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The WeChat errcode, if WeChat answered one.
    pub fn errcode(&self) -> Option<Errcode> {
        match self {
            Self::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// The failure is transient on the network path (timeout, connection, gateway status).
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. } | Self::Connect { .. } | Self::Http { .. }
        )
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errcodes_round_trip() {
        for code in [
            -1, 0, 40001, 40002, 40003, 40013, 40014, 40029, 40125, 40163, 40164, 40226, 41001,
            41002, 41004, 41008, 42001, 43002, 45009, 45011, 47001, 87009, 40243, 48001, 50004,
            50007, 89501, 89503, 89506, 89507, 40097, 40129, 40169, 41030, 85096, 10120002,
            10120700, 10122000, 99999,
        ] {
            assert_eq!(Errcode::from_code(code).code(), code);
        }
        assert!(Errcode::from_code(42001).is_token_rejected());
        assert!(!Errcode::from_code(40029).is_token_rejected());
        assert!(Errcode::from_code(40125).is_configuration());
        // The operator's problems: quota, entitlement, frozen secret or account, the admin confirmation family.
        for code in [
            45009, 48001, 40243, 50004, 50007, 89501, 89503, 89506, 89507, 41030,
        ] {
            assert!(Errcode::from_code(code).is_configuration(), "{code}");
            assert!(
                !matches!(Errcode::from_code(code), Errcode::Other(_)),
                "{code}"
            );
        }
        for code in [-1, 40029, 40163, 45011, 40226] {
            assert!(!Errcode::from_code(code).is_configuration(), "{code}");
        }
        // getwxacodeunlimit's caller bugs: typed, neither configuration nor token trouble.
        for code in [40097, 40129, 40169, 85096] {
            let c = Errcode::from_code(code);
            assert!(!matches!(c, Errcode::Other(_)), "{code}");
            assert!(!c.is_configuration() && !c.is_token_rejected(), "{code}");
        }
    }

    #[test]
    fn display_is_plain_words_with_the_number() {
        let e = Error::Api {
            api: "jscode2session",
            errcode: Errcode::CodeUsed,
            message: "code been used, rid: 1".into(),
            attempts: 1,
        };
        assert_eq!(
            e.to_string(),
            "WeChat jscode2session: the login code was already used (errcode 40163): code been used, rid: 1"
        );
    }
}
