//! Login codes (`wx.login`) and phone codes (the getPhoneNumber button): minting, and their single-use redemption
//! by jscode2session and getuserphonenumber.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use crate::clock::minute;
use crate::errcode::Errcode;
use crate::error::SimError;
use crate::ids::{self, SessionKey};
use crate::phone::Phone;
use crate::state::{Inner, LoginCode, PhoneCode, User};

/// Lifetime of both kinds of code, on the sim clock.
// Guess: a code is usable while `now < minted + 300`.
pub(crate) const CODE_TTL: u64 = 300;

/// A code as the phone receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedCode {
    pub code: String,
    /// Seconds until the code expires (300).
    pub expires_in: u64,
}

/// What `POST /phone-code` takes: whose tap it is and, optionally, another number they picked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhoneCodeRequest {
    pub openid: String,
    /// Another number than the user's own, which getuserphonenumber then answers (WeChat's sheet lets a user
    /// pick another verified number). Checked like `POST /users` checks numbers. `None`: the user's own.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// The other number's country code; only with `phone_number`. Default: `"86"`.
    #[serde(default)]
    pub country_code: Option<String>,
    /// Which button was tapped (`quick`: getPhoneNumber, `realtime`: getRealtimePhoneNumber): whose quota the
    /// code spends. Default: quick.
    #[serde(default)]
    pub kind: Option<crate::QuotaKind>,
}

impl PhoneCodeRequest {
    /// The other number, checked; `None` for the user's own.
    pub(crate) fn other_phone(&self) -> Result<Option<Phone>, SimError> {
        match (&self.phone_number, &self.country_code) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(SimError::InvalidRequest(
                "countryCode goes with phoneNumber".into(),
            )),
            (Some(number), cc) => Phone::parse(cc.as_deref(), number).map(Some),
        }
    }
}

impl Inner {
    /// `wx.login`: a new login code and, with it, a new session_key that replaces the user's previous one.
    pub(crate) fn mint_login_code(self: &Arc<Self>, user: &Arc<User>) -> IssuedCode {
        let now = self.clock.now();
        let session_key = SessionKey::generate();
        *user.session_key.lock() = session_key;
        let key = ids::new_code();
        self.login_codes.insert(
            key,
            LoginCode {
                user: Arc::clone(user),
                expires_at: now + CODE_TTL,
                used: false,
                session_key,
            },
        );
        self.counters.login_codes.fetch_add(1, Ordering::Relaxed);
        self.maybe_sweep(now);
        IssuedCode {
            code: ids::code_str(&key).to_owned(),
            expires_in: CODE_TTL,
        }
    }

    /// The getPhoneNumber button after "allow": a phone code bound to (app, user), for the user's own number or
    /// `other_phone`.
    // Guess: WeChat verifies another number by SMS before the user picks it; the sandbox takes any valid number,
    // fixed when the code is minted (the user picks it before tapping "allow").
    pub(crate) fn mint_phone_code(
        self: &Arc<Self>,
        user: &Arc<User>,
        other_phone: Option<Phone>,
    ) -> IssuedCode {
        let now = self.clock.now();
        let key = ids::new_code();
        self.phone_codes.insert(
            key,
            PhoneCode {
                user: Arc::clone(user),
                other_phone,
                expires_at: now + CODE_TTL,
                used: false,
            },
        );
        self.counters.phone_codes.fetch_add(1, Ordering::Relaxed);
        self.maybe_sweep(now);
        IssuedCode {
            code: ids::code_str(&key).to_owned(),
            expires_in: CODE_TTL,
        }
    }

    /// jscode2session's use of a login code: the user and the session_key minted with the code.
    ///
    /// Unknown, expired and other apps' codes answer 40029; a used one 40163. The per-user limit counts the
    /// calls that get this far, and a refused call leaves the code unused.
    // Guess: the per-user limit is checked after the code's own checks (only a live code names its user), and a
    // 45011 does not consume the code.
    pub(crate) fn redeem_login_code(
        &self,
        app: u32,
        code: &str,
        now: u64,
    ) -> Result<(Arc<User>, SessionKey), Errcode> {
        let key = ids::code_key(code).ok_or(Errcode::INVALID_CODE)?;
        let mut entry = self
            .login_codes
            .get_mut(&key)
            .ok_or(Errcode::INVALID_CODE)?;
        if entry.user.app != app || now >= entry.expires_at {
            return Err(Errcode::INVALID_CODE);
        }
        if entry.used {
            return Err(Errcode::CODE_BEEN_USED);
        }
        let limit = self.limits.jscode2session_per_user();
        if !entry.user.login_window.hit(minute(now), limit) {
            return Err(Errcode::MINUTE_LIMIT);
        }
        entry.used = true;
        Ok((Arc::clone(&entry.user), entry.session_key))
    }

    /// getuserphonenumber's use of a phone code: its user, and the other number picked if any (`None`: the
    /// user's own).
    ///
    /// Unknown, expired and used codes answer 40029 (WeChat answers reuse of a phone code with 40029, not
    /// 40163); another app's code answers 40013, the errcode getuserphonenumber's page documents for "code of
    /// another appid", and stays usable in its own app. With an `openid` that is not the code's owner the
    /// answer is 40003 and the code stays usable by its owner.
    // Guess: WeChat does not document the errcode for a phone code sent with another user's openid; the
    // simulator answers 40003 ("invalid openid") and does not consume the code, so a mismatch cannot be used to
    // burn someone else's code.
    pub(crate) fn redeem_phone_code(
        &self,
        app: u32,
        code: &str,
        openid: Option<&str>,
        now: u64,
    ) -> Result<(Arc<User>, Option<Phone>), Errcode> {
        let key = ids::code_key(code).ok_or(Errcode::INVALID_CODE)?;
        let mut entry = self
            .phone_codes
            .get_mut(&key)
            .ok_or(Errcode::INVALID_CODE)?;
        if entry.user.app != app {
            return Err(Errcode::INVALID_APPID);
        }
        if now >= entry.expires_at || entry.used {
            return Err(Errcode::INVALID_CODE);
        }
        if openid.is_some_and(|o| o != entry.user.openid) {
            return Err(Errcode::INVALID_OPENID);
        }
        let limit = self.limits.phone_number_per_user();
        if !entry.user.phone_window.hit(minute(now), limit) {
            return Err(Errcode::MINUTE_LIMIT);
        }
        entry.used = true;
        Ok((Arc::clone(&entry.user), entry.other_phone.take()))
    }
}
