//! A person's data (design.md, "Personal data and operations"): the copy they may ask for, its deletion (by
//! them, by an operator, or because WeChat pushed that they withdrew the phone or closed their WeChat account),
//! and what operators look up.
//!
//! Every deletion is one plan, written in one transaction, with its audit events. It is decided on what was just
//! read; a login that changed the account in between makes it a conflict, and it is decided again. Afterwards
//! forward auth and introspection on this instance forget every live session at once (other instances within
//! [`super::LIVE_FOR`]); our own routes ask the database every time, so the tokens stop working at once.

use super::clock::Clock;
use super::sessions::Authenticated;
use super::{IdentityRecord, Logins, Me};
use crate::api::error::ApiError;
use crate::phone_crypto::PhoneCipher;
use crate::store::{
    AccountId, AccountRecord, AuditEvent, AuditRecord, Plan, ScanSummary, SessionSummary, Step,
    Store, StoreError, UnixTime,
};

/// How far a push's `timestamp` may be from our clock. WeChat retries a delivery for about 15 s; an older one is
/// a replay of a captured push.
pub const PUSH_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

/// One delivery of a WeChat push, its signature checked at the edge.
pub struct Delivery {
    /// The SHA-256 of what makes it unique: the appid, its signature(s), timestamp and nonce.
    pub digest: [u8; 32],
    /// Its signed `timestamp`.
    pub timestamp: UnixTime,
}

/// What a push says, as far as personal data goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WechatEvent {
    /// `user_authorization_revoke` with `RevokeInfo` 8: the user withdrew the phone number.
    PhoneRevoked { openid: String },
    /// `user_authorization_revoke` of something we never hold (nickname and avatar, address, …).
    OtherRevoked { openid: String },
    /// `user_authorization_cancellation`: the user closed their WeChat account.
    Cancelled { openid: String },
    /// Any other message or event: acknowledged, nothing to do.
    Other,
}

/// How often a deletion is decided again when logins keep changing the account under it.
const ATTEMPTS: usize = 3;

/// Who asked for a deletion: the audit event's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Requester {
    /// The person, through `DELETE /api/v1/me`.
    User,
    /// An operator, through `wxlogin users delete` or `wxlogin sessions revoke`.
    Operator,
    /// WeChat's `user_authorization_revoke` push.
    WechatRevoke,
    /// WeChat's `user_authorization_cancellation` push.
    WechatCancellation,
}

/// Everything held about an account (`GET /api/v1/me/export`), the phone in clear.
pub struct Export {
    pub me: Me,
    pub sessions: Vec<SessionSummary>,
    pub scans: Vec<ScanSummary>,
    pub audit: Vec<AuditRecord>,
}

/// What a WeChat push about one identity changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Data was deleted.
    Deleted,
    /// Nothing held matches (an unknown openid, a phone already gone, data we do not hold): acknowledged.
    Nothing,
}

impl Logins {
    /// `GET /api/v1/me/export`: the account, every identity, session, scan login and audit event of it.
    pub async fn export(&self, auth: Authenticated) -> Result<Export, ApiError> {
        let account = auth.session.account.id.clone();
        let me = self.me(auth).await?;
        Ok(Export {
            sessions: self.store.sessions_of(&account).await?,
            scans: self.store.scans_of(&account).await?,
            audit: self.store.audit(&account).await?,
            me,
        })
    }

    /// `DELETE /api/v1/me`: the caller's account and everything of it.
    pub async fn delete_me(&self, auth: &Authenticated) -> Result<(), ApiError> {
        let deleted = self
            .records()
            .delete_account(&auth.session.account.id, Requester::User)
            .await?;
        self.forget_live();
        // Not there: deleted by another request since this one was authenticated, with the session.
        deleted.then_some(()).ok_or(ApiError::Unauthorized)
    }

