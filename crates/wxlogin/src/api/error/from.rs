//! How the layers below map into [`ApiError`]: WeChat's errcodes (per exchange: the same errcode means different
//! things for a login and a phone code), the store's errors and the phone cipher's.

use super::ApiError;

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
