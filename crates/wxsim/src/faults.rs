//! The WeChat routes, their call counters, and the faults injected into them. Everything read on the hot path is
//! an atomic.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// One of the WeChat-compatible routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Token,
    StableToken,
    Jscode2session,
    PhoneNumber,
    CheckSession,
    WxaCodeUnlimit,
    ChargeUsage,
    ChargeRecentAverage,
}

impl Route {
    pub(crate) const ALL: [Route; 8] = [
        Route::Token,
        Route::StableToken,
        Route::Jscode2session,
        Route::PhoneNumber,
        Route::CheckSession,
        Route::WxaCodeUnlimit,
        Route::ChargeUsage,
        Route::ChargeRecentAverage,
    ];

    pub(crate) fn path(self) -> &'static str {
        match self {
            Route::Token => "/cgi-bin/token",
            Route::StableToken => "/cgi-bin/stable_token",
            Route::Jscode2session => "/sns/jscode2session",
            Route::PhoneNumber => "/wxa/business/getuserphonenumber",
            Route::CheckSession => "/wxa/checksession",
            Route::WxaCodeUnlimit => "/wxa/getwxacodeunlimit",
            Route::ChargeUsage => "/wxa/charge/usage/get",
            Route::ChargeRecentAverage => "/wxa/charge/usage/get_recent_average",
        }
    }

    pub(crate) fn from_path(path: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.path() == path)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Faults injected into the WeChat routes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every matching call, before it is handled.
    // Guess: `rate` draws only the errcode; latency hits every matching call.
    pub latency_ms: u64,
    /// Answered instead of the real result, with probability `rate`, before any state changes.
    pub errcode: Option<i64>,
    /// Share (0..=1) of matching calls that get `errcode`. Spread evenly by default: with 0.1, every 10th call
    /// of the route fails, so a run is reproducible and a retry right after an injected error goes through
    /// (for rates up to 0.5), as it would against a WeChat that is busy now and then. `random` draws instead.
    pub rate: f64,
    /// Draw each call's fault at random with probability `rate` instead of spreading them evenly.
    pub random: bool,
    /// WeChat route paths (e.g. `/sns/jscode2session`) the faults apply to; empty: all of them.
    pub paths: Vec<String>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            errcode: None,
            // Guess: a fault set without a rate fires on every call, which is what `{"errcode":-1}` alone
            // most likely means.
            rate: 1.0,
            random: false,
            paths: Vec::new(),
        }
    }
}

impl Faults {
    /// `rate` clamped into 0..=1 (NaN: 0).
    pub(crate) fn normalized(mut self) -> Self {
        self.rate = if self.rate.is_nan() {
            0.0
        } else {
            self.rate.clamp(0.0, 1.0)
        };
        self
    }

    fn applies_to(&self, route: Route) -> bool {
        self.paths.is_empty() || self.paths.iter().any(|p| p == route.path())
    }
}

const NO_ERRCODE: i64 = i64::MIN;

/// One cache line per route, so cores counting different routes do not contend.
#[derive(Default)]
#[repr(align(64))]
struct RouteSlot {
    calls: AtomicU64,
    errors: AtomicU64,
    latency_ms: AtomicU64,
    errcode: AtomicI64,
    rate_bits: AtomicU64,
    random: std::sync::atomic::AtomicBool,
    /// Matching calls since the faults were set, for the even spread.
    fault_seq: AtomicU64,
}

/// What a call must suffer before it is handled.
pub(crate) struct Injected {
    pub(crate) latency_ms: u64,
    pub(crate) errcode: Option<i64>,
}

/// Per-route counters and faults.
pub(crate) struct RouteTable {
    slots: [RouteSlot; Route::ALL.len()],
    /// The faults as set, for reading back; writers serialize on it, readers of the hot path never touch it.
    faults: Mutex<Faults>,
}

impl Default for RouteTable {
    fn default() -> Self {
        let table = Self {
            slots: Default::default(),
            faults: Mutex::new(Faults::default()),
        };
        table.set_faults(Faults::default());
        table
    }
}

impl RouteTable {
    pub(crate) fn set_faults(&self, faults: Faults) -> Faults {
        let faults = faults.normalized();
        let mut current = self.faults.lock();
        for route in Route::ALL {
            let slot = &self.slots[route.index()];
            let applies = faults.applies_to(route);
            let latency = if applies { faults.latency_ms } else { 0 };
            let errcode = match faults.errcode {
                Some(code) if applies && faults.rate > 0.0 => code,
                _ => NO_ERRCODE,
            };
            slot.latency_ms.store(latency, Ordering::Relaxed);
            slot.rate_bits
                .store(faults.rate.to_bits(), Ordering::Relaxed);
            slot.errcode.store(errcode, Ordering::Relaxed);
            slot.random.store(faults.random, Ordering::Relaxed);
            slot.fault_seq.store(0, Ordering::Relaxed);
        }
        *current = faults.clone();
        faults
    }

    pub(crate) fn faults(&self) -> Faults {
        self.faults.lock().clone()
    }

