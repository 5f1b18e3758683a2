//! What a simulator is started with: its apps and its limits.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::ids;

/// One mini program known to the simulator: its appid and its AppSecret.
#[derive(Clone, PartialEq, Eq)]
pub struct AppCredentials {
    pub appid: String,
    pub secret: String,
}

impl AppCredentials {
    /// A fresh app: appid `wx` + 16 lowercase hex digits, secret 32 lowercase hex digits (WeChat's shapes).
    pub fn generate() -> Self {
        Self {
            appid: format!("wx{}", ids::random_hex::<8>()),
            secret: ids::random_hex::<16>(),
        }
    }
}

/// The secret never prints.
impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("appid", &self.appid)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// Everything a [`crate::Simulator`] is built from.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The apps the simulator knows, bound to its Open Platform account when [`SimConfig::open_platform`] is
    /// set. With no apps here nor in `unbound_apps`: one generated sandbox app.
    pub apps: Vec<AppCredentials>,
    /// More apps, not bound to the Open Platform account whatever `open_platform` says: jscode2session answers
    /// their users no `unionid` until [`crate::Simulator::bind_app`] binds them. They come after `apps` in
    /// [`crate::Simulator::apps`].
    pub unbound_apps: Vec<AppCredentials>,
    pub limits: Limits,
    /// Whether the apps of `apps` start bound to the simulator's one Open Platform account, i.e. whether
    /// jscode2session answers their users a `unionid` (the same for one person in every bound app).
    pub open_platform: bool,
    /// The secret openids and unionids are derived from. A person (phone number) gets the same openid per app
    /// and the same unionid from every simulator with the same seed, so a sandbox that keeps its seed keeps its
    /// users' identities across restarts. `None`: a random seed.
    pub identity_seed: Option<[u8; 32]>,
    /// The pages of every app's published version, the first its home page: what getwxacodeunlimit's
    /// `check_path` checks and a missing `page` defaults to. Default: the mini program template's pages
    /// ([`SimConfig::TEMPLATE_PAGES`]).
    pub published_pages: Vec<String>,
    /// Published pages of one app (by appid) instead of `published_pages`.
    pub app_pages: BTreeMap<String, Vec<String>>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            apps: Vec::new(),
            unbound_apps: Vec::new(),
            limits: Limits::default(),
            open_platform: true,
            identity_seed: None,
            published_pages: Self::TEMPLATE_PAGES.map(str::to_owned).to_vec(),
            app_pages: BTreeMap::new(),
        }
    }
}

impl SimConfig {
    /// The pages of the mini program template (`miniprogram/`), home page first.
    pub const TEMPLATE_PAGES: [&str; 3] = [
        "pages/index/index",
        "pages/login/login",
        "pages/qr-confirm/qr-confirm",
    ];

    pub fn with_apps(apps: Vec<AppCredentials>) -> Self {
        Self {
            apps,
            ..Self::default()
        }
    }
}

/// Rate limits, counted in fixed windows of the simulator's clock (a minute is `now / 60`; a day starts at
/// midnight Beijing time). A field missing from a JSON body takes its default (WeChat's number).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Limits {
    /// code2Session calls per user per minute (WeChat: 100) → 45011.
    pub jscode2session_per_user_per_minute: u32,
    /// getuserphonenumber calls per user per minute → 45011.
    // Guess: WeChat documents 45011 for this route but no number; 100 like code2Session.
    pub phone_number_per_user_per_minute: u32,
    /// Calls per app per minute on each business route (jscode2session, getuserphonenumber, checksession),
    /// counted per route → 45011. `None`: unlimited.
    // Guess: WeChat's per-API quotas are per route, so this one is too.
    pub business_per_app_per_minute: Option<u32>,
    /// stable_token calls per app per minute (WeChat: 10,000) → 45011.
    pub stable_token_per_app_per_minute: u32,
    /// stable_token calls per app per day (WeChat: 500,000) → 45009.
    pub stable_token_per_app_per_day: u32,
    /// `/cgi-bin/token` calls per app per day (community answers: 2,000) → 45009.
    pub token_per_app_per_day: u32,
    /// stable_token calls with `force_refresh:true` per app per day (WeChat: 20) → 45009.
    pub force_refresh_per_app_per_day: u32,
    /// getwxacodeunlimit calls per app per minute (WeChat: 5,000) → 45009.
    pub wxacode_per_app_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            jscode2session_per_user_per_minute: 100,
            phone_number_per_user_per_minute: 100,
            business_per_app_per_minute: None,
            stable_token_per_app_per_minute: 10_000,
            stable_token_per_app_per_day: 500_000,
            token_per_app_per_day: 2_000,
            force_refresh_per_app_per_day: 20,
            wxacode_per_app_per_minute: 5_000,
        }
    }
}

