//! `[[apps]]` and `[accounts]`.

use super::*;

#[test]
fn apps_are_listed_with_inline_or_environment_secrets() {
    let file = format!(
        "[[apps]]\nappid = \"{APP_A}\"\nsecret = \"inline-secret\"\nname = \"Shop\"\n\n\
         [[apps]]\nappid = \"{APP_B}\"\nsecret_env = \"WX_SECRET_B\"\n"
    );
    let s = Settings::resolve(with_file(&file), env_of(&[("WX_SECRET_B", "env-secret")])).unwrap();
    assert!(!s.is_sandbox());
    let apps: Vec<(&str, &str, Option<&str>)> = s
        .apps
        .iter()
        .map(|a| (a.appid.as_str(), a.secret.expose(), a.name.as_deref()))
        .collect();
    assert_eq!(
        apps,
        [
            (APP_A, "inline-secret", Some("Shop")),
            (APP_B, "env-secret", None)
        ]
    );
    let printed = format!("{s:?}");
    assert!(
        !printed.contains("inline-secret") && !printed.contains("env-secret"),
        "{printed}"
    );
}

#[test]
fn a_bad_app_entry_is_named() {
    let entry = |body: &str| with_file(&format!("[[apps]]\nappid = \"{APP_A}\"\n{body}"));
    // (the file's entry, the environment, the words the error must hold)
    type Case<'a> = (ServeArgs, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 7] = [
        // secret_env naming a variable that is not set, or set but empty: the name, never a value.
        (
            entry("secret_env = \"WX_SECRET_SHOP\"\n"),
            &[],
            &[APP_A, "WX_SECRET_SHOP", "not set"],
        ),
        (
            entry("secret_env = \"WX_SECRET_SHOP\"\n"),
            &[("WX_SECRET_SHOP", " ")],
            &[APP_A, "WX_SECRET_SHOP", "empty"],
        ),
        (entry(""), &[], &[APP_A, "no secret", "secret_env"]),
        (
            entry("secret = \"s\"\nsecret_env = \"X\"\n"),
            &[],
            &[APP_A, "both"],
        ),
        (entry("secret = \"\"\n"), &[], &[APP_A, "secret is empty"]),
        (
            with_file("[[apps]]\nappid = \"wx 1\"\nsecret = \"s\"\n"),
            &[],
            &["\"wx 1\"", "not a valid AppID"],
        ),
        (
            with_file(&format!(
                "[[apps]]\nappid = \"{APP_A}\"\nsecret = \"s\"\n[[apps]]\nappid = \"{APP_A}\"\nsecret = \"t\"\n"
            )),
            &[],
            &[APP_A, "twice"],
        ),
    ];
    for (args, env, named) in cases {
        let err = refused(args, env_of(env));
        for word in named {
            assert!(err.contains(word), "{word:?} in {err}");
        }
    }
    // A secret pasted into secret_env is refused without echoing it.
    let pasted = "0123456789abcdef0123456789abcdef";
    let err = refused(entry(&format!("secret_env = \"{pasted}\"\n")), no_env);
    assert!(err.contains("NAME") && !err.contains(pasted), "{err}");
    // An entry without an appid, or with a key of its own.
    let err = refused(with_file("[[apps]]\nsecret = \"s\"\n"), no_env);
    assert!(err.contains("apps") && err.contains("appid"), "{err}");
    let err = refused(entry("secret = \"s\"\nsecrets = \"t\"\n"), no_env);
    assert!(err.contains("secrets"), "{err}");
}

#[test]
fn apps_and_the_one_app_variables_are_ambiguous() {
    let file = format!("[[apps]]\nappid = \"{APP_A}\"\nsecret = \"s\"\n");
    let err = refused(
        with_file(&file),
        env_of(&[("WX_APPID", APP_B), ("WX_SECRET", "t")]),
    );
    assert!(
        err.contains("[[apps]]") && err.contains("WX_APPID"),
        "{err}"
    );
    let err = refused(with_file(&format!("appid = \"{APP_B}\"\n{file}")), no_env);
    assert!(err.contains("[[apps]]") && err.contains("appid"), "{err}");
}

#[test]
fn accounts_come_from_the_table_and_the_flags_win() {
    let file = "[accounts]\nlink_by_phone = false\nphone_conflict = \"deny\"\n";
    let s = Settings::resolve(with_file(file), no_env).unwrap();
    assert_eq!(
        s.accounts,
        AccountPolicy {
            link_by_phone: false,
            phone_conflict: PhoneConflict::Deny
        }
    );
    let args = ServeArgs {
        accounts: AccountArgs {
            link_by_phone: Some(true),
            phone_conflict: None,
        },
        ..with_file(file)
    };
    let s = Settings::resolve(args, no_env).unwrap();
    assert!(s.accounts.link_by_phone);
    assert_eq!(s.accounts.phone_conflict, PhoneConflict::Deny);
    let args = ServeArgs {
        accounts: AccountArgs {
            link_by_phone: Some(false),
            phone_conflict: Some(PhoneConflict::Deny),
        },
        ..Default::default()
    };
    let s = Settings::resolve(args, no_env).unwrap();
    assert_eq!(
        (s.accounts.link_by_phone, s.accounts.phone_conflict),
        (false, PhoneConflict::Deny)
    );
    let err = refused(
        with_file("[accounts]\nphone_conflict = \"steal\"\n"),
        no_env,
    );
    assert!(
        err.contains("accounts.phone_conflict") && err.contains("steal"),
        "{err}"
    );
    let err = refused(with_file("[accounts]\nlink_by_phone = \"yes\"\n"), no_env);
    assert!(err.contains("link_by_phone"), "{err}");
}

#[test]
fn the_account_flags_parse_as_documented() {
    use clap::Parser;
    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }
    // Explicit values on the command line (clap reads the process environment only for absent flags, and these
    // variables are not set in a test run).
    let parsed = Serve::try_parse_from([
        "serve",
        "--link-by-phone",
        "false",
        "--phone-conflict",
        "deny",
    ])
    .unwrap();
    assert_eq!(parsed.args.accounts.link_by_phone, Some(false));
    assert_eq!(
        parsed.args.accounts.phone_conflict,
        Some(PhoneConflict::Deny)
    );
    assert!(Serve::try_parse_from(["serve", "--phone-conflict", "steal"]).is_err());
    assert!(Serve::try_parse_from(["serve", "--link-by-phone", "maybe"]).is_err());
}
