//! The login core: every way to log in, read top to bottom. Handlers (`crate::api`) only turn HTTP into these
//! calls and their answers back into HTTP.
//!
//! A login is: (1) ask WeChat who this is (`jscode2session`, and `getuserphonenumber` with that openid, so WeChat
//! checks the phone code is this user's); (2) read the accounts this identity, its unionid and its phone touch;
//! (3) decide with the linking rules ([`link::decide`]); (4) write that decision and a session in one transaction.
//! If another login changed those accounts between (2) and (4), the write is refused and (2)–(4) run again: WeChat
//! is never asked twice.

pub mod apps;
pub mod clock;
mod land;
pub mod link;
pub mod privacy;
pub mod qr;
mod sessions;
pub mod wake;

use crate::access::Access;
use crate::api::error::{ApiError, Exchange};
use crate::config::PhoneBinding;
use crate::phone_crypto::{PhoneCipher, row_id};
use crate::ratelimit::{Limit, RateLimiter};
use crate::store::{
    AccountId, IdentityRecord, NewTicket, SessionRecord, Store, StoredPhone, TicketReservation,
};
use crate::tokens::{RefreshToken, Ticket};
use apps::App;
use clock::Clock;
use land::Landing;
use link::LinkPolicy;
use std::sync::Arc;
use std::time::Duration;
use weixin::{LoginCode, OpenId, PhoneCode, PhoneInfo, Session};

pub use sessions::{Authenticated, Checked, LIVE_FOR, Live, Refreshed};

/// How long a login ticket lives: as long as the phone code it waits for (WeChat: 5 minutes).
pub const TICKET_TTL: Duration = Duration::from_secs(300);

/// Everything a login needs besides the request.
pub struct Logins {
    pub apps: apps::Apps,
    pub store: Arc<dyn Store>,
    pub cipher: PhoneCipher,
    pub clock: Arc<dyn Clock>,
    pub limiter: RateLimiter,
    pub policy: Policy,
    /// Access tokens: minted at every login and refresh, verified on every Bearer route.
    pub access: Access,
    /// Sessions forward auth and introspection found live, for [`sessions::LIVE_FOR`] at most: what bounds how
    /// long a logout on another instance takes to reach this one.
    pub live: moka::sync::Cache<[u8; 32], Arc<Live>>,
    /// Scan-login polls waiting on this instance.
    pub waiters: wake::Waiters,
}

/// The operator's choices.
#[derive(Clone, Debug)]
pub struct Policy {
    pub binding: PhoneBinding,
    /// A session lives this long after its last refresh (`refresh_token_ttl`)…
    pub refresh_ttl: Duration,
    /// …and never longer than this after its login (`refresh_absolute_ttl`).
    pub refresh_absolute_ttl: Duration,
    /// `/auth/verify` answers `X-Auth-Phone` (`forward_auth_phone`).
    pub forward_phone: bool,
    pub link: LinkPolicy,
    /// The most one WeChat exchange may take: a login makes at most two in a row, within the request timeout.
    pub wechat_deadline: Duration,
    /// How long an /api/v1/phone request holds its ticket at most: longer than any request may run, so only a
    /// crashed instance's reservation ever runs out.
    pub ticket_lease: Duration,
    /// Phone codes WeChat may refuse for one ticket before the ticket is spent (`None`: no cap).
    pub phone_failures_per_ticket: Option<u32>,
    /// The longest a scan-login poll waits: [`qr::QR_WAIT_MAX`], or less where the request timeout is shorter, so
    /// a poll answers its status before the request is cut.
    pub qr_wait_max: Duration,
}

/// A user logged in: a new session on an account.
pub struct LoggedIn {
    pub account_id: AccountId,
    pub appid: String,
    pub openid: String,
    /// WeChat's `phoneNumber`.
    pub phone: String,
    /// A JWT, for `access_token_ttl`.
    pub access_token: String,
    pub expires_in: Duration,
    pub refresh_token: RefreshToken,
    pub refresh_expires_in: Duration,
}

/// What a silent login gives.
pub enum Silent {
    LoggedIn(LoggedIn),
    /// Nobody we know (or an account without a phone): the phone step comes next, with this ticket.
    PhoneRequired {
        ticket: Ticket,
        expires_in: Duration,
    },
}

