//! [`Simulator`]: the handle everything else holds, its routers, and the programmatic twins of the device API.

use std::sync::Arc;

use axum::Router;

use crate::batch::{BatchItem, BatchRequest};
use crate::codes::{IssuedCode, PhoneCodeRequest};
use crate::config::{AppCredentials, Limits, SimConfig};
use crate::error::SimError;
use crate::faults::{Faults, Stats};
use crate::scan::{LaunchOptions, ScanRequest};
use crate::state::{AppBinding, Inner, NewUser, SandboxUser};
use crate::{device, wechat};

/// The simulator. Cheap to clone (an `Arc` inside) and safe to share between threads.
#[derive(Clone)]
pub struct Simulator {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let appids: Vec<&str> = self
            .inner
            .apps
            .iter()
            .map(|a| a.creds.appid.as_str())
            .collect();
        f.debug_struct("Simulator")
            .field("apps", &appids)
            .field("users", &self.inner.users.len())
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// A simulator with `config`'s apps, or one generated sandbox app when there are none.
    pub fn new(config: SimConfig) -> Self {
        Self {
            inner: Arc::new(Inner::new(config)),
        }
    }

    pub fn apps(&self) -> Vec<AppCredentials> {
        self.inner.apps.iter().map(|a| a.creds.clone()).collect()
    }

    /// Whether the app is bound to the simulator's Open Platform account (its users get a unionid); `None` for
    /// an unknown appid.
    pub fn is_bound(&self, appid: &str) -> Option<bool> {
        self.inner.app_by_id(appid).map(|a| a.is_bound())
    }

    /// `POST /apps/{appid}/bind`: binds the app to the Open Platform account, so from now on jscode2session
    /// answers its users the unionid the same person has in the other bound apps. Binding a bound app changes
    /// nothing.
    pub fn bind_app(&self, appid: &str) -> Result<AppBinding, SimError> {
        self.inner.bind_app(appid)
    }

    /// The WeChat-compatible routes, at their WeChat paths (`/cgi-bin/token`, …).
    pub fn wechat_router(&self) -> Router {
        wechat::router(self.clone())
    }

    /// The sandbox device API, with paths relative to where it is nested (`/users`, `/login-code`, …).
    pub fn device_router(&self) -> Router {
        device::router(self.clone())
    }

    /// Both: the WeChat routes at the root and the device API under `/sandbox/v1`.
    pub fn router(&self) -> Router {
        self.wechat_router()
            .nest("/sandbox/v1", self.device_router())
    }

    /// `POST /users`: creates the user, or returns the one with the same phone in the same app.
    pub fn create_user(&self, req: NewUser) -> Result<SandboxUser, SimError> {
        let (user, _) = self.inner.create_user(&req)?;
        Ok(self.inner.sandbox_user(&user))
    }

    /// `GET /users`, optionally of one app.
    pub fn users(&self, appid: Option<&str>) -> Result<Vec<SandboxUser>, SimError> {
        self.inner.list_users(appid)
    }

    /// `POST /login-code`: what `wx.login()` gives; rotates the user's session_key.
    pub fn login_code(&self, openid: &str) -> Result<IssuedCode, SimError> {
        let user = self.inner.active_user(openid)?;
        Ok(self.inner.mint_login_code(&user))
    }

    /// `POST /phone-code {"openid"}`: what the getPhoneNumber button gives after "allow", for the user's own
    /// number. Spends one quick verification of the app's quota; with none left, [`SimError::NoQuota`] (the
    /// button's errno 1400001).
    pub fn phone_code(&self, openid: &str) -> Result<IssuedCode, SimError> {
        let user = self.inner.user(openid)?;
        self.inner.spend_quota(user.app, crate::QuotaKind::Quick)?;
        Ok(self.inner.mint_phone_code(&user, None))
    }

    /// `POST /phone-code`: the same, for another number when `req.phone_number` is set (checked like a new
    /// user's; the code stays bound to the user, so getuserphonenumber's openid check still applies).
    pub fn phone_code_with(&self, req: &PhoneCodeRequest) -> Result<IssuedCode, SimError> {
        let user = self.inner.active_user(&req.openid)?;
        let other_phone = req.other_phone()?;
        self.inner
            .spend_quota(user.app, req.kind.unwrap_or_default())?;
        Ok(self.inner.mint_phone_code(&user, other_phone))
    }

    /// `POST /scan`: the launch options the mini program gets when the user scans a code (an image from
    /// getwxacodeunlimit, or the scene it carries).
    pub fn scan(&self, req: &ScanRequest) -> Result<LaunchOptions, SimError> {
        self.inner.scan(req)
    }

    /// The pages of the app's published version, home page first; `None` for an unknown appid.
    pub fn published_pages(&self, appid: &str) -> Option<Vec<String>> {
        self.inner.app_by_id(appid).map(|a| a.pages.clone())
    }

    /// `POST /batch`.
    pub fn batch(&self, req: BatchRequest) -> Result<Vec<BatchItem>, SimError> {
        self.inner.batch(req)
    }

    /// `PUT /apps/{appid}/push`: where and how the app's message pushes go.
    pub fn set_push_target(
        &self,
        appid: &str,
        target: crate::PushTarget,
    ) -> Result<crate::PushTargetView, SimError> {
        self.inner
            .app_by_id(appid)
            .ok_or_else(|| SimError::UnknownApp(appid.to_owned()))?;
        self.inner.pushes.set(appid, target)
    }

    /// Moves the sim clock forward; returns sim now (unix seconds).
    pub fn advance_clock(&self, secs: u64) -> u64 {
        self.inner.clock.advance(secs)
    }

    /// Sim now (unix seconds).
    pub fn now(&self) -> u64 {
        self.inner.clock.now()
    }

    /// Replaces the faults in force (`rate` clamped into 0..=1); returns them.
    pub fn set_faults(&self, faults: Faults) -> Faults {
        self.inner.routes.set_faults(faults)
    }

    pub fn faults(&self) -> Faults {
        self.inner.routes.faults()
    }

    pub fn clear_faults(&self) {
        self.inner.routes.set_faults(Faults::default());
    }

    pub fn limits(&self) -> Limits {
        self.inner.limits.get()
    }

    /// Replaces the limits in force; returns them.
    pub fn set_limits(&self, limits: Limits) -> Limits {
        self.inner.limits.set(&limits);
        limits
    }

    /// Every access token minted so far for the app (all apps with `None`) stops working at once (40001). A
    /// later stable_token call in normal mode mints a new one. An unknown appid revokes nothing.
    pub fn revoke_tokens(&self, appid: Option<&str>) {
        match appid {
            None => self.inner.revoke_tokens(None),
            Some(id) => {
                if let Some(app) = self.inner.app_by_id(id) {
                    self.inner.revoke_tokens(Some(app));
                }
            }
        }
    }

    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot(&self.inner.routes)
    }
}
