//! A typed async client for WeChat's Mini Program server API: the calls a phone-number login needs.
//!
//! - [`Client::code_to_session`]: a `wx.login()` code → openid, unionid, session_key;
//! - [`Client::get_phone_number`]: a getPhoneNumber button code → the verified phone number (the watermark is
//!   checked against our AppID), optionally bound to an openid so WeChat checks the code is that user's;
//! - [`Client::get_unlimited_qr_code`]: a mini program code (image bytes) for a page and a [`Scene`];
//! - [`Client::charge_usage`]: the phone-verification quota (packs, calls left) of a [`PhoneVerificationKind`];
//!   [`Client::recent_average_usage`]: its average monthly use over the last three months;
//! - a [`CallObserver`] set on the [`Config`] is told about every HTTP attempt (API name, errcode or transport
//!   failure), so a service can count WeChat calls without this crate depending on a metrics library;
//! - [`Client::check_session_key`], and legacy [`Client::decrypt_data`] / [`Client::decrypt_phone_number`];
//! - the access token: `stable_token`, cached until shortly before expiry, refreshed by one caller while the
//!   others wait, dropped and refreshed once when WeChat rejects it, kept in a [`TokenStore`] that a cluster can
//!   share;
//! - `-1` (busy) and connection failures retried with bounded, jittered backoff where repeating is safe; code
//!   errors and rate limits never.
//!
//! Secrets ([`AppSecret`], [`AccessToken`], [`SessionKey`]) print as `[redacted]`; phone numbers print masked.
//!
//! # Example
//!
//! Against the offline simulator (`wxsim`), exactly as against `https://api.weixin.qq.com`:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use weixin::{AppId, AppSecret, Client, Config, LoginCode, PhoneCode};
//!
//! let app = wxsim::AppCredentials::generate();
//! let sim = wxsim::spawn(wxsim::SimConfig::with_apps(vec![app.clone()])).await?;
//! // The phone's side: a user, what wx.login() gives, what the phone button gives.
//! let user = sim.sim.create_user(wxsim::NewUser { appid: None, phone_number: "13800138000".into(), country_code: None })?;
//! let login_code = sim.sim.login_code(&user.openid)?.code;
//! let phone_code = sim.sim.phone_code(&user.openid)?.code;
//!
//! let client = Client::new(Config::new(AppId::parse(app.appid)?, AppSecret::new(app.secret)).with_base_url(&sim.base_url))?;
//! let session = client.code_to_session(&LoginCode::parse(login_code)?).await?;
//! let phone = client.get_phone_number(&PhoneCode::parse(phone_code)?, Some(&session.openid)).await?;
//! assert_eq!(phone.phone.pure_phone_number, "13800138000");
//! assert_eq!(phone.to_owned().phone.to_string(), "138****8000"); // Display masks
//! # Ok(()) }
//! ```

mod charge;
mod client;
mod crypto;
mod error;
mod observe;
pub mod push;
mod qrcode;
#[cfg(feature = "redis")]
mod redis_store;
mod retry;
mod secret;
mod token;
mod types;
mod wire;

pub use charge::{ChargeUsage, PhoneVerificationKind, QuotaPack, QuotaPackStatus};
pub use client::{Client, Config, DEFAULT_BASE_URL, Session};
pub use crypto::session_signature;
pub use error::{DecryptError, Errcode, Error, Result};
pub use observe::{CallObserver, CallOutcome, Observer};
pub use qrcode::{
    EnvVersion, MAX_QR_IMAGE_BYTES, MAX_SCENE_LEN, MiniProgramPage, QrImage, Scene, UnlimitedQrCode,
};
#[cfg(feature = "redis")]
pub use redis_store::RedisTokenStore;
pub use retry::RetryPolicy;
pub use secret::{AccessToken, AppSecret, SessionKey};
pub use token::{CachedToken, MemoryTokenStore, RefreshLock, TokenStore};
pub use types::{
    AppId, LoginCode, OpenId, ParseError, PhoneCode, PhoneInfo, PhoneNumber, UnionId, Watermark,
    mask_phone,
};

/// `n` random bytes as lower-case hex.
pub(crate) fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
