//! Errors of the device API and its programmatic equivalents (the WeChat routes answer errcodes instead).

/// Why a device-API request was refused. [`SimError::id`] is the stable `error` field of the HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("unknown appid {0:?}")]
    UnknownApp(String),
    #[error("unknown openid {0:?}")]
    UnknownUser(String),
    /// The person closed their WeChat account (`POST /users/cancel`).
    #[error("the WeChat account of {0:?} is closed")]
    AccountClosed(String),
    #[error(
        "invalid phone number {0:?}: digits only; 11 digits starting with 1 for country code 86, 4 to 15 digits otherwise"
    )]
    InvalidPhoneNumber(String),
    #[error("invalid country code {0:?}: 1 to 3 digits, no leading zero")]
    InvalidCountryCode(String),
    #[error("{0}")]
    InvalidRequest(String),
    /// `POST /scan`: the image is not a base64 PNG the sandbox can read.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// `POST /scan`: the image holds no QR code of the simulator's.
    #[error("{0}")]
    NotAWxaCode(String),
    /// `POST /phone-code`: the app has no phone verification left of this kind (spuId); the button fails with
    /// errno 1400001 and hands out no code.
    #[error("no phone verification quota left (spuId {0}): the button fails with errno 1400001")]
    NoQuota(&'static str),
}

impl SimError {
    /// The snake_case id the device API answers in `error`.
    pub fn id(&self) -> &'static str {
        match self {
            SimError::UnknownApp(_) => "unknown_app",
            SimError::UnknownUser(_) => "unknown_user",
            SimError::AccountClosed(_) => "account_closed",
            SimError::InvalidPhoneNumber(_) => "invalid_phone_number",
            SimError::InvalidCountryCode(_) => "invalid_country_code",
            SimError::InvalidRequest(_) => "invalid_request",
            SimError::InvalidImage(_) => "invalid_image",
            SimError::NotAWxaCode(_) => "not_a_wxacode",
            SimError::NoQuota(_) => "no_quota",
        }
    }

    /// The HTTP status the device API answers.
    pub fn status(&self) -> u16 {
        match self {
            SimError::UnknownApp(_) | SimError::UnknownUser(_) => 404,
            SimError::AccountClosed(_) => 410,
            SimError::InvalidPhoneNumber(_)
            | SimError::InvalidCountryCode(_)
            | SimError::InvalidRequest(_)
            | SimError::InvalidImage(_)
            | SimError::NotAWxaCode(_) => 400,
            SimError::NoQuota(_) => 403,
        }
    }

    /// The errno WeChat's client hands the button callback for this failure, if it is one the button sees.
    pub fn errno(&self) -> Option<i64> {
        match self {
            SimError::NoQuota(_) => Some(crate::NO_QUOTA_ERRNO),
            _ => None,
        }
    }
}
