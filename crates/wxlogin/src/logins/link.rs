//! The linking rules, as one pure function: given the accounts a login may touch, what to write.
//!
//! - Same unionid → same account, always (WeChat gives one unionid per person across the apps of one Open
//!   Platform account). A unionid that appears later is stored; if another account has it, the two merge into the
//!   older one (identities, and with them sessions, move; the older keeps its id).
//! - A new identity whose verified phone belongs to an account without an identity in this app joins that account
//!   when `link_by_phone` (a person's second mini program, not bound to the Open Platform).
//! - A phone belongs to at most one account. Verified by another account: `move` takes it from there (and ends
//!   that account's sessions), `deny` refuses the login with nothing written.
//! - Every link, phone move and merge is an audit event (a new account is its own record: `accounts.created_at`).

use crate::config::PhoneConflict;
use crate::store::{
    AccountId, AccountRecord, AuditEvent, AuditRecord, Candidate, Step, StoredPhone, UnixTime,
};

/// What a login learnt from WeChat.
pub struct Seen<'a> {
    pub appid: &'a str,
    pub openid: &'a str,
    pub unionid: Option<&'a str>,
    /// A phone WeChat just verified for this identity, sealed for the store.
    pub phone: Option<StoredPhone>,
    /// The keyed hash that names this identity in the audit log.
    pub subject: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
pub struct LinkPolicy {
    pub link_by_phone: bool,
    pub phone_conflict: PhoneConflict,
}

/// The account a login lands on, and the steps that make it so.
#[derive(Debug)]
pub struct Linked {
    pub account: AccountRecord,
    pub steps: Vec<Step>,
}

/// Why a login cannot land anywhere.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No account holds this identity or its unionid, and no phone was verified: the phone step must come first.
    Unknown,
    /// The phone belongs to another account and `phone_conflict = "deny"`.
    PhoneInUse,
}

