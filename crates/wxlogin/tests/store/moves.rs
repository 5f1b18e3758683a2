//! What links accounts: a phone moving between accounts, one account merged into another, and the audit log
//! that records them.

use std::sync::Arc;

use wxlogin::store::{AccountId, AuditEvent, Holder, Step, Store, StoreError};

use crate::fixtures::*;

pub async fn take_phone_moves_the_phone_and_ends_the_losers_sessions(store: Arc<dyn Store>) {
    let store = &*store;
    // A verified phone 1 in APPID and has a second identity (and session) in OTHER_APP.
    let (a, a_session) = signup(store, APPID, "oa", None, Some(1)).await;
    let a_other = token();
    let steps = vec![
        create_identity(&a, OTHER_APP, "oa2"),
        login_session(OTHER_APP, "oa2", a_other),
    ];
    apply(store, NOW, steps).await.unwrap();
    let (b, b_session) = signup(store, APPID, "ob", None, None).await;

    let moved = vec![
        Step::TakePhone {
            from: a.clone(),
            hash: phone_hash(1),
        },
        set_phone(&b, 1, APPID, "ob"),
    ];
    apply(store, NOW + 5, moved).await.unwrap();

    let a_now = store.account(&a).await.unwrap().unwrap();
    assert_eq!((a_now.phone, a_now.updated_at), (None, NOW + 5));
    let b_now = store.account(&b).await.unwrap().unwrap();
    assert_eq!(b_now.phone, Some(phone(1, APPID, "ob")));
    assert_eq!(session_account(store, &a_session, APPID).await, None);
    assert_eq!(
        session_account(store, &a_other, OTHER_APP).await,
        None,
        "the loser's sessions in every app end"
    );
    assert_eq!(
        session_account(store, &b_session, APPID).await,
        Some(b.clone())
    );
    assert_eq!(
        candidates(store, APPID, "-", None, Some(1)).await,
        [(b.clone(), false, true)]
    );
    assert_eq!(
        store.identities(&a).await.unwrap().len(),
        2,
        "identities stay"
    );

    // A no longer holds it: a second move (a login that decided on stale data) is refused, and writes nothing.
    let stale = vec![
        Step::TakePhone {
            from: a.clone(),
            hash: phone_hash(1),
        },
        set_phone(&a, 1, APPID, "oa"),
    ];
    assert!(matches!(
        apply(store, NOW, stale).await,
        Err(StoreError::Conflict)
    ));
    let wrong_hash = Step::TakePhone {
        from: b.clone(),
        hash: phone_hash(2),
    };
    let outcome = apply(store, NOW, vec![wrong_hash]).await;
    assert!(matches!(outcome, Err(StoreError::Conflict)));
    assert_eq!(
        session_account(store, &b_session, APPID).await,
        Some(b.clone())
    );
    assert_eq!(
        store.account(&b).await.unwrap().unwrap().phone,
        Some(phone(1, APPID, "ob"))
    );
    // And A, without a phone, gets no login session.
    let outcome = apply(store, NOW, vec![login_session(APPID, "oa", token())]).await;
    assert!(matches!(outcome, Err(StoreError::Conflict)));
}

