//! Plans racing each other: the unique indexes decide (one Ok, the rest Conflict), a ticket is consumed once, and
//! on SQLite the group commit of concurrent writes: a write that fails in a batch fails alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::join_all;
use tracing_subscriber::layer::SubscriberExt;
use wxlogin::store::{AccountId, Step, Store, StoreError};

use crate::TestDb;
use crate::fixtures::*;
use crate::tickets::redeem;

/// Runs `plans` at once, each in its own task; their outcomes in order.
async fn race(store: &Arc<dyn Store>, plans: Vec<Vec<Step>>) -> Vec<Result<(), StoreError>> {
    let tasks = plans.into_iter().map(|steps| {
        let store = store.clone();
        tokio::spawn(async move { apply(&*store, NOW, steps).await })
    });
    join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// Asserts exactly one `Ok`, every other outcome `loser`; answers the winner's index.
fn one_winner(outcomes: &[Result<(), StoreError>], loser: fn(&StoreError) -> bool) -> usize {
    let winners: Vec<_> = (0..outcomes.len())
        .filter(|&i| outcomes[i].is_ok())
        .collect();
    assert_eq!(winners.len(), 1, "exactly one plan wins: {outcomes:?}");
    for outcome in outcomes {
        if let Err(err) = outcome {
            assert!(loser(err), "{outcomes:?}");
        }
    }
    winners[0]
}

pub async fn concurrent_signups_of_one_identity_make_one_account(store: Arc<dyn Store>) {
    let ids: Vec<_> = (0..20).map(|_| AccountId::generate()).collect();
    let tokens: Vec<_> = (0..20).map(|_| token()).collect();
    let plans = (0..20)
        .map(|i| {
            let mut steps = signup_steps(&ids[i], APPID, "o-same", None, Some(i as u8));
            steps.push(login_session(APPID, "o-same", tokens[i]));
            steps
        })
        .collect();
    let outcomes = race(&store, plans).await;
    let winner = one_winner(&outcomes, |err| matches!(err, StoreError::Conflict));

    assert_eq!(store.count_accounts().await.unwrap(), 1);
    assert_eq!(
        candidates(&*store, APPID, "o-same", None, None).await,
        [(ids[winner].clone(), true, true)]
    );
    for (i, token_hash) in tokens.iter().enumerate() {
        let owner = session_account(&*store, token_hash, APPID).await;
        assert_eq!(owner, (i == winner).then(|| ids[winner].clone()));
        if i != winner {
            assert_eq!(store.audit(&ids[i]).await.unwrap(), [], "loser {i}");
        }
    }
}

pub async fn concurrent_claims_of_one_phone_leave_it_with_one_account(store: Arc<dyn Store>) {
    let mut accounts = Vec::new();
    for i in 0..20 {
        let (id, _) = signup(&*store, APPID, &format!("o-{i}"), None, None).await;
        accounts.push(id);
    }
    let plans = (0..20)
        .map(|i| vec![set_phone(&accounts[i], 7, APPID, &format!("o-{i}"))])
        .collect();
    let outcomes = race(&store, plans).await;
    let winner = one_winner(&outcomes, |err| matches!(err, StoreError::Conflict));
    assert_eq!(
        candidates(&*store, OTHER_APP, "-", None, Some(7)).await,
        [(accounts[winner].clone(), false, false)]
    );
    let holders = join_all(accounts.iter().map(|id| store.account(id))).await;
    let holders = holders
        .into_iter()
        .filter(|a| a.as_ref().unwrap().as_ref().unwrap().phone.is_some())
        .count();
    assert_eq!(holders, 1);
}

pub async fn a_ticket_is_consumed_once_under_concurrency(store: Arc<dyn Store>) {
    let hash = token();
    store
        .create_ticket(ticket(hash, "o-ticket", None, NOW + 300))
        .await
        .unwrap();
    // Each redeemer would make a different account: only the ticket's single use keeps it to one.
    let redeemers: Vec<_> = (0..20)
        .map(|i| redeem(hash, &format!("o-{i}"), i))
        .collect();
    let plans = redeemers
        .iter()
        .map(|(_, _, steps)| steps.clone())
        .collect();
    let outcomes = race(&store, plans).await;
    let winner = one_winner(&outcomes, |err| matches!(err, StoreError::TicketGone));
    assert_eq!(store.count_accounts().await.unwrap(), 1);
    let (id, session, _) = &redeemers[winner];
    assert_eq!(
        session_account(&*store, session, APPID).await,
        Some(id.clone())
    );
}

/// Logins of an account racing the move of its phone to another account: whichever way each interleaves, the
/// loser ends up with no session (one written before the move is ended by it; one after it finds no phone). On
/// PostgreSQL this is what the session insert's `FOR SHARE` of the account is for.
pub async fn a_phone_move_ends_the_losers_concurrent_logins(store: Arc<dyn Store>) {
    let (loser, _) = signup(&*store, APPID, "oa", None, Some(1)).await;
    let (winner, _) = signup(&*store, APPID, "ob", None, None).await;
    let tokens: Vec<_> = (0..40).map(|_| token()).collect();
    let mut plans: Vec<_> = tokens
        .iter()
        .map(|token_hash| vec![login_session(APPID, "oa", *token_hash)])
        .collect();
    let take = Step::TakePhone {
        from: loser.clone(),
        hash: phone_hash(1),
    };
    plans.insert(20, vec![take, set_phone(&winner, 1, APPID, "ob")]);

    let outcomes = race(&store, plans).await;
    assert!(outcomes[20].is_ok(), "{:?}", outcomes[20]);
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Ok(()) | Err(StoreError::Conflict)),
            "{outcome:?}"
        );
    }
    for (i, token_hash) in tokens.iter().enumerate() {
        assert_eq!(
            session_account(&*store, token_hash, APPID).await,
            None,
            "login {i}"
        );
    }
    assert_eq!(store.account(&loser).await.unwrap().unwrap().phone, None);
}

