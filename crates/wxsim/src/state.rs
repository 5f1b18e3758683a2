//! The simulator's state: apps, users, codes and tokens in sharded maps, counters in atomics. No lock is global:
//! the maps are sharded, and the only mutexes are per app (token minting) and per user (the session_key).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, FixedWindow};
use crate::config::{AppCredentials, LimitsCell, SimConfig};
use crate::error::SimError;
use crate::faults::{Counters, RouteTable};
use crate::ids::{self, CodeKey, SessionKey};
use crate::phone::Phone;
use crate::quota::QuotaBook;
use crate::tokens::{TokenEntry, TokenRoutes};

/// A user as the device API creates it: one person in one app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxUser {
    pub openid: String,
    /// The person's unionid, the same in every bound app of the simulator; absent while the user's app is not
    /// bound to the Open Platform account ([`SimConfig::unbound_apps`], [`SimConfig::open_platform`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    /// As getuserphonenumber answers it: the bare number for country code 86, else `+` + country code + number.
    pub phone_number: String,
    pub pure_phone_number: String,
    pub country_code: String,
    pub appid: String,
    /// The person closed their WeChat account (`POST /users/cancel`): no more login or phone codes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
}

/// What `POST /users` takes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUser {
    /// Default: the first app.
    #[serde(default)]
    pub appid: Option<String>,
    pub phone_number: String,
    /// Default: `"86"`.
    #[serde(default)]
    pub country_code: Option<String>,
}

/// An app's binding to the simulator's Open Platform account, as `POST /apps/{appid}/bind` answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppBinding {
    pub appid: String,
    /// Whether jscode2session answers the app's users a unionid.
    pub bound: bool,
}

/// Minutes counted per app on each business route.
#[derive(Default)]
pub(crate) struct AppWindows {
    pub(crate) stable_minute: FixedWindow,
    pub(crate) stable_day: FixedWindow,
    pub(crate) token_day: FixedWindow,
    pub(crate) force_day: FixedWindow,
    pub(crate) jscode2session: FixedWindow,
    pub(crate) phone_number: FixedWindow,
    pub(crate) checksession: FixedWindow,
    pub(crate) wxacode: FixedWindow,
}

pub(crate) struct AppState {
    pub(crate) index: u32,
    pub(crate) creds: AppCredentials,
    /// Whether the app is bound to the simulator's Open Platform account (then jscode2session answers a
    /// unionid). Only ever goes from false to true, by the device API's bind.
    bound: AtomicBool,
    /// The token routes' current tokens; locked only while minting (rare).
    pub(crate) token_routes: Mutex<TokenRoutes>,
    /// Tokens with a serial below this are revoked.
    pub(crate) revoked_below: AtomicU64,
    pub(crate) windows: AppWindows,
    /// The pages of the app's published version, the home page first.
    pub(crate) pages: Vec<String>,
    /// The phone-verification packs (quota.rs).
    pub(crate) quota: Mutex<QuotaBook>,
}

impl AppState {
    /// The page a code without `page` opens: the first published page.
    pub(crate) fn home_page(&self) -> &str {
        self.pages
            .first()
            .map_or(SimConfig::TEMPLATE_PAGES[0], String::as_str)
    }

    pub(crate) fn is_bound(&self) -> bool {
        self.bound.load(Ordering::Acquire)
    }

    /// Binds the app; binding a bound app changes nothing.
    pub(crate) fn bind(&self) {
        self.bound.store(true, Ordering::Release);
    }

    /// The user's unionid as this app's answers carry it: only when the app is bound.
    pub(crate) fn unionid_of<'u>(&self, user: &'u User) -> Option<&'u str> {
        self.is_bound().then_some(user.unionid.as_str())
    }
}

pub(crate) struct User {
    pub(crate) openid: String,
    /// The person's unionid, derived from the phone; answered only while the user's app is bound.
    pub(crate) unionid: String,
    pub(crate) app: u32,
    pub(crate) phone: Phone,
    seq: u64,
    /// The one valid session_key of this user in this app; rotated by every login code.
    pub(crate) session_key: Mutex<SessionKey>,
    pub(crate) login_window: FixedWindow,
    pub(crate) phone_window: FixedWindow,
}

pub(crate) struct LoginCode {
    pub(crate) user: Arc<User>,
    pub(crate) expires_at: u64,
    pub(crate) used: bool,
    /// The session_key minted with this code (what its exchange returns).
    pub(crate) session_key: SessionKey,
}

