//! Pushes that cannot be trusted, from outside (docs/privacy.md, "WeChat's pushes"): forged, stale or replayed,
//! in safe mode (JSON, app A) and in plaintext (XML, app B), each answers the documented 4xx, never a 5xx, and
//! changes nothing. Most forgeries start from a push that names a real, logged-in user and that, delivered as it
//! was sealed, does delete her phone (the test delivers it last): so "nothing changed" could have gone otherwise.
//! The pushes are sealed by `weixin::push` with the Token and key `serve` was given, as WeChat seals them.

mod common;

use common::product::{A, B, Product, ok, refused};
use common::push::{
    Alice, KEY_A, TOKEN_A, TOKEN_B, assert_refused, deliver, error_of, event, now, push_product,
    query_of, sign, with_param,
};
use serde_json::{Value, json};
use weixin::push::{PushFormat, PushKeys, SealedPush};

const ALICE: &str = "13800138000";
const REVOKE: &str = "user_authorization_revoke";

#[tokio::test]
async fn plaintext_xml_forgeries_naming_a_logged_in_user_are_refused_and_change_nothing() {
    let product = push_product(None).await;
    let alice = Alice::log_in(&product, B).await;
    let keys = PushKeys::new(TOKEN_B, None).unwrap();
    let revoke = event(B, &alice.openid, REVOKE, Some("8"));
    let seal = |ts: i64, nonce: &str| keys.seal(B, &revoke, PushFormat::Xml, false, ts, nonce);
    let genuine = seal(now(), "20001");
    assert!(genuine.body.starts_with("<xml>"), "{}", genuine.body);

    let plain = |push: SealedPush| (query_of(&push), push.body);
    // Signed over the right values, but with app A's Token: a sender that does not know B's.
    let ts = now().to_string();
    let other_token = format!(
        "signature={}&timestamp={ts}&nonce=20002",
        sign(&[TOKEN_A, &ts, "20002"])
    );
    let cases = [
        (
            "bad signature",
            (
                with_param(&query_of(&genuine), "signature", &"0".repeat(40)),
                genuine.body.clone(),
            ),
            401,
            "push_signature_invalid",
        ),
        (
            "another app's Token",
            (other_token, genuine.body.clone()),
            401,
            "push_signature_invalid",
        ),
        (
            "stale: an hour old, correctly signed",
            plain(seal(now() - 3600, "20003")),
            401,
            "push_stale",
        ),
        (
            "from the future, correctly signed",
            plain(seal(now() + 3600, "20004")),
            401,
            "push_stale",
        ),
    ];
    forgeries_then_the_genuine_push(&product, B, alice, &cases, &genuine).await;
}

#[tokio::test]
async fn safe_mode_forgeries_naming_a_logged_in_user_are_refused_and_change_nothing() {
    let product = push_product(None).await;
    let alice = Alice::log_in(&product, A).await;
    let keys = PushKeys::new(TOKEN_A, Some(KEY_A)).unwrap();
    let revoke = event(A, &alice.openid, REVOKE, Some("8"));
    let genuine = keys.seal(A, &revoke, PushFormat::Json, true, now(), "30001");
    let query = query_of(&genuine);
    let encrypt = serde_json::from_str::<Value>(&genuine.body).unwrap()["Encrypt"]
        .as_str()
        .unwrap()
        .to_owned();
    let truncated = {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        engine.encode(&engine.decode(&encrypt).unwrap()[..64])
    };
    // Signed with our Token over fresh values, around a ciphertext of the test's choosing (the signatures only:
    // the ciphertext is WeChat's own, cut short).
    let signed_around = |encrypt: &str| {
        let (ts, nonce) = (now().to_string(), rand::random::<u32>().to_string());
        let query = format!(
            "signature={}&timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={}",
            sign(&[TOKEN_A, &ts, &nonce]),
            sign(&[TOKEN_A, &ts, &nonce, encrypt])
        );
        (
            query,
            json!({ "ToUserName": "gh_x", "Encrypt": encrypt }).to_string(),
        )
    };
    // Sealed with our Token and key, but for app B inside the ciphertext.
    let for_b = keys.seal(B, &revoke, PushFormat::Json, true, now(), "30002");

    let cases = [
        (
            "bad signature",
            (
                with_param(&query, "signature", &"0".repeat(40)),
                genuine.body.clone(),
            ),
            401,
            "push_signature_invalid",
        ),
        (
            "bad msg_signature",
            (
                with_param(&query, "msg_signature", &"0".repeat(40)),
                genuine.body.clone(),
            ),
            401,
            "push_signature_invalid",
        ),
        (
            "wrong appid inside the ciphertext",
            (query_of(&for_b), for_b.body.clone()),
            400,
            "push_malformed",
        ),
        (
            "truncated ciphertext, correctly signed",
            signed_around(&truncated),
            400,
            "push_malformed",
        ),
        (
            "truncated ciphertext under the genuine signatures",
            (
                query.clone(),
                json!({ "ToUserName": "gh_x", "Encrypt": truncated }).to_string(),
            ),
            401,
            "push_signature_invalid",
        ),
    ];
    forgeries_then_the_genuine_push(&product, A, alice, &cases, &genuine).await;
}

