//! The steps and records the cases build. A phone is named by a byte `n`: its lookup hash is `[n; 32]`.

use wxlogin::store::{
    AccountId, AuditEvent, AuditRecord, Holder, NewTicket, Plan, SessionKeys, Step, Store,
    StoreError, StoredPhone, UnixTime,
};

pub const APPID: &str = "wx0123456789abcdef";
pub const OTHER_APP: &str = "wxfedcba9876543210";
pub const NOW: UnixTime = 1_800_000_000;
/// How long the sessions the fixtures make live.
pub const SESSION_TTL: UnixTime = 3600;

pub fn token() -> [u8; 32] {
    rand::random()
}

/// Looks a session up by `key` (the current form; the legacy one matches nothing).
pub fn keys(key: [u8; 32]) -> SessionKeys {
    SessionKeys {
        key,
        legacy: token(),
    }
}

/// Looks a session up by `legacy` (a token of an earlier release; the current form matches nothing).
pub fn legacy_keys(legacy: [u8; 32]) -> SessionKeys {
    SessionKeys {
        key: token(),
        legacy,
    }
}

pub fn phone_hash(n: u8) -> Vec<u8> {
    vec![n; 32]
}

/// Phone `n` as the store sees it, sealed to the identity that verified it. The ciphertext is bytes that are not
/// UTF-8 (a NUL, 0xff), as AES-GCM output is.
pub fn phone(n: u8, appid: &str, openid: &str) -> StoredPhone {
    StoredPhone {
        enc: vec![0, n, 0xff, n, 0],
        hash: phone_hash(n),
        appid: appid.into(),
        openid: openid.into(),
    }
}

pub async fn apply(store: &dyn Store, now: UnixTime, steps: Vec<Step>) -> Result<(), StoreError> {
    store.apply(Plan { now, steps }).await
}

pub fn create_account(id: &AccountId, unionid: Option<&str>) -> Step {
    Step::CreateAccount {
        id: id.clone(),
        unionid: unionid.map(Into::into),
        phone: None,
    }
}

pub fn create_identity(account: &AccountId, appid: &str, openid: &str) -> Step {
    Step::CreateIdentity {
        account: account.clone(),
        appid: appid.into(),
        openid: openid.into(),
    }
}

pub fn set_phone(account: &AccountId, n: u8, appid: &str, openid: &str) -> Step {
    Step::SetPhone {
        account: account.clone(),
        phone: phone(n, appid, openid),
    }
}

pub fn set_unionid(account: &AccountId, unionid: &str) -> Step {
    Step::SetUnionid {
        account: account.clone(),
        unionid: unionid.into(),
    }
}

/// A session for `(appid, openid)` that needs no phone.
pub fn session(appid: &str, openid: &str, token_hash: [u8; 32], expires_at: UnixTime) -> Step {
    Step::Session {
        identity: Holder::Named {
            appid: appid.into(),
            openid: openid.into(),
        },
        token_hash,
        expires_at,
        require_phone: false,
        refresh: None,
    }
}

/// A session for `(appid, openid)` whose account must hold a phone (what every login mints).
pub fn login_session(appid: &str, openid: &str, token_hash: [u8; 32]) -> Step {
    Step::Session {
        identity: Holder::Named {
            appid: appid.into(),
            openid: openid.into(),
        },
        token_hash,
        expires_at: NOW + SESSION_TTL,
        require_phone: true,
        refresh: None,
    }
}

pub fn audit_record(
    at: UnixTime,
    event: AuditEvent,
    account: &AccountId,
    other: Option<&AccountId>,
) -> AuditRecord {
    AuditRecord {
        at,
        event,
        account_id: account.clone(),
        other_account: other.cloned(),
        appid: Some(APPID.into()),
        subject: Some(vec![0xa5, 0, 0xff]),
        reason: Some("test".into()),
    }
}

pub fn audit(at: UnixTime, event: AuditEvent, account: &AccountId) -> Step {
    Step::Audit(audit_record(at, event, account, None))
}

/// A first login as `link::decide` writes it: a new account, its identity in `appid`, phone `n` if any (sealed to
/// that identity), an audit event.
pub fn signup_steps(
    id: &AccountId,
    appid: &str,
    openid: &str,
    unionid: Option<&str>,
    phone: Option<u8>,
) -> Vec<Step> {
    let mut steps = vec![
        create_account(id, unionid),
        create_identity(id, appid, openid),
    ];
    if let Some(n) = phone {
        steps.push(set_phone(id, n, appid, openid));
    }
    steps.push(audit(NOW, AuditEvent::IdentityLinked, id));
    steps
}

/// Writes a first login at `NOW` with a session (needing a phone only if there is one); answers the new account
/// and the session's token hash.
pub async fn signup(
    store: &dyn Store,
    appid: &str,
    openid: &str,
    unionid: Option<&str>,
    phone: Option<u8>,
) -> (AccountId, [u8; 32]) {
    signup_at(store, NOW, appid, openid, unionid, phone).await
}

pub async fn signup_at(
    store: &dyn Store,
    now: UnixTime,
    appid: &str,
    openid: &str,
    unionid: Option<&str>,
    phone: Option<u8>,
) -> (AccountId, [u8; 32]) {
    let id = AccountId::generate();
    let token_hash = token();
    let mut steps = signup_steps(&id, appid, openid, unionid, phone);
    steps.push(Step::Session {
        identity: Holder::Named {
            appid: appid.into(),
            openid: openid.into(),
        },
        token_hash,
        expires_at: now + SESSION_TTL,
        require_phone: phone.is_some(),
        refresh: None,
    });
    apply(store, now, steps).await.expect("signup");
    (id, token_hash)
}

/// `link_candidates` as `(account, holds_identity, has_app_identity)`, sorted by account id.
pub async fn candidates(
    store: &dyn Store,
    appid: &str,
    openid: &str,
    unionid: Option<&str>,
    phone: Option<u8>,
) -> Vec<(AccountId, bool, bool)> {
    let hash = phone.map(phone_hash);
    let found = store
        .link_candidates(appid, openid, unionid, hash.as_deref())
        .await
        .unwrap();
    let mut found: Vec<_> = found
        .into_iter()
        .map(|c| (c.account.id, c.holds_identity, c.has_app_identity))
        .collect();
    found.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    found
}

/// The account behind a live session of `appid` at `NOW`, if any.
pub async fn session_account(
    store: &dyn Store,
    token_hash: &[u8; 32],
    appid: &str,
) -> Option<AccountId> {
    let found = store.session(&keys(*token_hash), appid, NOW).await.unwrap();
    found.map(|s| s.account.id)
}

/// A ticket of `APPID` made 300 s before it expires.
pub fn ticket(
    ticket_hash: [u8; 32],
    openid: &str,
    unionid: Option<&str>,
    expires_at: UnixTime,
) -> NewTicket {
    NewTicket {
        ticket_hash,
        appid: APPID.into(),
        openid: openid.into(),
        unionid: unionid.map(Into::into),
        expires_at,
        now: expires_at - 300,
    }
}
