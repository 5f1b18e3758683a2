//! `quick_login`: a login with a verified phone written without a read, in the two shapes it may take, and nothing
//! written in any other.

use crate::fixtures::*;
use wxlogin::store::{AccountId, NewTicket, QuickLogin, QuickOutcome, Store, StoreError};

fn quick(openid: &str, unionid: Option<&str>, n: u8) -> QuickLogin {
    QuickLogin {
        new_account: AccountId::generate(),
        appid: APPID.into(),
        openid: openid.into(),
        unionid: unionid.map(Into::into),
        phone: phone(n, APPID, openid),
        subject: openid.as_bytes().to_vec(),
        ticket_hash: None,
        token_hash: token(),
        expires_at: NOW + SESSION_TTL,
        refresh: None,
    }
}

pub async fn a_quick_login_creates_a_new_person_then_finds_them_returning(
    store: std::sync::Arc<dyn Store>,
) {
    let first = quick("o-quick", Some("u-quick"), 31);
    let new_account = first.new_account.clone();
    assert_eq!(
        store.quick_login(first.clone(), NOW).await.unwrap(),
        QuickOutcome::Created
    );
    assert_eq!(
        session_account(store.as_ref(), &first.token_hash, APPID).await,
        Some(new_account.clone())
    );
    let account = store.account(&new_account).await.unwrap().unwrap();
    assert_eq!(account.unionid.as_deref(), Some("u-quick"));
    assert_eq!(account.phone, Some(phone(31, APPID, "o-quick")));

    // The same identity and phone again: a session on the same account, no second account.
    let again = quick("o-quick", Some("u-quick"), 31);
    assert_eq!(
        store.quick_login(again.clone(), NOW).await.unwrap(),
        QuickOutcome::Returning
    );
    assert_eq!(
        session_account(store.as_ref(), &again.token_hash, APPID).await,
        Some(new_account)
    );
    assert_eq!(store.count_accounts().await.unwrap(), 1);
    // WeChat sent no unionid this time: still the same shape.
    assert_eq!(
        store
            .quick_login(quick("o-quick", None, 31), NOW)
            .await
            .unwrap(),
        QuickOutcome::Returning
    );
}

pub async fn a_quick_login_writes_nothing_when_the_rules_must_decide(
    store: std::sync::Arc<dyn Store>,
) {
    let (_, _) = signup(store.as_ref(), APPID, "o-held", Some("u-held"), Some(32)).await;
    let (_, _) = signup(store.as_ref(), APPID, "o-bare", None, Some(33)).await;
    let cases = [
        // Another identity verifies a phone someone holds: a conflict rule.
        quick("o-new", None, 32),
        // A new identity with a unionid someone has: a link.
        quick("o-new", Some("u-held"), 34),
        // A known identity with another phone: a phone change.
        quick("o-held", Some("u-held"), 35),
        // A known identity whose account has no unionid yet: a backfill.
        quick("o-bare", Some("u-late"), 33),
    ];
    for case in cases {
        let token_hash = case.token_hash;
        assert_eq!(
            store.quick_login(case, NOW).await.unwrap(),
            QuickOutcome::Neither
        );
        assert_eq!(
            session_account(store.as_ref(), &token_hash, APPID).await,
            None
        );
    }
    assert_eq!(store.count_accounts().await.unwrap(), 2);
    assert!(
        candidates(store.as_ref(), APPID, "o-new", None, Some(34))
            .await
            .is_empty()
    );
}

pub async fn a_quick_login_consumes_its_ticket_or_fails_with_it(store: std::sync::Arc<dyn Store>) {
    let ticket_hash = token();
    store
        .create_ticket(NewTicket {
            ticket_hash,
            appid: APPID.into(),
            openid: "o-ticket".into(),
            unionid: None,
            expires_at: NOW + 300,
            now: NOW,
        })
        .await
        .unwrap();
    let with_ticket = QuickLogin {
        ticket_hash: Some(ticket_hash),
        ..quick("o-ticket", None, 36)
    };
    assert_eq!(
        store.quick_login(with_ticket.clone(), NOW).await.unwrap(),
        QuickOutcome::Created
    );
    // The ticket is spent: the same write again fails on it and writes nothing.
    let replay = QuickLogin {
        token_hash: token(),
        new_account: AccountId::generate(),
        ..with_ticket
    };
    assert!(matches!(
        store.quick_login(replay, NOW).await,
        Err(StoreError::TicketGone)
    ));
    assert_eq!(store.count_accounts().await.unwrap(), 1);
}
