//! The phone-verification quota over HTTP: the device API's packs and the button's 1400001, and
//! `/wxa/charge/usage/get` in WeChat's shape with its errcodes.

mod common;

use serde_json::{Value, json};

#[tokio::test]
async fn the_button_fails_with_1400001_when_the_quota_is_used_up() {
    let t = common::start().await;
    let user = t.user("13800138000");
    let quota = format!("/apps/{}/quota", t.app.appid);
    let (status, set) = t
        .device("POST", &quota, Some(r#"{"kind":"realtime","left":1}"#))
        .await;
    assert_eq!(
        (status, &set["left"], &set["spuId"]),
        (200, &json!(1), &json!("10000086"))
    );
    let tap = json!({"openid": user.openid, "kind": "realtime"}).to_string();
    let (status, code) = t.device("POST", "/phone-code", Some(&tap)).await;
    assert_eq!(status, 200, "{code}");
    let (status, refused) = t.device("POST", "/phone-code", Some(&tap)).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"], "no_quota");
    assert_eq!(refused["errno"], 1_400_001);
    assert!(refused.get("code").is_none());
    // The quick button has its own quota, untouched.
    let quick = json!({"openid": user.openid}).to_string();
    assert_eq!(t.device("POST", "/phone-code", Some(&quick)).await.0, 200);
    let (_, both) = t.device("GET", &quota, None).await;
    assert_eq!(both[0]["kind"], "quick");
    assert_eq!(
        (&both[0]["left"], &both[0]["used"]),
        (&json!(999), &json!(1))
    );
    assert_eq!(
        (&both[1]["left"], &both[1]["used"]),
        (&json!(0), &json!(1000))
    );
    let (status, bad) = t.device("POST", &quota, Some(r#"{"buy":0}"#)).await;
    assert_eq!(
        (status, bad["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, _) = t
        .device("POST", "/apps/wx0000000000000000/quota", Some("{}"))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn charge_usage_answers_wechats_shape_and_errcodes() {
    let t = common::start().await;
    let token = t.access_token().await;
    let path = |spu: &str| {
        format!("/wxa/charge/usage/get?access_token={token}&spuId={spu}&offset=0&limit=20")
    };
    // A fresh app answers as WeChat's example does: the unused trial "not yet" (2), nothing in effect.
    let fresh: Value = t.get(&path("10000077")).await;
    assert_eq!(
        (
            &fresh["all"],
            &fresh["effectiveAll"],
            &fresh["detailList"][0]["status"]
        ),
        (&json!("1000"), &json!("0"), &json!(2))
    );
    let user = t.user("13800138000");
    t.phone_code(&user);
    let quota = format!("/apps/{}/quota", t.app.appid);
    t.device("POST", &quota, Some(r#"{"buy":300}"#)).await;
    let v: Value = t.get(&path("10000077")).await;
    assert_eq!(v["errcode"], 0);
    assert_eq!(
        (&v["all"], &v["effectiveAll"], &v["effectiveUse"]),
        (&json!("1300"), &json!("1300"), &json!("1"))
    );
    assert_eq!(v["total"], 2);
    let trial = &v["detailList"][0];
    assert_eq!(
        (&trial["all"], &trial["used"], &trial["status"]),
        (&json!("1000"), &json!("1"), &json!(1))
    );
    assert_eq!(
        (&trial["spuId"], &trial["endTime"]),
        (&json!("10000077"), &json!(4_294_967_295u64))
    );
    assert_eq!(v["detailList"][1]["all"], "300");
    // Paging.
    let second = t
        .get(&format!(
            "/wxa/charge/usage/get?access_token={token}&spuId=10000077&offset=1&limit=1"
        ))
        .await;
    assert_eq!(second["detailList"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["detailList"][0]["all"], "300");
    // WeChat's errcodes: an unknown spuId, a malformed one, a limit over 20, no token.
    assert_eq!(common::errcode(&t.get(&path("10000001")).await), 10_120_700);
    assert_eq!(common::errcode(&t.get(&path("abc")).await), 10_120_002);
    let over = format!("/wxa/charge/usage/get?access_token={token}&spuId=10000077&limit=21");
    assert_eq!(common::errcode(&t.get(&over).await), 10_120_002);
    assert_eq!(
        common::errcode(&t.get("/wxa/charge/usage/get?spuId=10000077").await),
        41_001
    );
}

#[tokio::test]
async fn the_recent_average_answers_the_use_of_the_last_three_months() {
    let t = common::start().await;
    let token = t.access_token().await;
    let path = |spu: &str| {
        format!("/wxa/charge/usage/get_recent_average?access_token={token}&spuId={spu}")
    };
    // Nothing used yet: WeChat's "no recent data".
    assert_eq!(common::errcode(&t.get(&path("10000077")).await), 10_122_000);
    let user = t.user("13800138000");
    for _ in 0..4 {
        t.phone_code(&user);
    }
    let v: Value = t.get(&path("10000077")).await;
    assert_eq!(
        (&v["errcode"], &v["averageData"]),
        (&json!(0), &json!(2)),
        "{v}"
    );
    assert_eq!(common::errcode(&t.get(&path("10000086")).await), 10_122_000);
    assert_eq!(common::errcode(&t.get(&path("10000001")).await), 10_120_700);
    assert_eq!(common::errcode(&t.get(&path("x")).await), 10_120_002);
    assert_eq!(
        common::errcode(
            &t.get("/wxa/charge/usage/get_recent_average?spuId=10000077")
                .await
        ),
        41_001
    );
}
