//! Configuration through the real binary: the environment's place between the flags and the file (that is clap's
//! doing, so only the binary shows it), several apps from `[[apps]]`, and a bad entry refused before anything
//! starts.

mod common;

use common::temp_dir;
use std::time::Duration;

const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn serve(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    common::serve_command(args, env, "info")
}

/// Starts it, waits until `port` answers `/healthz`, stops it; answers its logs.
async fn runs_on(args: &[&str], env: &[(&str, &str)], port: u16) -> String {
    let child = serve(args, env).spawn().unwrap();
    common::wait_up(
        &reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}/healthz"),
    )
    .await;
    stop(child).await
}

/// Stops it; answers its logs (stdout and stderr).
async fn stop(mut child: tokio::process::Child) -> String {
    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[tokio::test]
async fn a_flag_beats_its_variable_which_beats_the_file() {
    let dir = temp_dir("layers");
    let (file_port, env_port, flag_port) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let config = dir.join("wxlogin.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{file_port}\"\ndata_dir = \"{}\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let env_listen = format!("127.0.0.1:{env_port}");
    let flag_listen = format!("127.0.0.1:{flag_port}");
    runs_on(&["--config", config], &[], file_port).await;
    runs_on(
        &["--config", config],
        &[("WXLOGIN_LISTEN", &env_listen)],
        env_port,
    )
    .await;
    runs_on(
        &["--config", config, "--listen", &flag_listen],
        &[("WXLOGIN_LISTEN", &env_listen)],
        flag_port,
    )
    .await;
}

#[tokio::test]
async fn two_apps_from_the_file_start_in_production_mode() {
    let dir = temp_dir("apps");
    let port = common::free_port();
    let config = dir.join("wxlogin.toml");
    std::fs::write(
        &config,
        "[[apps]]\nappid = \"wx0123456789abcdef\"\nsecret_env = \"WX_SECRET_SHOP\"\nname = \"Shop\"\n\n\
         [[apps]]\nappid = \"wxfedcba9876543210\"\nsecret = \"club-secret\"\n\n\
         [accounts]\nphone_conflict = \"deny\"\n",
    )
    .unwrap();
    let listen = format!("127.0.0.1:{port}");
    // WeChat is nowhere: starting must not call it.
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--listen",
        &listen,
        "--data-dir",
        dir.to_str().unwrap(),
        "--wechat-base-url",
        "http://127.0.0.1:1",
    ];
    let env = [
        ("WX_SECRET_SHOP", "shop-secret"),
        ("WXLOGIN_DATA_KEY", KEY_A),
    ];
    let child = serve(&args, &env).spawn().unwrap();
    let http = reqwest::Client::new();
    common::wait_up(&http, &format!("http://{listen}/healthz")).await;
    let sandbox = http
        .get(format!("http://{listen}/sandbox/v1/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(sandbox.status(), 404, "no sandbox in production mode");
    let logs = stop(child).await;
    assert!(logs.contains("production mode"), "{logs}");
    for secret in ["shop-secret", "club-secret", KEY_A] {
        assert!(!logs.contains(secret), "{logs}");
    }
}

#[tokio::test]
async fn a_bad_app_entry_exits_2_with_one_line_naming_it() {
    let dir = temp_dir("bad-apps");
    let listen = format!("127.0.0.1:{}", common::free_port());
    let dir_arg = dir.to_str().unwrap();
    // (the file, the environment, the words the one line must hold)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 3] = [
        (
            "[[apps]]\nappid = \"wx0123456789abcdef\"\nsecret_env = \"WX_SECRET_SHOP\"\n",
            &[],
            &["wx0123456789abcdef", "WX_SECRET_SHOP", "not set"],
        ),
        (
            "[[apps]]\nappid = \"wx0123456789abcdef\"\nsecret = \"s\"\n\
             [[apps]]\nappid = \"wx0123456789abcdef\"\nsecret = \"t\"\n",
            &[],
            &["wx0123456789abcdef", "twice"],
        ),
        (
            "[[apps]]\nappid = \"wx0123456789abcdef\"\nsecret = \"s\"\n",
            &[("WX_APPID", "wxfedcba9876543210"), ("WX_SECRET", "t")],
            &["[[apps]]", "WX_APPID"],
        ),
    ];
    for (i, (toml, env, named)) in cases.into_iter().enumerate() {
        let config = dir.join(format!("wxlogin-{i}.toml"));
        std::fs::write(&config, toml).unwrap();
        let args = [
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &listen,
            "--data-dir",
            dir_arg,
        ];
        let output = tokio::time::timeout(Duration::from_secs(20), serve(&args, env).output())
            .await
            .unwrap_or_else(|_| panic!("{toml} started instead of refusing"))
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        for word in named {
            assert!(stderr.contains(word), "{word:?} in {stderr}");
        }
    }
    assert!(
        !dir.join("wxlogin.db").exists(),
        "nothing was written by a refused start"
    );
}
