//! Plans: accounts, identities, phones and sessions written together or not at all; link candidates; sessions
//! and their apps; the unique indexes.

use std::sync::Arc;

use wxlogin::store::{AccountId, AccountRecord, IdentityRecord, Step, Store, StoreError};

use crate::fixtures::*;

pub async fn a_plan_creates_an_account_with_identity_phone_and_session(store: Arc<dyn Store>) {
    let store = &*store;
    let id = AccountId::generate();
    let token_hash = token();
    let mut steps = signup_steps(&id, APPID, "o1", Some("un1"), Some(1));
    steps.push(login_session(APPID, "o1", token_hash));
    apply(store, NOW, steps).await.unwrap();

    let account = store.account(&id).await.unwrap().expect("the new account");
    assert_eq!(
        account,
        AccountRecord {
            id: id.clone(),
            unionid: Some("un1".into()),
            phone: Some(phone(1, APPID, "o1")),
            created_at: NOW,
            updated_at: NOW,
        }
    );
    let identities = store.identities(&id).await.unwrap();
    assert_eq!(identities.len(), 1);
    let identity = IdentityRecord {
        id: identities[0].id,
        account_id: id.clone(),
        appid: APPID.into(),
        openid: "o1".into(),
        created_at: NOW,
        updated_at: NOW,
    };
    assert_eq!(identities, std::slice::from_ref(&identity));
    assert_eq!(store.count_accounts().await.unwrap(), 1);

    // Found by its identity, by its unionid from another app, by its phone from another user of this app.
    let (holds, app, none) = (true, true, false);
    assert_eq!(
        candidates(store, APPID, "o1", None, None).await,
        [(id.clone(), holds, app)]
    );
    assert_eq!(
        candidates(store, OTHER_APP, "o9", Some("un1"), None).await,
        [(id.clone(), none, none)]
    );
    assert_eq!(
        candidates(store, APPID, "o2", None, Some(1)).await,
        [(id.clone(), none, app)]
    );
    assert_eq!(
        candidates(store, OTHER_APP, "o1", Some("un2"), Some(2)).await,
        [],
        "an openid is only known in its app"
    );

    let session = store.session(&keys(token_hash), APPID, NOW).await.unwrap();
    let session = session.expect("the new session");
    assert_eq!((session.identity, session.account), (identity, account));
}

pub async fn link_candidates_name_each_account_once(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, _) = signup(store, APPID, "oa", Some("un-a"), Some(1)).await;
    let (b, _) = signup(store, OTHER_APP, "ob", Some("un-b"), Some(2)).await;
    let (c, _) = signup(store, OTHER_APP, "oc", None, Some(3)).await;

    // One account found three ways is one candidate.
    assert_eq!(
        candidates(store, APPID, "oa", Some("un-a"), Some(1)).await,
        [(a.clone(), true, true)]
    );
    // Three accounts, one way each: the login's identity, its unionid, its phone.
    let mut expected = vec![(a, true, true), (b, false, false), (c, false, false)];
    expected.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
    assert_eq!(
        candidates(store, APPID, "oa", Some("un-b"), Some(3)).await,
        expected
    );
    assert_eq!(candidates(store, APPID, "nobody", None, None).await, []);
}

pub async fn a_session_belongs_to_its_app_until_it_expires(store: Arc<dyn Store>) {
    let store = &*store;
    let (id, _) = signup(store, APPID, "o1", None, Some(1)).await;
    let short = token();
    apply(store, NOW, vec![session(APPID, "o1", short, NOW + 100)])
        .await
        .unwrap();

    let short_keys = keys(short);
    let at = |now| store.session(&short_keys, APPID, now);
    assert_eq!(
        at(NOW + 99).await.unwrap().map(|s| s.account.id),
        Some(id.clone())
    );
    assert_eq!(
        at(NOW + 100).await.unwrap(),
        None,
        "expires_at is exclusive"
    );
    assert_eq!(session_account(store, &short, OTHER_APP).await, None);
    assert_eq!(session_account(store, &token(), APPID).await, None);

    assert!(!store.delete_session(&keys(short), OTHER_APP).await.unwrap());
    assert!(
        session_account(store, &short, APPID).await.is_some(),
        "another app's logout leaves it alone"
    );
    assert!(store.delete_session(&keys(short), APPID).await.unwrap());
    assert!(!store.delete_session(&keys(short), APPID).await.unwrap());
    assert_eq!(session_account(store, &short, APPID).await, None);

    // A session an earlier release stored (under the token's plain SHA-256) is found and ended by that key.
    let earlier = token();
    apply(store, NOW, vec![session(APPID, "o1", earlier, NOW + 100)])
        .await
        .unwrap();
    let found = store
        .session(&legacy_keys(earlier), APPID, NOW)
        .await
        .unwrap();
    assert_eq!(found.map(|s| s.account.id), Some(id));
    assert!(
        store
            .delete_session(&legacy_keys(earlier), APPID)
            .await
            .unwrap()
    );
    assert_eq!(session_account(store, &earlier, APPID).await, None);
}

