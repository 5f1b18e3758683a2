//! The quota call against the simulator's quota model, and the call observer seeing every attempt.

mod common;

use common::Sim;
use parking_lot::Mutex;
use std::sync::Arc;
use weixin::{CallObserver, CallOutcome, Client, PhoneVerificationKind, QuotaPackStatus};

#[derive(Default)]
struct Seen(Mutex<Vec<(&'static str, String)>>);

impl CallObserver for Seen {
    fn call(&self, api: &'static str, outcome: CallOutcome) {
        self.0.lock().push((api, outcome.to_string()));
    }
}

#[tokio::test]
async fn quota_falls_with_each_code_and_the_button_fails_when_none_is_left() {
    let sim = Sim::start().await;
    let seen = Arc::new(Seen::default());
    let client = Client::new(sim.config().with_observer(seen.clone())).unwrap();
    let usage = client
        .charge_usage(PhoneVerificationKind::Quick)
        .await
        .unwrap();
    // The unused trial is "not yet in effect" (status 2), as on a real fresh app, and still counted as left.
    assert_eq!(usage.remaining(), 1_000, "the free trial");
    assert_eq!(usage.packs.len(), 1);
    assert_eq!(usage.packs[0].status, QuotaPackStatus::NotYet);
    assert_eq!(usage.packs[0].end_time, 4_294_967_295);

    let user = sim.user("13800138000");
    sim.sim().phone_code(&user.openid).unwrap();
    sim.sim().phone_code(&user.openid).unwrap();
    let quick = client
        .charge_usage(PhoneVerificationKind::Quick)
        .await
        .unwrap();
    assert_eq!((quick.remaining(), quick.effective_use), (998, 2));
    let realtime = client
        .charge_usage(PhoneVerificationKind::Realtime)
        .await
        .unwrap();
    assert_eq!(realtime.remaining(), 1_000, "each kind has its own quota");

    let change = |kind, buy, left| wxsim::QuotaChange { kind, buy, left };
    sim.sim()
        .change_quota(
            &sim.app.appid,
            &change(wxsim::QuotaKind::Quick, None, Some(1)),
        )
        .unwrap();
    sim.sim().phone_code(&user.openid).unwrap();
    let refused = sim.sim().phone_code(&user.openid).unwrap_err();
    assert_eq!(refused.errno(), Some(1_400_001));
    assert_eq!(
        client
            .charge_usage(PhoneVerificationKind::Quick)
            .await
            .unwrap()
            .remaining(),
        0
    );
    // A bought pack makes the button work again.
    sim.sim()
        .change_quota(
            &sim.app.appid,
            &change(wxsim::QuotaKind::Quick, Some(500), None),
        )
        .unwrap();
    sim.sim().phone_code(&user.openid).unwrap();
    let after = client
        .charge_usage(PhoneVerificationKind::Quick)
        .await
        .unwrap();
    assert_eq!((after.remaining(), after.packs.len()), (499, 2));

    let seen = seen.0.lock().clone();
    assert_eq!(seen[0], ("stable_token", "0".to_owned()), "{seen:?}");
    assert_eq!(
        seen.iter()
            .filter(|(api, _)| *api == "charge_usage")
            .count(),
        5,
        "{seen:?}"
    );
    assert_eq!(seen.len(), 6, "one token fetch, five quota calls: {seen:?}");
}

#[tokio::test]
async fn the_recent_average_is_none_until_verifications_are_used() {
    let sim = Sim::start().await;
    let seen = Arc::new(Seen::default());
    let client = Client::new(sim.config().with_observer(seen.clone())).unwrap();
    let kind = PhoneVerificationKind::Quick;
    assert_eq!(client.recent_average_usage(kind).await.unwrap(), None);
    let user = sim.user("13800138000");
    for _ in 0..3 {
        sim.sim().phone_code(&user.openid).unwrap();
    }
    assert_eq!(client.recent_average_usage(kind).await.unwrap(), Some(1));
    let seen = seen.0.lock().clone();
    let outcomes: Vec<&str> = seen
        .iter()
        .filter(|(api, _)| *api == "charge_recent_average")
        .map(|(_, outcome)| outcome.as_str())
        .collect();
    // "No recent data" is WeChat's errcode 10122000, seen as such, and answered as None, not as an error.
    assert_eq!(outcomes, ["10122000", "0"], "{seen:?}");
}

#[tokio::test]
async fn errcodes_and_retries_reach_the_observer() {
    let sim = Sim::start().await;
    let seen = Arc::new(Seen::default());
    let client = Client::new(sim.config().with_observer(seen.clone())).unwrap();
    let junk = weixin::PhoneCode::parse("not-a-code-the-simulator-minted").unwrap();
    let err = client.get_phone_number(&junk, None).await.unwrap_err();
    assert_eq!(err.errcode().map(|c| c.code()), Some(40029));
    // WeChat busy on every call: getuserphonenumber tries twice (a -1 may have used the code).
    sim.sim().set_faults(wxsim::Faults {
        errcode: Some(-1),
        rate: 1.0,
        paths: vec!["/wxa/business/getuserphonenumber".into()],
        ..wxsim::Faults::default()
    });
    client.get_phone_number(&junk, None).await.unwrap_err();
    let seen = seen.0.lock().clone();
    let outcomes: Vec<(&str, &str)> = seen.iter().map(|(a, o)| (*a, o.as_str())).collect();
    assert_eq!(
        outcomes,
        [
            ("stable_token", "0"),
            ("getuserphonenumber", "40029"),
            ("getuserphonenumber", "-1"),
            ("getuserphonenumber", "-1"),
        ]
    );
}
