//! Login tickets (an unknown user between silent login and the phone step): reserved by one request, released or
//! consumed by a plan; and purging what expired.

use std::sync::Arc;

use wxlogin::store::{AccountId, Step, Store, StoreError, TicketRecord, TicketReservation};

use crate::fixtures::*;

/// The plan of a phone step that redeems ticket `ticket_hash` for `openid`: consume it, sign up, log in.
pub fn redeem(ticket_hash: [u8; 32], openid: &str, phone: u8) -> (AccountId, [u8; 32], Vec<Step>) {
    let (id, session) = (AccountId::generate(), token());
    let mut steps = vec![Step::ConsumeTicket { ticket_hash }];
    steps.extend(signup_steps(&id, APPID, openid, None, Some(phone)));
    steps.push(login_session(APPID, openid, session));
    (id, session, steps)
}

pub async fn a_ticket_is_reserved_for_one_request(store: Arc<dyn Store>) {
    let store = &*store;
    let hash = token();
    store
        .create_ticket(ticket(hash, "o1", Some("un1"), NOW + 300))
        .await
        .unwrap();
    let reserve = |appid, now| store.reserve_ticket(&hash, appid, now, now + 60);
    assert_eq!(
        reserve(APPID, NOW).await.unwrap(),
        TicketReservation::Reserved(TicketRecord {
            appid: APPID.into(),
            openid: "o1".into(),
            unionid: Some("un1".into()),
            expires_at: NOW + 300,
        })
    );
    assert_eq!(
        reserve(APPID, NOW + 1).await.unwrap(),
        TicketReservation::InUse
    );
    assert_eq!(
        reserve(OTHER_APP, NOW + 1).await.unwrap(),
        TicketReservation::Invalid,
        "another app's ticket"
    );
    let unknown = token();
    let unknown = store.reserve_ticket(&unknown, APPID, NOW, NOW + 60);
    assert_eq!(unknown.await.unwrap(), TicketReservation::Invalid);
    // A holder that crashed: its reservation runs out and the ticket can be taken again.
    assert!(matches!(
        reserve(APPID, NOW + 60).await.unwrap(),
        TicketReservation::Reserved(_)
    ));
    // Released after a failure that was not the phone code's: free again at once, not spent.
    assert!(!store.release_ticket(&hash, false, Some(1)).await.unwrap());
    assert!(matches!(
        reserve(APPID, NOW + 61).await.unwrap(),
        TicketReservation::Reserved(_)
    ));

    // The holder consumes it in its login's plan; then it is gone.
    let (id, session, steps) = redeem(hash, "o1", 1);
    apply(store, NOW + 62, steps).await.unwrap();
    assert_eq!(session_account(store, &session, APPID).await, Some(id));
    assert_eq!(
        reserve(APPID, NOW + 63).await.unwrap(),
        TicketReservation::Invalid
    );
    let (id, session, steps) = redeem(hash, "o2", 2);
    let again = apply(store, NOW + 63, steps).await;
    assert!(matches!(again, Err(StoreError::TicketGone)), "{again:?}");
    assert_eq!(store.account(&id).await.unwrap(), None);
    assert_eq!(session_account(store, &session, APPID).await, None);
    assert_eq!(store.count_accounts().await.unwrap(), 1);

    // An expired ticket cannot be reserved.
    let old = token();
    store
        .create_ticket(ticket(old, "o3", None, NOW + 10))
        .await
        .unwrap();
    let late = store.reserve_ticket(&old, APPID, NOW + 10, NOW + 70);
    assert_eq!(late.await.unwrap(), TicketReservation::Invalid);
    // A ticket hash names one ticket.
    let twice = store.create_ticket(ticket(old, "o3", None, NOW + 10)).await;
    assert!(twice.is_err());
}

