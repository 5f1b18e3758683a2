//! Resolving settings. The environment is injected (a closure, or clap's `ServeArgs` for the variables clap
//! reads): no test here touches the process environment, so they run in parallel safely.

use super::*;

mod apps;

fn no_env(_: &str) -> Option<String> {
    None
}

/// An environment of exactly these variables.
fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

/// A TOML file in a fresh temp dir; answers its path.
fn toml_file(text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wxlogin-config-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wxlogin.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn with_file(text: &str) -> ServeArgs {
    ServeArgs {
        config: Some(toml_file(text)),
        ..Default::default()
    }
}

fn refused(args: ServeArgs, env: impl Fn(&str) -> Option<String>) -> String {
    Settings::resolve(args, env).unwrap_err().to_string()
}

const APP_A: &str = "wx0123456789abcdef";
const APP_B: &str = "wxfedcba9876543210";

#[test]
fn defaults_are_sandbox_on_localhost() {
    let s = Settings::resolve(ServeArgs::default(), no_env).unwrap();
    assert!(s.is_sandbox());
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.data_dir, PathBuf::from("./wxlogin-data"));
    assert_eq!(s.session_ttl, Duration::from_secs(30 * 86400));
    assert_eq!(s.phone_binding, PhoneBinding::Verify);
    assert!(!s.json_logs);
    assert!(s.database_url().starts_with("sqlite://"));
    assert_eq!(
        s.connection_limits,
        crate::server::ConnectionLimits::default()
    );
    assert_eq!(s.rate_limits, RateLimitConfig::default());
    assert_eq!(
        s.accounts,
        AccountPolicy {
            link_by_phone: true,
            phone_conflict: PhoneConflict::Move
        }
    );
}

#[test]
fn flags_beat_the_file_and_the_file_beats_defaults() {
    let args = ServeArgs {
        session_ttl: Some("1h".into()),
        max_connections: Some(7),
        log_format: Some("json".into()),
        ..with_file(
            "listen = \"127.0.0.1:9999\"\nsession_ttl = \"2h\"\nphone_binding = \"concurrent\"\n\
             max_connections = 50\nidle_timeout = \"5s\"\nlog_format = \"text\"\n",
        )
    };
    let s = Settings::resolve(args, no_env).unwrap();
    // flag over file
    assert_eq!(s.session_ttl, Duration::from_secs(3600));
    assert_eq!(s.connection_limits.max_connections, 7);
    assert!(s.json_logs);
    // file over default
    assert_eq!(s.listen.port(), 9999);
    assert_eq!(s.phone_binding, PhoneBinding::Concurrent);
    assert_eq!(s.connection_limits.idle_timeout, Duration::from_secs(5));
    // default where neither says
    assert_eq!(s.connection_limits.drain_timeout, Duration::from_secs(15));
}

/// The environment's place (over the file, under the flag) is clap's: a variable fills its flag's field only
/// when the flag is absent. So an environment variable is a `ServeArgs` field here, and clap's precedence is
/// checked on the real binary (tests/config.rs).
#[test]
fn clap_reads_each_variable_into_its_flag() {
    let command = <ServeArgs as clap::Args>::augment_args(clap::Command::new("serve"));
    for (flag, var) in [
        ("session-ttl", "WXLOGIN_SESSION_TTL"),
        ("link-by-phone", "WXLOGIN_LINK_BY_PHONE"),
        ("phone-conflict", "WXLOGIN_PHONE_CONFLICT"),
    ] {
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(flag))
            .unwrap();
        assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(var));
    }
}

#[test]
fn a_sandbox_in_the_file_holds_when_the_flag_is_absent() {
    let args = ServeArgs {
        listen: Some("0.0.0.0:8080".parse().unwrap()),
        ..with_file("sandbox = true\n")
    };
    let s = Settings::resolve(args, no_env).unwrap();
    assert!(s.is_sandbox() && s.sandbox_forced);
}

#[test]
fn the_rate_limits_switch_overrides_the_table_only_when_off() {
    let file = "[rate_limits]\nper_ip = \"5/min\"\n";
    let on = Settings::resolve(with_file(file), no_env).unwrap();
    assert_ne!(on.rate_limits, RateLimitConfig::default());
    assert!(on.rate_limits.per_ip.is_some());
    let off = ServeArgs {
        rate_limits: Some(RateLimitSwitch::Off),
        ..with_file(file)
    };
    assert_eq!(
        Settings::resolve(off, no_env).unwrap().rate_limits,
        RateLimitConfig::off()
    );
}

#[test]
fn bad_values_name_their_flag_or_their_file_and_key() {
    let err = refused(
        ServeArgs {
            trusted_proxies: Some("10.0.0.0/8,nonsense".into()),
            ..Default::default()
        },
        no_env,
    );
    assert!(
        err.contains("--trusted-proxies") && err.contains("nonsense"),
        "{err}"
    );
    let args = with_file("max_connections = \"many\"\n");
    let path = args.config.clone().unwrap();
    let err = refused(args, no_env);
    assert!(
        err.contains(&path.display().to_string()) && err.contains("max_connections"),
        "{err}"
    );
    let err = refused(with_file("listne = \"127.0.0.1:1\"\n"), no_env);
    assert!(err.contains("listne"), "{err}");
    let err = refused(with_file("listen = \n"), no_env);
    assert!(err.contains("wxlogin.toml"), "{err}");
    let missing = ServeArgs {
        config: Some("/nonexistent/wxlogin.toml".into()),
        ..Default::default()
    };
    assert!(refused(missing, no_env).contains("cannot read /nonexistent/wxlogin.toml"));
}