pub fn decide(
    candidates: &[Candidate],
    seen: Seen<'_>,
    policy: LinkPolicy,
    now: UnixTime,
) -> Result<Linked, Refusal> {
    let mine = candidates.iter().find(|c| c.holds_identity);
    let by_unionid = seen.unionid.and_then(|u| {
        candidates
            .iter()
            .find(|c| c.account.unionid.as_deref() == Some(u))
    });
    let by_phone = seen.phone.as_ref().and_then(|p| {
        candidates.iter().find(|c| {
            c.account
                .phone
                .as_ref()
                .is_some_and(|held| held.hash == p.hash)
        })
    });
    let mut steps = Vec::new();
    let audit = |event, account: &AccountId, other: Option<&AccountId>, reason: &str| {
        Step::Audit(AuditRecord {
            at: now,
            event,
            account_id: account.clone(),
            other_account: other.cloned(),
            appid: Some(seen.appid.to_owned()),
            subject: Some(seen.subject.clone()),
            reason: Some(reason.to_owned()),
        })
    };

    // 1. The account this identity belongs to.
    let mut merged_away: Option<AccountId> = None;
    let mut account = match (mine, by_unionid) {
        (Some(mine), Some(theirs)) if mine.account.id != theirs.account.id => {
            let (older, newer) = older_first(&mine.account, &theirs.account);
            let mut into = older.clone();
            steps.push(Step::Merge {
                from: newer.id.clone(),
                into: into.id.clone(),
            });
            if let (None, Some(unionid)) = (&into.unionid, &newer.unionid) {
                into.unionid = Some(unionid.clone());
                steps.push(Step::SetUnionid {
                    account: into.id.clone(),
                    unionid: unionid.clone(),
                });
            }
            if let (None, Some(phone)) = (&into.phone, &newer.phone) {
                into.phone = Some(phone.clone());
                steps.push(Step::SetPhone {
                    account: into.id.clone(),
                    phone: phone.clone(),
                });
            }
            steps.push(audit(
                AuditEvent::AccountsMerged,
                &into.id,
                Some(&newer.id),
                "unionid",
            ));
            merged_away = Some(newer.id.clone());
            into
        }
        (Some(mine), _) => {
            let mut account = mine.account.clone();
            if let (Some(unionid), None) = (seen.unionid, &account.unionid) {
                account.unionid = Some(unionid.to_owned());
                steps.push(Step::SetUnionid {
                    account: account.id.clone(),
                    unionid: unionid.to_owned(),
                });
            }
            account
        }
        (None, Some(theirs)) => {
            steps.push(create_identity(&theirs.account.id, &seen));
            steps.push(audit(
                AuditEvent::IdentityLinked,
                &theirs.account.id,
                None,
                "unionid",
            ));
            theirs.account.clone()
        }
        (None, None) => match by_phone {
            Some(holder)
                if policy.link_by_phone
                    && !holder.has_app_identity
                    && (holder.account.unionid.is_none() || seen.unionid.is_none()) =>
            {
                let mut account = holder.account.clone();
                steps.push(create_identity(&account.id, &seen));
                if let (Some(unionid), None) = (seen.unionid, &account.unionid) {
                    account.unionid = Some(unionid.to_owned());
                    steps.push(Step::SetUnionid {
                        account: account.id.clone(),
                        unionid: unionid.to_owned(),
                    });
                }
                steps.push(audit(
                    AuditEvent::IdentityLinked,
                    &account.id,
                    None,
                    "phone",
                ));
                account
            }
            _ if seen.phone.is_none() => return Err(Refusal::Unknown),
            _ => {
                // A new account takes the phone in the same row; a phone held elsewhere is taken below first.
                let account = AccountRecord {
                    id: AccountId::generate(),
                    unionid: seen.unionid.map(str::to_owned),
                    phone: None,
                    created_at: now,
                    updated_at: now,
                };
                steps.push(Step::CreateAccount {
                    id: account.id.clone(),
                    unionid: account.unionid.clone(),
                    phone: None,
                });
                steps.push(create_identity(&account.id, &seen));
                steps.push(audit(
                    AuditEvent::AccountCreated,
                    &account.id,
                    None,
                    "login",
                ));
                account
            }
        },
    };

    // 2. The phone WeChat just verified, if any.
    if let Some(phone) = seen.phone.clone() {
        let already_held = account
            .phone
            .as_ref()
            .is_some_and(|held| held.hash == phone.hash);
        if !already_held {
            let holder = by_phone
                .map(|c| &c.account.id)
                .filter(|id| **id != account.id && Some(*id) != merged_away.as_ref());
            if let Some(holder) = holder {
                match policy.phone_conflict {
                    PhoneConflict::Deny => return Err(Refusal::PhoneInUse),
                    PhoneConflict::Move => {
                        steps.push(Step::TakePhone {
                            from: holder.clone(),
                            hash: phone.hash.clone(),
                        });
                        steps.push(audit(
                            AuditEvent::PhoneMoved,
                            &account.id,
                            Some(holder),
                            "phone_conflict",
                        ));
                    }
                }
            }
            match (holder, steps.first_mut()) {
                // A new account with a free phone: one row, written once (the common first login).
                (
                    None,
                    Some(Step::CreateAccount {
                        id, phone: slot, ..
                    }),
                ) if *id == account.id => {
                    *slot = Some(phone.clone());
                }
                _ => steps.push(Step::SetPhone {
                    account: account.id.clone(),
                    phone: phone.clone(),
                }),
            }
            account.phone = Some(phone);
        }
    }
    Ok(Linked { account, steps })
}

/// (older, newer) by creation time, then id: merges always keep the older account, so its id (the `sub` other
/// services know) survives.
fn older_first<'a>(
    a: &'a AccountRecord,
    b: &'a AccountRecord,
) -> (&'a AccountRecord, &'a AccountRecord) {
    if (a.created_at, a.id.as_str()) <= (b.created_at, b.id.as_str()) {
        (a, b)
    } else {
        (b, a)
    }
}

fn create_identity(account: &AccountId, seen: &Seen<'_>) -> Step {
    Step::CreateIdentity {
        account: account.clone(),
        appid: seen.appid.to_owned(),
        openid: seen.openid.to_owned(),
    }
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
