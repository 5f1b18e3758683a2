//! The phone-verification quota: `GET /wxa/charge/usage/get` ("查询次数包信息",
//! `/miniprogram/dev/server/API/charge/api_getusagedetail.html`). WeChat bills each phone code the button hands
//! out (0.03 元 quick, 0.04 元 real-time, the first 1,000 free per app); with nothing left the button fails with
//! errno 1400001. This call tells how much is left, pack by pack.

use crate::client::Client;
use crate::error::{Errcode, Result};
use crate::retry::CallKind;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::str::FromStr;

/// Which phone verification a quota is for: WeChat sells them as two products (spuIds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneVerificationKind {
    /// 手机号快速验证 (`getPhoneNumber`), spuId 10000077 (confirmed by WeChat's doc).
    Quick,
    /// 手机号实时验证 (`getRealtimePhoneNumber`), spuId 10000086.
    // Guess: 10000086 comes from one SDK, not from WeChat's doc (wechat-api.md marks it UNCONFIRMED).
    Realtime,
}

impl PhoneVerificationKind {
    /// Both kinds, quick first.
    pub const ALL: [Self; 2] = [Self::Quick, Self::Realtime];

    /// WeChat's spuId for the kind.
    pub fn spu_id(self) -> &'static str {
        match self {
            Self::Quick => "10000077",
            Self::Realtime => "10000086",
        }
    }

    /// The stable short name (`quick`, `realtime`): request fields and metrics labels use it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Realtime => "realtime",
        }
    }
}

impl fmt::Display for PhoneVerificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PhoneVerificationKind {
    type Err = crate::ParseError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "quick" => Ok(Self::Quick),
            "realtime" => Ok(Self::Realtime),
            _ => Err(crate::ParseError {
                field: "kind",
                reason: "must be quick or realtime",
            }),
        }
    }
}

/// A pack's state as WeChat numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPackStatus {
    /// 1: in effect (its calls can be used now).
    InEffect,
    /// 2: not yet in effect.
    NotYet,
    /// 3: expired.
    Expired,
    /// A value WeChat's doc does not list, kept.
    Other(i64),
}

impl From<i64> for QuotaPackStatus {
    fn from(v: i64) -> Self {
        match v {
            1 => Self::InEffect,
            2 => Self::NotYet,
            3 => Self::Expired,
            other => Self::Other(other),
        }
    }
}

/// One pack of verifications (the free trial, or one bought).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaPack {
    /// WeChat's pack id (empty for the free trial in WeChat's example).
    pub pkg_id: String,
    /// Its state.
    pub status: QuotaPackStatus,
    /// Calls in the pack.
    pub all: u64,
    /// Calls used.
    pub used: u64,
    /// Unix seconds the pack starts and ends (`4294967295` for "never").
    pub start_time: u64,
    /// See `start_time`.
    pub end_time: u64,
    /// WeChat's `source` (1 in the free trial's example; other values undocumented).
    pub source: i64,
}

impl QuotaPack {
    /// Calls left in this pack (0 when used up).
    pub fn left(&self) -> u64 {
        self.all.saturating_sub(self.used)
    }
}

/// What `/wxa/charge/usage/get` tells about one kind of verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeUsage {
    /// The kind asked about.
    pub kind: PhoneVerificationKind,
    /// `all`: calls in all packs.
    pub all: u64,
    /// `effectiveAll`: calls in the packs in effect (0 when WeChat leaves it out).
    pub effective_all: u64,
    /// `effectiveUse`: calls used from the packs in effect (0 when WeChat leaves it out).
    pub effective_use: u64,
    /// Every pack, all pages read.
    pub packs: Vec<QuotaPack>,
    /// When WeChat was asked, in Unix seconds on this machine's clock: whether a pack has started is judged at it.
    pub asked_at: u64,
}

impl ChargeUsage {
    /// Verifications that can still be billed now: the calls left in the packs that can be used. Counted from the
    /// packs rather than from `effectiveAll - effectiveUse` because the packs are what the doc describes field by
    /// field, and because WeChat's own example of a fresh app answers `effectiveAll: "0"` beside its free trial.
    pub fn remaining(&self) -> u64 {
        self.packs
            .iter()
            .filter(|p| p.usable_at(self.asked_at))
            .map(QuotaPack::left)
            .sum()
    }