/// A forgery: what it is, its query and body, and the status and error id it must get.
type Forgery<'a> = (&'a str, (String, String), u16, &'a str);

/// Delivers each forgery to `appid` (refused as listed, nothing changed, Alice still logged in), then the genuine
/// push (her phone goes: the forgeries were of something that acts), then, once she logged in again, the genuine
/// push once more: a replay, 409, and her new phone and session stay.
async fn forgeries_then_the_genuine_push(
    product: &Product,
    appid: &str,
    alice: Alice,
    cases: &[Forgery<'_>],
    genuine: &SealedPush,
) {
    let state = product.state().await;
    for (what, (query, body), status, error) in cases {
        let answer = product
            .push_raw(appid, query, genuine.content_type, body)
            .await;
        assert_refused(&answer, *status, error, what);
        assert_eq!(product.state().await, state, "{what}");
        alice.untouched(product, appid, what).await;
    }
    assert_eq!(
        deliver(product, appid, genuine).await,
        (200, "success".to_owned())
    );
    refused(
        &product.me(appid, &alice.login["token"]).await,
        401,
        "unauthorized",
    );
    let again = Alice::log_in(product, appid).await;
    let state = product.state().await;
    assert_refused(
        &deliver(product, appid, genuine).await,
        409,
        "push_replayed",
        "replay",
    );
    assert_eq!(product.state().await, state);
    again.untouched(product, appid, "the replay").await;
}

/// Every kind of refusal and its metric, from a captured push about a user the service never saw (the tests above
/// name a logged-in one).
#[tokio::test]
async fn forged_and_replayed_pushes_are_refused_with_4xx_and_change_nothing() {
    let product = push_product(None).await;
    let alice_a = product.user(A, ALICE).await;
    let alice = ok(&product.get_phone(A, &alice_a, None).await).clone();
    // A real push as WeChat made it (for a user we never saw, so it changed nothing), captured: every forgery
    // below starts from it.
    let other = product.user(A, "13700137000").await;
    let captured = product.wechat("revoke", &other).await["sent"].clone();
    let url = captured["url"].as_str().unwrap().to_owned();
    let body: Value = serde_json::from_str(captured["body"].as_str().unwrap()).unwrap();
    let encrypt = body["Encrypt"].as_str().unwrap().to_owned();
    let (path, query) = url.split_once('?').unwrap();
    let state = product.state().await;

    let post = |query: String, body: String| {
        let product = &product;
        let path = path.to_owned();
        async move {
            product
                .raw(&format!("{path}?{query}"), "application/json", &body)
                .await
        }
    };
    // Signed with our Token over fresh values, around an Encrypt of the test's choosing.
    let signed = |encrypt: &str, ts: i64| {
        let (ts, nonce) = (ts.to_string(), rand::random::<u32>().to_string());
        let query = format!(
            "signature={}&timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={}",
            sign(&[TOKEN_A, &ts, &nonce]),
            sign(&[TOKEN_A, &ts, &nonce, encrypt])
        );
        (
            query,
            json!({ "ToUserName": "gh_x", "Encrypt": encrypt }).to_string(),
        )
    };
    let with = |name: &str, value: &str| with_param(query, name, value);
    let bytes = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(&encrypt)
            .unwrap()
    };
    let truncated = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&bytes[..bytes.len() - 32])
    };
    // Sealed by WeChat's rules with our Token and key, but for another appid.
    let for_b = weixin::push::PushKeys::new(TOKEN_A, Some(KEY_A))
        .unwrap()
        .seal(
            B,
            &event(A, &alice_a, "user_authorization_revoke", Some("8")),
            weixin::push::PushFormat::Json,
            true,
            now(),
            "98765",
        );
    let cases: Vec<(&str, (String, String), u16, &str)> = vec![
        (
            "bad signature",
            (
                with("signature", &"0".repeat(40)),
                captured["body"].as_str().unwrap().to_owned(),
            ),
            401,
            "push_signature_invalid",
        ),
        (
            "bad msg_signature",
            (
                with("msg_signature", &"0".repeat(40)),
                captured["body"].as_str().unwrap().to_owned(),
            ),
            401,
            "push_signature_invalid",
        ),
        (
            "another Encrypt under the captured signature",
            (
                query.to_owned(),
                json!({ "ToUserName": "gh_x", "Encrypt": truncated }).to_string(),
            ),
            401,
            "push_signature_invalid",
        ),
        (
            "no signatures",
            (
                "timestamp=1&nonce=2".to_owned(),
                captured["body"].as_str().unwrap().to_owned(),
            ),
            401,
            "push_signature_invalid",
        ),
        (
            "truncated ciphertext, correctly signed",
            signed(&truncated, now()),
            400,
            "push_malformed",
        ),
        (
            "not base64, correctly signed",
            signed("%%%not-base64%%%", now()),
            400,
            "push_malformed",
        ),
        (
            "wrong appid inside the ciphertext",
            (query_of(&for_b), for_b.body.clone()),
            400,
            "push_malformed",
        ),
        (
            "stale timestamp",
            signed(&encrypt, now() - 3600),
            401,
            "push_stale",
        ),
        (
            "the lowest timestamp there is",
            signed(&encrypt, i64::MIN),
            401,
            "push_stale",
        ),
        ("the highest", signed(&encrypt, i64::MAX), 401, "push_stale"),
        (
            "not JSON nor XML, correctly signed",
            (signed(&encrypt, now()).0, "hello".to_owned()),
            400,
            "push_malformed",
        ),
    ];
    for (what, (query, body), status, error) in cases {
        let answer = post(query, body).await;
        assert_eq!(
            (answer.0, error_of(&answer).as_str()),
            (status, error),
            "{what}: {}",
            answer.1
        );
        assert_eq!(product.state().await, state, "{what} changed nothing");
    }
    // Every refusal is counted, by its error id (the push-refused alert reads these).
    let metrics = common::metrics_text(&product.http, &product.base).await;
    let refused = |event: &str, outcome: &str| {
        common::metric_series(
            &metrics,
            "wxlogin_wechat_pushes_total",
            &[("event", event), ("outcome", outcome)],
        )
    };
    assert_eq!(
        refused("unread", "push_signature_invalid"),
        4.0,
        "{metrics}"
    );
    assert_eq!(refused("unread", "push_malformed"), 4.0, "{metrics}");
    assert_eq!(refused("revoke_phone", "push_stale"), 3.0, "{metrics}");

    // The captured push itself, replayed: 409. Alice, whom a forged revoke named, is still logged in.
    let replay = post(
        query.to_owned(),
        captured["body"].as_str().unwrap().to_owned(),
    )
    .await;
    assert_eq!(
        (replay.0, error_of(&replay).as_str()),
        (409, "push_replayed")
    );
    ok(&product.me(A, &alice["token"]).await);
}