#[test]
fn half_credentials_and_bad_values_are_refused_clearly() {
    assert!(refused(ServeArgs::default(), env_of(&[("WX_APPID", APP_A)])).contains("WX_SECRET"));
    assert!(refused(ServeArgs::default(), env_of(&[("WX_SECRET", "s")])).contains("WX_APPID"));
    let ttl = ServeArgs {
        session_ttl: Some("forever".into()),
        ..Default::default()
    };
    assert!(refused(ttl, no_env).contains("session-ttl"));
    let url = ServeArgs {
        wechat_base_url: Some("http://127.0.0.1:9000".into()),
        ..Default::default()
    };
    assert!(Settings::resolve(url, no_env).is_err());
    for bad in [
        ServeArgs {
            idle_timeout: Some("0s".into()),
            ..Default::default()
        },
        ServeArgs {
            header_timeout: Some("30s".into()),
            request_timeout: Some("30s".into()),
            ..Default::default()
        },
        ServeArgs {
            max_connections: Some(0),
            ..Default::default()
        },
        ServeArgs {
            log_format: Some("xml".into()),
            ..Default::default()
        },
    ] {
        assert!(Settings::resolve(bad, no_env).is_err());
    }
    let both = env_of(&[("WX_APPID", APP_A), ("WX_SECRET", "s3cr3t")]);
    let s = Settings::resolve(ServeArgs::default(), both).unwrap();
    assert!(!s.is_sandbox());
    assert_eq!(s.apps.len(), 1);
    assert_eq!(s.apps[0].appid.as_str(), APP_A);
    assert_eq!(s.apps[0].secret.expose(), "s3cr3t");
    assert!(!format!("{s:?}").contains("s3cr3t"));
}

#[test]
fn the_environment_beats_the_files_appid_and_secret() {
    let file = format!("appid = \"{APP_B}\"\nsecret = \"from-file\"\n");
    let s = Settings::resolve(with_file(&file), no_env).unwrap();
    assert_eq!(s.apps[0].appid.as_str(), APP_B);
    let s = Settings::resolve(with_file(&file), env_of(&[("WX_APPID", APP_A)])).unwrap();
    assert_eq!(s.apps[0].appid.as_str(), APP_A);
    assert_eq!(s.apps[0].secret.expose(), "from-file");
}

#[test]
fn set_but_empty_credentials_are_errors_never_sandbox() {
    for (name, appid, secret) in [("WX_APPID", "", "s"), ("WX_SECRET", APP_A, "  ")] {
        let err = refused(
            ServeArgs::default(),
            env_of(&[("WX_APPID", appid), ("WX_SECRET", secret)]),
        );
        assert!(err.contains(name) && err.contains("empty"), "{err}");
    }
}

#[test]
fn the_sandbox_needs_nothing_that_says_production_or_an_explicit_flag() {
    let production_like = [
        ServeArgs {
            listen: Some("0.0.0.0:8080".parse().unwrap()),
            ..Default::default()
        },
        ServeArgs {
            listen: Some("[::]:8080".parse().unwrap()),
            ..Default::default()
        },
        ServeArgs {
            database_url: Some("postgres://h/db".into()),
            ..Default::default()
        },
        ServeArgs {
            redis_url: Some("redis://h/".into()),
            ..Default::default()
        },
        ServeArgs {
            data_key: Some("a2V5".into()),
            ..Default::default()
        },
    ];
    for args in production_like {
        let refused = refused(args.clone(), no_env);
        assert!(refused.contains("--sandbox"), "{refused}");
        let forced = Settings::resolve(
            ServeArgs {
                sandbox: true,
                ..args
            },
            no_env,
        )
        .unwrap();
        assert!(forced.is_sandbox() && forced.sandbox_forced);
    }
    let ipv6_loopback = ServeArgs {
        listen: Some("[::1]:8080".parse().unwrap()),
        ..Default::default()
    };
    assert!(
        Settings::resolve(ipv6_loopback, no_env)
            .unwrap()
            .is_sandbox()
    );
    // --sandbox beside an app is a contradiction, whichever way the app is configured.
    let both = env_of(&[("WX_APPID", APP_A), ("WX_SECRET", "s")]);
    let forced = ServeArgs {
        sandbox: true,
        ..Default::default()
    };
    assert!(refused(forced.clone(), both).contains("--sandbox"));
    let listed = ServeArgs {
        sandbox: true,
        ..with_file(&format!("[[apps]]\nappid = \"{APP_A}\"\nsecret = \"s\"\n"))
    };
    assert!(refused(listed, no_env).contains("--sandbox"));
}