    /// Verifications WeChat has billed: the calls used in every pack read, expired ones included. Each is a phone
    /// code the button handed out, whether or not a server redeemed it.
    pub fn billed(&self) -> u64 {
        self.packs.iter().map(|p| p.used).sum()
    }
}

impl QuotaPack {
    /// Whether the button can spend this pack's calls at `now` (Unix seconds).
    pub fn usable_at(&self, now: u64) -> bool {
        match self.status {
            QuotaPackStatus::InEffect => true,
            // Guess: WeChat's example of a fresh app shows the free trial with status 2 ("not yet") although its
            // startTime has passed, and a fresh app's button works, so such a pack is taken as waiting for its
            // first use, not as unusable (counting it out would report a fresh app as out of quota). A pack whose
            // startTime is still ahead (bought to start later) is not usable yet.
            QuotaPackStatus::NotYet => self.start_time <= now && now < self.end_time,
            QuotaPackStatus::Expired | QuotaPackStatus::Other(_) => false,
        }
    }
}

/// WeChat's page size cap for this call.
const PAGE: usize = 20;
/// Pages read at most (100 packs): bounds one poll whatever `total` says.
const MAX_PAGES: usize = 5;

impl Client {
    /// The quota of phone verifications of `kind`, every pack (pages of 20, at most 100 packs). Needs the access
    /// token; retried like other calls without side effects.
    pub async fn charge_usage(&self, kind: PhoneVerificationKind) -> Result<ChargeUsage> {
        let url = format!("{}/wxa/charge/usage/get", self.base_url());
        let mut usage = ChargeUsage {
            kind,
            all: 0,
            effective_all: 0,
            effective_use: 0,
            packs: Vec::new(),
            asked_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        for page in 0..MAX_PAGES {
            let offset = (page * PAGE).to_string();
            let answer: UsageAnswer = self
                .with_token(|token| {
                    let (url, offset) = (&url, &offset);
                    async move {
                        self.call("charge_usage", CallKind::Idempotent, || {
                            self.http().get(url).query(&[
                                ("access_token", token.expose()),
                                ("spuId", kind.spu_id()),
                                ("offset", offset.as_str()),
                                ("limit", "20"),
                            ])
                        })
                        .await
                    }
                })
                .await?;
            usage.all = answer.all;
            usage.effective_all = answer.effective_all;
            usage.effective_use = answer.effective_use;
            let got = answer.detail_list.len();
            usage
                .packs
                .extend(answer.detail_list.into_iter().map(QuotaPack::from));
            if got < PAGE || usage.packs.len() as u64 >= answer.total {
                return Ok(usage);
            }
        }
        tracing::warn!(appid = %self.appid(), kind = %kind, "more quota packs than one poll reads; counting the first 100");
        Ok(usage)
    }

    /// `GET /wxa/charge/usage/get_recent_average` ("查询近期平均使用量"): the average monthly use of `kind` over
    /// the last three months, as WeChat reports it (blurred); `None` when WeChat has no recent data (10122000).
    pub async fn recent_average_usage(&self, kind: PhoneVerificationKind) -> Result<Option<u64>> {
        let url = format!("{}/wxa/charge/usage/get_recent_average", self.base_url());
        let answer = self
            .with_token(|token| {
                let url = &url;
                async move {
                    self.call::<AverageAnswer>(
                        "charge_recent_average",
                        CallKind::Idempotent,
                        || {
                            self.http().get(url).query(&[
                                ("access_token", token.expose()),
                                ("spuId", kind.spu_id()),
                            ])
                        },
                    )
                    .await
                }
            })
            .await;
        match answer {
            Ok(a) => Ok(Some(a.average_data)),
            Err(e) if e.errcode() == Some(Errcode::ChargeNoRecentData) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `/wxa/charge/usage/get_recent_average`'s answer (`{"averageData":260000}` in WeChat's example).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AverageAnswer {
    #[serde(deserialize_with = "count")]
    average_data: u64,
}

/// `/wxa/charge/usage/get`'s answer. WeChat sends the counts as strings ("1000"); numbers are accepted too.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageAnswer {
    #[serde(default, deserialize_with = "count")]
    all: u64,
    #[serde(default, deserialize_with = "count")]
    effective_all: u64,
    #[serde(default, deserialize_with = "count")]
    effective_use: u64,
    #[serde(default)]
    total: u64,
    #[serde(default)]
    detail_list: Vec<PackWire>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PackWire {
    #[serde(default)]
    pkg_id: String,
    status: i64,
    #[serde(deserialize_with = "count")]
    all: u64,
    #[serde(deserialize_with = "count")]
    used: u64,
    #[serde(default)]
    start_time: u64,
    #[serde(default)]
    end_time: u64,
    #[serde(default)]
    source: i64,
}

impl From<PackWire> for QuotaPack {
    fn from(p: PackWire) -> Self {
        Self {
            pkg_id: p.pkg_id,
            status: p.status.into(),
            all: p.all,
            used: p.used,
            start_time: p.start_time,
            end_time: p.end_time,
            source: p.source,
        }
    }
}

/// A count WeChat sends as a string of digits (or, to be lenient, as a number).
fn count<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        Text(String),
        Number(u64),
    }
    match Count::deserialize(d)? {
        Count::Number(n) => Ok(n),
        Count::Text(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wechats_free_trial_example() {
        // The example on api_getusagedetail.html, verbatim.
        let body = r#"{"errcode":0,"all":"1000","effectiveAll":"0","total":1,"detailList":[{"all":"1000","used":"0","source":1,"startTime":1692979200,"spuId":"10000077","pkgId":"","endTime":4294967295,"skuId":"20000093","status":2}]}"#;
        let a: UsageAnswer = serde_json::from_str(body).unwrap();
        assert_eq!((a.all, a.effective_all, a.total), (1000, 0, 1));
        assert_eq!(a.detail_list[0].status, 2);
        assert_eq!(a.detail_list[0].end_time, 4_294_967_295);
        // A fresh app, as WeChat shows it, has its 1,000 free verifications left (not 0: the alert on an
        // exhausted quota would fire for every new app).
        let usage = ChargeUsage {
            kind: PhoneVerificationKind::Quick,
            all: a.all,
            effective_all: a.effective_all,
            effective_use: a.effective_use,
            packs: a.detail_list.into_iter().map(QuotaPack::from).collect(),
            asked_at: 1_800_000_000,
        };
        assert_eq!(usage.remaining(), 1_000);
    }

    #[test]
    fn parses_wechats_recent_average_example() {
        let a: AverageAnswer = serde_json::from_str(r#"{"averageData":260000}"#).unwrap();
        assert_eq!(a.average_data, 260_000);
    }

    #[test]
    fn remaining_counts_the_packs_the_button_can_spend() {
        const NOW: u64 = 1_800_000_000;
        let pack = |status: i64, all, used, start_time| QuotaPack {
            pkg_id: String::new(),
            status: status.into(),
            all,
            used,
            start_time,
            end_time: 4_294_967_295,
            source: 1,
        };
        let usage = ChargeUsage {
            kind: PhoneVerificationKind::Quick,
            all: 0,
            effective_all: 0,
            effective_use: 0,
            packs: vec![
                pack(1, 1000, 998, 0),
                pack(1, 500, 0, 0),
                // Not yet: started (WeChat's fresh trial) counts, starting later does not.
                pack(2, 100, 0, NOW - 1),
                pack(2, 70, 0, NOW + 1),
                pack(3, 9, 1, 0),
                pack(7, 5, 0, 0),
            ],
            asked_at: NOW,
        };
        assert_eq!(usage.remaining(), 602);
        assert_eq!(usage.billed(), 999);
        assert_eq!("realtime".parse(), Ok(PhoneVerificationKind::Realtime));
        assert!("both".parse::<PhoneVerificationKind>().is_err());
    }
}