/// Signs up `n` users of `APPID` (`o-0`, `o-1`, …), each with a phone; answers their accounts.
async fn users(store: &dyn Store, n: usize) -> Vec<AccountId> {
    let mut steps = Vec::new();
    let ids: Vec<_> = (0..n).map(|_| AccountId::generate()).collect();
    for (i, id) in ids.iter().enumerate() {
        steps.extend(signup_steps(
            id,
            APPID,
            &format!("o-{i}"),
            None,
            Some(i as u8),
        ));
    }
    apply(store, NOW, steps).await.unwrap();
    ids
}

pub async fn many_small_plans_commit(db: TestDb) {
    let store = db.open().await;
    let ids = users(&*store, 10).await;
    let tokens: Vec<_> = (0..200).map(|_| token()).collect();
    let plans = (0..200)
        .map(|i| vec![login_session(APPID, &format!("o-{}", i % 10), tokens[i])])
        .collect();
    for (i, outcome) in race(&store, plans).await.into_iter().enumerate() {
        outcome.unwrap_or_else(|err| panic!("plan {i}: {err:?}"));
    }
    for (i, token_hash) in tokens.iter().enumerate() {
        let owner = session_account(&*store, token_hash, APPID).await;
        assert_eq!(owner.as_ref(), Some(&ids[i % 10]), "session {i}");
    }
}

/// SQLite commits concurrent writes in batches: a plan that fails in a batch must fail alone, every other write
/// of its batch must still land, each all or nothing. The plans are enqueued before the queue's task runs (one
/// thread), so the failing ones share batches with the others.
pub async fn a_failing_plan_in_a_burst_fails_alone(db: TestDb) {
    let retries = BatchRetries::default();
    let _seen =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(retries.clone()));
    let store = db.open().await;
    users(&*store, 10).await;

    let intruder = AccountId::generate();
    let tokens: Vec<_> = (0..200).map(|_| token()).collect();
    let mut plans: Vec<Vec<Step>> = (0..200)
        .map(|i| vec![login_session(APPID, &format!("o-{}", i % 10), tokens[i])])
        .collect();
    // A new account whose identity is taken, and a plan whose ticket is gone, amid the burst.
    let mut taken = signup_steps(&intruder, APPID, "o-3", None, Some(99));
    taken.push(login_session(APPID, "o-3", token()));
    plans.insert(100, taken);
    let (gone, gone_session, ticketless) = redeem(token(), "o-gone", 98);
    plans.insert(150, ticketless);

    let outcomes = race(&store, plans).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        match i {
            100 => assert!(matches!(outcome, Err(StoreError::Conflict)), "{outcome:?}"),
            150 => assert!(
                matches!(outcome, Err(StoreError::TicketGone)),
                "{outcome:?}"
            ),
            _ => assert!(outcome.is_ok(), "plan {i}: {outcome:?}"),
        }
    }
    for id in [&intruder, &gone] {
        assert_eq!(store.account(id).await.unwrap(), None);
        assert_eq!(store.audit(id).await.unwrap(), []);
    }
    assert_eq!(session_account(&*store, &gone_session, APPID).await, None);
    assert_eq!(store.count_accounts().await.unwrap(), 10);
    assert_eq!(candidates(&*store, APPID, "-", None, Some(99)).await, []);
    for (i, token_hash) in tokens.iter().enumerate() {
        let owner = session_account(&*store, token_hash, APPID).await;
        assert!(owner.is_some(), "session {i}");
    }
    if let TestDb::Sqlite { .. } = db {
        assert!(
            retries.count() >= 1,
            "the failing plans were batched with others, and the batch was retried write by write"
        );
    }
}

/// Counts the write queue's "batched write failed; retrying each alone" events (SQLite).
#[derive(Clone, Default)]
struct BatchRetries(Arc<AtomicUsize>);

impl BatchRetries {
    fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for BatchRetries {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(bool);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 |= format!("{value:?}").contains("retrying each alone");
                }
            }
        }
        let mut message = Message(false);
        event.record(&mut message);
        if message.0 {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}
