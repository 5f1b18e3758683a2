//! Access tokens: minting by the two token routes (isolated from each other, as WeChat says), retirement after
//! the 5-minute overlap, revocation, and validation on the business routes.

use std::sync::atomic::Ordering;

use crate::clock::{day, minute};
use crate::errcode::Errcode;
use crate::ids;
use crate::state::{AppState, Inner};

/// Lifetime of an access token.
pub(crate) const TOKEN_TTL: u64 = 7200;
/// How long a replaced token keeps working ("about 5 minutes").
pub(crate) const OVERLAP: u64 = 300;
/// stable_token's normal mode renews a token with less than this left, so `expires_in` is never below it.
const STABLE_MIN_LEFT: u64 = 300;
/// A second force refresh within this many seconds of the last one refreshes nothing.
const FORCE_REFRESH_GAP: u64 = 30;

pub(crate) struct TokenEntry {
    pub(crate) app: u32,
    serial: u64,
    pub(crate) expires_at: u64,
    /// When a newer token of the same route retired this one (`u64::MAX`: not retired).
    retire_at: u64,
}

#[derive(Clone)]
pub(crate) struct Current {
    token: String,
    serial: u64,
    expires_at: u64,
}

/// Per app: the current token of each route.
#[derive(Default)]
pub(crate) struct TokenRoutes {
    token: Option<Current>,
    stable: Option<Current>,
    last_force_at: Option<u64>,
}

/// A token and its `expires_in`.
pub(crate) struct Granted {
    pub(crate) access_token: String,
    pub(crate) expires_in: u64,
}

impl Inner {
    fn mint(&self, app: &AppState, now: u64) -> Current {
        let serial = self.token_serial.fetch_add(1, Ordering::Relaxed) + 1;
        let token = ids::new_access_token();
        let expires_at = now + TOKEN_TTL;
        self.tokens.insert(
            token.clone().into_boxed_str(),
            TokenEntry {
                app: app.index,
                serial,
                expires_at,
                retire_at: u64::MAX,
            },
        );
        self.counters.tokens_issued.fetch_add(1, Ordering::Relaxed);
        Current {
            token,
            serial,
            expires_at,
        }
    }

    fn retire(&self, token: &str, at: u64) {
        if let Some(mut entry) = self.tokens.get_mut(token) {
            entry.retire_at = entry.retire_at.min(at);
        }
    }

    fn is_revoked(&self, app: &AppState, serial: u64) -> bool {
        serial < app.revoked_below.load(Ordering::Relaxed)
    }

    /// `GET /cgi-bin/token`: every call mints; the previous token works `OVERLAP` seconds more.
    pub(crate) fn grant_token(&self, app: &AppState, now: u64) -> Result<Granted, Errcode> {
        if !app
            .windows
            .token_day
            .hit(day(now), self.limits.token_per_day())
        {
            return Err(Errcode::DAILY_LIMIT);
        }
        let mut routes = app.token_routes.lock();
        let new = self.mint(app, now);
        if let Some(previous) = routes.token.replace(new.clone()) {
            self.retire(&previous.token, now + OVERLAP);
        }
        Ok(Granted {
            access_token: new.token,
            expires_in: TOKEN_TTL,
        })
    }

    /// `POST /cgi-bin/stable_token`.
    pub(crate) fn grant_stable_token(
        &self,
        app: &AppState,
        force_refresh: bool,
        now: u64,
    ) -> Result<Granted, Errcode> {
        let w = &app.windows;
        if !w
            .stable_minute
            .hit(minute(now), self.limits.stable_token_per_minute())
        {
            return Err(Errcode::MINUTE_LIMIT);
        }
        if !w
            .stable_day
            .hit(day(now), self.limits.stable_token_per_day())
        {
            return Err(Errcode::DAILY_LIMIT);
        }
        // Guess: every force_refresh:true call counts towards the 20 a day, including one within 30 s of the
        // last that refreshes nothing.
        if force_refresh
            && !w
                .force_day
                .hit(day(now), self.limits.force_refresh_per_day())
        {
            return Err(Errcode::DAILY_LIMIT);
        }
        let mut routes = app.token_routes.lock();
        let recent_force = routes
            .last_force_at
            .is_some_and(|at| now < at + FORCE_REFRESH_GAP);
        if force_refresh && !recent_force {
            routes.last_force_at = Some(now);
            let new = self.mint(app, now);
            if let Some(previous) = routes.stable.replace(new.clone()) {
                self.retire(&previous.token, now + OVERLAP);
            }
            return Ok(Granted {
                access_token: new.token,
                expires_in: TOKEN_TTL,
            });
        }
        // Normal mode (and a force refresh within 30 s of the last): the current token while it has at least
        // 5 minutes left and has not been revoked; otherwise a new one, the old one left to run out on its own.
        if let Some(current) = &routes.stable {
            let usable = current.expires_at >= now + STABLE_MIN_LEFT
                && !self.is_revoked(app, current.serial);
            if usable {
                return Ok(Granted {
                    access_token: current.token.clone(),
                    expires_in: current.expires_at - now,
                });
            }
        }
        let new = self.mint(app, now);
        routes.stable = Some(new.clone());
        Ok(Granted {
            access_token: new.token,
            expires_in: TOKEN_TTL,
        })
    }

    /// Revokes every token minted so far, of one app or of all.
    pub(crate) fn revoke_tokens(&self, app: Option<&AppState>) {
        let below = self.token_serial.load(Ordering::Relaxed) + 1;
        let apps: &[AppState] = match app {
            Some(app) => std::slice::from_ref(app),
            None => &self.apps,
        };
        for app in apps {
            app.revoked_below.fetch_max(below, Ordering::Relaxed);
        }
    }

    /// The app an access token belongs to, or the errcode a business route answers.
    // Guess: a token both past its expiry and retired or revoked answers 42001 (expiry is checked first); an
    // expired token is remembered for a day, after which it answers 40001 like any unknown token.
    pub(crate) fn check_access_token(&self, token: Option<&str>, now: u64) -> Result<u32, Errcode> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(Errcode::ACCESS_TOKEN_MISSING)?;
        if !ids::is_token_shaped(token) {
            return Err(Errcode::INVALID_ACCESS_TOKEN);
        }
        let entry = self.tokens.get(token).ok_or(Errcode::INVALID_CREDENTIAL)?;
        if now >= entry.expires_at {
            return Err(Errcode::ACCESS_TOKEN_EXPIRED);
        }
        if now >= entry.retire_at || self.is_revoked(self.app(entry.app), entry.serial) {
            return Err(Errcode::INVALID_CREDENTIAL);
        }
        Ok(entry.app)
    }
}