/// The account behind a session, for `/api/v1/me`.
pub struct Me {
    pub session: SessionRecord,
    /// The phone in clear (the caller masks it).
    pub phone: Option<String>,
    pub identities: Vec<IdentityRecord>,
}

impl Logins {
    /// `/api/getPhone`: a login code and a phone code at once. In `verify` mode the login code is exchanged first
    /// and its openid goes with the phone code, so WeChat refuses another user's phone code; `concurrent` saves a
    /// round trip and skips that check.
    pub async fn one_call(
        &self,
        app: &App,
        login_code: &LoginCode,
        phone_code: &PhoneCode,
    ) -> Result<LoggedIn, ApiError> {
        self.limit(Limit::App, app.appid.as_str()).await?;
        let (session, info) = match self.policy.binding {
            PhoneBinding::Verify => {
                let session = self.login_exchange(app, login_code).await?;
                self.limit(Limit::OpenId, session.openid.as_str()).await?;
                let info = self
                    .phone_exchange(app, phone_code, Some(&session.openid))
                    .await?;
                (session, info)
            }
            PhoneBinding::Concurrent => {
                let (session, info) = tokio::join!(
                    self.login_exchange(app, login_code),
                    self.phone_exchange(app, phone_code, None)
                );
                let session = session?;
                self.limit(Limit::OpenId, session.openid.as_str()).await?;
                (session, info?)
            }
        };
        let unionid = session.unionid.as_ref().map(|u| u.as_str());
        let logged_in = self
            .land(app, session.openid.as_str(), unionid, Some(&info), None)
            .await?;
        tracing::info!(phone = %info.phone, account = %logged_in.account_id, "phone login");
        Ok(logged_in)
    }

    /// `/api/v1/login`: jscode2session only. An identity whose account has a phone is logged in (also a new
    /// identity of a person we know by unionid: no phone code spent); anyone else gets a ticket for the phone
    /// step, and nothing is written for them yet.
    pub async fn silent(&self, app: &App, login_code: &LoginCode) -> Result<Silent, ApiError> {
        self.limit(Limit::App, app.appid.as_str()).await?;
        let session = self.login_exchange(app, login_code).await?;
        let openid = session.openid.as_str();
        self.limit(Limit::OpenId, openid).await?;
        let unionid = session.unionid.as_ref().map(|u| u.as_str());
        match self.land(app, openid, unionid, None, None).await {
            Ok(logged_in) => return Ok(Silent::LoggedIn(logged_in)),
            Err(Landing::NeedsPhone) => {}
            Err(Landing::Failed(err)) => return Err(err),
        }
        let ticket = Ticket::generate();
        let now = self.clock.now();
        self.store
            .create_ticket(NewTicket {
                ticket_hash: ticket.hash(),
                appid: app.appid.as_str().to_owned(),
                openid: openid.to_owned(),
                unionid: unionid.map(str::to_owned),
                expires_at: now + TICKET_TTL.as_secs() as i64,
                now,
            })
            .await?;
        Ok(Silent::PhoneRequired {
            ticket,
            expires_in: TICKET_TTL,
        })
    }

    /// `/api/v1/phone` with a ticket: getuserphonenumber with the openid the ticket holds.
    ///
    /// The ticket is reserved for this request before WeChat is asked: a stale ticket costs no phone code (the
    /// client can log in silently again and resend the same code), and of a double tap only the first request
    /// redeems its code; the second answers 409 with its code unspent.
    pub async fn phone_with_ticket(
        &self,
        app: &App,
        ticket: &Ticket,
        phone_code: &PhoneCode,
    ) -> Result<LoggedIn, ApiError> {
        self.limit(Limit::App, app.appid.as_str()).await?;
        let now = self.clock.now();
        let lease_end = now + self.policy.ticket_lease.as_secs() as i64;
        let reserved = self
            .store
            .reserve_ticket(&ticket.hash(), app.appid.as_str(), now, lease_end)
            .await?;
        let record = match reserved {
            TicketReservation::Reserved(record) => record,
            TicketReservation::InUse => return Err(ApiError::TicketInUse),
            TicketReservation::Invalid => return Err(ApiError::TicketInvalid),
        };
        let held = land::Held::new(self.store.clone(), ticket.hash());
        let openid = OpenId::parse(record.openid.clone()).map_err(|_| ApiError::Internal)?;
        let exchange = async {
            self.limit(Limit::OpenId, openid.as_str()).await?;
            self.phone_exchange(app, phone_code, Some(&openid)).await
        };
        let info = match exchange.await {
            Ok(info) => info,
            Err(err) => {
                held.release(&err, self.policy.phone_failures_per_ticket)
                    .await;
                return Err(err);
            }
        };
        let landed = self
            .land(
                app,
                openid.as_str(),
                record.unionid.as_deref(),
                Some(&info),
                Some(ticket),
            )
            .await
            .map_err(ApiError::from);
        match landed {
            Ok(logged_in) => {
                held.disarm();
                tracing::info!(phone = %info.phone, account = %logged_in.account_id, "phone bound");
                Ok(logged_in)
            }
            // Refused (the phone is another account's, `deny`): the ticket stays for another number.
            Err(err) => {
                held.release(&err, None).await;
                Err(err)
            }
        }
    }

