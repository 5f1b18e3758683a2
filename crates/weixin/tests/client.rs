//! The client against the simulator over real HTTP on loopback, and against a scripted fake upstream for the
//! failures the simulator does not produce.

mod common;

use common::{Answer, Sim, fake, json};
use serde_json::json;
use std::time::Duration;
use weixin::{Errcode, Error, OpenId, SessionKey};

fn errcode<T: std::fmt::Debug>(r: Result<T, Error>) -> (Errcode, u32) {
    match r {
        Err(Error::Api {
            errcode, attempts, ..
        }) => (errcode, attempts),
        other => panic!("expected a WeChat errcode, got {other:?}"),
    }
}

#[tokio::test]
async fn login_then_phone_number_bound_to_the_user() {
    let s = Sim::start().await;
    let user = s.user("13800138000");
    let client = s.client();
    let session = client
        .code_to_session(&s.login_code(&user.openid))
        .await
        .unwrap();
    assert_eq!(session.openid.as_str(), user.openid);
    assert_eq!(
        session.unionid.as_ref().map(|u| u.as_str()),
        user.unionid.as_deref()
    );
    assert!(
        session.unionid.is_some(),
        "the sandbox app is bound to an Open Platform account"
    );
    assert_eq!(
        session.session_key.expose().len(),
        24,
        "a base64 16-byte key"
    );

    let info = client
        .get_phone_number(&s.phone_code(&user.openid), Some(&session.openid))
        .await
        .unwrap();
    assert_eq!(info.phone.phone_number, "13800138000");
    assert_eq!(info.phone.pure_phone_number, "13800138000");
    assert_eq!(info.phone.country_code, "86");
    assert_eq!(info.watermark.appid, s.app.appid);
    assert!(info.watermark.timestamp > 1_600_000_000);
    assert!(
        client
            .check_session_key(&session.openid, &session.session_key)
            .await
            .unwrap()
    );
    assert!(
        !client
            .check_session_key(
                &session.openid,
                &SessionKey::new("AAAAAAAAAAAAAAAAAAAAAA==")
            )
            .await
            .unwrap()
    );
    // One token served all three token-needing calls.
    assert_eq!(s.tokens_issued(), 1);
}

#[tokio::test]
async fn foreign_numbers_keep_the_country_code_apart() {
    let s = Sim::start().await;
    let user = s
        .sim()
        .create_user(wxsim::NewUser {
            appid: None,
            phone_number: "91234567".into(),
            country_code: Some("852".into()),
        })
        .unwrap();
    let info = s
        .client()
        .get_phone_number(&s.phone_code(&user.openid), None)
        .await
        .unwrap();
    assert_eq!(info.phone.phone_number, "+85291234567");
    assert_eq!(info.phone.pure_phone_number, "91234567");
    assert_eq!(info.phone.country_code, "852");
}

#[tokio::test]
async fn codes_work_once_and_for_five_minutes() {
    let s = Sim::start().await;
    let user = s.user("13800138001");
    let client = s.client();
    let login = s.login_code(&user.openid);
    client.code_to_session(&login).await.unwrap();
    assert_eq!(
        errcode(client.code_to_session(&login).await),
        (Errcode::CodeUsed, 1)
    );

    let phone = s.phone_code(&user.openid);
    client.get_phone_number(&phone, None).await.unwrap();
    assert_eq!(
        errcode(client.get_phone_number(&phone, None).await),
        (Errcode::InvalidCode, 1)
    );

    let (login, phone) = (s.login_code(&user.openid), s.phone_code(&user.openid));
    s.sim().advance_clock(301);
    assert_eq!(
        errcode(client.code_to_session(&login).await).0,
        Errcode::InvalidCode
    );
    // The token expired too? No: 301 s is well inside its 7200 s. The phone code alone is refused.
    assert_eq!(
        errcode(client.get_phone_number(&phone, None).await).0,
        Errcode::InvalidCode
    );
    assert_eq!(
        errcode(
            client
                .code_to_session(&weixin::LoginCode::parse("not-a-real-code").unwrap())
                .await
        )
        .0,
        Errcode::InvalidCode
    );
    // Code errors are never retried.
    assert_eq!(s.calls("/sns/jscode2session"), 4);
}

#[tokio::test]
async fn a_phone_code_of_another_user_is_refused_and_stays_usable_by_its_owner() {
    let s = Sim::start().await;
    let (a, b) = (s.user("13800138002"), s.user("13800138003"));
    let client = s.client();
    let b_code = s.phone_code(&b.openid);
    let a_id = OpenId::parse(a.openid.clone()).unwrap();
    let (code, _) = errcode(client.get_phone_number(&b_code, Some(&a_id)).await);
    assert_eq!(code, Errcode::InvalidOpenId);
    let b_id = OpenId::parse(b.openid.clone()).unwrap();
    let info = client.get_phone_number(&b_code, Some(&b_id)).await.unwrap();
    assert_eq!(info.phone.pure_phone_number, "13800138003");
}

