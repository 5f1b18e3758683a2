//! Legacy decryption against fixtures made by pyca/cryptography (tests/fixtures/make_decrypt_fixtures.py).

use weixin::{AppId, AppSecret, Client, Config, DecryptError, Error, SessionKey};

#[test]
fn fixtures_from_an_independent_implementation() {
    let fixtures: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/decrypt.json")).unwrap();
    let appid = AppId::parse(fixtures["appid"].as_str().unwrap()).unwrap();
    let client = Client::new(Config::new(appid, AppSecret::new("unused"))).unwrap();
    let cases = fixtures["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let key = SessionKey::new(case["sessionKey"].as_str().unwrap());
        let result = client.decrypt_phone_number(
            &key,
            case["encryptedData"].as_str().unwrap(),
            case["iv"].as_str().unwrap(),
        );
        match case["expect"].as_str().unwrap() {
            "ok" => {
                let info = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(
                    info.phone.pure_phone_number,
                    case["purePhoneNumber"].as_str().unwrap(),
                    "{name}"
                );
                assert_eq!(
                    info.phone.country_code,
                    case["countryCode"].as_str().unwrap(),
                    "{name}"
                );
            }
            "watermark" => assert!(
                matches!(result, Err(Error::WatermarkMismatch { .. })),
                "{name}: {result:?}"
            ),
            "padding" => assert!(
                matches!(result, Err(Error::Decrypt(DecryptError::Padding))),
                "{name}: {result:?}"
            ),
            "json" => assert!(
                matches!(result, Err(Error::Decrypt(DecryptError::Json(_)))),
                "{name}: {result:?}"
            ),
            "base64" => assert!(
                matches!(result, Err(Error::Decrypt(DecryptError::Base64(_)))),
                "{name}: {result:?}"
            ),
            "length" => assert!(
                matches!(result, Err(Error::Decrypt(DecryptError::Length(_)))),
                "{name}: {result:?}"
            ),
            other => panic!("unknown expectation {other}"),
        }
    }
}
