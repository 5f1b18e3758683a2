//! WeChat's message push from outside: the real `wxlogin sim` pushes as WeChat does (its own signing and AES, not
//! the service's code) to the real `wxlogin serve` in production mode, app A in safe mode as JSON and app B in
//! plaintext as XML. A revoke of the phone deletes it and ends the sessions; a cancellation deletes the identity,
//! then the account. Replayed and forged pushes are refused with 4xx and change nothing.

mod common;

use common::product::{A, B, C, Options, Product, ok, refused};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

const TOKEN_A: &str = "tokenForAppA1";
const KEY_A: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const TOKEN_B: &str = "tokenForAppB2";
const ALICE: &str = "13800138000";
const BOB: &str = "13900139000";

async fn product() -> Product {
    let product = Product::start_with(Options {
        per_app: [
            "push_token_env = \"PUSH_TOKEN_A\"\npush_aes_key_env = \"PUSH_KEY_A\"",
            &format!("push_token = \"{TOKEN_B}\""),
            "",
        ],
        env: vec![
            ("PUSH_TOKEN_A", TOKEN_A.to_owned()),
            ("PUSH_KEY_A", KEY_A.to_owned()),
        ],
        ..Options::default()
    })
    .await;
    let target = |appid: &str, token: &str, key: Option<&str>, format: &str| {
        let mut t = json!({ "url": format!("{}/wechat/push/{appid}", product.base), "token": token, "format": format });
        if let Some(key) = key {
            t["encodingAesKey"] = json!(key);
        }
        t
    };
    for (appid, body) in [
        (A, target(A, TOKEN_A, Some(KEY_A), "json")),
        (B, target(B, TOKEN_B, None, "xml")),
    ] {
        let response = product
            .http
            .put(format!("{}/sandbox/v1/apps/{appid}/push", product.sim))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    product
}

fn sign(parts: &[&str]) -> String {
    let mut parts = parts.to_vec();
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Product {
    /// The user revokes (`revoke_info`) or cancels through the simulator: what WeChat sent, and the answer.
    async fn wechat(&self, what: &str, openid: &str) -> Value {
        self.device(&format!("/users/{what}"), json!({ "openid": openid }))
            .await
    }

    /// POSTs exactly `url` and `body`: (status, body).
    async fn raw(&self, url: &str, content_type: &str, body: &str) -> (u16, String) {
        let response = self
            .http
            .post(url)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Rows that a push may change, to see that a refused one changed nothing.
    async fn state(&self) -> Vec<i64> {
        let mut counts = self.counts().await;
        counts.push(
            self.count("SELECT COUNT(*) FROM accounts WHERE phone_hash IS NOT NULL")
                .await,
        );
        counts
    }
}

fn error_of(answer: &(u16, String)) -> String {
    serde_json::from_str::<Value>(&answer.1).unwrap()["error"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn the_url_check_answers_echostr_only_when_signed() {
    let product = product().await;
    let (ts, nonce) = (now().to_string(), "12345");
    let url = |app: &str, signature: &str| {
        format!(
            "{}/wechat/push/{app}?signature={signature}&timestamp={ts}&nonce={nonce}&echostr=7423452345",
            product.base
        )
    };
    let get = |url: String| async {
        let r = product.http.get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(
        get(url(A, &sign(&[TOKEN_A, &ts, nonce]))).await,
        (200, "7423452345".to_owned())
    );
    assert_eq!(get(url(B, &sign(&[TOKEN_B, &ts, nonce]))).await.0, 200);
    assert_eq!(get(url(A, &sign(&[TOKEN_B, &ts, nonce]))).await.0, 401);
    assert_eq!(get(url(C, &sign(&[TOKEN_A, &ts, nonce]))).await.0, 404);
    assert_eq!(get(url("wx0000000000000000", "x")).await.0, 404);
}

#[tokio::test]
async fn a_revoke_deletes_the_phone_and_ends_the_sessions_in_safe_json_and_plaintext_xml() {
    let product = product().await;
    let alice_a = product.user(A, ALICE).await;
    let alice_b = product.user(B, ALICE).await;
    let bob_b = product.user(B, BOB).await;
    let alice = ok(&product.get_phone(A, &alice_a, None).await).clone();
    let alice_in_b = ok(&product.get_phone(B, &alice_b, None).await).clone();
    let bob = ok(&product.get_phone(B, &bob_b, None).await).clone();
    let before = product.state().await;

    // Safe mode, JSON: Alice withdraws the phone in app A.
    let pushed = product.wechat("revoke", &alice_a).await;
    assert!(
        pushed["sent"]["url"]
            .as_str()
            .unwrap()
            .contains("encrypt_type=aes&msg_signature="),
        "{pushed}"
    );
    assert!(
        pushed["sent"]["body"].as_str().unwrap().contains("Encrypt"),
        "{pushed}"
    );
    assert_eq!(
        pushed["answer"],
        json!({ "status": 200, "body": "success" })
    );
    // Her phone is gone and every session of her account ended (both apps); her identities stay; Bob is untouched.
    refused(&product.me(A, &alice["token"]).await, 401, "unauthorized");
    refused(
        &product.me(B, &alice_in_b["token"]).await,
        401,
        "unauthorized",
    );
    ok(&product.me(B, &bob["token"]).await);
    let after = product.state().await;
    assert_eq!(after[1], before[1], "identities stay");
    assert_eq!(after[4], before[4] - 1, "one phone fewer");
    assert_eq!(
        product
            .count("SELECT COUNT(*) FROM audit_log WHERE event = 'phone_revoked' AND reason = 'wechat_revoke'")
            .await,
        1
    );
    // Her next login asks for the phone again.
    assert_eq!(
        ok(&product.silent(A, &alice_a).await)["status"],
        "phone_required"
    );

    // Plaintext mode, XML: Bob withdraws the phone in app B.
    let pushed = product.wechat("revoke", &bob_b).await;
    assert!(
        pushed["sent"]["body"]
            .as_str()
            .unwrap()
            .starts_with("<xml>"),
        "{pushed}"
    );
    assert!(
        !pushed["sent"]["url"]
            .as_str()
            .unwrap()
            .contains("msg_signature"),
        "{pushed}"
    );
    assert_eq!(
        pushed["answer"],
        json!({ "status": 200, "body": "success" })
    );
    refused(&product.me(B, &bob["token"]).await, 401, "unauthorized");

    // The same delivery again is a replay: 409, nothing changes.
    let state = product.state().await;
    let sent = &pushed["sent"];
    let replay = product
        .raw(
            sent["url"].as_str().unwrap(),
            sent["contentType"].as_str().unwrap(),
            sent["body"].as_str().unwrap(),
        )
        .await;
    assert_eq!(
        (replay.0, error_of(&replay).as_str()),
        (409, "push_replayed")
    );
    assert_eq!(product.state().await, state);
}

#[tokio::test]
async fn forged_and_replayed_pushes_are_refused_with_4xx_and_change_nothing() {
    let product = product().await;
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
    let with = |name: &str, value: &str| {
        query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k == name => format!("{k}={value}"),
                _ => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    };
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
            &weixin::push::PushMessage {
                to_user_name: "gh_x".into(),
                from_user_name: alice_a.clone(),
                create_time: now(),
                msg_type: "event".into(),
                event: Some("user_authorization_revoke".into()),
                openid: Some(alice_a.clone()),
                appid: Some(A.into()),
                revoke_info: Some("8".into()),
            },
            weixin::push::PushFormat::Json,
            true,
            now(),
            "98765",
        );
    let for_b_query: Vec<String> = for_b
        .query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();

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
            (for_b_query.join("&"), for_b.body.clone()),
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
    let metrics = product
        .http
        .get(format!("{}/metrics", product.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused = |event: &str, outcome: &str| {
        let series =
            format!("wxlogin_wechat_pushes_total{{event=\"{event}\",outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .map_or(0.0, |v| v.parse::<f64>().unwrap())
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

#[tokio::test]
async fn a_cancellation_deletes_the_identity_then_the_account_and_unknown_users_change_nothing() {
    let product = product().await;
    let alice_a = product.user(A, ALICE).await;
    let alice_b = product.user(B, ALICE).await;
    let alice = ok(&product.get_phone(A, &alice_a, None).await).clone();
    let alice_in_b = ok(&product.get_phone(B, &alice_b, None).await).clone();
    let account = alice["accountId"].as_str().unwrap().to_owned();

    // Someone WeChat knows but we never saw: acknowledged, nothing changes.
    let stranger = product.user(A, "13600136000").await;
    let state = product.state().await;
    assert_eq!(
        product.wechat("cancel", &stranger).await["answer"]["body"],
        "success"
    );
    assert_eq!(
        product.wechat("revoke", &stranger).await["answer"]["body"],
        "success"
    );
    assert_eq!(product.state().await, state);

    // Alice closes her WeChat account; B's push comes first (plaintext XML): that identity goes, the account
    // stays with A's, which verified the phone (so the phone stays).
    assert_eq!(
        product.wechat("cancel", &alice_b).await["answer"]["body"],
        "success"
    );
    refused(
        &product.me(B, &alice_in_b["token"]).await,
        401,
        "unauthorized",
    );
    assert_eq!(
        ok(&product.me(A, &alice["token"]).await)["identities"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Then A's (safe mode JSON): the last identity, so the account and its phone go.
    assert_eq!(
        product.wechat("cancel", &alice_a).await["answer"]["body"],
        "success"
    );
    refused(&product.me(A, &alice["token"]).await, 401, "unauthorized");
    assert_eq!(
        product
            .count(&format!(
                "SELECT COUNT(*) FROM accounts WHERE id = '{account}'"
            ))
            .await,
        0
    );
    assert_eq!(
        product
            .count(&format!("SELECT COUNT(*) FROM audit_log WHERE account_id = '{account}' AND reason = 'wechat_cancellation'"))
            .await,
        3,
        "two identity_deleted, one account_deleted"
    );
    // WeChat's retry of a cancellation finds nothing left: acknowledged.
    assert_eq!(
        product.wechat("cancel", &alice_a).await["answer"]["body"],
        "success"
    );
}
