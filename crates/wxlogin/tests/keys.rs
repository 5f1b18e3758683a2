//! `wxlogin keys rotate` under load: logins, refreshes and verifications keep succeeding while the signing key
//! changes; a token signed by the old key verifies until it expires; the JWKS then drops the old key.
//!
//! The service runs in process (sandbox mode, access tokens of 3 s); the rotation is the real binary's command on
//! the same data dir, as an operator would run it.

mod common;

use base64::Engine as _;
use common::{spawn_with, temp_dir};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wxlogin::config::{ServeArgs, TokenArgs};

const ACCESS_TTL_SECS: u64 = 3;

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn exp_of(token: &str) -> u64 {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["exp"].as_u64().unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn jwks_kids(http: &reqwest::Client, base: &str) -> Vec<String> {
    let jwks: Value = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn verify(http: &reqwest::Client, base: &str, token: &str) -> u16 {
    http.get(format!("{base}/auth/verify"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_under_load_fails_nothing_and_the_old_key_goes_once_its_tokens_expired() {
    let dir = temp_dir("keys");
    let args = ServeArgs {
        tokens: TokenArgs {
            access_token_ttl: Some(format!("{ACCESS_TTL_SECS}s")),
            ..Default::default()
        },
        rate_limits: Some(wxlogin::config::RateLimitSwitch::Off),
        ..common::sandbox_args(&dir)
    };
    let app = Arc::new(spawn_with(args).await);
    // The load taps the phone button more often than the simulator's free 1,000 verifications allow: buy a pack,
    // or the taps past it would get errno 1400001 and no code.
    let appid = app.sim().apps()[0].appid.clone();
    let pack = wxsim::QuotaChange {
        buy: Some(1_000_000),
        ..Default::default()
    };
    app.sim().change_quota(&appid, &pack).unwrap();
    let http = reqwest::Client::new();
    let openid = app.user("13800138555").await;
    let (status, first) = app.get_phone(&openid).await;
    assert_eq!(status, 200, "{first}");
    let old_token = first["data"]["token"].as_str().unwrap().to_owned();
    let old_kid = kid_of(&old_token);
    assert_eq!(jwks_kids(&http, &app.base).await, vec![old_kid.clone()]);

    // The load: users logging in, verifying, refreshing, and verifying again, until told to stop. Every answer
    // must be a success, whichever key signed what.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (app, stop, done, http) = (app.clone(), stop.clone(), done.clone(), http.clone());
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                // A new person each round: the simulator limits how often one user may ask (WeChat's 45011).
                round += 1;
                let openid = app.user(&format!("139{worker:02}{round:06}")).await;
                let (status, login) = app.get_phone(&openid).await;
                if status != 200 {
                    failures.push(format!("login {status} {login}"));
                    continue;
                }
                let token = login["data"]["token"].as_str().unwrap().to_owned();
                let refresh = login["data"]["refreshToken"].as_str().unwrap().to_owned();
                let verified = verify(&http, &app.base, &token).await;
                let (me, _) = app.get("/api/v1/me", Some(&token)).await;
                let (status, refreshed) = app
                    .post("/api/v1/refresh", json!({ "refreshToken": refresh }))
                    .await;
                let again = match refreshed["data"]["token"].as_str() {
                    Some(token) => verify(&http, &app.base, token).await,
                    None => 0,
                };
                if (verified, me, status, again) != (200, 200, 200, 200) {
                    failures.push(format!(
                        "verify {verified}, me {me}, refresh {status} {refreshed}, verify after refresh {again}"
                    ));
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            failures
        }));
    }

    // The operator rotates, with the real command on the service's data dir.
    let rotated = std::process::Command::new(env!("CARGO_BIN_EXE_wxlogin"))
        .args(["keys", "rotate", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let rotated_at = Instant::now();
    let out = String::from_utf8_lossy(&rotated.stdout);
    assert!(out.contains("generation 2"), "{out}");

    // Within the reload interval, new logins are signed by the new key, and both keys are published.
    let mut last_old = old_token.clone();
    let mut probe = 0;
    let new_kid = loop {
        probe += 1;
        let openid = app.user(&format!("13700{probe:06}")).await;
        let (_, login) = app.get_phone(&openid).await;
        let token = login["data"]["token"].as_str().unwrap().to_owned();
        let kid = kid_of(&token);
        if kid != old_kid {
            break kid;
        }
        last_old = token;
        assert!(
            rotated_at.elapsed() < Duration::from_secs(15),
            "still signing with the old key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        jwks_kids(&http, &app.base).await,
        [new_kid.clone(), old_kid.clone()]
    );

    // The last token the old key signed verifies until it expires, and not after.
    let exp = exp_of(&last_old);
    while unix_now() + 1 < exp {
        assert_eq!(verify(&http, &app.base, &last_old).await, 200);
        let (me, body) = app.get("/api/v1/me", Some(&last_old)).await;
        assert_eq!(me, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while unix_now() < exp {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(verify(&http, &app.base, &last_old).await, 401);

    // The old key leaves the JWKS once every token it signed has expired (its retirement + the access-token
    // lifetime + the reload interval), and not before.
    let deadline = Instant::now() + Duration::from_secs(ACCESS_TTL_SECS + 25);
    loop {
        let kids = jwks_kids(&http, &app.base).await;
        if kids == vec![new_kid.clone()] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old key is still published: {kids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        rotated_at.elapsed() >= Duration::from_secs(ACCESS_TTL_SECS),
        "the old key left before tokens it signed could have expired"
    );

    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.unwrap());
    }
    let done = done.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {done} rounds failed: {failures:?}",
        failures.len()
    );
    assert!(done > 20, "the load ran ({done} rounds)");
}
