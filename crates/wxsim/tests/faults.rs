//! Injected faults: errcodes before any state change, rates, paths, latency.

mod common;

use std::time::{Duration, Instant};

use common::{errcode, start};
use serde_json::json;
use wxsim::Faults;

#[tokio::test]
async fn injected_errcode_answers_first_and_counts_as_error() {
    let t = start().await;
    let user = t.user("13800138000");
    let code = t.login_code(&user);
    let body =
        r#"{"errcode":-1,"rate":1.0,"paths":["/sns/jscode2session","/cgi-bin/stable_token"]}"#;
    let (status, faults) = t.device("PUT", "/faults", Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!(faults["errcode"], -1);
    assert_eq!(t.device("GET", "/faults", None).await.1, faults);

    let v = t.code2session(&code).await;
    assert_eq!(errcode(&v), -1);
    assert!(
        v["errmsg"]
            .as_str()
            .unwrap()
            .starts_with("system error, rid: ")
    );
    assert_eq!(errcode(&t.stable_token(false).await), -1);
    assert_eq!(errcode(&t.token_route().await), 0, "not in paths");
    assert_eq!(
        t.sim().stats().tokens_issued,
        1,
        "the faulted stable_token minted nothing"
    );
    let stats = t.sim().stats();
    assert_eq!(stats.routes["/sns/jscode2session"].errors, 1);
    assert_eq!(stats.routes["/cgi-bin/stable_token"].errors, 1);

    let (status, cleared) = t.device("DELETE", "/faults", None).await;
    assert_eq!((status, cleared), (200, json!({})));
    assert_eq!(
        errcode(&t.code2session(&code).await),
        0,
        "the faulted call did not consume the code"
    );

    for body in [
        r#"{"rate":1.5}"#,
        r#"{"paths":["/sns/nope"]}"#,
        r#"{"latency":5}"#,
        r#"{"revokeToken":"yes"}"#,
    ] {
        let (status, v) = t.device("PUT", "/faults", Some(body)).await;
        assert_eq!(status, 400, "{body}: {v}");
    }
}

#[tokio::test]
async fn injected_rate_zero_never_fires_and_all_paths_by_default() {
    let t = start().await;
    t.sim().set_faults(Faults {
        errcode: Some(45011),
        rate: 0.0,
        ..Faults::default()
    });
    assert_eq!(errcode(&t.token_route().await), 0);
    t.sim().set_faults(Faults {
        errcode: Some(40226),
        ..Faults::default()
    });
    assert_eq!(errcode(&t.token_route().await), 40226);
    assert_eq!(errcode(&t.get("/wxa/checksession").await), 40226);
    t.sim().clear_faults();
    assert_eq!(t.sim().faults(), Faults::default());
}

#[tokio::test]
async fn injected_latency_delays_wechat_routes_only() {
    let t = start().await;
    t.sim().set_faults(Faults {
        latency_ms: 80,
        paths: vec!["/cgi-bin/token".into()],
        ..Faults::default()
    });
    let started = Instant::now();
    // The delayed call and two undelayed ones at once: the undelayed ones finish first.
    let (slow, fast) = tokio::join!(
        async {
            assert_eq!(errcode(&t.token_route().await), 0);
            Instant::now()
        },
        async {
            t.device("GET", "/stats", None).await;
            t.access_token().await;
            Instant::now()
        }
    );
    assert!(slow - started >= Duration::from_millis(80));
    assert!(
        fast < slow,
        "the device API and other routes are not delayed"
    );
}
