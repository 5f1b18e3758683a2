//! Production safety: nothing fails open (sandbox rules, tokens of another app, another data key), tickets are
//! reserved against double taps and spent after too many refused phone codes, answers with tokens are not cached.

mod common;

use common::{assert_error, spawn_app, temp_dir};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;

const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const KEY_B: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

/// Runs `wxlogin serve ARGS` with only `env` (plus PATH) and expects it to refuse to start: answers (exit code,
/// stderr). A process that starts instead is killed after the bound and fails the test.
async fn refused(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut command = common::serve_command(args, env, "warn");
    command.stdout(Stdio::null());
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .unwrap_or_else(|_| panic!("wxlogin serve {args:?} {env:?} started instead of refusing"))
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn sandbox_mode_is_never_reached_by_accident() {
    let dir = temp_dir("rules");
    let dir_arg = dir.to_str().unwrap();
    let listen = format!("127.0.0.1:{}", common::free_port());
    let base = ["--data-dir", dir_arg, "--listen", listen.as_str()];

    // A secret injection that failed: set but empty.
    for (name, env) in [
        ("WX_APPID", [("WX_APPID", ""), ("WX_SECRET", "s3cr3t")]),
        (
            "WX_SECRET",
            [("WX_APPID", "wx0123456789abcdef"), ("WX_SECRET", " ")],
        ),
    ] {
        let (code, stderr) = refused(&base, &env).await;
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(name) && stderr.contains("empty"),
            "{stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
    // No credentials, and something that says production: each named.
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 4] = [
        (
            vec!["--database-url", "postgres://u@127.0.0.1:1/db"],
            vec![],
            "database URL",
        ),
        (
            vec!["--redis-url", "redis://127.0.0.1:1/"],
            vec![],
            "Redis URL",
        ),
        (vec![], vec![("WXLOGIN_DATA_KEY", KEY_A)], "data key"),
        (vec!["--listen", "0.0.0.0:0"], vec![], "0.0.0.0:0"),
    ];
    for (extra, env, named) in cases {
        let listen_given = extra.contains(&"--listen");
        let args: Vec<&str> = if listen_given {
            base[..2].iter().copied().chain(extra).collect()
        } else {
            base.iter().copied().chain(extra).collect()
        };
        let (code, stderr) = refused(&args, &env).await;
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(named) && stderr.contains("--sandbox"),
            "{stderr}"
        );
        assert!(!stderr.contains(KEY_A), "{stderr}");
    }
    assert!(
        !dir.join("wxlogin.db").exists(),
        "nothing was written by a refused start"
    );

    // --sandbox asks for it explicitly, on any address, with a warning.
    let (mut child, addr, early) = common::spawn_listening(
        common::serve_command(
            &["--sandbox", "--listen", "0.0.0.0:0", "--data-dir", dir_arg],
            &[],
            common::SERVE_LOG,
        ),
        common::serve_announced,
    )
    .await;
    let port = addr.port();
    let http = reqwest::Client::new();
    let stats = http
        .get(format!("http://127.0.0.1:{port}/sandbox/v1/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200);
    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    let logs = early + &String::from_utf8_lossy(&output.stderr);
    assert!(
        logs.contains("--sandbox") && logs.contains("WARN"),
        "{logs}"
    );

    // --sandbox beside real credentials is a contradiction, not a choice.
    let (code, stderr) = refused(
        &[&base[..], &["--sandbox"]].concat(),
        &[("WX_APPID", "wx0123456789abcdef"), ("WX_SECRET", "s3cr3t")],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--sandbox"), "{stderr}");
}

#[tokio::test]
async fn a_token_of_another_app_is_refused_on_a_shared_database() {
    // A sandbox instance mints a session on its SQLite file...
    let sandbox = spawn_app().await;
    let openid = sandbox.user("13700137000").await;
    let (status, body) = sandbox.get_phone(&openid).await;
    assert_eq!(status, 200, "{body}");
    let sandbox_token = body["data"]["token"].as_str().unwrap().to_owned();
    assert_eq!(sandbox.get("/api/v1/me", Some(&sandbox_token)).await.0, 200);
    let data_key = std::fs::read_to_string(sandbox.data_dir.join("data.key")).unwrap();

    // ...and a production instance for another app, on the same database and key, refuses it.
    let upstream_app = wxsim::AppCredentials::generate();
    let upstream = wxsim::spawn(wxsim::SimConfig::with_apps(vec![upstream_app.clone()]))
        .await
        .unwrap();
    let mut args = common::sandbox_args(&temp_dir("prod-shared"));
    args.database_url = Some(format!(
        "sqlite://{}",
        sandbox.data_dir.join("wxlogin.db").display()
    ));
    args.data_key = Some(data_key.trim().to_owned());
    args.wechat_base_url = Some(upstream.base_url.clone());
    let env = |k: &str| match k {
        "WX_APPID" => Some(upstream_app.appid.clone()),
        "WX_SECRET" => Some(upstream_app.secret.clone()),
        _ => None,
    };
    let settings = wxlogin::config::Settings::resolve(args, env).unwrap();
    let running = wxlogin::app::start(settings, std::future::pending())
        .await
        .unwrap();
    let production = running.base_url();
    let http = reqwest::Client::new();
    let me = http
        .get(format!("{production}/api/v1/me"))
        .bearer_auth(&sandbox_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    let logout = http
        .post(format!("{production}/api/v1/logout"))
        .bearer_auth(&sandbox_token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 401);
    // The other app's logout did not end it; the sandbox still accepts its own token.
    assert_eq!(sandbox.get("/api/v1/me", Some(&sandbox_token)).await.0, 200);

    // The production instance's own sessions work (the refusal is about the app, not the database).
    let user = upstream
        .sim
        .create_user(wxsim::NewUser {
            appid: None,
            phone_number: "13700137001".into(),
            country_code: None,
        })
        .unwrap();
    let login: Value = http
        .post(format!("{production}/api/getPhone"))
        .json(&json!({
            "loginCode": upstream.sim.login_code(&user.openid).unwrap().code,
            "phoneCode": upstream.sim.phone_code(&user.openid).unwrap().code,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let own = login["data"]["token"].as_str().unwrap();
    let me = http
        .get(format!("{production}/api/v1/me"))
        .bearer_auth(own)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(
        sandbox.get("/api/v1/me", Some(own)).await.0,
        401,
        "and the other way round"
    );
}

#[tokio::test]
async fn a_restart_with_another_data_key_is_refused() {
    let dir = temp_dir("key");
    let dir_arg = dir.to_str().unwrap();
    let listen = format!("127.0.0.1:{}", common::free_port());
    // First start: --sandbox with key A; a user is stored.
    let mut args = common::sandbox_args(&dir);
    args.sandbox = true;
    args.data_key = Some(KEY_A.into());
    let mut app = common::spawn_with(args).await;
    let openid = app.user("13600136000").await;
    assert_eq!(app.get_phone(&openid).await.0, 200);
    app.stop().await;

    // Another valid key: the binary refuses, exit 2, with a message about the key (and never the key).
    let (code, stderr) = refused(
        &["--sandbox", "--data-dir", dir_arg, "--listen", &listen],
        &[("WXLOGIN_DATA_KEY", KEY_B)],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("data key") && stderr.contains("WXLOGIN_DATA_KEY"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(KEY_A) && !stderr.contains(KEY_B),
        "{stderr}"
    );

    // The same key starts.
    let mut args = common::sandbox_args(&dir);
    args.sandbox = true;
    args.data_key = Some(KEY_A.into());
    let mut app = common::spawn_with(args).await;
    assert_eq!(app.users().await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_database_from_before_key_checks_is_checked_by_its_rows() {
    use sqlx::{Connection, Executor};
    let dir = temp_dir("key-upgrade");
    let mut args = common::sandbox_args(&dir);
    args.sandbox = true;
    args.data_key = Some(KEY_A.into());
    let mut app = common::spawn_with(args.clone()).await;
    let openid = app.user("13600136001").await;
    assert_eq!(app.get_phone(&openid).await.0, 200);
    app.stop().await;
    // As a database written by the previous release: no check value.
    let url = format!("sqlite://{}", dir.join("wxlogin.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    c.execute("DELETE FROM meta").await.unwrap();
    c.close().await.unwrap();

    let mut wrong = args.clone();
    wrong.data_key = Some(KEY_B.into());
    let settings = wxlogin::config::Settings::resolve(wrong, |_| None).unwrap();
    let err = wxlogin::app::start(settings, std::future::pending())
        .await
        .err()
        .expect("another key is refused");
    assert!(err.is_configuration(), "{err}");
    assert!(err.to_string().contains("does not decrypt"), "{err}");

    // The right key starts, and from then on the check value is stored.
    let mut app = common::spawn_with(args).await;
    app.stop().await;
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM meta WHERE name = 'data_key_check'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

/// Silent login of a new user; answers its ticket.
async fn ticket_for(app: &common::TestApp, openid: &str) -> String {
    let login = app.login_code(openid).await;
    let (status, body) = app
        .post("/api/v1/login", json!({ "loginCode": login }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "phone_required", "{body}");
    body["data"]["ticket"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_double_tap_redeems_one_phone_code_and_keeps_the_other() {
    let app = spawn_app().await;
    let openid = app.user("13500135000").await;
    let ticket = ticket_for(&app, &openid).await;
    // WeChat takes a while, so the second tap arrives while the first is being redeemed.
    app.http
        .put(format!("{}/sandbox/v1/faults", app.base))
        .json(&json!({ "latencyMs": 400, "paths": ["/wxa/business/getuserphonenumber"] }))
        .send()
        .await
        .unwrap();
    let (first, second) = (app.phone_code(&openid).await, app.phone_code(&openid).await);
    let calls_before = app.phone_calls().await;
    let (a, b) = tokio::join!(
        app.post(
            "/api/v1/phone",
            json!({ "phoneCode": first, "ticket": ticket })
        ),
        app.post(
            "/api/v1/phone",
            json!({ "phoneCode": second, "ticket": ticket })
        ),
    );
    let (winner, loser, loser_code) = match (a.0, b.0) {
        (200, 409) => (a, b, second),
        (409, 200) => (b, a, first),
        other => panic!(
            "expected one 200 and one 409, got {other:?}: {} / {}",
            a.1, b.1
        ),
    };
    assert_error(&loser, 409, "ticket_in_use");
    assert_eq!(
        app.phone_calls().await - calls_before,
        1,
        "one getuserphonenumber call"
    );
    assert_eq!(app.users().await, 1);

    // The loser's phone code was not spent: it still redeems (here: the logged-in user re-verifying).
    app.http
        .delete(format!("{}/sandbox/v1/faults", app.base))
        .send()
        .await
        .unwrap();
    let token = winner.1["data"]["token"].as_str().unwrap();
    let (status, body) = app
        .post_raw(
            "/api/v1/phone",
            json!({ "phoneCode": loser_code }).to_string().into_bytes(),
            Some(token),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["phone"], "13500135000");
}

#[tokio::test]
async fn junk_phone_codes_spend_the_ticket_after_the_cap() {
    let app = spawn_app().await;
    let openid = app.user("13500135001").await;
    let ticket = ticket_for(&app, &openid).await;
    let calls_before = app.phone_calls().await;
    let mut answers = Vec::new();
    for i in 0..20 {
        let junk = format!("junk-phone-code-{i:04}");
        answers.push(
            app.post(
                "/api/v1/phone",
                json!({ "phoneCode": junk, "ticket": ticket }),
            )
            .await,
        );
    }
    for answer in &answers[..5] {
        assert_error(answer, 400, "phone_code_invalid");
    }
    for answer in &answers[5..] {
        assert_error(answer, 401, "ticket_invalid");
    }
    assert_eq!(
        app.phone_calls().await - calls_before,
        5,
        "WeChat saw only the capped attempts"
    );
    // The spent ticket is gone for a real phone code too; a fresh silent login gets a new one that works.
    let real = app.phone_code(&openid).await;
    let spent = app
        .post(
            "/api/v1/phone",
            json!({ "phoneCode": real, "ticket": ticket }),
        )
        .await;
    assert_error(&spent, 401, "ticket_invalid");
    let fresh = ticket_for(&app, &openid).await;
    let (status, body) = app
        .post(
            "/api/v1/phone",
            json!({ "phoneCode": real, "ticket": fresh }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn token_answers_are_not_cached_and_bearer_is_case_insensitive() {
    let app = spawn_app().await;
    let openid = app.user("13500135002").await;
    let (login, phone) = (app.login_code(&openid).await, app.phone_code(&openid).await);
    let response = app
        .http
        .post(format!("{}/api/getPhone", app.base))
        .json(&json!({ "loginCode": login, "phoneCode": phone }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let token = body["data"]["token"].as_str().unwrap();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let me = app
            .http
            .get(format!("{}/api/v1/me", app.base))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200, "{scheme}");
        assert_eq!(me.headers()["cache-control"], "no-store");
    }
    for bad in [
        format!("Basic {token}"),
        format!("Bearer{token}"),
        token.to_owned(),
    ] {
        let me = app
            .http
            .get(format!("{}/api/v1/me", app.base))
            .header("authorization", bad.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 401, "{bad}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("private").join("data");
    let app = common::spawn_with(common::sandbox_args(&dir)).await;
    let mode = std::fs::metadata(&app.data_dir)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700, "{mode:o}");
    // An existing, looser directory is made private too.
    let loose = temp_dir("loose");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _app = common::spawn_with(common::sandbox_args(&loose)).await;
    let mode = std::fs::metadata(&loose).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{mode:o}");
}

#[tokio::test]
async fn a_start_failure_says_why_and_no_secret() {
    let dir = temp_dir("cause");
    let (code, stderr) = refused(
        &[
            "--sandbox",
            "--database-url",
            "postgres://postgres:hunter2@127.0.0.1:1/x",
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 1, "an outage, not a setting: {stderr}");
    assert!(
        stderr.contains("database") && stderr.contains("refused"),
        "the cause: {stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
