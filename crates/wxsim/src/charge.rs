//! `GET /wxa/charge/usage/get?access_token&spuId&offset&limit` ("查询次数包信息",
//! `/miniprogram/dev/server/API/charge/api_getusagedetail.html`): the packs of quota.rs in WeChat's shape; and
//! `GET /wxa/charge/usage/get_recent_average?access_token&spuId` ("查询近期平均使用量",
//! `…/api_getrecentaverageusage.html`): the average monthly use over the last three months.

use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::Response;
use serde::Serialize;

use crate::Simulator;
use crate::errcode::{Errcode, json_response};
use crate::faults::Route;
use crate::query::param;
use crate::quota::{Pack, QuotaKind};
use crate::state::Inner;
use crate::wechat::{enter, finish, require};

/// WeChat's page-size cap (`limit` ≤ 20).
const MAX_LIMIT: usize = 20;
const BAD_PARAMETER: Errcode = Errcode(10_120_002);
const INVALID_SPU: Errcode = Errcode(10_120_700);
const NO_RECENT_DATA: Errcode = Errcode(10_122_000);

/// `GET /wxa/charge/usage/get?access_token&spuId&offset&limit`.
pub(crate) async fn charge_usage(
    State(sim): State<Simulator>,
    method: Method,
    uri: Uri,
) -> Response {
    let inner = &*sim.inner;
    let result = match enter(inner, Route::ChargeUsage).await {
        Err(e) => Err(e),
        Ok(()) => usage(inner, &method, &uri),
    };
    finish(inner, Route::ChargeUsage, result)
}

/// `GET /wxa/charge/usage/get_recent_average?access_token&spuId`.
pub(crate) async fn recent_average(
    State(sim): State<Simulator>,
    method: Method,
    uri: Uri,
) -> Response {
    let inner = &*sim.inner;
    let result = match enter(inner, Route::ChargeRecentAverage).await {
        Err(e) => Err(e),
        Ok(()) => average(inner, &method, &uri),
    };
    finish(inner, Route::ChargeRecentAverage, result)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AverageAnswer {
    errcode: i64,
    errmsg: &'static str,
    average_data: u64,
}

// Guess: the doc's example is `{"averageData":260000}` alone; the simulator adds errcode 0 and errmsg as WeChat's
// other JSON answers do, and checks the token and spuId as `usage` does.
fn average(inner: &Inner, method: &Method, uri: &Uri) -> Result<Response, Errcode> {
    require(method, Method::GET)?;
    let q = uri.query();
    let now = inner.clock.now();
    let app = inner.check_access_token(param(q, "access_token").as_deref(), now)?;
    let kind = spu(param(q, "spuId"))?;
    let average = inner
        .app(app)
        .quota
        .lock()
        .recent_monthly_average(kind, now)
        .ok_or(NO_RECENT_DATA)?;
    Ok(json_response(&AverageAnswer {
        errcode: 0,
        errmsg: "ok",
        average_data: average,
    }))
}

/// The product a `spuId` names: missing or not digits → 10120002, unknown → 10120700.
fn spu(spu: Option<std::borrow::Cow<'_, str>>) -> Result<QuotaKind, Errcode> {
    let spu = spu.ok_or(BAD_PARAMETER)?;
    if spu.is_empty() || !spu.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD_PARAMETER);
    }
    QuotaKind::ALL
        .into_iter()
        .find(|k| k.spu_id() == spu)
        .ok_or(INVALID_SPU)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageAnswer<'a> {
    errcode: i64,
    errmsg: &'static str,
    all: String,
    effective_all: String,
    effective_use: String,
    total: usize,
    detail_list: Vec<PackAnswer<'a>>,
}

/// A pack with WeChat's counts as strings and its status at the time of asking.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PackAnswer<'a> {
    all: String,
    used: String,
    source: i64,
    start_time: u64,
    spu_id: &'static str,
    pkg_id: &'a str,
    end_time: u64,
    sku_id: &'static str,
    status: i64,
}

// Guess: WeChat does not document its check order or the defaults of offset/limit; the simulator checks the
// token, then spuId (missing or not digits: 10120002; unknown: 10120700), then offset/limit (not numbers, or
// limit outside 1..=20: 10120002); offset defaults to 0 and limit to 20.
fn usage(inner: &Inner, method: &Method, uri: &Uri) -> Result<Response, Errcode> {
    require(method, Method::GET)?;
    let q = uri.query();
    let now = inner.clock.now();
    let app = inner.check_access_token(param(q, "access_token").as_deref(), now)?;
    let kind = spu(param(q, "spuId"))?;
    let number = |name: &str, default: usize| match param(q, name) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| BAD_PARAMETER),
    };
    let offset = number("offset", 0)?;
    let limit = number("limit", MAX_LIMIT)?;
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(BAD_PARAMETER);
    }
    let book = inner.app(app).quota.lock();
    let packs = &book.packs[kind.index()];
    // `effectiveAll` / `effectiveUse` sum the packs answered as in effect (status 1): WeChat's fresh-app example
    // answers 0 beside its unused trial.
    let effective: Vec<&Pack> = packs.iter().filter(|p| p.status(now) == 1).collect();
    let answer = UsageAnswer {
        errcode: 0,
        errmsg: "ok",
        all: packs.iter().map(|p| p.all).sum::<u64>().to_string(),
        effective_all: effective.iter().map(|p| p.all).sum::<u64>().to_string(),
        effective_use: effective.iter().map(|p| p.used).sum::<u64>().to_string(),
        total: packs.len(),
        detail_list: packs
            .iter()
            .skip(offset)
            .take(limit)
            .map(|p| PackAnswer {
                all: p.all.to_string(),
                used: p.used.to_string(),
                source: p.source,
                start_time: p.start_time,
                spu_id: kind.spu_id(),
                pkg_id: &p.pkg_id,
                end_time: p.end_time,
                sku_id: kind.sku_id(),
                status: p.status(now),
            })
            .collect(),
    };
    Ok(json_response(&answer))
}