pub async fn refused_phone_codes_spend_a_ticket_at_the_cap(store: Arc<dyn Store>) {
    let store = &*store;
    let hash = token();
    store
        .create_ticket(ticket(hash, "o1", None, NOW + 300))
        .await
        .unwrap();
    for attempt in 1..=3 {
        let reserved = store.reserve_ticket(&hash, APPID, NOW, NOW + 60).await;
        assert!(matches!(reserved.unwrap(), TicketReservation::Reserved(_)));
        let spent = store.release_ticket(&hash, true, Some(3)).await.unwrap();
        assert_eq!(spent, attempt == 3, "attempt {attempt}");
    }
    let after = store.reserve_ticket(&hash, APPID, NOW, NOW + 60).await;
    assert_eq!(after.unwrap(), TicketReservation::Invalid);
    let (_, _, steps) = redeem(hash, "o1", 1);
    assert!(matches!(
        apply(store, NOW, steps).await,
        Err(StoreError::TicketGone)
    ));
    // A ticket that is gone already (consumed, purged) is spent.
    assert!(store.release_ticket(&hash, true, Some(3)).await.unwrap());
    assert!(!store.release_ticket(&hash, false, Some(3)).await.unwrap());

    // Without a cap, refusals never spend it.
    let uncapped = token();
    store
        .create_ticket(ticket(uncapped, "o2", None, NOW + 300))
        .await
        .unwrap();
    for _ in 0..5 {
        assert!(!store.release_ticket(&uncapped, true, None).await.unwrap());
    }
    let reserved = store.reserve_ticket(&uncapped, APPID, NOW, NOW + 60).await;
    assert!(matches!(reserved.unwrap(), TicketReservation::Reserved(_)));
}

pub async fn an_expired_ticket_is_not_consumed(store: Arc<dyn Store>) {
    let store = &*store;
    let hash = token();
    store
        .create_ticket(ticket(hash, "o1", None, NOW + 300))
        .await
        .unwrap();
    let (id, session, steps) = redeem(hash, "o1", 1);
    let late = apply(store, NOW + 300, steps.clone()).await;
    assert!(matches!(late, Err(StoreError::TicketGone)), "{late:?}");
    // Nothing was written, and the ticket was not deleted: in time, the same plan goes through.
    assert_eq!(store.count_accounts().await.unwrap(), 0);
    assert_eq!(store.audit(&id).await.unwrap(), []);
    apply(store, NOW + 299, steps).await.unwrap();
    assert_eq!(session_account(store, &session, APPID).await, Some(id));
}

pub async fn purge_removes_only_expired_rows(store: Arc<dyn Store>) {
    let store = &*store;
    let (id, live) = signup(store, APPID, "o1", None, Some(1)).await;
    let expired: Vec<_> = [NOW - 1, NOW]
        .into_iter()
        .map(|expires_at| session(APPID, "o1", token(), expires_at))
        .collect();
    apply(store, NOW - 10, expired).await.unwrap();
    let (old_ticket, live_ticket) = (token(), token());
    store
        .create_ticket(ticket(old_ticket, "o2", None, NOW - 5))
        .await
        .unwrap();
    store
        .create_ticket(ticket(live_ticket, "o3", None, NOW + 300))
        .await
        .unwrap();

    assert_eq!(store.purge_expired(NOW, 0).await.unwrap(), 3);
    assert_eq!(store.purge_expired(NOW, 0).await.unwrap(), 0);
    assert_eq!(session_account(store, &live, APPID).await, Some(id));
    let reserved = store
        .reserve_ticket(&live_ticket, APPID, NOW, NOW + 60)
        .await;
    assert!(matches!(reserved.unwrap(), TicketReservation::Reserved(_)));
    // The purged ticket is gone, not just expired: it is no longer there to release.
    assert!(store.release_ticket(&old_ticket, true, None).await.unwrap());
    assert_eq!(store.count_accounts().await.unwrap(), 1);
}

/// A purge deletes in batches of `PURGE_BATCH` rows, each its own transaction, until a table has no expired row
/// left: several batches' worth go, the live rows stay, and two purges at once (two instances) delete each row
/// once between them.
pub async fn purge_deletes_in_batches_until_nothing_expired_is_left(store: Arc<dyn Store>) {
    let store = &*store;
    let (id, live) = signup(store, APPID, "o1", None, Some(1)).await;
    let expired = 2 * wxlogin::store::PURGE_BATCH as usize + 7;
    let sessions = (0..expired)
        .map(|i| session(APPID, "o1", token(), NOW - 1 - i as i64 % 100))
        .collect();
    apply(store, NOW - 200, sessions).await.unwrap();
    let later: Vec<_> = (0..3).map(|_| token()).collect();
    let sessions = later
        .iter()
        .map(|t| session(APPID, "o1", *t, NOW + 60))
        .collect();
    apply(store, NOW, sessions).await.unwrap();

    let (a, b) = tokio::join!(store.purge_expired(NOW, 0), store.purge_expired(NOW, 0));
    assert_eq!(a.unwrap() + b.unwrap(), expired as u64);
    assert_eq!(store.purge_expired(NOW, 0).await.unwrap(), 0);
    assert_eq!(session_account(store, &live, APPID).await, Some(id.clone()));
    for t in &later {
        assert_eq!(session_account(store, t, APPID).await, Some(id.clone()));
    }
}
