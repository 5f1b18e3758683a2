//! Steps (2)–(4) of every login: read what the login touches, decide with the linking rules, write one plan —
//! and the two shortcuts for the shapes in which the rules would write nothing but a session. Also the guard of a
//! login ticket reserved by one `/api/v1/phone` request ([`Held`]).

use super::apps::App;
use super::link::{self, Linked, Refusal, Seen};
use super::{LoggedIn, Logins};
use crate::api::error::ApiError;
use crate::store::{
    AccountId, Holder, Plan, QuickLogin, QuickOutcome, Refresh, Step, Store, StoreError,
    StoredPhone, UnixTime,
};
use crate::tokens::{RefreshToken, Ticket};
use std::sync::Arc;
use weixin::PhoneInfo;

/// A decision is written at most this many times when concurrent logins keep changing what it was made on.
const ATTEMPTS: usize = 3;

impl Logins {
    /// Steps (2)–(4) of a login: read, decide, write a session; again on a conflict. With `ticket`, consuming it
    /// is part of the same write.
    pub(super) async fn land(
        &self,
        app: &App,
        openid: &str,
        unionid: Option<&str>,
        verified: Option<&PhoneInfo>,
        ticket: Option<&Ticket>,
    ) -> Result<LoggedIn, Landing> {
        let appid = app.appid.as_str();
        let phone = verified.map(|info| self.seal_phone(appid, openid, &info.phone.phone_number));
        if let (Some(info), Some(phone)) = (verified, &phone) {
            let quick = self.quick(appid, openid, unionid, phone, ticket).await?;
            if let Some((account_id, token)) = quick {
                let phone = info.phone.phone_number.clone();
                let who = Who {
                    account: account_id,
                    appid,
                    openid,
                    unionid,
                };
                return Ok(self.logged_in(who, phone, token)?);
            }
        } else if let Some(logged_in) = self.returning(appid, openid, unionid).await? {
            return Ok(logged_in);
        }
        for attempt in 1..=ATTEMPTS {
            let now = self.clock.now();
            let candidates = self
                .store
                .link_candidates(
                    appid,
                    openid,
                    unionid,
                    phone.as_ref().map(|p| p.hash.as_slice()),
                )
                .await
                .map_err(ApiError::from)?;
            let seen = Seen {
                appid,
                openid,
                unionid,
                phone: phone.clone(),
                subject: self.cipher.subject_hash(appid, openid),
            };
            let Linked { account, steps } =
                match link::decide(&candidates, seen, self.policy.link, now) {
                    Ok(linked) => linked,
                    Err(Refusal::Unknown) => return Err(Landing::NeedsPhone),
                    Err(Refusal::PhoneInUse) => return Err(ApiError::PhoneInUse.into()),
                };
            let Some(stored_phone) = account.phone.clone() else {
                // Known, but the phone moved to another account: ask for one again.
                return Err(Landing::NeedsPhone);
            };
            let token = RefreshToken::generate();
            let mut plan = Plan {
                now,
                steps: Vec::with_capacity(steps.len() + 2),
            };
            if let Some(ticket) = ticket {
                plan.steps.push(Step::ConsumeTicket {
                    ticket_hash: ticket.hash(),
                });
            }
            plan.steps.extend(steps);
            let holder = Holder::Named {
                appid: appid.to_owned(),
                openid: openid.to_owned(),
            };
            plan.steps.push(self.session_step(holder, &token, now));
            match self.store.apply(plan).await {
                Ok(()) => {
                    let phone = match verified {
                        Some(info) => info.phone.phone_number.clone(),
                        None => self.open_phone(&stored_phone)?,
                    };
                    let unionid = account.unionid.as_deref().or(unionid);
                    let who = Who {
                        account: account.id,
                        appid,
                        openid,
                        unionid,
                    };
                    return Ok(self.logged_in(who, phone, token)?);
                }
                Err(StoreError::Conflict) if attempt < ATTEMPTS => {
                    tracing::debug!(
                        attempt,
                        "a concurrent login changed these accounts; deciding again"
                    );
                }
                Err(StoreError::TicketGone) => return Err(ApiError::TicketInvalid.into()),
                Err(other) => return Err(ApiError::from(other).into()),
            }
        }
        Err(ApiError::from(StoreError::Conflict).into())
    }

    /// The session a login ends with, and its first refresh token: for an account that still holds a phone when
    /// it is written.
    pub(super) fn session_step(
        &self,
        identity: Holder,
        token: &RefreshToken,
        now: UnixTime,
    ) -> Step {
        let (expires_at, refresh) = self.session_times(token, now);
        Step::Session {
            identity,
            token_hash: token.session().0,
            expires_at,
            require_phone: true,
            refresh: Some(refresh),
        }
    }

    /// A new session's expiry (`refresh_token_ttl`, sliding with each refresh) and absolute end
    /// (`refresh_absolute_ttl`).
    fn session_times(&self, token: &RefreshToken, now: UnixTime) -> (UnixTime, Refresh) {
        let ends_at = now + self.policy.refresh_absolute_ttl.as_secs() as i64;
        let expires_at = (now + self.policy.refresh_ttl.as_secs() as i64).min(ends_at);
        let refresh = Refresh {
            secret_hash: token.secret_hash(),
            ends_at,
        };
        (expires_at, refresh)
    }

