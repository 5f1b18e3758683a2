//! What a write carries: a [`Plan`] of [`Step`]s the login core (and the deletions of personal data) decided, written
//! in one transaction by [`super::Store::apply`]; and the quick login's one write.

use super::{AccountId, AuditRecord, IdentityId, Refresh, StoredPhone, UnixTime};

/// Writes that happen together or not at all. Each step names what it expects; see [`super::Store::apply`].
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub now: UnixTime,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug)]
pub enum Step {
    /// Deletes a live ticket; gone → [`super::StoreError::TicketGone`].
    ConsumeTicket {
        ticket_hash: [u8; 32],
    },
    /// A new account (its unionid, and its phone if it has one, must be free).
    CreateAccount {
        id: AccountId,
        unionid: Option<String>,
        phone: Option<StoredPhone>,
    },
    /// A new identity of an account (`(appid, openid)` must be free).
    CreateIdentity {
        account: AccountId,
        appid: String,
        openid: String,
    },
    /// Stores a unionid on an account that has none.
    SetUnionid {
        account: AccountId,
        unionid: String,
    },
    /// Stores a phone on an account (the phone must be free).
    SetPhone {
        account: AccountId,
        phone: StoredPhone,
    },
    /// Takes the phone `hash` away from `from`, which must still hold it, and ends `from`'s sessions.
    TakePhone {
        from: AccountId,
        hash: Vec<u8>,
    },
    /// Moves every identity (and so every session) of `from` to `into`, then deletes `from`.
    Merge {
        from: AccountId,
        into: AccountId,
    },
    /// A session for an identity, which must exist (and, with `require_phone`, whose account must still hold a
    /// phone: a session is never minted for an account whose phone was just moved away).
    Session {
        identity: Holder,
        token_hash: [u8; 32],
        expires_at: UnixTime,
        require_phone: bool,
        /// Its refresh token (`None`: an opaque session as earlier releases wrote them; tests only).
        refresh: Option<Refresh>,
    },
    Audit(AuditRecord),
    /// Ends every session of an account.
    EndSessions {
        account: AccountId,
    },
    /// Deletes an account's phone and ends its sessions.
    RemovePhone {
        account: AccountId,
    },
    /// Deletes an identity with its sessions, login tickets and scan logins (it must exist).
    DeleteIdentity {
        id: IdentityId,
    },
    /// Deletes an account and everything of its identities; it must exist and have `identities` identities.
    DeleteAccount {
        account: AccountId,
        identities: usize,
    },
    /// Marks a confirmed scan login's tokens collected (its `expires_at` must be after `collectable_after`); already
    /// collected, or not collectable → [`super::StoreError::QrCollected`].
    ClaimQrLogin {
        id: String,
        collectable_after: UnixTime,
    },
}

/// The identity a session is written for.
#[derive(Clone, Debug)]
pub enum Holder {
    /// Looked up by `(appid, openid)` in the same write (it may be created by an earlier step of it).
    Named { appid: String, openid: String },
    /// Just read (the silent login of a returning user): no lookup by appid and openid.
    Id(IdentityId),
}

/// A login with a verified phone in the two shapes most logins have, written without reading first (see
/// [`super::Store::quick_login`]).
#[derive(Clone, Debug)]
pub struct QuickLogin {
    /// The id the account gets if the person is new.
    pub new_account: AccountId,
    pub appid: String,
    pub openid: String,
    pub unionid: Option<String>,
    /// Sealed to `(appid, openid)`.
    pub phone: StoredPhone,
    /// The keyed hash of `(appid, openid)`, for the audit event of a new account.
    pub subject: Vec<u8>,
    /// Consumed in the same transaction, when the login redeems one.
    pub ticket_hash: Option<[u8; 32]>,
    pub token_hash: [u8; 32],
    pub expires_at: UnixTime,
    pub refresh: Option<Refresh>,
}

/// Which shape [`super::Store::quick_login`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuickOutcome {
    /// Nobody had this identity, phone or unionid: a new account with this phone, its identity and the session.
    Created,
    /// The identity's account already holds this phone (and this unionid, or WeChat sent none): the session.
    Returning,
    /// Neither: nothing was written; the linking rules decide.
    Neither,
}
