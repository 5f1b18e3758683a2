//! wxsim: an offline, strict simulator of WeChat's Mini Program server API, plus a sandbox "device API" that
//! plays the phone.
//!
//! The WeChat routes ([`Simulator::wechat_router`]) answer at WeChat's paths with WeChat's JSON and errcodes:
//! `GET /cgi-bin/token`, `POST /cgi-bin/stable_token`, `GET /sns/jscode2session`,
//! `POST /wxa/business/getuserphonenumber`, `GET /wxa/checksession`, `POST /wxa/getwxacodeunlimit` (a
//! standard QR code in a PNG instead of WeChat's round sun code; its text is described in `qr.rs`:
//! `wxsim://wxacode?appid=…&page=…&env=…&scene=…`, values encoded like `encodeURIComponent`). The device API
//! ([`Simulator::device_router`], usually nested at `/sandbox/v1`) creates users, mints the codes `wx.login()`
//! and the getPhoneNumber button would give, advances the clock, injects faults, sets limits and reports stats.
//! Every lifetime and limit runs on the simulator's clock (real time plus an offset tests advance).
//!
//! The device API (errors are 4xx `{"error":"snake_case_id","message"}`):
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /users` | [`NewUser`] `{"phoneNumber","countryCode"?,"appid"?}` | `201` [`SandboxUser`]; `200` if known |
//! | `GET /users?appid=` | — | `{"users":[…]}` |
//! | `POST /login-code` | `{"openid"}` | [`IssuedCode`] `{"code","expiresIn":300}` |
//! | `POST /phone-code` | [`PhoneCodeRequest`] `{"openid","phoneNumber"?,"countryCode"?,"kind"?}` | [`IssuedCode`]; spends one verification of `kind` (`quick` default, `realtime`); none left: `403 no_quota` with `"errno":1400001` |
//! | `GET /apps` | — | `[{"appid","bound"}]`, in order (never a secret) |
//! | `POST /apps/{appid}/bind` | none or `{}` | [`AppBinding`] `{"appid","bound":true}`; `404 unknown_app` |
//! | `GET`/`POST /apps/{appid}/quota` | [`QuotaChange`] `{"kind"?,"buy"?,"left"?}` | [`QuotaState`] `{"appid","kind","spuId","left","used"}` (`GET`: both kinds) |
//! | `POST /scan` | [`ScanRequest`] `{"openid","image"}` or `{"openid","scene","page"?,"appid"?}` | [`LaunchOptions`] `{"appid","path","query":{"scene"},"scene":1047,"openid","envVersion"}` |
//! | `POST /batch` | [`BatchRequest`] | `{"items":[…]}` of [`BatchItem`] |
//! | `GET`/`POST /clock` | `{"advanceSeconds"}` | `{"now"}` |
//! | `GET`/`PUT`/`DELETE /faults` | [`Faults`] (plus `"revokeToken":true`) | the faults in force |
//! | `GET`/`PUT /limits` | [`Limits`] | the limits in force |
//! | `GET /stats` | — | [`Stats`] |
//! | `GET`/`PUT /apps/{appid}/push` | [`PushTarget`] `{"url","token","encodingAesKey"?,"format":"json"\|"xml"}` | [`PushTargetView`] `{"url","mode":"safe"\|"plaintext","format"}` (never the Token or key) |
//! | `POST /users/revoke` | `{"openid","revokeInfo"?}` (default `"8"`, the phone number) | [`PushDelivery`] `{"sent":{"url","contentType","body"},"answer":{"status","body"}}`: the push WeChat made, and what the URL answered; `409 no_push_target`, `502 push_unreachable` |
//! | `POST /users/cancel` | `{"openid"}` (the user closes their WeChat account) | [`PushDelivery`]; from then on the person's users in every app are `closed`: login and phone codes and scans answer `410 account_closed` |
//!
//! A user of an unbound app ([`SimConfig::unbound_apps`]) has no `unionid` until the app is bound. A phone code
//! with `phoneNumber` answers that number (WeChat lets a user pick another verified number) and stays bound to
//! the user's openid. Each app has a phone-verification quota per kind (the free 1,000, packs bought through the
//! device API) that `/wxa/charge/usage/get` reports in WeChat's shape, and `…/get_recent_average` as the monthly
//! average of the last 90 days; `/batch` spends none (load tests).
//!
//! The model follows WeChat's documentation as summarised in `wechat-api.md`; it depends on nothing else of
//! wxlogin, so it can catch the client's mistakes rather than share them.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let running = wxsim::spawn(wxsim::SimConfig::default()).await?;
//! let app = &running.sim.apps()[0];
//! let user = running.sim.create_user(wxsim::NewUser {
//!     phone_number: "13800138000".into(),
//!     ..Default::default()
//! }).expect("valid phone");
//! let code = running.sim.login_code(&user.openid).expect("known user");
//! // GET {base_url}/sns/jscode2session?appid=…&secret=…&js_code={code.code}&grant_type=authorization_code
//! # let _ = (app, code); Ok(()) }
//! ```
//!
//! # GUESSES
//!
//! Where WeChat's behaviour is undocumented the simulator chooses; each choice is marked `// Guess:` in the
//! code.
//!
//! 1. **Phone code with another (or an unknown) user's openid** → `40003` ("invalid openid"), and the code is
//!    *not* consumed: its owner can still redeem it.
//! 2. **Another app's phone code** → `40013` (getuserphonenumber's documented "code of another appid"); another
//!    app's login code → `40029`.
//! 3. **Order of credential checks** (token, stable_token, jscode2session): `grant_type` (`40002`, also when
//!    missing — jscode2session requires `authorization_code`), then appid missing (`41002`), secret missing
//!    (`41004`), unknown appid (`40013`), wrong secret (`40125` on both token routes).
//! 4. **Wrong HTTP method**: the GET routes answer `43001` ("require GET method"), the POST routes `43002`.
//! 5. **stable_token body**: read as JSON whatever the Content-Type; not a JSON object → `43002`; a field of the
//!    wrong type counts as missing; a non-boolean `force_refresh` → `47001`.
//! 6. **Force refreshes**: every `force_refresh:true` call counts towards the 20 a day, including one within
//!    30 s of the last (which refreshes nothing and answers the current token).
//! 7. **Token validity order**: a token past its expiry answers `42001` even if it was also retired or revoked;
//!    expired tokens are remembered for a day, then answer `40001` like unknown ones. Tokens are `86_` + 132
//!    URL-safe characters; any other shape answers `40014`.
//! 8. **Per-user limits** (45011) count the calls whose code passed its own checks (only a live code names its
//!    user); a refused call does not consume the code. getuserphonenumber's per-user limit is 100/min like
//!    code2Session's (WeChat gives no number). The optional per-app business limit is counted per route.
//! 9. **Daily quotas** reset at midnight Beijing time (UTC+8) on the sim clock.
//! 10. **Codes** live 300 s: usable while `now < minted + 300`.
//! 11. **Empty parameters** (`appid=`, `"code":""`, `"openid":""`) count as missing; a repeated query parameter
//!     takes its first value. An empty `code` in getuserphonenumber → `47001`; an empty `openid` is no openid.
//! 12. **checksession**: a missing or other `sig_method` → `87009`; a missing, unknown or other app's `openid`
//!     → `40003`; the signature must be lowercase hex (uppercase → `87009`).
//! 13. **Injected faults**: an injected errcode answers before any state changes (a code is not consumed, no
//!     token is minted); `rate` applies to the errcode only, latency to every matching call; a fault set without
//!     a `rate` fires on every call (rate defaults to 1). Not a guess about WeChat but a choice for tests: a
//!     rate is spread evenly (with 0.1, every 10th call of the route) unless `random: true`, so runs repeat.
//! 14. **unionid**: the simulator has one Open Platform account; the apps of [`SimConfig::apps`] are bound to it
//!     (unless [`SimConfig::open_platform`] is off), those of [`SimConfig::unbound_apps`] are not until
//!     `POST /apps/{appid}/bind` ([`Simulator::bind_app`]). The unionid is derived from the person's country
//!     code and phone, so the same phone has the same unionid in every bound app; an unbound app answers none.
//!     A binding takes effect at once, for codes minted before it too.
//! 15. **phoneNumber outside mainland China** is `+` + country code + number, no space (seen for `+852`,
//!     unconfirmed for other regions).
//! 16. **Sandbox country codes**: any 1–3 digits without a leading zero.
//! 17. **A phone code for another number**: WeChat verifies another number by SMS before a user can pick it; the
//!     sandbox takes any valid number, fixed when the code is minted, and makes no user for it.
//! 18. **getwxacodeunlimit**: the image is PNG bytes labelled `image/jpeg`; checks run body (40169), scene
//!     (40169 empty/long, then 40129), page (41030 for a leading `/` or a query), other arguments (40097, also for
//!     a field of the wrong type), then check_path (41030 for a page not in [`SimConfig::published_pages`]);
//!     numbers may be strings; a missing `line_color` component is 0; `auto_color` draws black. The minute
//!     limit ([`Limits::wxacode_per_app_per_minute`], 5,000) answers 45009.