pub async fn merge_moves_identities_and_their_sessions(store: Arc<dyn Store>) {
    let store = &*store;
    let (older, older_session) = signup_at(store, NOW - 100, APPID, "o-old", None, None).await;
    let (newer, newer_session) =
        signup_at(store, NOW, OTHER_APP, "o-new", Some("un-n"), Some(2)).await;

    // What `link::decide` writes when the newer account's unionid turns up on the older one.
    let merge = vec![
        Step::Merge {
            from: newer.clone(),
            into: older.clone(),
        },
        set_unionid(&older, "un-n"),
        set_phone(&older, 2, OTHER_APP, "o-new"),
        Step::Audit(audit_record(
            NOW + 1,
            AuditEvent::AccountsMerged,
            &older,
            Some(&newer),
        )),
    ];
    apply(store, NOW + 1, merge).await.unwrap();

    assert_eq!(store.account(&newer).await.unwrap(), None);
    assert_eq!(store.identities(&newer).await.unwrap(), []);
    assert_eq!(store.count_accounts().await.unwrap(), 1);
    let account = store.account(&older).await.unwrap().unwrap();
    assert_eq!(account.unionid.as_deref(), Some("un-n"));
    assert_eq!(account.phone, Some(phone(2, OTHER_APP, "o-new")));
    assert_eq!(account.created_at, NOW - 100, "the older account stays");

    let identities = store.identities(&older).await.unwrap();
    let names: Vec<_> = identities
        .iter()
        .map(|i| (i.account_id.clone(), i.appid.as_str(), i.openid.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (older.clone(), APPID, "o-old"),
            (older.clone(), OTHER_APP, "o-new"),
        ],
        "oldest first"
    );
    assert_eq!(identities[1].updated_at, NOW + 1);

    let moved = store
        .session(&keys(newer_session), OTHER_APP, NOW)
        .await
        .unwrap();
    let moved = moved.expect("the moved identity's session still resolves");
    assert_eq!(
        (moved.account, moved.identity),
        (account, identities[1].clone())
    );
    assert_eq!(
        session_account(store, &older_session, APPID).await,
        Some(older.clone())
    );
    assert_eq!(
        candidates(store, OTHER_APP, "o-new", Some("un-n"), Some(2)).await,
        [(older.clone(), true, true)]
    );
    let merged = store.audit(&newer).await.unwrap();
    assert_eq!(
        merged.last().map(|r| (r.event, r.account_id.clone())),
        Some((AuditEvent::AccountsMerged, older.clone())),
        "the account merged away is named as other_account"
    );

    // Merged once: a second merge of the same account (stale data) is refused.
    let again = Step::Merge {
        from: newer,
        into: older,
    };
    assert!(matches!(
        apply(store, NOW, vec![again]).await,
        Err(StoreError::Conflict)
    ));
}

pub async fn audit_events_come_back_in_order(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, b, c) = (
        AccountId::generate(),
        AccountId::generate(),
        AccountId::generate(),
    );
    let records = [
        audit_record(NOW, AuditEvent::AccountsMerged, &a, None),
        audit_record(NOW + 1, AuditEvent::IdentityLinked, &a, None),
        audit_record(NOW + 2, AuditEvent::PhoneMoved, &b, Some(&a)),
        // Written later with an earlier time: the log is in the order it was written.
        audit_record(NOW, AuditEvent::AccountsMerged, &c, Some(&a)),
        wxlogin::store::AuditRecord {
            other_account: None,
            appid: None,
            subject: None,
            reason: None,
            ..audit_record(NOW + 3, AuditEvent::AccountsMerged, &b, None)
        },
    ];
    apply(store, NOW, vec![Step::Audit(records[0].clone())])
        .await
        .unwrap();
    let rest = records[1..].iter().cloned().map(Step::Audit).collect();
    apply(store, NOW + 3, rest).await.unwrap();

    assert_eq!(store.audit(&a).await.unwrap(), records[..4]);
    assert_eq!(
        store.audit(&b).await.unwrap(),
        [records[2].clone(), records[4].clone()]
    );
    assert_eq!(store.audit(&c).await.unwrap(), [records[3].clone()]);
    assert_eq!(store.audit(&AccountId::generate()).await.unwrap(), []);
}

/// A returning identity's session, written by its id (`SessionOf`): only while its account holds a phone. Once a
/// move took the phone, the session is a conflict and nothing is written (the login decides again).
pub async fn a_session_by_identity_id_needs_the_phone_still_there(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, _) = signup(store, APPID, "oa", None, Some(1)).await;
    let identity = store
        .identity(APPID, "oa")
        .await
        .unwrap()
        .unwrap()
        .identity
        .id;
    let session_of = |token_hash| Step::Session {
        identity: Holder::Id(identity),
        token_hash,
        expires_at: NOW + SESSION_TTL,
        require_phone: true,
        refresh: None,
    };
    let kept = token();
    apply(store, NOW, vec![session_of(kept)]).await.unwrap();
    assert_eq!(session_account(store, &kept, APPID).await, Some(a.clone()));

    let (b, _) = signup(store, APPID, "ob", None, None).await;
    let take = vec![
        Step::TakePhone {
            from: a.clone(),
            hash: phone_hash(1),
        },
        set_phone(&b, 1, APPID, "ob"),
    ];
    apply(store, NOW, take).await.unwrap();
    let refused = token();
    assert!(matches!(
        apply(store, NOW, vec![session_of(refused)]).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(session_account(store, &refused, APPID).await, None);
    assert_eq!(
        session_account(store, &kept, APPID).await,
        None,
        "the move ended it"
    );
}
