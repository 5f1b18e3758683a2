//! `/metrics` after a scripted run against the sandbox: WeChat calls by API and errcode, billed phone
//! verifications by app and kind, the quota gauge falling as the simulator's quota is spent, logins by flow and
//! outcome; and every metric the Prometheus rules (deploy/prometheus/wxlogin-rules.yml) use is in the answer.
//!
//! One test: the metrics recorder is per process, so the exact counts hold only if nothing else runs in it.

mod common;

use common::{TestApp, spawn_with};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn metrics(app: &TestApp) -> String {
    common::metrics_text(&app.http, &app.base).await
}

/// Waits until the quota poller has set the remaining gauge to `want` (it polls every 100 ms here).
async fn quota_gauge_becomes(app: &TestApp, appid: &str, kind: &str, want: f64) {
    poller_gauge_becomes(app, "wxlogin_phone_quota_remaining", appid, kind, want).await;
}

/// Waits until the quota poller has set `gauge` of `appid` and `kind` to `want`.
async fn poller_gauge_becomes(app: &TestApp, gauge: &str, appid: &str, kind: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = common::metric_series(
            &metrics(app).await,
            gauge,
            &[("appid", appid), ("kind", kind)],
        );
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{gauge} {kind} stayed at {got}, expected {want}"
        );
        // Polling an observable condition, not a sleep standing in for one.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn phone_code(app: &TestApp, openid: &str, kind: &str) -> (u16, Value) {
    app.post(
        "/sandbox/v1/phone-code",
        json!({ "openid": openid, "kind": kind }),
    )
    .await
}

/// Silent login, then the phone step with a code of `kind`; answers the phone step's status.
async fn two_step_login(app: &TestApp, phone: &str, kind: &str) -> u16 {
    let openid = app.user(phone).await;
    let login_code = app.login_code(&openid).await;
    let (status, login) = app
        .post("/api/v1/login", json!({ "loginCode": login_code }))
        .await;
    assert_eq!(
        (status, login["data"]["status"].as_str()),
        (200, Some("phone_required")),
        "{login}"
    );
    let (status, code) = phone_code(app, &openid, kind).await;
    assert_eq!(status, 200, "{code}");
    let body = json!({
        "phoneCode": code["code"],
        "ticket": login["data"]["ticket"],
        "phoneKind": kind,
    });
    app.post("/api/v1/phone", body).await.0
}