mod batch;
mod charge;
mod clock;
mod codes;
mod config;
mod device;
mod errcode;
mod error;
mod faults;
mod ids;
mod phone;
mod push;
mod qr;
mod query;
mod quota;
mod scan;
mod simulator;
mod state;
mod tokens;
mod wechat;
mod wxacode;

use std::net::{Ipv4Addr, SocketAddr};

pub use batch::{BatchItem, BatchRequest, CodeKind, MAX_BATCH};
pub use codes::{IssuedCode, PhoneCodeRequest};
pub use config::{AppCredentials, Limits, SimConfig};
pub use error::SimError;
pub use faults::{CodesIssued, Faults, RouteStats, Stats};
pub use push::{PushAnswer, PushDelivery, PushFormat, PushTarget, PushTargetView, SentPush};
pub use quota::{FREE_TRIAL, NO_QUOTA_ERRNO, QuotaChange, QuotaKind, QuotaState};
pub use scan::{LaunchOptions, LaunchQuery, SCAN_LAUNCH_SCENE, ScanRequest};
pub use simulator::Simulator;
pub use state::{AppBinding, NewUser, SandboxUser};

/// A simulator serving on a loopback port in a tokio task. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningSim {
    pub addr: SocketAddr,
    pub sim: Simulator,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    /// Stops the server (the same as dropping it).
    pub fn shutdown(self) {}
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a simulator on `127.0.0.1:0` serving [`Simulator::router`].
pub async fn spawn(config: SimConfig) -> std::io::Result<RunningSim> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let sim = Simulator::new(config);
    let served = sim.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = serve(served, listener).await {
            tracing::error!(error = %e, "wxsim server stopped");
        }
    });
    Ok(RunningSim {
        addr,
        sim,
        base_url: format!("http://{addr}"),
        task,
    })
}

/// Serves [`Simulator::router`] on `listener` until the task is dropped or the listener fails.
pub async fn serve(sim: Simulator, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, sim.router()).await
}
