//! Rate limits seen from outside: junk from one address stops reaching WeChat (the simulator counts the calls),
//! other clients keep logging in, a forged X-Forwarded-For changes nothing unless it comes from a trusted proxy,
//! one WeChat user is limited too, and with Redis the limit holds across instances.

mod common;

use common::{TestApp, assert_error, temp_dir};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use wxlogin::config::ServeArgs;

/// A sandbox app whose config file holds `toml` (e.g. a `[rate_limits]` table), with `args`' other settings.
async fn app_with_config(toml: &str, args: ServeArgs) -> TestApp {
    let dir = temp_dir("limits");
    let path = dir.join("wxlogin.toml");
    std::fs::write(&path, toml).unwrap();
    let base = common::sandbox_args(&dir);
    common::spawn_with(ServeArgs {
        config: Some(path),
        listen: base.listen,
        data_dir: base.data_dir,
        ..args
    })
    .await
}

/// An HTTP client whose connections come from `source` (any 127.0.0.0/8 address works on loopback).
fn client_from(source: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A loopback address no other test (or earlier run, whose Redis keys may linger a minute) uses.
fn fresh_loopback() -> IpAddr {
    let [a, b, c, _] = rand::random::<u32>().to_be_bytes();
    IpAddr::from([127, a.max(2), b, c.max(1)])
}

async fn post(
    http: &reqwest::Client,
    url: String,
    body: Value,
    xff: Option<&str>,
) -> (u16, Option<u64>, Value) {
    let mut request = http.post(url).json(&body);
    if let Some(xff) = xff {
        request = request.header("x-forwarded-for", xff);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn login_calls(stats: Value) -> u64 {
    stats["routes"]["/sns/jscode2session"]["calls"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_from_one_address_stops_reaching_wechat_and_others_still_log_in() {
    let app = app_with_config("[rate_limits]\nper_ip = \"20/min\"\n", ServeArgs::default()).await;
    let attacker = client_from(fresh_loopback());
    let url = format!("{}/api/v1/login", app.base);
    let calls_before = login_calls(app.stats().await).await;
    let started = Instant::now();

    let junk = async {
        let mut answers = Vec::new();
        for chunk in (0..1000).collect::<Vec<_>>().chunks(50) {
            let batch = chunk.iter().map(|i| {
                post(
                    &attacker,
                    url.clone(),
                    json!({ "loginCode": format!("junk-login-code-{i:05}") }),
                    None,
                )
            });
            answers.extend(futures::future::join_all(batch).await);
        }
        answers
    };
    // Meanwhile real users, each from an address of their own, log in.
    let users = async {
        let mut outcomes = Vec::new();
        for i in 0..5u8 {
            let openid = app.user(&format!("1380013900{i}")).await;
            let (login, phone) = (app.login_code(&openid).await, app.phone_code(&openid).await);
            let phone_client = client_from(IpAddr::from([127, 0, 1, 10 + i]));
            outcomes.push(
                post(
                    &phone_client,
                    format!("{}/api/getPhone", app.base),
                    json!({ "loginCode": login, "phoneCode": phone }),
                    None,
                )
                .await,
            );
        }
        outcomes
    };
    let (junk, users) = tokio::join!(junk, users);
    let elapsed = started.elapsed();

    for (status, _, body) in &users {
        assert_eq!(*status, 200, "a real user's login: {body}");
    }
    let limited: Vec<_> = junk.iter().filter(|(s, _, _)| *s == 429).collect();
    let refused_by_wechat = junk.iter().filter(|(s, _, _)| *s == 400).count();
    assert_eq!(
        limited.len() + refused_by_wechat,
        1000,
        "only 400 (WeChat said no) or 429"
    );
    for (_, retry_after, body) in &limited {
        assert_eq!(body["error"], "rate_limited", "{body}");
        assert!(
            matches!(retry_after, Some(1..=3)),
            "Retry-After {retry_after:?}: one request every 3 s"
        );
    }
    // 20 at once, then one every 3 s: WeChat saw at most that (plus the real users' 5 logins).
    let allowed = 20 + (elapsed.as_secs_f64() / 3.0).ceil() as u64;
    let calls = login_calls(app.stats().await).await - calls_before;
    assert!(
        calls <= allowed + 5,
        "{calls} jscode2session calls in {elapsed:?}; the limit allows {allowed} + 5 real logins"
    );
    assert_eq!(refused_by_wechat as u64, calls - 5);
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let toml = "[rate_limits]\nper_ip = \"2/min\"\n";
    // Untrusted peer: a forged X-Forwarded-For per request changes nothing.
    let app = app_with_config(toml, ServeArgs::default()).await;
    let http = client_from(fresh_loopback());
    let url = format!("{}/api/v1/login", app.base);
    let mut statuses = Vec::new();
    for i in 0..4 {
        let xff = format!("203.0.113.{i}");
        statuses.push(
            post(
                &http,
                url.clone(),
                json!({ "loginCode": "junk" }),
                Some(&xff),
            )
            .await
            .0,
        );
    }
    assert_eq!(statuses, [400, 400, 429, 429]);

    // Behind a trusted proxy (the loopback range): each forwarded client has its own budget.
    let app = app_with_config(
        toml,
        ServeArgs {
            trusted_proxies: Some("127.0.0.0/8, ::1".into()),
            ..Default::default()
        },
    )
    .await;
    let url = format!("{}/api/v1/login", app.base);
    for i in 0..4 {
        let xff = format!("198.51.100.{i}, 127.0.0.1");
        let answer = post(
            &http,
            url.clone(),
            json!({ "loginCode": "junk" }),
            Some(&xff),
        )
        .await;
        assert_eq!(answer.0, 400, "client {i}: {}", answer.2);
    }
    // ... and one forwarded client still runs out.
    let statuses: Vec<u16> = futures::future::join_all((0..3).map(|_| {
        post(
            &http,
            url.clone(),
            json!({ "loginCode": "junk" }),
            Some("198.51.100.77"),
        )
    }))
    .await
    .into_iter()
    .map(|a| a.0)
    .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        1,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn one_wechat_user_is_limited_before_the_phone_code_is_spent() {
    let app = app_with_config(
        "[rate_limits]\nper_openid = \"3/min\"\n",
        ServeArgs::default(),
    )
    .await;
    let openid = app.user("13800139100").await;
    let phone_calls = app.phone_calls().await;
    for _ in 0..3 {
        assert_eq!(app.get_phone(&openid).await.0, 200);
    }
    let answer = app.get_phone(&openid).await;
    assert_error(&answer, 429, "rate_limited");
    assert_eq!(
        app.phone_calls().await - phone_calls,
        3,
        "the 4th phone code never reached WeChat"
    );
    // Another user is not affected.
    let other = app.user("13800139101").await;
    assert_eq!(app.get_phone(&other).await.0, 200);
}

#[tokio::test]
async fn rate_limits_off_turns_them_all_off() {
    let app = app_with_config(
        "[rate_limits]\nper_ip = \"1/min\"\n",
        ServeArgs {
            rate_limits: Some(wxlogin::config::RateLimitSwitch::Off),
            ..Default::default()
        },
    )
    .await;
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let answer = post(
            &http,
            format!("{}/api/v1/login", app.base),
            json!({ "loginCode": "junk" }),
            None,
        )
        .await;
        assert_eq!(answer.0, 400);
    }
}

/// Redis on loopback, or a skip (a failure when the environment requires it).
async fn redis_available() -> bool {
    match tokio::net::TcpStream::connect("127.0.0.1:6379").await {
        Ok(_) => true,
        Err(e) if std::env::var_os("WXLOGIN_TEST_REDIS").is_some() => {
            panic!("Redis required by WXLOGIN_TEST_REDIS but not reachable: {e}")
        }
        Err(e) => {
            eprintln!("skipping: Redis not reachable on 127.0.0.1:6379: {e}");
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_the_limit_holds_across_three_instances() {
    if !redis_available().await {
        return;
    }
    let wechat_app = wxsim::AppCredentials::generate();
    let upstream = wxsim::spawn(wxsim::SimConfig::with_apps(vec![wechat_app.clone()]))
        .await
        .unwrap();
    let mut instances = Vec::new();
    for i in 0..3 {
        let dir = temp_dir(&format!("limits-redis-{i}"));
        std::fs::write(
            dir.join("wxlogin.toml"),
            "[rate_limits]\nper_ip = \"10/min\"\n",
        )
        .unwrap();
        let mut args = common::sandbox_args(&dir);
        args.config = Some(dir.join("wxlogin.toml"));
        args.wechat_base_url = Some(upstream.base_url.clone());
        args.redis_url = Some("redis://127.0.0.1:6379/".into());
        args.data_key = Some("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into());
        let env = |k: &str| match k {
            "WX_APPID" => Some(wechat_app.appid.clone()),
            "WX_SECRET" => Some(wechat_app.secret.clone()),
            _ => None,
        };
        let settings = wxlogin::config::Settings::resolve(args, env).unwrap();
        instances.push(
            wxlogin::app::start(settings, std::future::pending())
                .await
                .unwrap(),
        );
    }
    let http = client_from(fresh_loopback());
    let started = Instant::now();
    let answers = futures::future::join_all((0..90).map(|i| {
        let url = format!("{}/api/v1/login", instances[i % 3].base_url());
        let http = http.clone();
        async move {
            post(
                &http,
                url,
                json!({ "loginCode": format!("junk-{i}") }),
                None,
            )
            .await
        }
    }))
    .await;
    let elapsed = started.elapsed();
    let passed = answers.iter().filter(|a| a.0 == 400).count() as u64;
    let limited = answers.iter().filter(|a| a.0 == 429).count() as u64;
    assert_eq!(passed + limited, 90);
    let allowed = 10 + (elapsed.as_secs_f64() / 6.0).ceil() as u64;
    let calls = upstream
        .sim
        .stats()
        .routes
        .get("/sns/jscode2session")
        .map_or(0, |r| r.calls);
    assert!(
        calls <= allowed && passed <= allowed,
        "{calls} WeChat calls ({passed} passed) across 3 instances in {elapsed:?}; one budget allows {allowed} (per instance it would be {})",
        3 * allowed
    );
    assert!(passed >= 10, "the budget itself was usable: {passed}");
}

#[tokio::test]
async fn the_app_budget_holds_whatever_the_addresses() {
    let app = app_with_config("[rate_limits]\nper_app = \"5/min\"\n", ServeArgs::default()).await;
    let url = format!("{}/api/v1/login", app.base);
    let mut statuses = Vec::new();
    for i in 0..8u8 {
        let http = client_from(IpAddr::from([127, 0, 2, 10 + i]));
        statuses.push(
            post(&http, url.clone(), json!({ "loginCode": "junk" }), None)
                .await
                .0,
        );
    }
    assert_eq!(statuses, [400, 400, 400, 400, 400, 429, 429, 429]);
    assert_eq!(login_calls(app.stats().await).await, 5);
}

#[tokio::test]
async fn refreshes_spend_the_address_budget_like_logins() {
    let app = app_with_config("[rate_limits]\nper_ip = \"3/min\"\n", ServeArgs::default()).await;
    let http = client_from(fresh_loopback());
    let junk = format!("wxr_{}", "A".repeat(86));
    let refresh = format!("{}/api/v1/refresh", app.base);
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(
            post(
                &http,
                refresh.clone(),
                json!({ "refreshToken": junk }),
                None,
            )
            .await
            .0,
        );
    }
    let grant = http
        .post(format!("{}/oauth2/token", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=refresh_token&refresh_token={junk}"));
    statuses.push(
        grant
            .try_clone()
            .unwrap()
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
    );
    statuses.push(grant.send().await.unwrap().status().as_u16());
    statuses.push(
        post(&http, refresh, json!({ "refreshToken": junk }), None)
            .await
            .0,
    );
    assert_eq!(statuses, [401, 401, 400, 429, 429]);
}