pub async fn a_session_needs_its_identity_and_when_required_a_phone(store: Arc<dyn Store>) {
    let store = &*store;
    let (with_phone, taken) = signup(store, APPID, "o1", None, Some(1)).await;
    let (without_phone, _) = signup(store, APPID, "o2", None, None).await;

    let unknown = apply(
        store,
        NOW,
        vec![session(APPID, "nobody", token(), NOW + 60)],
    );
    assert!(matches!(unknown.await, Err(StoreError::Conflict)));
    let other_app = apply(
        store,
        NOW,
        vec![session(OTHER_APP, "o1", token(), NOW + 60)],
    );
    assert!(matches!(other_app.await, Err(StoreError::Conflict)));
    let no_phone = token();
    let refused = apply(store, NOW, vec![login_session(APPID, "o2", no_phone)]);
    assert!(matches!(refused.await, Err(StoreError::Conflict)));
    assert_eq!(session_account(store, &no_phone, APPID).await, None);
    // A token hash names one session.
    let again = apply(store, NOW, vec![session(APPID, "o2", taken, NOW + 60)]);
    assert!(matches!(again.await, Err(StoreError::Conflict)));
    assert_eq!(
        session_account(store, &taken, APPID).await,
        Some(with_phone)
    );

    // Without `require_phone` an account without a phone may have one.
    apply(store, NOW, vec![session(APPID, "o2", no_phone, NOW + 60)])
        .await
        .unwrap();
    assert_eq!(
        session_account(store, &no_phone, APPID).await,
        Some(without_phone)
    );
}

/// What a failed plan must leave: no account `id`, no identity `(APPID, openid)`, no session, no audit event.
async fn assert_left_nothing(
    store: &dyn Store,
    id: &AccountId,
    openid: &str,
    token_hash: &[u8; 32],
) {
    assert_eq!(store.account(id).await.unwrap(), None);
    assert_eq!(store.identities(id).await.unwrap(), []);
    assert_eq!(store.audit(id).await.unwrap(), []);
    assert_eq!(candidates(store, APPID, openid, None, None).await, []);
    assert_eq!(session_account(store, token_hash, APPID).await, None);
}