pub(crate) struct PhoneCode {
    pub(crate) user: Arc<User>,
    /// Another number the user picked on WeChat's sheet instead of their own; `None`: their own. Taken out when
    /// the code is redeemed.
    pub(crate) other_phone: Option<Phone>,
    pub(crate) expires_at: u64,
    pub(crate) used: bool,
}

pub(crate) struct Inner {
    pub(crate) apps: Vec<AppState>,
    app_index: HashMap<String, u32>,
    identity_seed: [u8; 32],
    pub(crate) clock: Clock,
    pub(crate) limits: LimitsCell,
    pub(crate) routes: RouteTable,
    pub(crate) counters: Counters,
    pub(crate) users: DashMap<String, Arc<User>>,
    /// `(app, "cc:phone")` → the user, for idempotent creation.
    phones: DashMap<(u32, String), Arc<User>>,
    user_seq: AtomicU64,
    pub(crate) login_codes: DashMap<CodeKey, LoginCode>,
    pub(crate) phone_codes: DashMap<CodeKey, PhoneCode>,
    pub(crate) tokens: DashMap<Box<str>, TokenEntry>,
    pub(crate) token_serial: AtomicU64,
    next_sweep_at: AtomicU64,
    /// Each app's message-push target.
    pub(crate) pushes: crate::push::PushTargets,
    /// Openids of people who closed their WeChat account (`POST /users/cancel`): no more codes for them.
    pub(crate) closed: dashmap::DashSet<String>,
}

/// How often (in sim seconds) expired codes and long-dead tokens are dropped.
const SWEEP_EVERY: u64 = 60;
/// How long an expired token is remembered (so it keeps answering 42001, not 40001).
pub(crate) const TOKEN_MEMORY_AFTER_EXPIRY: u64 = 86_400;

impl Inner {
    pub(crate) fn new(config: SimConfig) -> Self {
        let bound = config.open_platform;
        let configured = (config.apps.into_iter().map(|app| (app, bound)))
            .chain(config.unbound_apps.into_iter().map(|app| (app, false)));
        let mut creds: Vec<(AppCredentials, bool)> = Vec::new();
        for (app, bound) in configured {
            if creds.iter().any(|(c, _)| c.appid == app.appid) {
                tracing::warn!(appid = %app.appid, "app configured twice: the first one counts");
            } else {
                creds.push((app, bound));
            }
        }
        if creds.is_empty() {
            let app = AppCredentials::generate();
            tracing::info!(appid = %app.appid, "no app configured: generated a sandbox app");
            creds.push((app, bound));
        }
        let clock = Clock::default();
        let started = clock.now();
        let apps: Vec<AppState> = creds
            .into_iter()
            .enumerate()
            .map(|(i, (creds, bound))| AppState {
                index: u32::try_from(i).expect("fewer than 2^32 apps"),
                bound: AtomicBool::new(bound),
                token_routes: Mutex::new(TokenRoutes::default()),
                revoked_below: AtomicU64::new(0),
                windows: AppWindows::default(),
                pages: config
                    .app_pages
                    .get(&creds.appid)
                    .unwrap_or(&config.published_pages)
                    .clone(),
                quota: Mutex::new(QuotaBook::new(started)),
                creds,
            })
            .collect();
        let app_index = apps
            .iter()
            .map(|a| (a.creds.appid.clone(), a.index))
            .collect();
        Self {
            apps,
            app_index,
            identity_seed: config.identity_seed.unwrap_or_else(ids::new_seed),
            clock,
            limits: LimitsCell::new(&config.limits),
            routes: RouteTable::default(),
            counters: Counters::default(),
            users: DashMap::new(),
            phones: DashMap::new(),
            user_seq: AtomicU64::new(0),
            login_codes: DashMap::new(),
            phone_codes: DashMap::new(),
            tokens: DashMap::new(),
            token_serial: AtomicU64::new(0),
            next_sweep_at: AtomicU64::new(0),
            pushes: crate::push::PushTargets::default(),
            closed: dashmap::DashSet::new(),
        }
    }

    pub(crate) fn app_by_id(&self, appid: &str) -> Option<&AppState> {
        self.app_index.get(appid).map(|&i| &self.apps[i as usize])
    }

    pub(crate) fn app(&self, index: u32) -> &AppState {
        &self.apps[index as usize]
    }

    /// Binds the app to the Open Platform account (idempotent).
    pub(crate) fn bind_app(&self, appid: &str) -> Result<AppBinding, SimError> {
        let app = self
            .app_by_id(appid)
            .ok_or_else(|| SimError::UnknownApp(appid.to_owned()))?;
        app.bind();
        Ok(AppBinding {
            appid: app.creds.appid.clone(),
            bound: app.is_bound(),
        })
    }

