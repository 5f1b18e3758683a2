//! The README's configuration table, checked against serve's flags (clap) and [`super::defaults`].

use super::ServeArgs;
use clap::Args;

/// The README's configuration table lists exactly the flags `serve` has, each with its environment variable.
#[test]
fn the_readme_table_is_the_flags() {
    let readme = include_str!("../../../../README.md");
    let command = ServeArgs::augment_args(clap::Command::new("serve"));
    let mut documented: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .map(|l| l.split('|').nth(1).unwrap_or("").trim())
        .collect();
    documented.sort_unstable();
    let mut flags: Vec<String> = Vec::new();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let env = arg
            .get_env()
            .and_then(|e| e.to_str())
            .unwrap_or_else(|| panic!("--{long} has no environment variable"));
        let row = format!("| `--{long}` | `{env}` |");
        assert!(
            readme.contains(&row),
            "README.md's table lacks or differs on: {row}"
        );
        flags.push(format!("`--{long}`"));
    }
    flags.sort_unstable();
    assert_eq!(documented, flags, "README rows vs serve's flags");
}

/// Each default the table states is the one in `defaults`.
#[test]
fn the_readme_states_the_defaults() {
    use super::defaults as d;
    let readme = include_str!("../../../../README.md");
    let max_connections = d::MAX_CONNECTIONS.to_string();
    let link_by_phone = d::LINK_BY_PHONE.to_string();
    for (flag, default) in [
        ("listen", d::LISTEN),
        ("data-dir", d::DATA_DIR),
        ("session-ttl", d::SESSION_TTL),
        ("phone-binding", d::PHONE_BINDING),
        ("token-lock-lease", d::TOKEN_LOCK_LEASE),
        ("quota-poll-interval", d::QUOTA_POLL_INTERVAL),
        ("purge-interval", d::PURGE_INTERVAL),
        ("header-timeout", d::HEADER_TIMEOUT),
        ("request-timeout", d::REQUEST_TIMEOUT),
        ("idle-timeout", d::IDLE_TIMEOUT),
        ("max-connections", &max_connections),
        ("drain-timeout", d::DRAIN_TIMEOUT),
        ("log-format", d::LOG_FORMAT),
        ("link-by-phone", &link_by_phone),
        ("phone-conflict", d::PHONE_CONFLICT),
        ("audiences", d::AUDIENCE),
        ("access-token-ttl", d::ACCESS_TOKEN_TTL),
        ("refresh-absolute-ttl", d::REFRESH_ABSOLUTE_TTL),
        ("qr-page", d::QR_PAGE),
        ("qr-env-version", d::QR_ENV_VERSION),
    ] {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `--{flag}` |")))
            .unwrap_or_else(|| panic!("no README row for --{flag}"));
        let default_column = row.split('|').nth(3).unwrap_or("");
        assert!(
            default_column
                .trim_start()
                .starts_with(&format!("`{default}`")),
            "--{flag}: the README says {default_column:?}, the default is {default}"
        );
    }
}