    /// `/api/v1/phone` with a session: a new phone for the session's account (WeChat checks the code is this
    /// identity's); a new session is answered.
    pub async fn change_phone(
        &self,
        app: &App,
        current: &Authenticated,
        phone_code: &PhoneCode,
    ) -> Result<LoggedIn, ApiError> {
        self.limit(Limit::App, app.appid.as_str()).await?;
        let openid = OpenId::parse(current.session.identity.openid.clone())
            .map_err(|_| ApiError::Internal)?;
        self.limit(Limit::OpenId, openid.as_str()).await?;
        let info = self.phone_exchange(app, phone_code, Some(&openid)).await?;
        let logged_in = self
            .land(app, openid.as_str(), None, Some(&info), None)
            .await?;
        tracing::info!(phone = %info.phone, account = %logged_in.account_id, "phone changed");
        Ok(logged_in)
    }

    /// A phone sealed to the identity that verified it, with its lookup hash.
    fn seal_phone(&self, appid: &str, openid: &str, phone: &str) -> StoredPhone {
        StoredPhone {
            enc: self.cipher.seal(&row_id(appid, openid), phone),
            hash: self.cipher.lookup_hash(phone),
            appid: appid.to_owned(),
            openid: openid.to_owned(),
        }
    }

    fn open_phone(&self, phone: &StoredPhone) -> Result<String, ApiError> {
        Ok(self
            .cipher
            .open(&row_id(&phone.appid, &phone.openid), &phone.enc)?)
    }

    /// Spends one request of `key`'s budget under `limit`, or answers 429 with the wait.
    pub async fn limit(&self, limit: Limit, key: &str) -> Result<(), ApiError> {
        self.limiter.check(limit, key).await.map_err(|retry| {
            tracing::debug!(limit = %limit, "rate limited");
            ApiError::RateLimited {
                retry_after_secs: retry.header_secs(),
            }
        })
    }

    async fn login_exchange(&self, app: &App, code: &LoginCode) -> Result<Session, ApiError> {
        self.within_deadline(app.wechat.code_to_session(code))
            .await?
            .map_err(|e| ApiError::from_wechat(Exchange::Login, &e))
    }

    async fn phone_exchange(
        &self,
        app: &App,
        code: &PhoneCode,
        openid: Option<&OpenId>,
    ) -> Result<PhoneInfo, ApiError> {
        self.within_deadline(app.wechat.get_phone_number(code, openid))
            .await?
            .map_err(|e| ApiError::from_wechat(Exchange::Phone, &e))
    }

    /// Bounds one WeChat exchange (its retries and a token refresh included) by the share of the request timeout
    /// it is given, so a login answers 503 `wechat_unavailable` before the whole request is cut.
    async fn within_deadline<T>(
        &self,
        exchange: impl std::future::Future<Output = T>,
    ) -> Result<T, ApiError> {
        let deadline = self.policy.wechat_deadline;
        tokio::time::timeout(deadline, exchange)
            .await
            .map_err(|_elapsed| {
                tracing::warn!(
                    deadline_ms = deadline.as_millis() as u64,
                    "WeChat exchange ran out of time"
                );
                ApiError::WechatUnavailable
            })
    }
}