#[tokio::test]
async fn wrong_secret_is_a_configuration_error() {
    let s = Sim::start().await;
    let user = s.user("13800138004");
    let mut config = s.config();
    config.secret = weixin::AppSecret::new("0".repeat(32));
    let client = weixin::Client::new(config).unwrap();
    let err = client
        .code_to_session(&s.login_code(&user.openid))
        .await
        .unwrap_err();
    assert_eq!(err.errcode(), Some(Errcode::InvalidAppSecret));
    assert!(err.errcode().unwrap().is_configuration());
    let err = client.access_token().await.unwrap_err();
    assert_eq!(err.errcode(), Some(Errcode::InvalidAppSecret));
    assert!(!err.to_string().contains(&"0".repeat(32)));
    assert_eq!(s.tokens_issued(), 0);
}

#[tokio::test]
async fn a_hundred_callers_on_a_cold_cache_cost_one_token_fetch() {
    let s = Sim::start().await;
    let users: Vec<_> = (0..100).map(|i| s.user(&format!("139{:08}", i))).collect();
    let codes: Vec<_> = users
        .iter()
        .map(|u| {
            (
                s.phone_code(&u.openid),
                OpenId::parse(u.openid.clone()).unwrap(),
            )
        })
        .collect();
    let client = s.client();
    let tasks = codes.into_iter().map(|(code, openid)| {
        let client = client.clone();
        tokio::spawn(async move { client.get_phone_number(&code, Some(&openid)).await })
    });
    for r in futures::future::join_all(tasks).await {
        r.unwrap().unwrap();
    }
    assert_eq!(s.tokens_issued(), 1);
    assert_eq!(s.calls("/cgi-bin/stable_token"), 1);
    assert_eq!(s.calls("/wxa/business/getuserphonenumber"), 100);
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_for_all_callers() {
    let s = Sim::start().await;
    let client = s.client();
    let before = client.access_token().await.unwrap();
    s.sim().revoke_tokens(None);
    let users: Vec<_> = (0..50).map(|i| s.user(&format!("137{:08}", i))).collect();
    let tasks = users.iter().map(|u| {
        let (client, code) = (client.clone(), s.phone_code(&u.openid));
        tokio::spawn(async move { client.get_phone_number(&code, None).await })
    });
    for r in futures::future::join_all(tasks).await {
        r.unwrap().unwrap();
    }
    assert_eq!(
        s.tokens_issued(),
        2,
        "one token before, exactly one refresh after the revocation"
    );
    assert_ne!(client.access_token().await.unwrap(), before);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_and_the_call_retried_once() {
    let s = Sim::start().await;
    let user = s.user("13800138005");
    let client = s.client();
    client.access_token().await.unwrap();
    s.sim().advance_clock(7201);
    // The client's clock still thinks the token is fresh; WeChat (the simulator) answers 42001.
    let info = client
        .get_phone_number(&s.phone_code(&user.openid), None)
        .await
        .unwrap();
    assert_eq!(info.phone.pure_phone_number, "13800138005");
    assert_eq!(s.tokens_issued(), 2);
    assert_eq!(s.calls("/wxa/business/getuserphonenumber"), 2);
}

#[tokio::test]
async fn busy_is_retried_within_its_bound_and_other_errors_never() {
    let s = Sim::start().await;
    let user = s.user("13800138006");
    let client = s.client();
    client.access_token().await.unwrap();
    let faults = |errcode: i64, path: &str| wxsim::Faults {
        errcode: Some(errcode),
        paths: vec![path.into()],
        ..Default::default()
    };

    s.sim().set_faults(faults(-1, "/sns/jscode2session"));
    assert_eq!(
        errcode(client.code_to_session(&s.login_code(&user.openid)).await),
        (Errcode::SystemBusy, 3)
    );
    assert_eq!(s.calls("/sns/jscode2session"), 3);

    // A phone code may have been consumed by a busy attempt: at most one retry.
    s.sim()
        .set_faults(faults(-1, "/wxa/business/getuserphonenumber"));
    assert_eq!(
        errcode(
            client
                .get_phone_number(&s.phone_code(&user.openid), None)
                .await
        ),
        (Errcode::SystemBusy, 2)
    );
    assert_eq!(s.calls("/wxa/business/getuserphonenumber"), 2);

    s.sim()
        .set_faults(faults(45011, "/wxa/business/getuserphonenumber"));
    assert_eq!(
        errcode(
            client
                .get_phone_number(&s.phone_code(&user.openid), None)
                .await
        ),
        (Errcode::RateLimited, 1)
    );
    assert_eq!(s.calls("/wxa/business/getuserphonenumber"), 3);

    s.sim().set_faults(faults(40226, "/sns/jscode2session"));
    assert_eq!(
        errcode(client.code_to_session(&s.login_code(&user.openid)).await),
        (Errcode::RiskyUser, 1)
    );

    // Busy on 10 % of calls: every login still succeeds.
    s.sim().set_faults(wxsim::Faults {
        errcode: Some(-1),
        rate: 0.1,
        ..Default::default()
    });
    for _ in 0..30 {
        let session = client
            .code_to_session(&s.login_code(&user.openid))
            .await
            .unwrap();
        client
            .get_phone_number(&s.phone_code(&user.openid), Some(&session.openid))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_per_user_rate_limit_surfaces_as_45011() {
    let s = Sim::start().await;
    let user = s.user("13800138007");
    let client = s.client();
    let mut limited = 0;
    for _ in 0..105 {
        if let Err(e) = client.code_to_session(&s.login_code(&user.openid)).await {
            assert_eq!(e.errcode(), Some(Errcode::RateLimited));
            limited += 1;
        }
    }
    assert_eq!(
        limited, 5,
        "WeChat allows 100 jscode2session calls per user per minute"
    );
}

#[tokio::test]
async fn busy_then_success_from_a_scripted_upstream() {
    let f = fake(vec![
        json(json!({"errcode": -1, "errmsg": "system error"})),
        json(json!({"errcode": -1, "errmsg": "system error"})),
        Answer {
            status: 200,
            content_type: "text/plain",
            body: r#"{"openid":"o1","session_key":"AAAAAAAAAAAAAAAAAAAAAA=="}"#.into(),
            delay: Duration::ZERO,
        },
    ])
    .await;
    let session = f
        .client()
        .code_to_session(&weixin::LoginCode::parse("c").unwrap())
        .await
        .unwrap();
    assert_eq!(session.openid.as_str(), "o1");
    assert!(session.unionid.is_none());
    assert_eq!(f.hits(), 3);
}

#[tokio::test]
async fn a_timeout_is_not_retried_for_a_code_that_may_have_been_used() {
    let f = fake(vec![Answer {
        status: 200,
        content_type: "application/json",
        body: "{}".into(),
        delay: Duration::from_secs(2),
    }])
    .await;
    let err = f
        .client()
        .code_to_session(&weixin::LoginCode::parse("c").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                api: "jscode2session"
            }
        ),
        "{err:?}"
    );
    assert_eq!(f.hits(), 1);
}

#[tokio::test]
async fn gateway_errors_and_garbage_are_clear_errors() {
    let f = fake(vec![Answer {
        status: 502,
        content_type: "text/html",
        body: "<html>bad gateway</html>".into(),
        delay: Duration::ZERO,
    }])
    .await;
    let err = f
        .client()
        .code_to_session(&weixin::LoginCode::parse("c").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http { status: 502, .. }), "{err:?}");
    let f = fake(vec![Answer {
        status: 200,
        content_type: "application/json",
        body: "<html>".into(),
        delay: Duration::ZERO,
    }])
    .await;
    let err = f
        .client()
        .code_to_session(&weixin::LoginCode::parse("c").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    let f = fake(vec![json(json!({"session_key": "k"}))]).await;
    let err = f
        .client()
        .code_to_session(&weixin::LoginCode::parse("c").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn a_watermark_of_another_app_is_refused() {
    let f = fake(vec![json(
        json!({"errcode": 0, "errmsg": "ok", "phone_info": {
        "phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": 86,
        "watermark": {"timestamp": 1637744274, "appid": "wxffffffffffffffff"}}}),
    )])
    .await;
    let err = f
        .client()
        .get_phone_number(&weixin::PhoneCode::parse("c").unwrap(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::WatermarkMismatch { got, .. } if got == "wxffffffffffffffff"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("13800138000"));
}

#[tokio::test]
async fn an_unreachable_upstream_fails_fast_without_leaking_the_secret() {
    // A port that was just free: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = common::fast(
        weixin::Config::new(
            weixin::AppId::parse("wx0123456789abcdef").unwrap(),
            weixin::AppSecret::new("s3cr3t-app-secret"),
        )
        .with_base_url(format!("http://127.0.0.1:{port}")),
    );
    assert!(!format!("{config:?}").contains("s3cr3t"));
    let client = weixin::Client::new(config).unwrap();
    let started = std::time::Instant::now();
    let err = client
        .code_to_session(&weixin::LoginCode::parse("c").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let text = format!("{err} {err:?}");
    assert!(!text.contains("s3cr3t"), "{text}");
    let err = client.access_token().await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("s3cr3t"));
}
