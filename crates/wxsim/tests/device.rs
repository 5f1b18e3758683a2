//! The sandbox device API, faults, stats, and the routers' composition.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{errcode, start, start_with};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use wxsim::{AppCredentials, SimConfig, Simulator};

#[tokio::test]
async fn users_are_created_once_per_phone_and_app() {
    let b = AppCredentials::generate();
    let t = start_with(SimConfig::with_apps(vec![
        AppCredentials::generate(),
        b.clone(),
    ]))
    .await;
    let (status, first) = t
        .device("POST", "/users", Some(r#"{"phoneNumber":"13800138000"}"#))
        .await;
    assert_eq!(status, 201);
    for field in [
        "openid",
        "unionid",
        "phoneNumber",
        "purePhoneNumber",
        "countryCode",
        "appid",
    ] {
        assert!(first.get(field).is_some(), "{field} in {first}");
    }
    assert_eq!(first["countryCode"], "86");
    assert_eq!(first["appid"], t.app.appid.as_str());
    let body = r#"{"phoneNumber":"13800138000","countryCode":"86"}"#;
    let (status, again) = t.device("POST", "/users", Some(body)).await;
    assert_eq!((status, &again), (200, &first));

    let body = format!(r#"{{"phoneNumber":"13800138000","appid":"{}"}}"#, b.appid);
    let (status, other_app) = t.device("POST", "/users", Some(&body)).await;
    assert_eq!(status, 201);
    assert_ne!(other_app["openid"], first["openid"]);
    assert_eq!(
        other_app["unionid"], first["unionid"],
        "one person, one unionid"
    );

    let (status, list) = t.device("GET", "/users", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["users"].as_array().unwrap().len(), 2);
    assert_eq!(list["users"][0], first);
    let (_, list) = t
        .device("GET", &format!("/users?appid={}", b.appid), None)
        .await;
    assert_eq!(list["users"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn user_validation() {
    let t = start().await;
    let cases = [
        (
            r#"{"phoneNumber":"1380013800"}"#,
            400,
            "invalid_phone_number",
        ),
        (
            r#"{"phoneNumber":"23800138000"}"#,
            400,
            "invalid_phone_number",
        ),
        (
            r#"{"phoneNumber":"138-0013-800"}"#,
            400,
            "invalid_phone_number",
        ),
        (
            r#"{"phoneNumber":"123","countryCode":"852"}"#,
            400,
            "invalid_phone_number",
        ),
        (
            r#"{"phoneNumber":"1234567890123456","countryCode":"1"}"#,
            400,
            "invalid_phone_number",
        ),
        (
            r#"{"phoneNumber":"61234567","countryCode":"+852"}"#,
            400,
            "invalid_country_code",
        ),
        (
            r#"{"phoneNumber":"13800138000","appid":"wx0000000000000000"}"#,
            404,
            "unknown_app",
        ),
        (r#"{"phoneNumber":13800138000}"#, 400, "invalid_body"),
        (r#"{"phone":"13800138000"}"#, 400, "invalid_body"),
        (
            r#"{"phoneNumber":"13800138000","extra":1}"#,
            400,
            "invalid_body",
        ),
        ("phoneNumber=13800138000", 400, "invalid_json"),
        ("", 400, "invalid_json"),
    ];
    for (body, status, id) in cases {
        let (got, v) = t.device("POST", "/users", Some(body)).await;
        assert_eq!(
            (got, v["error"].as_str()),
            (status, Some(id)),
            "{body}: {v}"
        );
        assert!(v["message"].is_string());
    }
    let (status, _) = t
        .device(
            "POST",
            "/users",
            Some(r#"{"phoneNumber":"61234567","countryCode":"852"}"#),
        )
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn codes_from_the_device_api() {
    let t = start().await;
    let user = t.user("13800138000");
    let body = format!(r#"{{"openid":"{}"}}"#, user.openid);
    let (status, login) = t.device("POST", "/login-code", Some(&body)).await;
    assert_eq!(status, 200);
    assert_eq!(login["expiresIn"], 300);
    let code = login["code"].as_str().unwrap();
    assert!(
        code.len() >= 32
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let (status, phone) = t.device("POST", "/phone-code", Some(&body)).await;
    assert_eq!((status, &phone["expiresIn"]), (200, &json!(300)));
    assert_eq!(errcode(&t.code2session(code).await), 0);

    let (status, v) = t
        .device("POST", "/login-code", Some(r#"{"openid":"oNobody"}"#))
        .await;
    assert_eq!((status, v["error"].as_str()), (404, Some("unknown_user")));
    let (status, v) = t
        .device("POST", "/phone-code", Some(r#"{"openid":"oNobody"}"#))
        .await;
    assert_eq!((status, v["error"].as_str()), (404, Some("unknown_user")));
    let (status, _) = t.device("POST", "/phone-code", Some("{}")).await;
    assert_eq!(status, 400);
    assert_eq!(t.sim().stats().codes_issued.login, 1);
    assert_eq!(t.sim().stats().codes_issued.phone, 1);
}

#[tokio::test]
async fn batch_creates_users_with_codes_and_refreshes_codes() {
    let t = start().await;
    let (status, v) = t.device("POST", "/batch", Some(r#"{"count":50}"#)).await;
    assert_eq!(status, 200);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    let phones: HashSet<&str> = items
        .iter()
        .map(|i| i["phoneNumber"].as_str().unwrap())
        .collect();
    assert_eq!(phones.len(), 50);
    let token = t.access_token().await;
    let first = &items[0];
    let s = t.code2session(first["loginCode"].as_str().unwrap()).await;
    assert_eq!(s["openid"], first["openid"]);
    let p = t
        .phone_number(
            &token,
            &json!({"code": first["phoneCode"], "openid": first["openid"]}),
        )
        .await;
    assert_eq!(p["phone_info"]["phoneNumber"], first["phoneNumber"]);

    let openids: Vec<&Value> = items.iter().take(3).map(|i| &i["openid"]).collect();
    let body = json!({"openids": openids, "kind": "phone"}).to_string();
    let (status, v) = t.device("POST", "/batch", Some(&body)).await;
    assert_eq!(status, 200);
    assert_eq!(v["items"].as_array().unwrap().len(), 3);
    assert!(v["items"][0]["loginCode"].is_null());
    assert!(v["items"][0]["phoneCode"].is_string());
    assert_eq!(v["items"][1]["openid"], items[1]["openid"]);

    for (body, status) in [
        (r#"{"count":0}"#, 400),
        (r#"{"count":100001}"#, 400),
        (r#"{"count":-1}"#, 400),
        (r#"{}"#, 400),
        (r#"{"count":1,"openids":[]}"#, 400),
        (r#"{"openids":["oNobody"],"kind":"both"}"#, 404),
        (r#"{"openids":[],"kind":"sms"}"#, 400),
        (r#"{"count":1,"appid":"wx0000000000000000"}"#, 404),
    ] {
        let (got, v) = t.device("POST", "/batch", Some(body)).await;
        assert_eq!(got, status, "{body}: {v}");
    }
    assert_eq!(t.sim().users(None).unwrap().len(), 50);
}

#[tokio::test]
async fn clock_limits_and_stats_routes() {
    let t = start().await;
    let (status, now) = t.device("GET", "/clock", None).await;
    assert_eq!(status, 200);
    let before = now["now"].as_u64().unwrap();
    let (status, after) = t
        .device("POST", "/clock", Some(r#"{"advanceSeconds":301}"#))
        .await;
    assert_eq!(status, 200);
    assert!(after["now"].as_u64().unwrap() >= before + 301);
    let (status, _) = t
        .device("POST", "/clock", Some(r#"{"advanceSeconds":-5}"#))
        .await;
    assert_eq!(status, 400);

    let (_, limits) = t.device("GET", "/limits", None).await;
    assert_eq!(limits["jscode2sessionPerUserPerMinute"], 100);
    assert_eq!(limits["businessPerAppPerMinute"], Value::Null);
    assert_eq!(limits["stableTokenPerAppPerMinute"], 10_000);
    assert_eq!(limits["stableTokenPerAppPerDay"], 500_000);
    assert_eq!(limits["tokenPerAppPerDay"], 2_000);
    assert_eq!(limits["forceRefreshPerAppPerDay"], 20);
    let (status, set) = t
        .device("PUT", "/limits", Some(r#"{"businessPerAppPerMinute":5}"#))
        .await;
    assert_eq!(status, 200);
    assert_eq!(set["businessPerAppPerMinute"], 5);
    assert_eq!(t.sim().limits().business_per_app_per_minute, Some(5));
    let (status, v) = t.device("PUT", "/limits", Some(r#"{"perMinute":5}"#)).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_body")));

    let user = t.user("13800138000");
    t.code2session(&t.login_code(&user)).await;
    t.code2session("bogus").await;
    t.access_token().await;
    let (status, stats) = t.device("GET", "/stats", None).await;
    assert_eq!(status, 200);
    assert_eq!(stats["tokensIssued"], 1);
    assert_eq!(stats["codesIssued"], json!({"login": 1, "phone": 0}));
    assert_eq!(
        stats["routes"]["/sns/jscode2session"],
        json!({"calls": 2, "errors": 1})
    );
    assert_eq!(
        stats["routes"]["/cgi-bin/stable_token"],
        json!({"calls": 1, "errors": 0})
    );
    for path in [
        "/cgi-bin/token",
        "/wxa/business/getuserphonenumber",
        "/wxa/checksession",
    ] {
        assert_eq!(
            stats["routes"][path],
            json!({"calls": 0, "errors": 0}),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mints_are_distinct() {
    let t = start().await;
    let user = t.user("13800138000");
    let body = format!(r#"{{"openid":"{}"}}"#, user.openid);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (http, url, body, sim) = (
            t.http.clone(),
            t.url("/sandbox/v1/login-code"),
            body.clone(),
            t.sim().clone(),
        );
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let v: Value = http
                    .post(url)
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                v["code"].as_str().unwrap().to_owned()
            } else {
                sim.phone_code(&sim.users(None).unwrap()[0].openid)
                    .unwrap()
                    .code
            }
        }));
    }
    let mut codes = HashSet::new();
    for task in tasks {
        codes.insert(task.await.unwrap());
    }
    assert_eq!(codes.len(), 100);
}

async fn oneshot(router: axum::Router, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn routers_compose_and_answer_json_for_unknown_routes() {
    let sim = Simulator::new(SimConfig::default());
    let apps = sim.apps();
    assert_eq!(apps.len(), 1, "a default sandbox app");
    assert!(apps[0].appid.starts_with("wx") && apps[0].appid.len() == 18);

    // The way wxlogin mounts it.
    let app = axum::Router::new()
        .nest("/sandbox/wechat", sim.wechat_router())
        .nest("/sandbox/v1", sim.device_router());
    let (status, v) = oneshot(
        app.clone(),
        "GET",
        "/sandbox/wechat/cgi-bin/stable_token",
        "",
    )
    .await;
    assert_eq!((status, errcode(&v)), (StatusCode::OK, 43002));
    let (status, v) = oneshot(
        app.clone(),
        "POST",
        "/sandbox/v1/users",
        r#"{"phoneNumber":"13800138000"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = oneshot(app.clone(), "GET", "/sandbox/v1/nope", "").await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, v) = oneshot(app.clone(), "DELETE", "/sandbox/v1/users", "").await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );

    let (status, v) = oneshot(sim.router(), "GET", "/sandbox/v1/users", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["users"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn spawn_serves_on_loopback() {
    let t = start().await;
    assert!(t.running.base_url.starts_with("http://127.0.0.1:"));
    assert_eq!(t.running.base_url, format!("http://{}", t.running.addr));
    let base = t.running.base_url.clone();
    t.running.shutdown();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let gone = reqwest::Client::new()
        .get(format!("{base}/sandbox/v1/clock"))
        .send()
        .await;
    assert!(gone.is_err(), "stopped");
}

#[tokio::test]
async fn the_same_identity_seed_gives_a_person_the_same_ids_across_restarts() {
    let apps = vec![
        wxsim::AppCredentials::generate(),
        wxsim::AppCredentials::generate(),
    ];
    let seeded = |seed: [u8; 32]| {
        let mut config = wxsim::SimConfig::with_apps(apps.clone());
        config.identity_seed = Some(seed);
        wxsim::Simulator::new(config)
    };
    let new_user = |sim: &wxsim::Simulator, appid: &str| {
        sim.create_user(wxsim::NewUser {
            appid: Some(appid.into()),
            phone_number: "13800138000".into(),
            country_code: None,
        })
        .unwrap()
    };
    let (first, restarted, other) = (seeded([7; 32]), seeded([7; 32]), seeded([8; 32]));
    let a = new_user(&first, &apps[0].appid);
    assert_eq!(
        new_user(&restarted, &apps[0].appid).openid,
        a.openid,
        "same seed, same person, same app: same openid"
    );
    assert_eq!(new_user(&restarted, &apps[0].appid).unionid, a.unionid);
    let in_other_app = new_user(&first, &apps[1].appid);
    assert_ne!(in_other_app.openid, a.openid, "openids differ between apps");
    assert_eq!(in_other_app.unionid, a.unionid, "unionids do not");
    assert_ne!(
        new_user(&other, &apps[0].appid).openid,
        a.openid,
        "another seed, other ids"
    );
}