pub async fn a_plan_that_fails_late_writes_nothing(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, a_session) = signup(store, APPID, "oa", Some("un-a"), Some(1)).await;
    let failing_last = [
        // A has a unionid already.
        (set_unionid(&a, "un-x"), "SetUnionid", StoreError::Conflict),
        // (APPID, "oa") is A's.
        (
            create_identity(&a, APPID, "oa"),
            "CreateIdentity",
            StoreError::Conflict,
        ),
        (
            Step::ConsumeTicket {
                ticket_hash: token(),
            },
            "ConsumeTicket",
            StoreError::TicketGone,
        ),
    ];
    for (last, name, expected) in failing_last {
        let (id, openid, token_hash) = (AccountId::generate(), "o-new", token());
        let mut steps = signup_steps(&id, APPID, openid, Some("un-new"), Some(2));
        steps.push(login_session(APPID, openid, token_hash));
        steps.push(last);
        let err = apply(store, NOW, steps).await.expect_err(name);
        assert_eq!(err.to_string(), expected.to_string(), "{name}");
        assert_left_nothing(store, &id, openid, &token_hash).await;
        assert_eq!(
            candidates(store, OTHER_APP, "-", Some("un-new"), Some(2)).await,
            []
        );
        assert_eq!(store.count_accounts().await.unwrap(), 1, "{name}");
    }

    // A phone move that fails later: A keeps its phone and its session.
    let (b, _) = signup(store, APPID, "ob", None, None).await;
    let steps = vec![
        Step::TakePhone {
            from: a.clone(),
            hash: phone_hash(1),
        },
        set_phone(&b, 1, APPID, "ob"),
        set_unionid(&a, "un-y"),
    ];
    assert!(matches!(
        apply(store, NOW, steps).await,
        Err(StoreError::Conflict)
    ));
    let account = store.account(&a).await.unwrap().unwrap();
    assert_eq!(account.phone, Some(phone(1, APPID, "oa")));
    assert_eq!(session_account(store, &a_session, APPID).await, Some(a));
    assert_eq!(store.account(&b).await.unwrap().unwrap().phone, None);

    // The same first login without the failing step goes through.
    signup(store, APPID, "o-new", Some("un-new"), Some(2)).await;
    assert_eq!(store.count_accounts().await.unwrap(), 3);
}

/// Steps that name an account that is not there (merged away by a concurrent login) are refused as conflicts:
/// the login decides again.
pub async fn a_step_on_a_missing_account_is_a_conflict(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, _) = signup(store, APPID, "oa", None, Some(1)).await;
    let gone = AccountId::generate();
    let steps = [
        ("CreateIdentity", create_identity(&gone, APPID, "o-new")),
        ("SetUnionid", set_unionid(&gone, "un")),
        ("SetPhone", set_phone(&gone, 2, APPID, "o-new")),
        (
            "TakePhone",
            Step::TakePhone {
                from: gone.clone(),
                hash: phone_hash(1),
            },
        ),
        (
            "Merge from",
            Step::Merge {
                from: gone.clone(),
                into: a.clone(),
            },
        ),
        (
            "Merge into",
            Step::Merge {
                from: a.clone(),
                into: gone.clone(),
            },
        ),
    ];
    for (name, step) in steps {
        let outcome = apply(store, NOW, vec![step]).await;
        assert!(
            matches!(outcome, Err(StoreError::Conflict)),
            "{name}: {outcome:?}"
        );
    }
    assert_eq!(store.identities(&a).await.unwrap().len(), 1);
    assert_eq!(store.count_accounts().await.unwrap(), 1);
}

pub async fn a_phone_or_a_unionid_belongs_to_one_account(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, _) = signup(store, APPID, "oa", Some("un-a"), Some(1)).await;
    let (b, _) = signup(store, APPID, "ob", None, None).await;

    let conflicts = [
        (
            "SetPhone of a held phone",
            vec![set_phone(&b, 1, APPID, "ob")],
        ),
        (
            "SetUnionid of a held unionid",
            vec![set_unionid(&b, "un-a")],
        ),
        (
            "a new account with a held phone",
            signup_steps(&AccountId::generate(), APPID, "oc", None, Some(1)),
        ),
        (
            "a new account with a held unionid",
            signup_steps(&AccountId::generate(), APPID, "oc", Some("un-a"), None),
        ),
    ];
    for (name, steps) in conflicts {
        let outcome = apply(store, NOW, steps).await;
        assert!(
            matches!(outcome, Err(StoreError::Conflict)),
            "{name}: {outcome:?}"
        );
    }
    assert_eq!(
        candidates(store, APPID, "-", Some("un-a"), Some(1)).await,
        [(a.clone(), false, true)]
    );
    let b_now = store.account(&b).await.unwrap().unwrap();
    assert_eq!((b_now.unionid, b_now.phone), (None, None));
    assert_eq!(store.count_accounts().await.unwrap(), 2);

    // Setting the phone an account already holds is no conflict (a returning user verifying again).
    apply(store, NOW + 1, vec![set_phone(&a, 1, APPID, "oa")])
        .await
        .unwrap();
    assert_eq!(
        store.account(&a).await.unwrap().unwrap().updated_at,
        NOW + 1
    );
}
