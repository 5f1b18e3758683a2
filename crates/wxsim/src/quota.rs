//! The phone-verification quota (`/miniprogram/dev/server/API/charge/api_getusagedetail.html`): every app has,
//! per kind of verification, packs of calls: the free trial of 1,000 and packs bought. Each phone code the
//! button hands out spends one call (WeChat bills the button's success, not the server's redemption); with none
//! left the tap fails with errno 1400001 and no code. `GET /wxa/charge/usage/get` (charge.rs) reports the packs in
//! WeChat's shape; the device API buys packs and sets what is left, for tests.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::Simulator;
use crate::device::{DeviceError, DeviceResult, parse};
use crate::error::SimError;
use crate::state::Inner;

/// The errno the button answers when no call is left.
pub const NO_QUOTA_ERRNO: i64 = 1_400_001;
/// The free trial every app gets, per kind.
// Guess: WeChat says "1,000 free trial calls per app"; whether real-time verification has its own 1,000 is not
// documented. The simulator gives each kind its own trial pack.
pub const FREE_TRIAL: u64 = 1_000;
/// WeChat's `endTime` for a pack that never ends (its example's value).
const NEVER: u64 = 4_294_967_295;
/// How long a bought pack lasts.
// Guess: WeChat sells packs valid for a period; the simulator makes them last a year from purchase.
const BOUGHT_PACK_SECONDS: u64 = 365 * 86_400;
/// `source` of the free trial (its value in WeChat's example) and of a bought pack.
// Guess: only the trial's 1 is shown by WeChat; 2 for a bought pack is the simulator's.
const TRIAL_SOURCE: i64 = 1;
const BOUGHT_SOURCE: i64 = 2;

/// Which verification a call is for: two products with their own quota.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaKind {
    /// 手机号快速验证 (`getPhoneNumber`), spuId 10000077.
    #[default]
    Quick,
    /// 手机号实时验证 (`getRealtimePhoneNumber`).
    // Guess: spuId 10000086 (one SDK's value; wechat-api.md marks it UNCONFIRMED).
    Realtime,
}

impl QuotaKind {
    pub const ALL: [QuotaKind; 2] = [QuotaKind::Quick, QuotaKind::Realtime];

