//! The token side: refresh rotation with reuse detection, revocation by the refresh token's holder, signing keys.

use crate::fixtures::*;
use std::sync::Arc;
use wxlogin::store::{
    AccountId, Holder, Refresh, Rotation, RotationOutcome, SigningKeyRecord, Step, Store,
};

/// A signed-up account with one session whose refresh secret hashes to `secret`, ending at `ends_at`.
async fn session_with_refresh(
    store: &dyn Store,
    openid: &str,
    secret: [u8; 32],
    ends_at: i64,
) -> [u8; 32] {
    let id = AccountId::generate();
    let sid = token();
    let mut steps = signup_steps(&id, APPID, openid, None, Some(61));
    steps.push(Step::Session {
        identity: Holder::Named {
            appid: APPID.into(),
            openid: openid.into(),
        },
        token_hash: sid,
        expires_at: NOW + SESSION_TTL,
        require_phone: true,
        refresh: Some(Refresh {
            secret_hash: secret,
            ends_at,
        }),
    });
    apply(store, NOW, steps).await.unwrap();
    sid
}

fn rotation(session: [u8; 32], presented: [u8; 32], next: [u8; 32], now: i64) -> Rotation {
    Rotation {
        session,
        presented,
        next,
        expires_at: now + SESSION_TTL,
        now,
        apps: vec![APPID.into()],
    }
}

pub async fn a_refresh_rotates_once_and_a_reuse_ends_the_session(store: Arc<dyn Store>) {
    let (a, b, c) = (token(), token(), token());
    let sid = session_with_refresh(store.as_ref(), "o-rotate", a, NOW + 10 * SESSION_TTL).await;
    let rotated = store
        .rotate_refresh(rotation(sid, a, b, NOW + 1))
        .await
        .unwrap();
    // The session comes back as the rotation left it, as a read after it finds it.
    let found = store.session_by_id(&sid, NOW + 1).await.unwrap().unwrap();
    assert_eq!(found.identity.openid, "o-rotate");
    assert_eq!(rotated, RotationOutcome::Rotated(Box::new(found)));
    // A stranger's secret for this session is invalid and ends nothing.
    let forged = store
        .rotate_refresh(rotation(sid, token(), c, NOW + 2))
        .await
        .unwrap();
    assert_eq!(forged, RotationOutcome::Invalid);
    assert!(store.session_by_id(&sid, NOW + 2).await.unwrap().is_some());
    // The spent secret again: the session ends, and the newer secret with it.
    let reused = store
        .rotate_refresh(rotation(sid, a, c, NOW + 3))
        .await
        .unwrap();
    assert_eq!(reused, RotationOutcome::Reused);
    assert!(store.session_by_id(&sid, NOW + 3).await.unwrap().is_none());
    let newer = store
        .rotate_refresh(rotation(sid, b, c, NOW + 4))
        .await
        .unwrap();
    assert_eq!(newer, RotationOutcome::Invalid);
}

pub async fn a_refresh_slides_the_expiry_but_never_past_the_absolute_end(store: Arc<dyn Store>) {
    let (a, b, c) = (token(), token(), token());
    let ends_at = NOW + SESSION_TTL + 100;
    let sid = session_with_refresh(store.as_ref(), "o-slide", a, ends_at).await;
    // Just before the session would expire, a refresh extends it …
    let at = NOW + SESSION_TTL - 1;
    assert!(matches!(
        store.rotate_refresh(rotation(sid, a, b, at)).await.unwrap(),
        RotationOutcome::Rotated(_)
    ));
    assert!(
        store
            .session_by_id(&sid, NOW + SESSION_TTL + 50)
            .await
            .unwrap()
            .is_some()
    );
    // … only up to its absolute end.
    assert!(store.session_by_id(&sid, ends_at).await.unwrap().is_none());
    assert_eq!(
        store
            .rotate_refresh(rotation(sid, b, c, ends_at))
            .await
            .unwrap(),
        RotationOutcome::Invalid
    );
}

pub async fn a_session_without_a_refresh_token_cannot_be_refreshed(store: Arc<dyn Store>) {
    let (_, sid) = signup(store.as_ref(), APPID, "o-legacy", None, Some(62)).await;
    let outcome = store
        .rotate_refresh(rotation(sid, token(), token(), NOW))
        .await
        .unwrap();
    assert_eq!(outcome, RotationOutcome::Invalid);
    assert!(
        store
            .session(&keys(sid), APPID, NOW)
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn revocation_by_refresh_token_needs_its_current_secret(store: Arc<dyn Store>) {
    let (a, b) = (token(), token());
    let sid = session_with_refresh(store.as_ref(), "o-revoke", a, NOW + 10 * SESSION_TTL).await;
    assert!(!store.end_session_with_refresh(&sid, &b).await.unwrap());
    assert!(store.session_by_id(&sid, NOW).await.unwrap().is_some());
    assert!(store.end_session_with_refresh(&sid, &a).await.unwrap());
    assert!(store.session_by_id(&sid, NOW).await.unwrap().is_none());
}

pub async fn signing_keys_are_stored_once_per_generation(store: Arc<dyn Store>) {
    assert!(store.signing_keys().await.unwrap().is_empty());
    let key = |generation: i64, kid: &str| SigningKeyRecord {
        generation,
        kid: kid.into(),
        private_key_enc: vec![generation as u8; 40],
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        created_at: NOW + generation,
    };
    assert!(store.add_signing_key(key(1, "first")).await.unwrap());
    assert!(!store.add_signing_key(key(1, "racer")).await.unwrap());
    assert!(store.add_signing_key(key(2, "second")).await.unwrap());
    let stored = store.signing_keys().await.unwrap();
    assert_eq!(stored, vec![key(1, "first"), key(2, "second")]);
}

/// A session of an app the instance does not serve is not rotated: its token stays as it was, neither spent nor
/// replaced, and still rotates where its app is served.
pub async fn a_refresh_leaves_the_sessions_of_other_apps_untouched(store: Arc<dyn Store>) {
    let (a, b) = (token(), token());
    let sid = session_with_refresh(store.as_ref(), "o-other-app", a, NOW + 10 * SESSION_TTL).await;
    let elsewhere = Rotation {
        apps: vec![OTHER_APP.into()],
        ..rotation(sid, a, b, NOW + 1)
    };
    assert_eq!(
        store.rotate_refresh(elsewhere).await.unwrap(),
        RotationOutcome::Invalid
    );
    let served = store
        .rotate_refresh(rotation(sid, a, b, NOW + 2))
        .await
        .unwrap();
    assert!(matches!(served, RotationOutcome::Rotated(s) if s.identity.openid == "o-other-app"));
}