    pub(crate) fn user(&self, openid: &str) -> Result<Arc<User>, SimError> {
        self.users
            .get(openid)
            .map(|u| Arc::clone(u.value()))
            .ok_or_else(|| SimError::UnknownUser(openid.to_owned()))
    }

    /// A user who can still act in WeChat: not one who closed their WeChat account.
    pub(crate) fn active_user(&self, openid: &str) -> Result<Arc<User>, SimError> {
        let user = self.user(openid)?;
        if self.closed.contains(openid) {
            return Err(SimError::AccountClosed(openid.to_owned()));
        }
        Ok(user)
    }

    /// The person behind `user` closes their WeChat account: every app's user with their phone.
    pub(crate) fn close_account(&self, user: &User) {
        for other in self.users.iter() {
            if other.phone == user.phone {
                self.closed.insert(other.openid.clone());
            }
        }
    }

    pub(crate) fn sandbox_user(&self, user: &User) -> SandboxUser {
        let app = self.app(user.app);
        SandboxUser {
            openid: user.openid.clone(),
            unionid: app.unionid_of(user).map(str::to_owned),
            phone_number: user.phone.number(),
            pure_phone_number: user.phone.pure.clone(),
            country_code: user.phone.country_code.clone(),
            appid: app.creds.appid.clone(),
            closed: self.closed.contains(&user.openid),
        }
    }

    /// Creates the user, or finds the one with the same phone in the same app. The flag says whether it is new.
    pub(crate) fn create_user(&self, req: &NewUser) -> Result<(Arc<User>, bool), SimError> {
        let app = match &req.appid {
            None => &self.apps[0],
            Some(appid) => self
                .app_by_id(appid)
                .ok_or_else(|| SimError::UnknownApp(appid.clone()))?,
        };
        let phone = Phone::parse(req.country_code.as_deref(), &req.phone_number)?;
        let key = (app.index, format!("{}:{}", phone.country_code, phone.pure));
        match self.phones.entry(key) {
            Entry::Occupied(existing) => Ok((Arc::clone(existing.get()), false)),
            Entry::Vacant(slot) => {
                let user = Arc::new(User {
                    openid: ids::openid(
                        &self.identity_seed,
                        &app.creds.appid,
                        &phone.country_code,
                        &phone.pure,
                    ),
                    unionid: ids::unionid(&self.identity_seed, &phone.country_code, &phone.pure),
                    app: app.index,
                    phone,
                    seq: self.user_seq.fetch_add(1, Ordering::Relaxed),
                    session_key: Mutex::new(SessionKey::generate()),
                    login_window: FixedWindow::default(),
                    phone_window: FixedWindow::default(),
                });
                self.users.insert(user.openid.clone(), Arc::clone(&user));
                slot.insert(Arc::clone(&user));
                Ok((user, true))
            }
        }
    }

    /// Every user (of one app, if given), oldest first.
    pub(crate) fn list_users(&self, appid: Option<&str>) -> Result<Vec<SandboxUser>, SimError> {
        let app = match appid {
            None => None,
            Some(id) => Some(
                self.app_by_id(id)
                    .ok_or_else(|| SimError::UnknownApp(id.to_owned()))?
                    .index,
            ),
        };
        let mut users: Vec<Arc<User>> = self
            .users
            .iter()
            .filter(|u| app.is_none_or(|a| u.app == a))
            .map(|u| Arc::clone(u.value()))
            .collect();
        users.sort_by_key(|u| u.seq);
        Ok(users.iter().map(|u| self.sandbox_user(u)).collect())
    }

    /// Drops expired codes and long-expired tokens, at most once a sim minute. Called from the code paths, so
    /// memory stays bounded by what a few minutes of traffic mint.
    pub(crate) fn maybe_sweep(self: &Arc<Self>, now: u64) {
        let due = self.next_sweep_at.load(Ordering::Relaxed);
        if now < due
            || self
                .next_sweep_at
                .compare_exchange(due, now + SWEEP_EVERY, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        // Off the request's thread when there is a runtime: a sweep of a large map takes milliseconds.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let inner = Arc::clone(self);
                drop(handle.spawn_blocking(move || inner.sweep(now)));
            }
            Err(_) => self.sweep(now),
        }
    }

    fn sweep(&self, now: u64) {
        self.login_codes.retain(|_, c| c.expires_at > now);
        self.phone_codes.retain(|_, c| c.expires_at > now);
        self.tokens
            .retain(|_, t| t.expires_at.saturating_add(TOKEN_MEMORY_AFTER_EXPIRY) > now);
    }
}
