//! The two token routes and access-token validation on the business routes.

mod common;

use common::{errcode, foreign_token, start, start_with};
use serde_json::json;
use wxsim::{AppCredentials, Limits, SimConfig};

const OK: i64 = 40029; // what token_errcode answers for a token that passed

#[tokio::test]
async fn token_route_mints_every_call_and_the_previous_works_300s_more() {
    let t = start().await;
    let first = t.token_route().await;
    assert_eq!(first["expires_in"], 7200);
    assert!(first.get("errcode").is_none());
    let t1 = first["access_token"].as_str().unwrap().to_owned();
    let t2 = t.token_route().await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(t1, t2);
    assert_eq!(t.token_errcode(&t1).await, OK);
    t.sim().advance_clock(290);
    assert_eq!(t.token_errcode(&t1).await, OK, "still inside the overlap");
    t.sim().advance_clock(11);
    assert_eq!(t.token_errcode(&t1).await, 40001, "retired after 300 s");
    assert_eq!(t.token_errcode(&t2).await, OK);
    assert_eq!(t.sim().stats().tokens_issued, 2);
}

#[tokio::test]
async fn tokens_expire_with_42001() {
    let t = start().await;
    let token = t.access_token().await;
    t.sim().advance_clock(7201);
    assert_eq!(t.token_errcode(&token).await, 42001);
}

#[tokio::test]
async fn token_shapes_on_business_routes() {
    let t = start().await;
    let body = json!({"code": "x"});
    let v = t.post("/wxa/business/getuserphonenumber", &body).await;
    assert_eq!(errcode(&v), 41001);
    assert!(v["errmsg"].as_str().unwrap().contains("rid: "));
    assert_eq!(t.token_errcode("").await, 41001);
    assert_eq!(t.token_errcode("ACCESS_TOKEN").await, 40014);
    assert_eq!(t.token_errcode(&foreign_token()).await, 40001);
    let v = t
        .get("/wxa/checksession?openid=o&signature=s&sig_method=hmac_sha256")
        .await;
    assert_eq!(errcode(&v), 41001);
}

#[tokio::test]
async fn stable_token_keeps_at_least_300_seconds() {
    let t = start().await;
    let first = t.stable_token(false).await;
    let t1 = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(first["expires_in"], 7200);
    let again = t.stable_token(false).await;
    assert_eq!(again["access_token"], t1.as_str());
    t.sim().advance_clock(6800);
    let late = t.stable_token(false).await;
    assert_eq!(late["access_token"], t1.as_str());
    let left = late["expires_in"].as_u64().unwrap();
    assert!((300..=400).contains(&left), "time left {left}");

    t.sim().advance_clock(150); // ~250 s left: renewed
    let renewed = t.stable_token(false).await;
    let t2 = renewed["access_token"].as_str().unwrap().to_owned();
    assert_ne!(t2, t1);
    assert_eq!(renewed["expires_in"], 7200);
    assert_eq!(
        t.token_errcode(&t1).await,
        OK,
        "the old one runs out on its own"
    );
    t.sim().advance_clock(260);
    assert_eq!(t.token_errcode(&t1).await, 42001);
    assert_eq!(t.token_errcode(&t2).await, OK);
}

#[tokio::test]
async fn stable_token_force_refresh_semantics() {
    let t = start().await;
    let t1 = t.access_token().await;
    let forced = t.stable_token(true).await;
    let t2 = forced["access_token"].as_str().unwrap().to_owned();
    assert_ne!(t1, t2);
    assert_eq!(forced["expires_in"], 7200);
    assert_eq!(t.token_errcode(&t1).await, OK, "overlap");
    assert_eq!(t.sim().stats().tokens_issued, 2);

    // A second force within 30 s refreshes nothing.
    let noop = t.stable_token(true).await;
    assert_eq!(noop["access_token"], t2.as_str());
    assert_eq!(t.sim().stats().tokens_issued, 2);

    t.sim().advance_clock(31);
    let t3 = t.stable_token(true).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(t3, t2);
    assert_eq!(t.token_errcode(&t2).await, OK);
    t.sim().advance_clock(301);
    assert_eq!(t.token_errcode(&t1).await, 40001);
    assert_eq!(t.token_errcode(&t2).await, 40001);
    assert_eq!(t.token_errcode(&t3).await, OK);
    assert_eq!(t.stable_token(false).await["access_token"], t3.as_str());
}

#[tokio::test]
async fn force_refresh_daily_limit_45009() {
    let t = start().await;
    for _ in 0..20 {
        assert_eq!(errcode(&t.stable_token(true).await), 0);
    }
    assert_eq!(errcode(&t.stable_token(true).await), 45009);
    assert_eq!(
        errcode(&t.stable_token(false).await),
        0,
        "normal mode unaffected"
    );
}

#[tokio::test]
async fn the_two_token_routes_are_isolated() {
    let t = start().await;
    let stable = t.access_token().await;
    let plain = t.token_route().await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    t.token_route().await;
    t.token_route().await;
    t.stable_token(true).await;
    t.sim().advance_clock(301);
    assert_eq!(
        t.token_errcode(&stable).await,
        40001,
        "retired by its own route's force refresh"
    );
    assert_eq!(
        t.token_errcode(&plain).await,
        40001,
        "retired by its own route"
    );
    let stable2 = t.access_token().await;
    t.token_route().await;
    t.sim().advance_clock(301);
    assert_eq!(
        t.token_errcode(&stable2).await,
        OK,
        "/cgi-bin/token never retires a stable token"
    );
}

