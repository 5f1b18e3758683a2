//! The token routes over HTTP, as their RFCs shape them: refresh rotation and reuse detection (our JSON route and
//! RFC 6749's refresh grant), revocation (RFC 7009), introspection (RFC 7662) for `[[clients]]`, userinfo and
//! discovery. Sandbox mode in process.

mod common;

use base64::Engine as _;
use common::{TestApp, assert_error, spawn_with, temp_dir};
use serde_json::{Value, json};
use wxlogin::config::{ServeArgs, TokenArgs};

const CLIENT: &str = "orders-api";
const CLIENT_SECRET: &str = "s3cret-of-the-orders-api";

async fn app_with(access_ttl: &str) -> TestApp {
    let dir = temp_dir("oauth");
    let config = dir.join("wxlogin.toml");
    std::fs::write(
        &config,
        format!("[[clients]]\nid = \"{CLIENT}\"\nsecret = \"{CLIENT_SECRET}\"\n"),
    )
    .unwrap();
    spawn_with(ServeArgs {
        config: Some(config),
        tokens: TokenArgs {
            access_token_ttl: Some(access_ttl.into()),
            ..Default::default()
        },
        ..common::sandbox_args(&dir)
    })
    .await
}

/// A new person logged in: the login answer's `data`.
async fn login(app: &TestApp, phone: &str) -> Value {
    let openid = app.user(phone).await;
    let (status, body) = app.get_phone(&openid).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap().to_owned()
}