    pub fn spu_id(self) -> &'static str {
        match self {
            QuotaKind::Quick => "10000077",
            QuotaKind::Realtime => "10000086",
        }
    }

    pub(crate) fn sku_id(self) -> &'static str {
        // Guess: the free trial's skuId is the example's 20000093 for quick; real-time's is made up.
        match self {
            QuotaKind::Quick => "20000093",
            QuotaKind::Realtime => "20000094",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One pack, as `detailList` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Pack {
    pub(crate) pkg_id: String,
    pub(crate) all: u64,
    pub(crate) used: u64,
    pub(crate) start_time: u64,
    pub(crate) end_time: u64,
    /// Guess: 1 = free trial (the example's value), 2 = bought.
    pub(crate) source: i64,
}

impl Pack {
    pub(crate) fn in_effect(&self, now: u64) -> bool {
        self.start_time <= now && now < self.end_time
    }

    /// WeChat's status: 1 in effect, 2 not yet, 3 expired.
    pub(crate) fn status(&self, now: u64) -> i64 {
        if now < self.start_time || self.waits_for_first_use() {
            2
        } else if now >= self.end_time {
            3
        } else {
            1
        }
    }

    /// Guess: WeChat's example of a fresh app shows the free trial, unused, as status 2 ("not yet") with a
    /// startTime in the past and `effectiveAll` 0; its button works all the same. The simulator answers the
    /// trial that way until its first verification, then as in effect, so a client reading the packs meets the
    /// shape a real fresh app answers.
    fn waits_for_first_use(&self) -> bool {
        self.source == TRIAL_SOURCE && self.used == 0
    }

    fn left(&self) -> u64 {
        self.all.saturating_sub(self.used)
    }
}

/// One app's packs, per kind, oldest first.
pub(crate) struct QuotaBook {
    pub(crate) packs: [Vec<Pack>; 2],
    bought: u64,
    /// Verifications spent per day (Unix day number), the last [`RECENT_DAYS`] only, per kind: what
    /// `get_recent_average` averages.
    spent_by_day: [BTreeMap<u64, u64>; 2],
}

/// The window `get_recent_average` covers: "the last three months".
const RECENT_DAYS: u64 = 90;

impl QuotaBook {
    /// The free trial of each kind, usable from `now` and never ending (answered as status 2 until its first use,
    /// see [`Pack::status`]).
    pub(crate) fn new(now: u64) -> Self {
        let trial = || {
            vec![Pack {
                pkg_id: String::new(),
                all: FREE_TRIAL,
                used: 0,
                start_time: now,
                end_time: NEVER,
                source: TRIAL_SOURCE,
            }]
        };
        Self {
            packs: [trial(), trial()],
            bought: 0,
            spent_by_day: Default::default(),
        }
    }

    /// Spends one call from the oldest pack in effect that has any left; false when none has.
    pub(crate) fn spend(&mut self, kind: QuotaKind, now: u64) -> bool {
        match self.packs[kind.index()]
            .iter_mut()
            .find(|p| p.in_effect(now) && p.left() > 0)
        {
            Some(pack) => {
                pack.used += 1;
                let days = &mut self.spent_by_day[kind.index()];
                *days.entry(now / 86_400).or_default() += 1;
                let oldest = (now / 86_400).saturating_sub(RECENT_DAYS - 1);
                days.retain(|day, _| *day >= oldest);
                true
            }
            None => false,
        }
    }

    /// The average monthly use of `kind` over the last three months; `None` with none spent in them.
    // Guess: WeChat blurs its figure ("模糊处理") and does not say how; the simulator answers the exact average
    // (the spends of the last 90 days, divided by 3).
    pub(crate) fn recent_monthly_average(&self, kind: QuotaKind, now: u64) -> Option<u64> {
        let oldest = (now / 86_400).saturating_sub(RECENT_DAYS - 1);
        let spent: u64 = self.spent_by_day[kind.index()]
            .range(oldest..)
            .map(|(_, n)| n)
            .sum();
        (spent > 0).then(|| spent.div_ceil(3))
    }

    fn left(&self, kind: QuotaKind, now: u64) -> u64 {
        self.packs[kind.index()]
            .iter()
            .filter(|p| p.in_effect(now))
            .map(Pack::left)
            .sum()
    }

    fn buy(&mut self, kind: QuotaKind, calls: u64, now: u64) {
        self.bought += 1;
        self.packs[kind.index()].push(Pack {
            pkg_id: format!("sim-pkg-{}", self.bought),
            all: calls,
            used: 0,
            start_time: now,
            end_time: now.saturating_add(BOUGHT_PACK_SECONDS),
            source: BOUGHT_SOURCE,
        });
    }

    /// Makes exactly `left` calls available, spread over the packs in effect oldest first (the others keep
    /// their counts). More than they hold: the rest goes into a new bought pack.
    fn set_left(&mut self, kind: QuotaKind, mut left: u64, now: u64) {
        for pack in self.packs[kind.index()]
            .iter_mut()
            .filter(|p| p.in_effect(now))
        {
            let here = left.min(pack.all);
            pack.used = pack.all - here;
            left -= here;
        }
        if left > 0 {
            self.buy(kind, left, now);
        }
    }
}

impl Inner {
    /// One button success of `kind` in the user's app: spends a call, or fails with errno 1400001.
    pub(crate) fn spend_quota(&self, app: u32, kind: QuotaKind) -> Result<(), SimError> {
        let now = self.clock.now();
        if self.app(app).quota.lock().spend(kind, now) {
            Ok(())
        } else {
            Err(SimError::NoQuota(kind.spu_id()))
        }
    }
}

/// What `POST /sandbox/v1/apps/{appid}/quota` takes: buy a pack of `buy` calls, and/or set what is `left`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaChange {
    /// Default: quick.
    #[serde(default)]
    pub kind: QuotaKind,
    #[serde(default)]
    pub buy: Option<u64>,
    /// Applied after `buy`.
    #[serde(default)]
    pub left: Option<u64>,
}

/// One kind's quota of an app, as the device API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaState {
    pub appid: String,
    pub kind: QuotaKind,
    pub spu_id: String,
    /// Calls left in the packs in effect.
    pub left: u64,
    /// Calls spent, all packs.
    pub used: u64,
}

impl Simulator {
    /// `POST /apps/{appid}/quota`: buys a pack and/or sets what is left; answers the kind's quota.
    pub fn change_quota(&self, appid: &str, change: &QuotaChange) -> Result<QuotaState, SimError> {
        let app = self
            .inner
            .app_by_id(appid)
            .ok_or_else(|| SimError::UnknownApp(appid.to_owned()))?;
        let now = self.inner.clock.now();
        let mut book = app.quota.lock();
        if let Some(calls) = change.buy {
            if calls == 0 {
                return Err(SimError::InvalidRequest("buy must be at least 1".into()));
            }
            book.buy(change.kind, calls, now);
        }
        if let Some(left) = change.left {
            book.set_left(change.kind, left, now);
        }
        Ok(state(appid, change.kind, &book, now))
    }