#[tokio::test]
async fn revocation_kills_every_token_and_stable_token_recovers() {
    let t = start().await;
    let stable = t.access_token().await;
    let plain = t.token_route().await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    t.sim().revoke_tokens(None);
    assert_eq!(t.token_errcode(&stable).await, 40001);
    assert_eq!(t.token_errcode(&plain).await, 40001);
    let fresh = t.access_token().await;
    assert_ne!(fresh, stable);
    assert_eq!(t.token_errcode(&fresh).await, OK);

    // The same through PUT /faults, which leaves the faults alone.
    t.sim().set_faults(wxsim::Faults {
        latency_ms: 1,
        ..Default::default()
    });
    let (status, faults) = t
        .device("PUT", "/faults", Some(r#"{"revokeToken":true}"#))
        .await;
    assert_eq!(status, 200);
    assert_eq!(faults["latencyMs"], 1);
    assert_eq!(t.token_errcode(&fresh).await, 40001);
    assert_ne!(t.access_token().await, fresh);
}

#[tokio::test]
async fn revocation_of_one_app_spares_the_others() {
    let a = AppCredentials::generate();
    let b = AppCredentials::generate();
    let t = start_with(SimConfig::with_apps(vec![a.clone(), b.clone()])).await;
    let ta = t.stable_token_as(&a, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let tb = t.stable_token_as(&b, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    t.sim().revoke_tokens(Some(&b.appid));
    assert_eq!(t.token_errcode(&ta).await, OK);
    assert_eq!(t.token_errcode(&tb).await, 40001);
}

#[tokio::test]
async fn token_route_credential_errors() {
    let t = start().await;
    let (id, secret) = (&t.app.appid, &t.app.secret);
    let cases = [
        (
            format!("grant_type=client_credential&secret={secret}"),
            41002,
        ),
        (format!("grant_type=client_credential&appid={id}"), 41004),
        (
            format!("grant_type=client_credential&appid=wx0000000000000000&secret={secret}"),
            40013,
        ),
        (
            format!("grant_type=client_credential&appid={id}&secret=0123"),
            40125,
        ),
        (
            format!("grant_type=authorization_code&appid={id}&secret={secret}"),
            40002,
        ),
        (format!("appid={id}&secret={secret}"), 40002),
    ];
    for (query, code) in cases {
        let v = t.get(&format!("/cgi-bin/token?{query}")).await;
        assert_eq!(errcode(&v), code, "{query}: {v}");
    }
    let resp = t.http.post(t.url("/cgi-bin/token")).send().await.unwrap();
    assert_eq!(errcode(&common::TestSim::read(resp).await.1), 43001);
}

#[tokio::test]
async fn stable_token_credential_and_format_errors() {
    let t = start().await;
    let (id, secret) = (t.app.appid.as_str(), t.app.secret.as_str());
    let g = "client_credential";
    let cases = [
        (json!({"grant_type": g, "secret": secret}), 41002),
        (json!({"grant_type": g, "appid": id}), 41004),
        (
            json!({"grant_type": g, "appid": "wx0000000000000000", "secret": secret}),
            40013,
        ),
        (
            json!({"grant_type": g, "appid": id, "secret": "nope"}),
            40125,
        ),
        (
            json!({"grant_type": "x", "appid": id, "secret": secret}),
            40002,
        ),
        (
            json!({"grant_type": g, "appid": id, "secret": secret, "force_refresh": "yes"}),
            47001,
        ),
        (json!(["not", "an", "object"]), 43002),
    ];
    for (body, code) in cases {
        assert_eq!(
            errcode(&t.post("/cgi-bin/stable_token", &body).await),
            code,
            "{body}"
        );
    }
    let form = format!("grant_type={g}&appid={id}&secret={secret}");
    assert_eq!(
        errcode(&t.post_raw("/cgi-bin/stable_token", &form).await),
        43002
    );
    let get = t.get("/cgi-bin/stable_token").await;
    assert_eq!(errcode(&get), 43002, "GET answers WeChat JSON, not a 405");
    assert_eq!(t.sim().stats().tokens_issued, 0);
}

#[tokio::test]
async fn token_route_quotas() {
    let t = start().await;
    t.sim().set_limits(Limits {
        token_per_app_per_day: 2,
        stable_token_per_app_per_minute: 2,
        ..Limits::default()
    });
    assert_eq!(errcode(&t.token_route().await), 0);
    assert_eq!(errcode(&t.token_route().await), 0);
    assert_eq!(errcode(&t.token_route().await), 45009);
    assert_eq!(errcode(&t.stable_token(false).await), 0);
    assert_eq!(errcode(&t.stable_token(false).await), 0);
    assert_eq!(errcode(&t.stable_token(false).await), 45011);
    t.sim().advance_clock(60);
    assert_eq!(errcode(&t.stable_token(false).await), 0, "a new minute");

    t.sim().set_limits(Limits {
        stable_token_per_app_per_day: 1,
        ..Limits::default()
    });
    t.sim().advance_clock(86_400);
    assert_eq!(errcode(&t.stable_token(false).await), 0);
    assert_eq!(errcode(&t.stable_token(false).await), 45009);
    t.sim().advance_clock(86_400);
    assert_eq!(errcode(&t.token_route().await), 0, "a new day");
}