    /// A silent login of a returning identity whose account has a phone and agrees with the unionid WeChat sent (or
    /// WeChat sent none): the rules would write nothing but a session ([`link::decide`]), so only the identity is
    /// read, not every account the login might touch. `None`: another shape, nothing written.
    pub(super) async fn returning(
        &self,
        appid: &str,
        openid: &str,
        unionid: Option<&str>,
    ) -> Result<Option<LoggedIn>, ApiError> {
        let Some(found) = self.store.identity(appid, openid).await? else {
            return Ok(None);
        };
        let account = found.account;
        let unionid_agrees = unionid.is_none() || account.unionid.as_deref() == unionid;
        let Some(stored) = account.phone.filter(|_| unionid_agrees) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let token = RefreshToken::generate();
        let plan = Plan {
            now,
            steps: vec![self.session_step(Holder::Id(found.identity.id), &token, now)],
        };
        match self.store.apply(plan).await {
            Ok(()) => {
                let phone = self.open_phone(&stored)?;
                let unionid = account.unionid.as_deref();
                let who = Who {
                    account: account.id,
                    appid,
                    openid,
                    unionid,
                };
                Ok(Some(self.logged_in(who, phone, token)?))
            }
            // The phone moved away (or the identity went) since the read: the rules decide.
            Err(StoreError::Conflict) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    /// The two shapes most logins with a verified phone have (a person never seen; an identity whose account holds
    /// this phone), in one write with no read before it. `None`: neither, nothing written; the rules decide.
    pub(super) async fn quick(
        &self,
        appid: &str,
        openid: &str,
        unionid: Option<&str>,
        phone: &StoredPhone,
        ticket: Option<&Ticket>,
    ) -> Result<Option<(AccountId, RefreshToken)>, ApiError> {
        let now = self.clock.now();
        let token = RefreshToken::generate();
        let (expires_at, refresh) = self.session_times(&token, now);
        let login = QuickLogin {
            new_account: AccountId::generate(),
            appid: appid.to_owned(),
            openid: openid.to_owned(),
            unionid: unionid.map(str::to_owned),
            phone: phone.clone(),
            subject: self.cipher.subject_hash(appid, openid),
            ticket_hash: ticket.map(Ticket::hash),
            token_hash: token.session().0,
            expires_at,
            refresh: Some(refresh),
        };
        let new_account = login.new_account.clone();
        match self.store.quick_login(login, now).await {
            Ok(QuickOutcome::Created) => Ok(Some((new_account, token))),
            Ok(QuickOutcome::Returning) => {
                let session = self
                    .store
                    .session(&token.session().lookup(), appid, now)
                    .await?;
                let session = session.ok_or(ApiError::Internal)?;
                Ok(Some((session.account.id, token)))
            }
            Ok(QuickOutcome::Neither) => Ok(None),
            Err(StoreError::TicketGone) => Err(ApiError::TicketInvalid),
            Err(other) => Err(other.into()),
        }
    }

    /// The answer of a login: the session's first refresh token and an access token for it.
    pub(super) fn logged_in(
        &self,
        who: Who<'_>,
        phone: String,
        refresh: RefreshToken,
    ) -> Result<LoggedIn, ApiError> {
        let now = self.clock.now();
        let access_token = self.mint(&who, refresh.session(), now)?;
        Ok(LoggedIn {
            account_id: who.account,
            appid: who.appid.to_owned(),
            openid: who.openid.to_owned(),
            phone,
            access_token,
            expires_in: self.access.policy.access_ttl,
            refresh_token: refresh,
            refresh_expires_in: self
                .policy
                .refresh_ttl
                .min(self.policy.refresh_absolute_ttl),
        })
    }
}

/// Whom a session is for.
pub(super) struct Who<'a> {
    pub account: AccountId,
    pub appid: &'a str,
    pub openid: &'a str,
    pub unionid: Option<&'a str>,
}

/// Why [`Logins::land`] did not log in.
pub(super) enum Landing {
    NeedsPhone,
    Failed(ApiError),
}

impl From<ApiError> for Landing {
    fn from(err: ApiError) -> Self {
        Landing::Failed(err)
    }
}

impl From<Landing> for ApiError {
    fn from(landing: Landing) -> Self {
        match landing {
            // With a verified phone a login always lands somewhere; without one only `silent` calls `land`.
            Landing::NeedsPhone => ApiError::Internal,
            Landing::Failed(err) => err,
        }
    }
}

// ---- a reserved ticket ----

/// Released when the phone step fails (counting WeChat's refusals of the code against the ticket), and also when
/// the request is dropped halfway (the client went away, the request timed out): then in a task of its own, so
/// the ticket does not stay held until its reservation runs out.
pub(super) struct Held {
    store: Arc<dyn Store>,
    hash: [u8; 32],
    armed: bool,
}

impl Held {
    pub(super) fn new(store: Arc<dyn Store>, hash: [u8; 32]) -> Self {
        Self {
            store,
            hash,
            armed: true,
        }
    }

    /// The ticket was consumed with the login.
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }

    /// Gives the ticket back after `err`. Only a code WeChat refused counts against the ticket (up to `cap`); an
    /// outage or a busy WeChat does not.
    pub(super) async fn release(mut self, err: &ApiError, cap: Option<u32>) {
        self.armed = false;
        let refused = matches!(
            err,
            ApiError::PhoneCodeInvalid | ApiError::PhoneCodeMismatch
        );
        match self.store.release_ticket(&self.hash, refused, cap).await {
            Ok(true) => tracing::info!("ticket spent: too many refused phone codes"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "releasing a ticket failed; it frees itself when its reservation ends")
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // No runtime left (the process is ending): the reservation runs out by itself.
        if let (true, Ok(runtime)) = (self.armed, tokio::runtime::Handle::try_current()) {
            let (store, hash) = (self.store.clone(), self.hash);
            runtime.spawn(async move {
                if let Err(e) = store.release_ticket(&hash, false, None).await {
                    tracing::warn!(error = %e, "releasing an abandoned ticket failed");
                }
            });
        }
    }
}
