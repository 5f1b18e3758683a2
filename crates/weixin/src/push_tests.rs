use super::*;

const VECTOR_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const VECTOR_APPID: &str = "wx134c8103faa5a59e";
const VECTOR_ENCRYPT: &str = "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7";

fn query(pairs: &[(String, String)]) -> PushQuery {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    PushQuery {
        signature: get("signature"),
        timestamp: get("timestamp"),
        nonce: get("nonce"),
        echostr: get("echostr"),
        encrypt_type: get("encrypt_type"),
        msg_signature: get("msg_signature"),
        openid: get("openid"),
    }
}

fn revoke(appid: &str) -> PushMessage {
    PushMessage {
        to_user_name: "gh_0123456789ab".into(),
        from_user_name: "oUser".into(),
        create_time: 1_764_000_000,
        msg_type: "event".into(),
        event: Some("user_authorization_revoke".into()),
        openid: Some("oUser".into()),
        appid: Some(appid.into()),
        revoke_info: Some("8".into()),
    }
}

#[test]
fn wechats_url_check_vector() {
    let keys = PushKeys::new("AAAAA", None).unwrap();
    let mut q = PushQuery {
        signature: Some("f464b24fc39322e44b38aa78f5edd27bd1441696".into()),
        timestamp: Some("1714036504".into()),
        nonce: Some("1514711492".into()),
        echostr: Some("4375120948345356249".into()),
        ..PushQuery::default()
    };
    assert_eq!(keys.check_url(&q).unwrap(), "4375120948345356249");
    q.nonce = Some("1514711493".into());
    assert_eq!(keys.check_url(&q), Err(PushError::BadSignature));
    q.signature = None;
    assert_eq!(
        keys.check_url(&q),
        Err(PushError::MissingParameter("signature"))
    );
}

#[test]
fn wechats_safe_mode_vector() {
    let keys = PushKeys::new("AAAAA", Some(VECTOR_KEY)).unwrap();
    assert_eq!(
        keys.sign(&["1713424427", "415670741", VECTOR_ENCRYPT]),
        "03e0812039325c2712ef5f0f980fd14c70d6e307"
    );
    let key = keys.aes_key.unwrap();
    let plain = decrypt(&key, VECTOR_ENCRYPT, VECTOR_APPID).unwrap();
    assert_eq!(
        String::from_utf8(plain).unwrap(),
        "<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>"
    );
    assert_eq!(
        decrypt(&key, VECTOR_ENCRYPT, "wx0000000000000000"),
        Err(PushError::WrongAppid)
    );
}

#[test]
fn seal_then_open_in_every_mode_and_format() {
    let keys = PushKeys::new("token123", Some(VECTOR_KEY)).unwrap();
    let message = revoke("wx0123456789abcdef");
    for format in [PushFormat::Json, PushFormat::Xml] {
        for encrypt in [false, true] {
            let sealed = keys.seal(
                "wx0123456789abcdef",
                &message,
                format,
                encrypt,
                1_764_000_001,
                "n0nce",
            );
            let opened = keys
                .open(
                    "wx0123456789abcdef",
                    &query(&sealed.query),
                    sealed.body.as_bytes(),
                )
                .unwrap_or_else(|e| panic!("{format:?} {encrypt}: {e}: {}", sealed.body));
            assert_eq!(opened, message, "{format:?} {encrypt}");
            assert_eq!(sealed.body.contains("Encrypt"), encrypt);
        }
    }
}

#[test]
fn numbers_or_strings_and_unknown_fields() {
    let keys = PushKeys::new("token123", None).unwrap();
    let sealed = keys.seal("wx", &revoke("wx"), PushFormat::Json, false, 1, "n");
    let body = r#"{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":"1764000000","MsgType":"event",
        "Event":"user_authorization_revoke","OpenID":"o1","AppID":"wx","RevokeInfo":8,"PluginID":"p"}"#;
    let opened = keys
        .open("wx", &query(&sealed.query), body.as_bytes())
        .unwrap();
    assert_eq!(opened.create_time, 1_764_000_000);
    assert_eq!(opened.revoke_info.as_deref(), Some("8"));
}

