//! Accounts across apps: apps bound and not bound to the Open Platform account (unionid or none), binding an
//! app later, and phone codes for another number than the user's own.

mod common;

use common::{TestSim, errcode, start_with};
use serde_json::{Value, json};
use wxsim::{AppCredentials, NewUser, SandboxUser, SimConfig};

/// Bound app `apps[0]`, bound app `apps[1]`, unbound app `apps[2]`.
async fn two_bound_one_unbound() -> (TestSim, Vec<AppCredentials>) {
    let apps: Vec<AppCredentials> = (0..3).map(|_| AppCredentials::generate()).collect();
    let config = SimConfig {
        apps: apps[..2].to_vec(),
        unbound_apps: vec![apps[2].clone()],
        ..SimConfig::default()
    };
    (start_with(config).await, apps)
}

fn user_in(t: &TestSim, app: &AppCredentials, phone: &str) -> SandboxUser {
    t.sim()
        .create_user(NewUser {
            appid: Some(app.appid.clone()),
            phone_number: phone.into(),
            country_code: None,
        })
        .expect("user")
}

/// A fresh login code of `user` exchanged by `app`.
async fn session(t: &TestSim, app: &AppCredentials, user: &SandboxUser) -> Value {
    let session = t.code2session_as(app, &t.login_code(user)).await;
    assert_eq!(errcode(&session), 0, "{session}");
    assert_eq!(session["openid"], user.openid.as_str());
    session
}

#[tokio::test]
async fn an_unbound_app_answers_no_unionid_until_it_is_bound() {
    let (t, apps) = two_bound_one_unbound().await;
    let (bound, unbound) = (&apps[0], &apps[2]);
    assert_eq!(t.sim().apps(), apps, "unbound apps come after the others");
    assert_eq!(t.sim().is_bound(&bound.appid), Some(true));
    assert_eq!(t.sim().is_bound(&unbound.appid), Some(false));
    assert_eq!(t.sim().is_bound("wx0000000000000000"), None);

    let in_bound = user_in(&t, bound, "13800138000");
    let unionid = in_bound
        .unionid
        .clone()
        .expect("a bound app's user has a unionid");
    assert_eq!(
        session(&t, bound, &in_bound).await["unionid"],
        unionid.as_str()
    );

    let body = format!(
        r#"{{"phoneNumber":"13800138000","appid":"{}"}}"#,
        unbound.appid
    );
    let (status, created) = t.device("POST", "/users", Some(&body)).await;
    assert_eq!(status, 201);
    assert!(
        created.get("unionid").is_none(),
        "omitted, not null: {created}"
    );
    let in_unbound: SandboxUser = serde_json::from_value(created).unwrap();
    assert_ne!(in_unbound.openid, in_bound.openid);
    let before = session(&t, unbound, &in_unbound).await;
    assert!(before.get("unionid").is_none(), "{before}");
    // Phone codes do not depend on the binding.
    let token = t
        .stable_token_as(unbound, false)
        .await
        .get("access_token")
        .and_then(Value::as_str)
        .expect("token")
        .to_owned();
    let code = t.phone_code(&in_unbound);
    let phone = t
        .phone_number(&token, &json!({"code": code, "openid": in_unbound.openid}))
        .await;
    assert_eq!(phone["phone_info"]["phoneNumber"], "13800138000", "{phone}");

    // A code minted before the binding and redeemed after it answers the unionid too.
    let early_code = t.login_code(&in_unbound);
    let path = format!("/apps/{}/bind", unbound.appid);
    let (status, answer) = t.device("POST", &path, None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"appid": unbound.appid, "bound": true}));
    assert_eq!(t.sim().is_bound(&unbound.appid), Some(true));
    let after = t.code2session_as(unbound, &early_code).await;
    assert_eq!(after["unionid"], unionid.as_str(), "{after}");
    assert_eq!(after["openid"], in_unbound.openid.as_str());
    assert_eq!(
        session(&t, unbound, &in_unbound).await["unionid"],
        unionid.as_str()
    );
    let listed = t.sim().users(Some(&unbound.appid)).unwrap();
    assert_eq!(listed[0].unionid.as_deref(), Some(unionid.as_str()));

    // Idempotent, with or without an empty JSON body; the bound app is unchanged.
    let (status, again) = t.device("POST", &path, Some("{}")).await;
    assert_eq!((status, &again), (200, &answer));
    let (status, _) = t
        .device("POST", &format!("/apps/{}/bind", bound.appid), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        session(&t, bound, &in_bound).await["unionid"],
        unionid.as_str()
    );
}