const UNLIMITED: u64 = u64::MAX;

/// [`Limits`] readable on the hot path without a lock: one atomic per field.
pub(crate) struct LimitsCell {
    fields: [AtomicU64; 8],
}

impl LimitsCell {
    pub(crate) fn new(limits: &Limits) -> Self {
        let cell = Self {
            fields: Default::default(),
        };
        cell.set(limits);
        cell
    }

    pub(crate) fn set(&self, l: &Limits) {
        let values = [
            u64::from(l.jscode2session_per_user_per_minute),
            u64::from(l.phone_number_per_user_per_minute),
            l.business_per_app_per_minute.map_or(UNLIMITED, u64::from),
            u64::from(l.stable_token_per_app_per_minute),
            u64::from(l.stable_token_per_app_per_day),
            u64::from(l.token_per_app_per_day),
            u64::from(l.force_refresh_per_app_per_day),
            u64::from(l.wxacode_per_app_per_minute),
        ];
        for (field, value) in self.fields.iter().zip(values) {
            field.store(value, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self) -> Limits {
        Limits {
            jscode2session_per_user_per_minute: self.u32(0),
            phone_number_per_user_per_minute: self.u32(1),
            business_per_app_per_minute: self.business_per_app_per_minute(),
            stable_token_per_app_per_minute: self.u32(3),
            stable_token_per_app_per_day: self.u32(4),
            token_per_app_per_day: self.u32(5),
            force_refresh_per_app_per_day: self.u32(6),
            wxacode_per_app_per_minute: self.u32(7),
        }
    }

    fn u32(&self, i: usize) -> u32 {
        u32::try_from(self.fields[i].load(Ordering::Relaxed)).unwrap_or(u32::MAX)
    }

    pub(crate) fn jscode2session_per_user(&self) -> u32 {
        self.u32(0)
    }
    pub(crate) fn phone_number_per_user(&self) -> u32 {
        self.u32(1)
    }
    pub(crate) fn business_per_app_per_minute(&self) -> Option<u32> {
        match self.fields[2].load(Ordering::Relaxed) {
            UNLIMITED => None,
            n => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        }
    }
    pub(crate) fn stable_token_per_minute(&self) -> u32 {
        self.u32(3)
    }
    pub(crate) fn stable_token_per_day(&self) -> u32 {
        self.u32(4)
    }
    pub(crate) fn token_per_day(&self) -> u32 {
        self.u32(5)
    }
    pub(crate) fn force_refresh_per_day(&self) -> u32 {
        self.u32(6)
    }
    pub(crate) fn wxacode_per_minute(&self) -> u32 {
        self.u32(7)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_have_wechat_shapes() {
        let app = AppCredentials::generate();
        assert_eq!(app.appid.len(), 18);
        assert!(app.appid.starts_with("wx"));
        assert!(
            app.appid[2..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(app.secret.len(), 32);
        assert!(
            app.secret
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(!format!("{app:?}").contains(&app.secret));
    }

    #[test]
    fn limits_round_trip_through_the_cell_and_json() {
        let limits = Limits {
            business_per_app_per_minute: Some(7),
            ..Limits::default()
        };
        assert_eq!(LimitsCell::new(&limits).get(), limits);
        assert_eq!(LimitsCell::new(&Limits::default()).get(), Limits::default());
        let json = serde_json::to_value(&limits).unwrap();
        assert_eq!(json["jscode2sessionPerUserPerMinute"], 100);
        assert_eq!(json["businessPerAppPerMinute"], 7);
        let partial: Limits = serde_json::from_str(r#"{"tokenPerAppPerDay":3}"#).unwrap();
        assert_eq!(partial.token_per_app_per_day, 3);
        assert_eq!(partial.stable_token_per_app_per_minute, 10_000);
        assert!(serde_json::from_str::<Limits>(r#"{"tokenPerDay":3}"#).is_err());
    }
}