#[test]
fn forgeries_are_refused() {
    let keys = PushKeys::new("token123", Some(VECTOR_KEY)).unwrap();
    let appid = "wx0123456789abcdef";
    let sealed = keys.seal(
        appid,
        &revoke(appid),
        PushFormat::Json,
        true,
        1_764_000_001,
        "n",
    );
    let good = query(&sealed.query);
    let body = sealed.body.as_bytes();

    let mut q = good.clone();
    q.signature = Some("0".repeat(40));
    assert_eq!(keys.open(appid, &q, body), Err(PushError::BadSignature));
    let mut q = good.clone();
    q.msg_signature = Some("0".repeat(40));
    assert_eq!(keys.open(appid, &q, body), Err(PushError::BadMsgSignature));
    let mut q = good.clone();
    q.msg_signature = None;
    assert_eq!(
        keys.open(appid, &q, body),
        Err(PushError::MissingParameter("msg_signature"))
    );
    // Another Token signs nothing of ours; no key configured cannot open safe mode.
    let other = PushKeys::new("token124", Some(VECTOR_KEY)).unwrap();
    assert_eq!(other.open(appid, &good, body), Err(PushError::BadSignature));
    let plain_only = PushKeys::new("token123", None).unwrap();
    assert_eq!(plain_only.open(appid, &good, body), Err(PushError::NoKey));
    // Sealed for another appid with our Token and key: signed, but not ours.
    let theirs = keys.seal(
        "wx1111111111111111",
        &revoke(appid),
        PushFormat::Json,
        true,
        1,
        "m",
    );
    assert_eq!(
        keys.open(appid, &query(&theirs.query), theirs.body.as_bytes()),
        Err(PushError::WrongAppid)
    );
}

/// Truncated or flipped ciphertexts, correctly signed (the attacker would need the Token for that): always an
/// error, never a panic, never the message.
#[test]
fn every_truncation_and_bit_flip_of_the_ciphertext_is_an_error() {
    let keys = PushKeys::new("token123", Some(VECTOR_KEY)).unwrap();
    let key = keys.aes_key.unwrap();
    let appid = "wx0123456789abcdef";
    let sealed = keys.seal(appid, &revoke(appid), PushFormat::Json, true, 1, "n");
    let encrypt: String =
        serde_json::from_str::<serde_json::Value>(&sealed.body).unwrap()["Encrypt"]
            .as_str()
            .unwrap()
            .to_owned();
    let bytes = STANDARD.decode(&encrypt).unwrap();
    for cut in 0..bytes.len() {
        let truncated = STANDARD.encode(&bytes[..cut]);
        assert!(decrypt(&key, &truncated, appid).is_err(), "cut at {cut}");
    }
    for i in 0..encrypt.len() {
        let mut text = encrypt.clone().into_bytes();
        text[i] = if text[i] == b'A' { b'B' } else { b'A' };
        let text = String::from_utf8(text).unwrap();
        if text == encrypt {
            continue;
        }
        // A flip may still decrypt to something (CBC), but never to the message for this appid intact.
        if let Ok(plain) = decrypt(&key, &text, appid) {
            assert!(
                parse(&plain).map(|m| m != revoke(appid)).unwrap_or(true),
                "flip at {i}"
            );
        }
    }
    assert_eq!(
        decrypt(&key, "not base64!", appid),
        Err(PushError::BadCiphertext)
    );
}

#[test]
fn keys_of_the_wrong_shape_are_refused_and_nothing_prints() {
    assert_eq!(
        PushKeys::new("t", Some("short")).unwrap_err(),
        PushError::BadKey
    );
    assert_eq!(
        PushKeys::new("t", Some(&"-".repeat(43))).unwrap_err(),
        PushError::BadKey
    );
    let keys = PushKeys::new("s3cr3tToken", Some(VECTOR_KEY)).unwrap();
    let debug = format!("{keys:?}");
    assert!(
        !debug.contains("s3cr3t") && !debug.contains("AAAA"),
        "{debug}"
    );
}

#[test]
fn bodies_that_are_not_messages() {
    let keys = PushKeys::new("token123", None).unwrap();
    let sealed = keys.seal("wx", &revoke("wx"), PushFormat::Xml, false, 1, "n");
    let q = query(&sealed.query);
    for body in [
        "",
        "   ",
        "plain text",
        "{",
        "<xml>",
        "{\"MsgType\":1}",
        "<xml><MsgType>event</MsgType></xml>",
    ] {
        assert!(
            matches!(
                keys.open("wx", &q, body.as_bytes()),
                Err(PushError::Malformed(_))
            ),
            "{body:?}"
        );
    }
}
