//! jscode2session, getuserphonenumber and checksession: codes, binding, session keys, limits.

mod common;

use common::{errcode, start, start_with};
use serde_json::json;
use wxsim::{AppCredentials, Limits, NewUser, SimConfig};

fn signature(session_key: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(session_key.as_bytes()).unwrap();
    mac.update(b"");
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn code2session_answers_without_errcode_as_text_plain() {
    let t = start().await;
    let user = t.user("13800138000");
    let code = t.login_code(&user);
    let url = t.url(&format!(
        "/sns/jscode2session?appid={}&secret={}&js_code={code}&grant_type=authorization_code&access_token=whatever",
        t.app.appid, t.app.secret
    ));
    let resp = t.http.get(url).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/plain");
    let (status, v) = common::TestSim::read(resp).await;
    assert_eq!(status, 200);
    assert!(v.get("errcode").is_none(), "{v}");
    assert_eq!(v["openid"], user.openid.as_str());
    assert_eq!(v["unionid"], user.unionid.as_deref().unwrap());
    let key = v["session_key"].as_str().unwrap();
    assert_eq!(key.len(), 24);

    let again = t.code2session(&code).await;
    assert_eq!(errcode(&again), 40163);
    assert!(
        again["errmsg"]
            .as_str()
            .unwrap()
            .starts_with("code been used, rid: ")
    );
}

#[tokio::test]
async fn code2session_errors() {
    let t = start().await;
    let user = t.user("13800138000");
    let code = t.login_code(&user);
    let (id, secret) = (&t.app.appid, &t.app.secret);
    let g = "grant_type=authorization_code";
    let cases = [
        (format!("secret={secret}&js_code={code}&{g}"), 41002),
        (format!("appid={id}&js_code={code}&{g}"), 41004),
        (
            format!("appid=wx0000000000000000&secret={secret}&js_code={code}&{g}"),
            40013,
        ),
        (format!("appid={id}&secret=wrong&js_code={code}&{g}"), 40125),
        (
            format!("appid={id}&secret={secret}&js_code={code}&grant_type=client_credential"),
            40002,
        ),
        (format!("appid={id}&secret={secret}&{g}"), 41008),
        (format!("appid={id}&secret={secret}&js_code=&{g}"), 41008),
        (
            format!("appid={id}&secret={secret}&js_code=nonsense&{g}"),
            40029,
        ),
    ];
    for (query, want) in cases {
        let v = t.get(&format!("/sns/jscode2session?{query}")).await;
        assert_eq!(errcode(&v), want, "{query}: {v}");
    }
    // None of that consumed the code.
    assert_eq!(errcode(&t.code2session(&code).await), 0);
    let resp = t
        .http
        .post(t.url("/sns/jscode2session"))
        .send()
        .await
        .unwrap();
    assert_eq!(errcode(&common::TestSim::read(resp).await.1), 43001);
}

#[tokio::test]
async fn codes_expire_after_300_seconds() {
    let t = start().await;
    let user = t.user("13800138000");
    let login = t.login_code(&user);
    let phone = t.phone_code(&user);
    let token = t.access_token().await;
    t.sim().advance_clock(301);
    let token = {
        let fresh = t.access_token().await;
        assert_eq!(fresh, token);
        fresh
    };
    assert_eq!(errcode(&t.code2session(&login).await), 40029);
    let v = t.phone_number(&token, &json!({"code": phone})).await;
    assert_eq!(errcode(&v), 40029);
}

#[tokio::test]
async fn codes_are_bound_to_their_app() {
    let a = AppCredentials::generate();
    let b = AppCredentials::generate();
    let t = start_with(SimConfig::with_apps(vec![a.clone(), b.clone()])).await;
    let user = t.user("13800138000"); // in app a
    let login = t.login_code(&user);
    let phone = t.phone_code(&user);
    assert_eq!(errcode(&t.code2session_as(&b, &login).await), 40029);
    let token_b = t.stable_token_as(&b, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        errcode(&t.phone_number(&token_b, &json!({"code": phone})).await),
        40013,
        "getuserphonenumber's documented errcode for a code of another appid"
    );
    // Still usable in their own app.
    assert_eq!(errcode(&t.code2session_as(&a, &login).await), 0);
    let token_a = t.access_token().await;
    assert_eq!(
        errcode(&t.phone_number(&token_a, &json!({"code": phone})).await),
        0
    );
}

#[tokio::test]
async fn session_key_rotates_with_each_login_and_checksession_verifies_it() {
    let t = start().await;
    let user = t.user("13800138000");
    let c1 = t.login_code(&user);
    let c2 = t.login_code(&user);
    let k1 = t.code2session(&c1).await["session_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let k2 = t.code2session(&c2).await["session_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(k1, k2, "each code carries the key minted with it");

    let token = t.access_token().await;
    let check = |sig: String, openid: &str, method: &str| {
        format!(
            "/wxa/checksession?access_token={token}&openid={openid}&signature={sig}&sig_method={method}"
        )
    };
    let ok = t
        .get(&check(signature(&k2), &user.openid, "hmac_sha256"))
        .await;
    assert_eq!((errcode(&ok), ok["errmsg"].as_str()), (0, Some("ok")));
    let stale = t
        .get(&check(signature(&k1), &user.openid, "hmac_sha256"))
        .await;
    assert_eq!(errcode(&stale), 87009);
    let upper = t
        .get(&check(
            signature(&k2).to_uppercase(),
            &user.openid,
            "hmac_sha256",
        ))
        .await;
    assert_eq!(errcode(&upper), 87009);
    let method = t.get(&check(signature(&k2), &user.openid, "md5")).await;
    assert_eq!(errcode(&method), 87009);
    let unknown = t
        .get(&check(signature(&k2), "oUnknown", "hmac_sha256"))
        .await;
    assert_eq!(errcode(&unknown), 40003);

    // A new wx.login rotates the key even before its code is exchanged.
    t.login_code(&user);
    let rotated = t
        .get(&check(signature(&k2), &user.openid, "hmac_sha256"))
        .await;
    assert_eq!(errcode(&rotated), 87009);
}

#[tokio::test]
async fn code2session_per_user_limit_45011_leaves_the_code_usable() {
    let t = start().await;
    let user = t.user("13800138000");
    let busy = t.user("13800138001");
    let codes: Vec<String> = (0..101).map(|_| t.login_code(&busy)).collect();
    for code in &codes[..100] {
        assert_eq!(errcode(&t.code2session(code).await), 0);
    }
    assert_eq!(errcode(&t.code2session(&codes[100]).await), 45011);
    let other = t.login_code(&user);
    assert_eq!(
        errcode(&t.code2session(&other).await),
        0,
        "per user, not per app"
    );
    t.sim().advance_clock(60);
    assert_eq!(
        errcode(&t.code2session(&codes[100]).await),
        0,
        "not consumed by the 45011"
    );
}

#[tokio::test]
async fn phone_number_success_shape() {
    let t = start().await;
    let user = t.user("13800138000");
    let token = t.access_token().await;
    let code = t.phone_code(&user);
    let v = t
        .phone_number(&token, &json!({"code": code, "openid": user.openid}))
        .await;
    assert_eq!(v["errcode"], 0);
    assert_eq!(v["errmsg"], "ok");
    let info = &v["phone_info"];
    assert_eq!(info["phoneNumber"], "13800138000");
    assert_eq!(info["purePhoneNumber"], "13800138000");
    assert_eq!(info["countryCode"], "86");
    assert_eq!(info["watermark"]["appid"], t.app.appid.as_str());
    let ts = info["watermark"]["timestamp"].as_u64().unwrap();
    assert!(ts.abs_diff(t.sim().now()) <= 1);

    let again = t.phone_number(&token, &json!({"code": code})).await;
    assert_eq!(errcode(&again), 40029, "phone codes answer 40029 on reuse");

    let hk = t
        .sim()
        .create_user(NewUser {
            phone_number: "61234567".into(),
            country_code: Some("852".into()),
            appid: None,
        })
        .unwrap();
    assert_eq!(hk.phone_number, "+85261234567");
    let v = t
        .phone_number(&token, &json!({"code": t.phone_code(&hk)}))
        .await;
    assert_eq!(v["phone_info"]["phoneNumber"], "+85261234567");
    assert_eq!(v["phone_info"]["purePhoneNumber"], "61234567");
    assert_eq!(v["phone_info"]["countryCode"], "852");
}

#[tokio::test]
async fn phone_code_openid_binding_40003_does_not_consume() {
    let t = start().await;
    let owner = t.user("13800138000");
    let thief = t.user("13900139000");
    let token = t.access_token().await;
    let code = t.phone_code(&owner);
    let v = t
        .phone_number(&token, &json!({"code": code, "openid": thief.openid}))
        .await;
    assert_eq!(errcode(&v), 40003);
    let v = t
        .phone_number(&token, &json!({"code": code, "openid": "oNobody"}))
        .await;
    assert_eq!(errcode(&v), 40003);
    let v = t
        .phone_number(&token, &json!({"code": code, "openid": owner.openid}))
        .await;
    assert_eq!(errcode(&v), 0);
    assert_eq!(v["phone_info"]["phoneNumber"], "13800138000");
}

#[tokio::test]
async fn phone_number_body_errors_47001() {
    let t = start().await;
    let token = t.access_token().await;
    let path = format!("/wxa/business/getuserphonenumber?access_token={token}");
    for body in [
        "not json",
        "",
        "{}",
        r#"{"code":""}"#,
        r#"{"code":42}"#,
        r#"{"code":"x","openid":7}"#,
        "[1]",
    ] {
        assert_eq!(errcode(&t.post_raw(&path, body).await), 47001, "{body}");
    }
    let get = t.get(&path).await;
    assert_eq!(errcode(&get), 43002);
}

#[tokio::test]
async fn phone_number_per_user_limit_45011() {
    let t = start().await;
    t.sim().set_limits(Limits {
        phone_number_per_user_per_minute: 2,
        ..Limits::default()
    });
    let user = t.user("13800138000");
    let token = t.access_token().await;
    let codes: Vec<String> = (0..3).map(|_| t.phone_code(&user)).collect();
    assert_eq!(
        errcode(&t.phone_number(&token, &json!({"code": codes[0]})).await),
        0
    );
    assert_eq!(
        errcode(&t.phone_number(&token, &json!({"code": codes[1]})).await),
        0
    );
    assert_eq!(
        errcode(&t.phone_number(&token, &json!({"code": codes[2]})).await),
        45011
    );
    t.sim().advance_clock(60);
    let token = t.access_token().await;
    assert_eq!(
        errcode(&t.phone_number(&token, &json!({"code": codes[2]})).await),
        0
    );
}

#[tokio::test]
async fn business_per_app_limit() {
    let t = start().await;
    t.sim().set_limits(Limits {
        business_per_app_per_minute: Some(1),
        ..Limits::default()
    });
    let a = t.user("13800138000");
    let b = t.user("13800138001");
    assert_eq!(errcode(&t.code2session(&t.login_code(&a)).await), 0);
    assert_eq!(errcode(&t.code2session(&t.login_code(&b)).await), 45011);
    let token = t.access_token().await;
    let v = t
        .phone_number(&token, &json!({"code": t.phone_code(&a)}))
        .await;
    assert_eq!(errcode(&v), 0, "counted per route");
}