#[tokio::test]
async fn metrics_count_wechat_calls_billed_verifications_quota_and_logins() {
    let mut args = common::sandbox_args(&common::temp_dir("wechat-metrics"));
    args.quota_poll_interval = Some("100ms".into());
    let app = spawn_with(args).await;
    let (_, apps) = app.get("/sandbox/v1/apps", None).await;
    let appid = apps[0]["appid"].as_str().unwrap().to_owned();
    let quota = format!("/sandbox/v1/apps/{appid}/quota");

    // The free trial, as the first polls read it; then 5 quick verifications left.
    quota_gauge_becomes(&app, &appid, "quick", 1000.0).await;
    quota_gauge_becomes(&app, &appid, "realtime", 1000.0).await;
    let (status, set) = app.post(&quota, json!({ "left": 5 })).await;
    assert_eq!((status, set["left"].as_u64()), (200, Some(5)), "{set}");
    quota_gauge_becomes(&app, &appid, "quick", 5.0).await;

    // Three new users log in with the quick button, one with the real-time one.
    for phone in ["13800000001", "13800000002", "13800000003"] {
        assert_eq!(two_step_login(&app, phone, "quick").await, 200);
    }
    assert_eq!(two_step_login(&app, "13800000004", "realtime").await, 200);
    quota_gauge_becomes(&app, &appid, "quick", 2.0).await;
    quota_gauge_becomes(&app, &appid, "realtime", 999.0).await;

    // Two logins with junk phone codes: WeChat answers 40029 (never billed: WeChat never issued them).
    for phone in ["13800000005", "13800000006"] {
        let openid = app.user(phone).await;
        let login_code = app.login_code(&openid).await;
        let answer = app
            .post(
                "/api/getPhone",
                json!({ "loginCode": login_code, "phoneCode": format!("junk-{phone}") }),
            )
            .await;
        common::assert_error(&answer, 400, "phone_code_invalid");
    }

    // An unknown phoneKind is refused before WeChat is called (nothing billed, nothing counted as verified).
    let answer = app
        .post(
            "/api/v1/phone",
            json!({ "phoneCode": "any-code", "ticket": "wxt_x", "phoneKind": "both" }),
        )
        .await;
    common::assert_error(&answer, 400, "invalid_field");

    // Two taps whose codes never reach the service (billed all the same), then none left: errno 1400001.
    let openid = app.user("13800000007").await;
    for _ in 0..2 {
        assert_eq!(phone_code(&app, &openid, "quick").await.0, 200);
    }
    let (status, refused) = phone_code(&app, &openid, "quick").await;
    assert_eq!(
        (status, refused["errno"].as_i64()),
        (403, Some(1_400_001)),
        "{refused}"
    );
    quota_gauge_becomes(&app, &appid, "quick", 0.0).await;
    // What WeChat billed: every code the button handed out (the sandbox's `left: 5` counted 995 of the trial as
    // used; then 3 redeemed, and the 2 never sent to us), beside what the service redeemed (3 quick).
    let billed = "wxlogin_phone_verifications_billed";
    poller_gauge_becomes(&app, billed, &appid, "quick", 1000.0).await;
    poller_gauge_becomes(&app, billed, &appid, "realtime", 1.0).await;

    // WeChat pushes that a logged-in user withdrew the phone (the sandbox wires its pushes to itself).
    let revoker = app.user("13800000001").await;
    let (status, pushed) = app
        .post("/sandbox/v1/users/revoke", json!({ "openid": revoker }))
        .await;
    assert_eq!(
        (status, &pushed["answer"]["body"]),
        (200, &json!("success")),
        "{pushed}"
    );

    let text = metrics(&app).await;
    assert_eq!(
        common::metric_series(
            &text,
            "wxlogin_wechat_pushes_total",
            &[("event", "revoke_phone"), ("outcome", "deleted")]
        ),
        1.0
    );
    let calls = |api: &str, outcome: &str| {
        common::metric_series(
            &text,
            "wxlogin_wechat_calls_total",
            &[("api", api), ("outcome", outcome)],
        )
    };
    // The poller reads every sandbox app's quota: each app fetches its one token, and no more for the whole run.
    let app_count = apps.as_array().unwrap().len() as f64;
    assert_eq!(
        calls("stable_token", "0"),
        app_count,
        "one token per app for the whole run"
    );
    assert_eq!(
        calls("jscode2session", "0"),
        6.0,
        "4 silent logins, 2 one-call logins"
    );
    assert_eq!(calls("getuserphonenumber", "0"), 4.0);
    assert_eq!(
        calls("getuserphonenumber", "40029"),
        2.0,
        "junk codes are never retried"
    );
    assert!(
        calls("charge_usage", "0") >= 8.0,
        "at least one poll per gauge change seen"
    );
    let verified = |kind: &str| {
        common::metric_series(
            &text,
            "wxlogin_phone_verifications_total",
            &[("appid", &appid), ("kind", kind)],
        )
    };
    assert_eq!((verified("quick"), verified("realtime")), (3.0, 1.0));
    let logins = |flow: &str, outcome: &str| {
        common::metric_series(
            &text,
            "wxlogin_logins_total",
            &[("flow", flow), ("outcome", outcome)],
        )
    };
    assert_eq!(logins("silent", "ok"), 4.0);
    assert_eq!(logins("phone", "ok"), 4.0);
    assert_eq!(logins("one_call", "phone_code_invalid"), 2.0);
    assert_eq!(logins("one_call", "ok"), 0.0);
    assert_eq!(logins("phone", "invalid_field"), 1.0);
    // Bounded labels only: no phone number, openid or code in any series.
    for secret in ["13800000001", openid.as_str(), "junk-"] {
        assert!(!text.contains(secret), "{secret} in /metrics");
    }

    // The alert rules only name series that exist: each wxlogin_* metric they use is in this answer.
    let rules = include_str!("../../../deploy/prometheus/wxlogin-rules.yml");
    let mut used: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("wxlogin_"))
        .collect();
    used.sort_unstable();
    used.dedup();
    assert!(used.len() >= 4, "{used:?}");
    for name in used {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name}{{"))),
            "the rules use {name}, which /metrics does not have"
        );
    }
}