    /// Counts the call and draws its faults.
    pub(crate) fn enter(&self, route: Route) -> Injected {
        let slot = &self.slots[route.index()];
        slot.calls.fetch_add(1, Ordering::Relaxed);
        let latency_ms = slot.latency_ms.load(Ordering::Relaxed);
        let errcode = match slot.errcode.load(Ordering::Relaxed) {
            NO_ERRCODE => None,
            code => {
                let rate = f64::from_bits(slot.rate_bits.load(Ordering::Relaxed));
                let hit = if rate >= 1.0 {
                    true
                } else if slot.random.load(Ordering::Relaxed) {
                    crate::ids::random_f64() < rate
                } else {
                    // Call n fails when floor(n * rate) steps up: exactly `rate` of the calls, evenly spaced.
                    let n = slot.fault_seq.fetch_add(1, Ordering::Relaxed) + 1;
                    (n as f64 * rate).floor() > ((n - 1) as f64 * rate).floor()
                };
                hit.then_some(code)
            }
        };
        Injected {
            latency_ms,
            errcode,
        }
    }

    pub(crate) fn count_error(&self, route: Route) {
        self.slots[route.index()]
            .errors
            .fetch_add(1, Ordering::Relaxed);
    }

    fn route_stats(&self) -> BTreeMap<String, RouteStats> {
        Route::ALL
            .into_iter()
            .map(|route| {
                let slot = &self.slots[route.index()];
                let stats = RouteStats {
                    calls: slot.calls.load(Ordering::Relaxed),
                    errors: slot.errors.load(Ordering::Relaxed),
                };
                (route.path().to_owned(), stats)
            })
            .collect()
    }
}

/// Calls and errors (any answer with a non-zero errcode, injected ones included) of one WeChat route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStats {
    pub calls: u64,
    pub errors: u64,
}

/// Codes minted by the device API (or its programmatic equivalents).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodesIssued {
    pub login: u64,
    pub phone: u64,
}

/// What the simulator has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Access tokens minted by both token routes.
    pub tokens_issued: u64,
    /// Keyed by route path, every WeChat route present.
    pub routes: BTreeMap<String, RouteStats>,
    pub codes_issued: CodesIssued,
}

/// The counters behind [`Stats`] that are not per route.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) tokens_issued: AtomicU64,
    pub(crate) login_codes: AtomicU64,
    pub(crate) phone_codes: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self, routes: &RouteTable) -> Stats {
        Stats {
            tokens_issued: self.tokens_issued.load(Ordering::Relaxed),
            routes: routes.route_stats(),
            codes_issued: CodesIssued {
                login: self.login_codes.load(Ordering::Relaxed),
                phone: self.phone_codes.load(Ordering::Relaxed),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_json_shape() {
        let f: Faults = serde_json::from_str(
            r#"{"latencyMs":20,"errcode":-1,"rate":0.1,"paths":["/sns/jscode2session"]}"#,
        )
        .unwrap();
        assert_eq!(f.latency_ms, 20);
        assert_eq!(f.errcode, Some(-1));
        assert_eq!(f.paths, ["/sns/jscode2session"]);
        assert!(serde_json::from_str::<Faults>(r#"{"latency":1}"#).is_err());
    }

    #[test]
    fn faults_apply_only_to_their_paths() {
        let table = RouteTable::default();
        table.set_faults(Faults {
            latency_ms: 5,
            errcode: Some(-1),
            paths: vec!["/sns/jscode2session".into()],
            ..Faults::default()
        });
        let hit = table.enter(Route::Jscode2session);
        assert_eq!((hit.latency_ms, hit.errcode), (5, Some(-1)));
        let miss = table.enter(Route::Token);
        assert_eq!((miss.latency_ms, miss.errcode), (0, None));
        table.set_faults(Faults::default());
        assert_eq!(table.enter(Route::Jscode2session).errcode, None);
    }

    #[test]
    fn a_rate_is_spread_evenly_unless_random() {
        let table = RouteTable::default();
        table.set_faults(Faults {
            errcode: Some(-1),
            rate: 0.1,
            ..Faults::default()
        });
        let hits: Vec<u64> = (1..=100)
            .filter(|_| table.enter(Route::Jscode2session).errcode.is_some())
            .collect();
        assert_eq!(hits.len(), 10);
        let mut n = 0;
        table.set_faults(Faults {
            errcode: Some(-1),
            rate: 0.25,
            ..Faults::default()
        });
        for i in 1..=8 {
            if table.enter(Route::Token).errcode.is_some() {
                n += 1;
                assert_eq!(i % 4, 0, "every 4th call");
            }
        }
        assert_eq!(n, 2);
        table.set_faults(Faults {
            errcode: Some(-1),
            rate: 0.5,
            random: true,
            ..Faults::default()
        });
        let random_hits = (0..1000)
            .filter(|_| table.enter(Route::Token).errcode.is_some())
            .count();
        assert!((350..650).contains(&random_hits), "{random_hits}");
    }
}