    /// The records of people, for the deletions below (and `wxlogin users|sessions`, which have no WeChat).
    pub fn records(&self) -> Records<'_> {
        Records {
            store: self.store.as_ref(),
            cipher: &self.cipher,
            clock: self.clock.as_ref(),
        }
    }

    /// Forward auth and introspection on this instance must not answer from memory for a session that was just
    /// ended (a short cache: dropping all of it costs one database read each).
    fn forget_live(&self) {
        self.live.invalidate_all();
    }

    /// A signed push for `app`: refused when stale or seen before (nothing changes), otherwise acted on. A
    /// delivery is remembered before it is acted on, so a replay racing it is refused too; if acting fails it is
    /// forgotten again, so WeChat's retry of it is not mistaken for a replay.
    pub async fn wechat_push(
        &self,
        appid: &str,
        delivery: Delivery,
        event: WechatEvent,
    ) -> Result<Handled, ApiError> {
        let now = self.clock.now();
        // Any i64 may come in a signed query: no arithmetic on it may overflow.
        if now.abs_diff(delivery.timestamp) > PUSH_WINDOW.as_secs() {
            return Err(ApiError::PushStale);
        }
        let keep_until = delivery
            .timestamp
            .saturating_add(PUSH_WINDOW.as_secs() as i64);
        if !self.store.note_push(&delivery.digest, keep_until).await? {
            return Err(ApiError::PushReplayed);
        }
        let records = self.records();
        let acted = match &event {
            WechatEvent::PhoneRevoked { openid } => records.revoked_phone(appid, openid).await,
            WechatEvent::Cancelled { openid } => records.cancelled(appid, openid).await,
            WechatEvent::OtherRevoked { .. } | WechatEvent::Other => Ok(Handled::Nothing),
        };
        if matches!(acted, Ok(Handled::Deleted)) {
            self.forget_live();
        }
        if acted.is_err()
            && let Err(e) = self.store.forget_push(&delivery.digest).await
        {
            tracing::warn!(error = %e, "a failed push stays remembered: WeChat's retry of it will be refused");
        }
        Ok(acted?)
    }
}

/// The records of people: what deletes them, on a store, the data key's keyed hashes and a clock.
pub struct Records<'a> {
    pub store: &'a dyn Store,
    pub cipher: &'a PhoneCipher,
    pub clock: &'a dyn Clock,
}