#[tokio::test]
async fn bind_refuses_unknown_apps_and_bodies_with_fields() {
    let (t, apps) = two_bound_one_unbound().await;
    let (status, v) = t
        .device("POST", "/apps/wx0000000000000000/bind", None)
        .await;
    assert_eq!((status, v["error"].as_str()), (404, Some("unknown_app")));
    assert!(v["message"].is_string());

    let path = format!("/apps/{}/bind", apps[2].appid);
    for (body, id) in [
        (r#"{"bound":false}"#, "invalid_body"),
        ("bound=1", "invalid_json"),
    ] {
        let (status, v) = t.device("POST", &path, Some(body)).await;
        assert_eq!((status, v["error"].as_str()), (400, Some(id)), "{body}");
    }
    let (status, v) = t.device("GET", &path, None).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert_eq!(
        t.sim().is_bound(&apps[2].appid),
        Some(false),
        "a refused bind binds nothing"
    );
}

#[tokio::test]
async fn without_open_platform_every_app_starts_unbound_and_can_be_bound() {
    let app = AppCredentials::generate();
    let config = SimConfig {
        open_platform: false,
        ..SimConfig::with_apps(vec![app.clone()])
    };
    let t = start_with(config).await;
    let user = t.user("13800138000");
    assert_eq!(user.unionid, None);
    assert!(session(&t, &app, &user).await.get("unionid").is_none());
    let binding = t.sim().bind_app(&app.appid).unwrap();
    assert!(binding.bound);
    assert!(session(&t, &app, &user).await["unionid"].is_string());
}

#[tokio::test]
async fn only_unbound_apps_configured_means_no_generated_app() {
    let app = AppCredentials::generate();
    let t = start_with(SimConfig {
        unbound_apps: vec![app.clone()],
        ..SimConfig::default()
    })
    .await;
    assert_eq!(t.sim().apps(), vec![app.clone()]);
    let user = t.user("13800138000");
    assert_eq!(
        (user.appid.as_str(), user.unionid),
        (app.appid.as_str(), None)
    );
}

/// A phone code of `openid` from the device API, for `extra` fields on top.
async fn phone_code_for(t: &TestSim, openid: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({"openid": openid});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    t.device("POST", "/phone-code", Some(&body.to_string()))
        .await
}

#[tokio::test]
async fn a_phone_code_for_another_number_answers_that_number_for_its_own_user_only() {
    let t = start_with(SimConfig::default()).await;
    let user = t.user("13800138000");
    let other_user = t.user("13900139000");
    let token = t.access_token().await;

    let (status, issued) =
        phone_code_for(&t, &user.openid, json!({"phoneNumber": "13700137000"})).await;
    assert_eq!(
        (status, &issued["expiresIn"]),
        (200, &json!(300)),
        "{issued}"
    );
    let code = issued["code"].as_str().unwrap();
    // The openid check still binds the code to its user, and a refused call leaves it usable.
    let wrong = t
        .phone_number(&token, &json!({"code": code, "openid": other_user.openid}))
        .await;
    assert_eq!(errcode(&wrong), 40003, "{wrong}");
    let answer = t
        .phone_number(&token, &json!({"code": code, "openid": user.openid}))
        .await;
    assert_eq!(errcode(&answer), 0, "{answer}");
    let info = &answer["phone_info"];
    assert_eq!(info["phoneNumber"], "13700137000");
    assert_eq!(info["purePhoneNumber"], "13700137000");
    assert_eq!(info["countryCode"], "86");
    let reused = t.phone_number(&token, &json!({"code": code})).await;
    assert_eq!(errcode(&reused), 40029);

    // Another region's number is written as WeChat writes it; the user's own number is unchanged.
    let (_, issued) = phone_code_for(
        &t,
        &user.openid,
        json!({"phoneNumber": "61234567", "countryCode": "852"}),
    )
    .await;
    let answer = t
        .phone_number(
            &token,
            &json!({"code": issued["code"], "openid": user.openid}),
        )
        .await;
    assert_eq!(answer["phone_info"]["phoneNumber"], "+85261234567");
    assert_eq!(answer["phone_info"]["purePhoneNumber"], "61234567");
    assert_eq!(answer["phone_info"]["countryCode"], "852");
    let own = t
        .phone_number(
            &token,
            &json!({"code": t.phone_code(&user), "openid": user.openid}),
        )
        .await;
    assert_eq!(own["phone_info"]["phoneNumber"], "13800138000");
    assert_eq!(
        t.sim().users(None).unwrap().len(),
        2,
        "no user is made for the other number"
    );
    assert_eq!(t.sim().stats().codes_issued.phone, 3);
}

#[tokio::test]
async fn a_phone_code_for_another_number_is_checked_like_a_new_user() {
    let t = start_with(SimConfig::default()).await;
    let user = t.user("13800138000");
    let cases = [
        (
            json!({"phoneNumber": "1380013800"}),
            400,
            "invalid_phone_number",
        ),
        (
            json!({"phoneNumber": "23800138000"}),
            400,
            "invalid_phone_number",
        ),
        (
            json!({"phoneNumber": "123", "countryCode": "852"}),
            400,
            "invalid_phone_number",
        ),
        (
            json!({"phoneNumber": "61234567", "countryCode": "+852"}),
            400,
            "invalid_country_code",
        ),
        (json!({"phoneNumber": 13700137000_u64}), 400, "invalid_body"),
        (json!({"countryCode": "852"}), 400, "invalid_request"),
        (json!({"phone": "13700137000"}), 400, "invalid_body"),
    ];
    for (extra, status, id) in cases {
        let (got, v) = phone_code_for(&t, &user.openid, extra.clone()).await;
        assert_eq!(
            (got, v["error"].as_str()),
            (status, Some(id)),
            "{extra}: {v}"
        );
        assert!(v["message"].is_string());
    }
    let (status, v) = phone_code_for(&t, "oNobody", json!({"phoneNumber": "13700137000"})).await;
    assert_eq!((status, v["error"].as_str()), (404, Some("unknown_user")));
    assert_eq!(
        t.sim().stats().codes_issued.phone,
        0,
        "a refused request mints nothing"
    );
}

#[tokio::test]
async fn the_apps_are_listed_in_order_with_their_binding_and_no_secret() {
    let (t, apps) = two_bound_one_unbound().await;
    let (status, listed) = t.device("GET", "/apps", None).await;
    assert_eq!(status, 200);
    let expected: Vec<Value> = apps
        .iter()
        .zip([true, true, false])
        .map(|(app, bound)| json!({ "appid": app.appid, "bound": bound }))
        .collect();
    assert_eq!(listed, Value::Array(expected));
    assert!(!listed.to_string().contains(&apps[0].secret));
    let (status, _) = t
        .device("POST", &format!("/apps/{}/bind", apps[2].appid), None)
        .await;
    assert_eq!(status, 200);
    let (_, listed) = t.device("GET", "/apps", None).await;
    assert_eq!(listed[2]["bound"], true);
}