/// POST a form; answers status, headers and the body as JSON (null if none).
async fn form(
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let (status, _, body) = form(
        app,
        "/oauth2/introspect",
        &[("token", token)],
        Some((CLIENT, CLIENT_SECRET)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn each_refresh_gives_a_new_pair_and_a_reused_refresh_token_ends_the_session() {
    let app = app_with("15m").await;
    let first = login(&app, "13800138201").await;
    let (status, refreshed) = app
        .post(
            "/api/v1/refresh",
            json!({ "refreshToken": first["refreshToken"] }),
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let second = &refreshed["data"];
    assert_ne!(second["refreshToken"], first["refreshToken"]);
    assert_ne!(second["token"], first["token"]);
    assert_eq!(second["accountId"], first["accountId"]);
    assert_eq!(second["expiresIn"], 15 * 60);
    let (status, me) = app.get("/api/v1/me", Some(&text(&second["token"]))).await;
    assert_eq!(status, 200, "{me}");

    // The first refresh token again: the whole session ends, the newer tokens with it.
    let reused = app
        .post(
            "/api/v1/refresh",
            json!({ "refreshToken": first["refreshToken"] }),
        )
        .await;
    assert_error(&reused, 401, "refresh_reused");
    let newer = app
        .post(
            "/api/v1/refresh",
            json!({ "refreshToken": second["refreshToken"] }),
        )
        .await;
    assert_error(&newer, 401, "refresh_invalid");
    let me = app.get("/api/v1/me", Some(&text(&second["token"]))).await;
    assert_error(&me, 401, "unauthorized");

    let malformed = app
        .post("/api/v1/refresh", json!({ "refreshToken": "wxr_short" }))
        .await;
    assert_error(&malformed, 401, "refresh_invalid");
    assert_error(
        &app.post("/api/v1/refresh", json!({})).await,
        400,
        "invalid_field",
    );
}

#[tokio::test]
async fn the_refresh_grant_answers_as_rfc_6749_says() {
    let app = app_with("15m").await;
    let first = login(&app, "13800138202").await;
    let refresh = text(&first["refreshToken"]);
    let appid = text(&first["appid"]);
    let grant = [("grant_type", "refresh_token"), ("refresh_token", &refresh)];
    let (status, headers, body) = form(&app, "/oauth2/token", &grant, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 15 * 60);
    assert!(text(&body["access_token"]).starts_with("eyJ"));
    assert!(text(&body["refresh_token"]).starts_with("wxr_"));
    assert_eq!(headers["cache-control"], "no-store");
    let (status, me) = app
        .get("/api/v1/me", Some(&text(&body["access_token"])))
        .await;
    assert_eq!(status, 200, "{me}");

    let rfc_error = |answer: (u16, reqwest::header::HeaderMap, Value), error: &str| {
        assert_eq!(
            (answer.0, answer.2["error"].as_str()),
            (400, Some(error)),
            "{}",
            answer.2
        );
        assert!(answer.2["error_description"].is_string());
    };
    // The rotated one again: invalid_grant, and the session is over.
    rfc_error(
        form(&app, "/oauth2/token", &grant, None).await,
        "invalid_grant",
    );
    let next = text(&body["refresh_token"]);
    let next_grant = [("grant_type", "refresh_token"), ("refresh_token", &next)];
    rfc_error(
        form(&app, "/oauth2/token", &next_grant, None).await,
        "invalid_grant",
    );

    let other = login(&app, "13800138203").await;
    let other_refresh = text(&other["refreshToken"]);
    rfc_error(
        form(
            &app,
            "/oauth2/token",
            &[
                ("grant_type", "password"),
                ("refresh_token", &other_refresh),
            ],
            None,
        )
        .await,
        "unsupported_grant_type",
    );
    rfc_error(
        form(
            &app,
            "/oauth2/token",
            &[("refresh_token", &other_refresh)],
            None,
        )
        .await,
        "invalid_request",
    );
    rfc_error(
        form(
            &app,
            "/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "wxr_nope"),
            ],
            None,
        )
        .await,
        "invalid_grant",
    );
    rfc_error(
        form(
            &app,
            "/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("grant_type", "refresh_token"),
                ("refresh_token", &other_refresh),
            ],
            None,
        )
        .await,
        "invalid_request",
    );
    // JSON is not a form.
    let (status, json_body) = app
        .post(
            "/oauth2/token",
            json!({ "grant_type": "refresh_token", "refresh_token": other_refresh }),
        )
        .await;
    assert_eq!(
        (status, json_body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // The right app's client_id is accepted; another one is refused.
    let with_client = [
        ("grant_type", "refresh_token"),
        ("refresh_token", &other_refresh),
        ("client_id", "wx0000000000000000"),
    ];
    rfc_error(
        form(&app, "/oauth2/token", &with_client, None).await,
        "invalid_grant",
    );
    let third = login(&app, "13800138204").await;
    let third_refresh = text(&third["refreshToken"]);
    let own_client = [
        ("grant_type", "refresh_token"),
        ("refresh_token", &third_refresh),
        ("client_id", &appid),
    ];
    assert_eq!(form(&app, "/oauth2/token", &own_client, None).await.0, 200);
}

#[tokio::test]
async fn introspection_tells_a_live_token_from_a_revoked_expired_or_foreign_one() {
    let app = app_with("2s").await;
    let user = login(&app, "13800138205").await;
    let token = text(&user["token"]);

    let live = introspect(&app, &token).await;
    assert_eq!(live["active"], true, "{live}");
    assert_eq!(live["sub"], user["accountId"]);
    assert_eq!(live["client_id"], user["appid"]);
    assert_eq!(live["token_type"], "Bearer");
    assert_eq!(live["aud"], "wxlogin");
    assert!(live["exp"].as_i64().unwrap() > live["iat"].as_i64().unwrap());
    // Client credentials in the form work as well as HTTP Basic.
    let (status, _, posted) = form(
        &app,
        "/oauth2/introspect",
        &[
            ("token", &token),
            ("client_id", CLIENT),
            ("client_secret", CLIENT_SECRET),
        ],
        None,
    )
    .await;
    assert_eq!((status, &posted["active"]), (200, &json!(true)));

    // Without valid client credentials: 401 invalid_client, whatever the token.
    for basic in [
        None,
        Some((CLIENT, "wrong-secret-wrong-secret")),
        Some(("someone-else", CLIENT_SECRET)),
    ] {
        let (status, headers, body) =
            form(&app, "/oauth2/introspect", &[("token", &token)], basic).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{basic:?}"
        );
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }

    // A token of another service (its own keys): not active here.
    let foreign_app = app_with("15m").await;
    let foreign = login(&foreign_app, "13800138206").await;
    assert_eq!(
        introspect(&app, &text(&foreign["token"])).await,
        json!({ "active": false })
    );
    assert_eq!(
        introspect(&app, "not-a-token").await,
        json!({ "active": false })
    );

    // Expired: wait for the clock to pass the token's exp (the service uses the system clock here).
    let exp = live["exp"].as_i64().unwrap();
    while now() < exp {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(introspect(&app, &token).await, json!({ "active": false }));

    // Revoked: a fresh token of the same session (refresh), then its refresh token revoked.
    let (_, refreshed) = app
        .post(
            "/api/v1/refresh",
            json!({ "refreshToken": user["refreshToken"] }),
        )
        .await;
    let fresh = text(&refreshed["data"]["token"]);
    assert_eq!(introspect(&app, &fresh).await["active"], true);
    let revoke = [("token", refreshed["data"]["refreshToken"].as_str().unwrap())];
    assert_eq!(form(&app, "/oauth2/revoke", &revoke, None).await.0, 200);
    assert_eq!(introspect(&app, &fresh).await, json!({ "active": false }));
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn revocation_follows_rfc_7009() {
    let app = app_with("15m").await;
    // By access token: the session ends for every route of ours at once.
    let user = login(&app, "13800138207").await;
    let token = text(&user["token"]);
    assert_eq!(
        form(&app, "/oauth2/revoke", &[("token", &token)], None)
            .await
            .0,
        200
    );
    assert_error(
        &app.get("/api/v1/me", Some(&token)).await,
        401,
        "unauthorized",
    );
    let refresh = app
        .post(
            "/api/v1/refresh",
            json!({ "refreshToken": user["refreshToken"] }),
        )
        .await;
    assert_error(&refresh, 401, "refresh_invalid");
    // Unknown or already revoked tokens: 200, nothing to do (§2.2).
    assert_eq!(
        form(&app, "/oauth2/revoke", &[("token", &token)], None)
            .await
            .0,
        200
    );
    assert_eq!(
        form(&app, "/oauth2/revoke", &[("token", "whatever")], None)
            .await
            .0,
        200
    );
    // A refresh token's session id with a made-up secret ends nothing: the sid is in every access token.
    let other = login(&app, "13800138208").await;
    let real = text(&other["refreshToken"]);
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&real["wxr_".len()..])
        .unwrap();
    let mut forged = raw.clone();
    forged[40] ^= 0xff;
    let forged = format!(
        "wxr_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&forged)
    );
    assert_eq!(
        form(&app, "/oauth2/revoke", &[("token", &forged)], None)
            .await
            .0,
        200
    );
    let (status, me) = app.get("/api/v1/me", Some(&text(&other["token"]))).await;
    assert_eq!(status, 200, "{me}");
    // No token: invalid_request.
    let (status, _, body) = form(
        &app,
        "/oauth2/revoke",
        &[("token_type_hint", "refresh_token")],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn userinfo_discovery_and_the_key_set() {
    let app = app_with("15m").await;
    let user = login(&app, "13800138209").await;
    let http = reqwest::Client::new();
    let discovery: Value = http
        .get(format!("{}/.well-known/openid-configuration", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], app.base.as_str());
    for (field, path) in [
        ("jwks_uri", "/.well-known/jwks.json"),
        ("token_endpoint", "/oauth2/token"),
        ("userinfo_endpoint", "/oauth2/userinfo"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("introspection_endpoint", "/oauth2/introspect"),
    ] {
        assert_eq!(discovery[field], format!("{}{path}", app.base), "{field}");
    }
    let jwks: Value = http
        .get(text(&discovery["jwks_uri"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0]["kty"].as_str(), keys[0]["alg"].as_str()),
        (Some("EC"), Some("ES256"))
    );
    assert!(keys[0].get("d").is_none(), "no private part published");

    let (status, info) = app
        .get("/oauth2/userinfo", Some(&text(&user["token"])))
        .await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        info,
        json!({ "sub": user["accountId"], "phone_number": "+8613800138209", "phone_number_verified": true })
    );
    let response = http
        .get(format!("{}/oauth2/userinfo", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
}