impl Records<'_> {
    /// Deletes an account and everything of its identities; false if there is no such account.
    pub async fn delete_account(
        &self,
        id: &AccountId,
        requester: Requester,
    ) -> Result<bool, StoreError> {
        self.decide_and_apply(|now| async move {
            let Some(account) = self.store.account(id).await? else {
                return Ok(None);
            };
            let identities = self.store.identities(id).await?;
            let mut steps = vec![Step::DeleteAccount {
                account: account.id.clone(),
                identities: identities.len(),
            }];
            steps.extend(identities.iter().map(|i| {
                self.audit(
                    now,
                    AuditEvent::IdentityDeleted,
                    &account,
                    Some(i),
                    requester,
                )
            }));
            steps.push(self.audit(now, AuditEvent::AccountDeleted, &account, None, requester));
            Ok(Some(steps))
        })
        .await
    }

    /// Ends every session of an account (`wxlogin sessions revoke`); false if there is no such account.
    pub async fn end_sessions(&self, id: &AccountId) -> Result<bool, StoreError> {
        self.decide_and_apply(|now| async move {
            let Some(account) = self.store.account(id).await? else {
                return Ok(None);
            };
            Ok(Some(vec![
                Step::EndSessions {
                    account: account.id.clone(),
                },
                self.audit(
                    now,
                    AuditEvent::SessionsRevoked,
                    &account,
                    None,
                    Requester::Operator,
                ),
            ]))
        })
        .await
    }

    /// WeChat says this user withdrew the phone number (`RevokeInfo` 8): the account's phone is deleted and its
    /// sessions end, so the next login asks for the phone again.
    pub async fn revoked_phone(&self, appid: &str, openid: &str) -> Result<Handled, StoreError> {
        let done = self
            .decide_and_apply(|now| async move {
                let Some(found) = self.store.identity(appid, openid).await? else {
                    return Ok(None);
                };
                let account = &found.account;
                // Already gone (WeChat's retry of a revoke handled before, as a new delivery): nothing to do, and
                // no second audit event. An account without a phone holds no session to end: a session is only
                // written for an account with one (store::writes), and removing the phone ends them all.
                if account.phone.is_none() {
                    return Ok(None);
                }
                Ok(Some(vec![
                    Step::RemovePhone {
                        account: account.id.clone(),
                    },
                    self.audit(
                        now,
                        AuditEvent::PhoneRevoked,
                        account,
                        Some(&found.identity),
                        Requester::WechatRevoke,
                    ),
                ]))
            })
            .await?;
        Ok(if done {
            Handled::Deleted
        } else {
            Handled::Nothing
        })
    }

    /// WeChat says this user closed their WeChat account: the identity is deleted, and the account with it when
    /// it has no other. The account's phone goes too when this identity verified it (it is sealed to it).
    pub async fn cancelled(&self, appid: &str, openid: &str) -> Result<Handled, StoreError> {
        let requester = Requester::WechatCancellation;
        let done = self
            .decide_and_apply(|now| async move {
                let Some(found) = self.store.identity(appid, openid).await? else {
                    return Ok(None);
                };
                let account = found.account;
                let identities = self.store.identities(&account.id).await?;
                let audit_identity = self.audit(
                    now,
                    AuditEvent::IdentityDeleted,
                    &account,
                    Some(&found.identity),
                    requester,
                );
                if identities.iter().all(|i| i.id == found.identity.id) {
                    return Ok(Some(vec![
                        Step::DeleteAccount {
                            account: account.id.clone(),
                            identities: identities.len(),
                        },
                        audit_identity,
                        self.audit(now, AuditEvent::AccountDeleted, &account, None, requester),
                    ]));
                }
                let mut steps = Vec::new();
                let sealed_to_it = account.phone.as_ref().is_some_and(|p| {
                    p.appid == found.identity.appid && p.openid == found.identity.openid
                });
                if sealed_to_it {
                    steps.push(Step::RemovePhone {
                        account: account.id.clone(),
                    });
                }
                steps.push(Step::DeleteIdentity {
                    id: found.identity.id,
                });
                steps.push(audit_identity);
                Ok(Some(steps))
            })
            .await?;
        Ok(if done {
            Handled::Deleted
        } else {
            Handled::Nothing
        })
    }

    /// Reads, decides (`decide` answers the steps, or `None`: nothing to do) and writes in one transaction;
    /// decided again on a conflict. True when something was written.
    async fn decide_and_apply<'a, F, Fut>(&'a self, decide: F) -> Result<bool, StoreError>
    where
        F: Fn(UnixTime) -> Fut,
        Fut: std::future::Future<Output = Result<Option<Vec<Step>>, StoreError>> + 'a,
    {
        for attempt in 1..=ATTEMPTS {
            let now = self.clock.now();
            let Some(steps) = decide(now).await? else {
                return Ok(false);
            };
            match self.store.apply(Plan { now, steps }).await {
                Ok(()) => return Ok(true),
                Err(StoreError::Conflict) if attempt < ATTEMPTS => {
                    tracing::debug!(
                        attempt,
                        "a login changed the account meanwhile; deciding again"
                    );
                }
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::Conflict)
    }

    /// An audit event about `account` (and one of its identities, by keyed hash only).
    fn audit(
        &self,
        now: UnixTime,
        event: AuditEvent,
        account: &AccountRecord,
        identity: Option<&IdentityRecord>,
        requester: Requester,
    ) -> Step {
        Step::Audit(AuditRecord {
            at: now,
            event,
            account_id: account.id.clone(),
            other_account: None,
            appid: identity.map(|i| i.appid.clone()),
            subject: identity.map(|i| self.cipher.subject_hash(&i.appid, &i.openid)),
            reason: Some(<&'static str>::from(requester).to_owned()),
        })
    }
}