    /// `GET /apps/{appid}/quota`: both kinds' quota.
    pub fn quota(&self, appid: &str) -> Result<Vec<QuotaState>, SimError> {
        let app = self
            .inner
            .app_by_id(appid)
            .ok_or_else(|| SimError::UnknownApp(appid.to_owned()))?;
        let now = self.inner.clock.now();
        let book = app.quota.lock();
        Ok(QuotaKind::ALL
            .iter()
            .map(|&k| state(appid, k, &book, now))
            .collect())
    }
}

fn state(appid: &str, kind: QuotaKind, book: &QuotaBook, now: u64) -> QuotaState {
    QuotaState {
        appid: appid.to_owned(),
        kind,
        spu_id: kind.spu_id().to_owned(),
        left: book.left(kind, now),
        used: book.packs[kind.index()].iter().map(|p| p.used).sum(),
    }
}

fn app_path(appid: Result<Path<String>, PathRejection>) -> DeviceResult<String> {
    appid
        .map(|Path(a)| a)
        .map_err(|e| DeviceError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))
}

pub(crate) async fn get_quota(
    State(sim): State<Simulator>,
    appid: Result<Path<String>, PathRejection>,
) -> DeviceResult<Json<Vec<QuotaState>>> {
    Ok(Json(sim.quota(&app_path(appid)?)?))
}

pub(crate) async fn post_quota(
    State(sim): State<Simulator>,
    appid: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> DeviceResult<Json<QuotaState>> {
    let appid = app_path(appid)?;
    let change: QuotaChange = parse(&body)?;
    Ok(Json(sim.change_quota(&appid, &change)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_oldest_first_and_runs_out() {
        let mut book = QuotaBook::new(100);
        book.set_left(QuotaKind::Quick, 2, 100);
        book.buy(QuotaKind::Quick, 1, 100);
        assert_eq!(book.left(QuotaKind::Quick, 100), 3);
        assert!(book.spend(QuotaKind::Quick, 100));
        assert_eq!(book.packs[0][0].left(), 1, "the trial pack is spent first");
        assert!(book.spend(QuotaKind::Quick, 100));
        assert!(book.spend(QuotaKind::Quick, 100));
        assert!(!book.spend(QuotaKind::Quick, 100));
        assert_eq!(book.left(QuotaKind::Realtime, 100), FREE_TRIAL);
    }

    #[test]
    fn the_trial_answers_not_yet_until_its_first_use_and_is_spendable() {
        let mut book = QuotaBook::new(100);
        assert_eq!(book.packs[0][0].status(100), 2);
        assert!(book.spend(QuotaKind::Quick, 100));
        assert_eq!(book.packs[0][0].status(100), 1);
        assert_eq!(
            book.packs[1][0].status(100),
            2,
            "the other kind's trial is untouched"
        );
    }

    #[test]
    fn the_recent_average_covers_the_last_90_days() {
        let day = 86_400;
        let mut book = QuotaBook::new(0);
        assert_eq!(book.recent_monthly_average(QuotaKind::Quick, 0), None);
        for _ in 0..6 {
            assert!(book.spend(QuotaKind::Quick, 10 * day));
        }
        assert_eq!(
            book.recent_monthly_average(QuotaKind::Quick, 10 * day),
            Some(2)
        );
        assert_eq!(
            book.recent_monthly_average(QuotaKind::Realtime, 10 * day),
            None
        );
        // Day 10 is still inside the window on day 99, outside on day 100.
        assert_eq!(
            book.recent_monthly_average(QuotaKind::Quick, 99 * day),
            Some(2)
        );
        assert_eq!(
            book.recent_monthly_average(QuotaKind::Quick, 100 * day),
            None
        );
    }

    #[test]
    fn bought_packs_expire() {
        let mut book = QuotaBook::new(0);
        book.set_left(QuotaKind::Quick, 0, 0);
        book.buy(QuotaKind::Quick, 5, 10);
        assert_eq!(book.left(QuotaKind::Quick, 10), 5);
        let later = 10 + BOUGHT_PACK_SECONDS;
        assert_eq!(book.left(QuotaKind::Quick, later), 0);
        assert_eq!(book.packs[0][1].status(later), 3);
        assert!(!book.spend(QuotaKind::Quick, later));
    }

    #[test]
    fn setting_more_than_the_packs_hold_adds_a_pack() {
        let mut book = QuotaBook::new(0);
        book.set_left(QuotaKind::Quick, 1_500, 0);
        assert_eq!(book.left(QuotaKind::Quick, 0), 1_500);
        assert_eq!(book.packs[0].len(), 2);
    }
}
