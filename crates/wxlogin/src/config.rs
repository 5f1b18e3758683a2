//! Configuration: flags > environment > a TOML file (`--config`) > defaults, resolved once at start into
//! [`Settings`]. The defaults live here and nowhere else.

use crate::client_ip::TrustedProxies;
use crate::ratelimit::RateLimitConfig;
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Defaults, as the README's configuration table states them.
pub mod defaults {
    pub const LISTEN: &str = "127.0.0.1:8080";
    pub const DATA_DIR: &str = "./wxlogin-data";
    pub const SESSION_TTL: &str = "30d";
    pub const PHONE_BINDING: &str = "verify";
    pub const TOKEN_LOCK_LEASE: &str = "10s";
    pub const HEADER_TIMEOUT: &str = "10s";
    pub const REQUEST_TIMEOUT: &str = "30s";
    pub const IDLE_TIMEOUT: &str = "60s";
    pub const MAX_CONNECTIONS: usize = 10_000;
    pub const DRAIN_TIMEOUT: &str = "15s";
}

/// How `/api/getPhone` ties the phone code to the user of the login code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PhoneBinding {
    /// jscode2session first, then getuserphonenumber with the openid: WeChat checks the phone code is that
    /// user's. Two round trips.
    Verify,
    /// Both exchanges at once, without the check. One round trip.
    Concurrent,
}

/// How logins link to accounts (`[accounts]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountPolicy {
    pub link_by_phone: bool,
    pub phone_conflict: PhoneConflict,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        Self {
            link_by_phone: true,
            phone_conflict: PhoneConflict::Move,
        }
    }
}

/// What happens when a phone another account holds is verified again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PhoneConflict {
    /// The phone moves to the newest verifier; the old account loses it and its sessions.
    #[default]
    Move,
    /// 409 `phone_in_use`, nothing written.
    Deny,
}

/// `wxlogin serve` flags; each also reads its environment variable (clap: the flag wins).
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (keys as the flags, with underscores).
    #[arg(long, env = "WXLOGIN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "WXLOGIN_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database, the sandbox data key and the sandbox app.
    #[arg(long, env = "WXLOGIN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://…`; default: SQLite in the data dir.
    #[arg(long, env = "WXLOGIN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Redis URL for an access token shared by every instance; default: in process.
    #[arg(long, env = "WXLOGIN_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// WeChat's API base URL (a `wxlogin sim` for tests); needs WX_APPID and WX_SECRET.
    #[arg(long, env = "WXLOGIN_WECHAT_BASE_URL")]
    pub wechat_base_url: Option<String>,
    /// `verify` (default) or `concurrent`, for /api/getPhone.
    #[arg(long, env = "WXLOGIN_PHONE_BINDING", value_enum)]
    pub phone_binding: Option<PhoneBinding>,
    /// Session lifetime, e.g. `30d`, `12h`.
    #[arg(long, env = "WXLOGIN_SESSION_TTL")]
    pub session_ttl: Option<String>,
    /// Base64 of 32 bytes: the key that encrypts phone numbers at rest. Required with real credentials.
    #[arg(long, env = "WXLOGIN_DATA_KEY", hide_env_values = true)]
    pub data_key: Option<String>,
    /// Log format: `text` (default) or `json`.
    #[arg(long, env = "WXLOGIN_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// With Redis: how long a crashed instance's access-token refresh lock can hold up the others.
    #[arg(long, env = "WXLOGIN_TOKEN_LOCK_LEASE")]
    pub token_lock_lease: Option<String>,
    /// A request head must be complete this long after accept, or after its first byte on a kept-alive connection.
    #[arg(long, env = "WXLOGIN_HEADER_TIMEOUT")]
    pub header_timeout: Option<String>,
    /// A request (body and handling) is answered 408 after this.
    #[arg(long, env = "WXLOGIN_REQUEST_TIMEOUT")]
    pub request_timeout: Option<String>,
    /// A keep-alive connection with no request for this long is closed.
    #[arg(long, env = "WXLOGIN_IDLE_TIMEOUT")]
    pub idle_timeout: Option<String>,
    /// Connections open at once (lowered to what the open-file limit allows); idle ones make room for new ones.
    #[arg(long, env = "WXLOGIN_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// On SIGTERM, how long the requests in flight may take before the service stops anyway.
    #[arg(long, env = "WXLOGIN_DRAIN_TIMEOUT")]
    pub drain_timeout: Option<String>,
    /// Run the sandbox (simulated WeChat, anyone can mint a login) even where the settings look like production:
    /// a non-loopback address, a database URL, a Redis URL or a data key.
    #[arg(long, env = "WXLOGIN_SANDBOX")]
    pub sandbox: bool,
    /// `off` turns every rate limit off (load tests, or a limiter in front); `on` (default) applies the
    /// `[rate_limits]` table of the config file, or its defaults.
    #[arg(long, env = "WXLOGIN_RATE_LIMITS", value_enum)]
    pub rate_limits: Option<RateLimitSwitch>,
    /// Proxies whose `X-Forwarded-For` is trusted for the client address (comma-separated IPs or CIDRs, e.g.
    /// `10.0.0.0/8,127.0.0.1`); default: none, the peer address is the client.
    #[arg(long, env = "WXLOGIN_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
}

/// `--rate-limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RateLimitSwitch {
    On,
    Off,
}

/// The TOML file's shape: the same settings, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    redis_url: Option<String>,
    wechat_base_url: Option<String>,
    phone_binding: Option<PhoneBinding>,
    session_ttl: Option<String>,
    data_key: Option<String>,
    log_format: Option<String>,
    token_lock_lease: Option<String>,
    sandbox: Option<bool>,
    rate_limits: Option<RateLimitConfig>,
    trusted_proxies: Option<TrustedProxies>,
    header_timeout: Option<String>,
    request_timeout: Option<String>,
    idle_timeout: Option<String>,
    max_connections: Option<usize>,
    drain_timeout: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
}

/// WeChat credentials: present in production, absent in sandbox mode.
#[derive(Clone)]
pub struct Credentials {
    pub appid: weixin::AppId,
    pub secret: weixin::AppSecret,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("appid", &self.appid)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Everything `serve` needs, resolved and checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub wechat_base_url: Option<String>,
    pub phone_binding: PhoneBinding,
    pub session_ttl: Duration,
    /// Base64 data key as given (decoded and checked by the phone cipher).
    pub data_key: Option<DataKeyText>,
    pub credentials: Option<Credentials>,
    pub accounts: AccountPolicy,
    /// `--sandbox`: sandbox mode asked for explicitly (warned about at start).
    pub sandbox_forced: bool,
    pub json_logs: bool,
    pub token_lock_lease: Duration,
    /// The limits in force (all off with `--rate-limits off`).
    pub rate_limits: RateLimitConfig,
    pub trusted_proxies: TrustedProxies,
    pub connection_limits: crate::server::ConnectionLimits,
}

/// The data key's text, which never prints.
#[derive(Clone)]
pub struct DataKeyText(pub String);

impl std::fmt::Debug for DataKeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A setting that cannot be used, said in words an operator can act on.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Resolves flags/environment (already merged by clap), then the TOML file, then defaults. `env` gives the
    /// credentials' variables (`WX_APPID`, `WX_SECRET`), which have no flag: a secret on a command line shows in
    /// `ps`.
    pub fn resolve(
        args: ServeArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        // A variable that is set but empty is a failed secret injection, never a request for sandbox mode.
        let appid = present("WX_APPID", env("WX_APPID"))?.or(present("appid", file.appid)?);
        let secret = present("WX_SECRET", env("WX_SECRET"))?.or(present("secret", file.secret)?);
        let credentials =
            match (appid, secret) {
                (Some(appid), Some(secret)) => Some(Credentials {
                    appid: weixin::AppId::parse(appid.trim()).map_err(|e| {
                        ConfigError(format!("WX_APPID is not a valid AppID ({})", e.reason))
                    })?,
                    secret: weixin::AppSecret::new(secret.trim()),
                }),
                (None, None) => None,
                (Some(_), None) => return Err(ConfigError(
                    "WX_APPID is set but WX_SECRET is not: set both, or neither for sandbox mode"
                        .into(),
                )),
                (None, Some(_)) => return Err(ConfigError(
                    "WX_SECRET is set but WX_APPID is not: set both, or neither for sandbox mode"
                        .into(),
                )),
            };
        let sandbox_asked = args.sandbox || file.sandbox.unwrap_or(false);
        if sandbox_asked && credentials.is_some() {
            return Err(ConfigError(
                "--sandbox with WX_APPID/WX_SECRET set: choose one (sandbox mode simulates WeChat)"
                    .into(),
            ));
        }
        let wechat_base_url = args.wechat_base_url.or(file.wechat_base_url);
        if credentials.is_none() && wechat_base_url.is_some() {
            return Err(ConfigError("--wechat-base-url needs WX_APPID and WX_SECRET (sandbox mode uses its own simulator)".into()));
        }
        let session_ttl_text = args
            .session_ttl
            .or(file.session_ttl)
            .unwrap_or_else(|| defaults::SESSION_TTL.into());
        let session_ttl = humantime::parse_duration(&session_ttl_text).map_err(|e| {
            ConfigError(format!(
                "--session-ttl {session_ttl_text:?}: {e} (try 30d or 12h)"
            ))
        })?;
        if session_ttl < Duration::from_secs(60) {
            return Err(ConfigError("--session-ttl must be at least 1m".into()));
        }
        let lease_text = args
            .token_lock_lease
            .or(file.token_lock_lease)
            .unwrap_or_else(|| defaults::TOKEN_LOCK_LEASE.into());
        let token_lock_lease = humantime::parse_duration(&lease_text).map_err(|e| {
            ConfigError(format!("--token-lock-lease {lease_text:?}: {e} (try 10s)"))
        })?;
        if token_lock_lease < Duration::from_millis(100) {
            return Err(ConfigError(
                "--token-lock-lease must be at least 100ms".into(),
            ));
        }
        let log_format = args
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        let json_logs = match log_format.as_str() {
            "text" => false,
            "json" => true,
            other => {
                return Err(ConfigError(format!(
                    "--log-format {other:?}: use text or json"
                )));
            }
        };
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| defaults::LISTEN.parse().expect("valid default"));
        let database_url = args.database_url.or(file.database_url);
        let redis_url = args.redis_url.or(file.redis_url);
        let data_key = non_empty(args.data_key.or(file.data_key)).map(DataKeyText);
        if credentials.is_none() && !sandbox_asked {
            // Sandbox mode lets anyone mint a login for any phone: it is only reached when nothing says
            // production. Each check names the setting, so the operator knows what to fix.
            let production_hint = if !listen.ip().is_loopback() {
                Some(format!("--listen {listen} is not a loopback address"))
            } else if database_url.is_some() {
                Some("a database URL is set (--database-url / WXLOGIN_DATABASE_URL)".into())
            } else if redis_url.is_some() {
                Some("a Redis URL is set (--redis-url / WXLOGIN_REDIS_URL)".into())
            } else if data_key.is_some() {
                Some("a data key is set (--data-key / WXLOGIN_DATA_KEY)".into())
            } else {
                None
            };
            if let Some(hint) = production_hint {
                return Err(ConfigError(format!(
                    "no WX_APPID/WX_SECRET, but {hint}: refusing to start the sandbox (simulated WeChat) on what looks like production; set the credentials, or pass --sandbox to run the sandbox anyway"
                )));
            }
        }
        let rate_limits = match args.rate_limits {
            Some(RateLimitSwitch::Off) => RateLimitConfig::off(),
            Some(RateLimitSwitch::On) | None => file.rate_limits.unwrap_or_default(),
        };
        let trusted_proxies = match args.trusted_proxies {
            Some(text) => text
                .parse::<TrustedProxies>()
                .map_err(|e| ConfigError(format!("--trusted-proxies: {e}")))?,
            None => file.trusted_proxies.unwrap_or_default(),
        };
        let connection_limits = crate::server::ConnectionLimits {
            header_timeout: duration_setting(
                "--header-timeout",
                args.header_timeout.or(file.header_timeout),
                defaults::HEADER_TIMEOUT,
            )?,
            request_timeout: duration_setting(
                "--request-timeout",
                args.request_timeout.or(file.request_timeout),
                defaults::REQUEST_TIMEOUT,
            )?,
            idle_timeout: duration_setting(
                "--idle-timeout",
                args.idle_timeout.or(file.idle_timeout),
                defaults::IDLE_TIMEOUT,
            )?,
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(defaults::MAX_CONNECTIONS),
            drain_timeout: duration_setting(
                "--drain-timeout",
                args.drain_timeout.or(file.drain_timeout),
                defaults::DRAIN_TIMEOUT,
            )?,
        };
        if connection_limits.max_connections == 0 {
            return Err(ConfigError("--max-connections must be at least 1".into()));
        }
        if connection_limits.header_timeout >= connection_limits.request_timeout {
            return Err(ConfigError(
                "--header-timeout must be shorter than --request-timeout".into(),
            ));
        }
        Ok(Self {
            listen,
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| defaults::DATA_DIR.into()),
            database_url,
            redis_url,
            wechat_base_url,
            phone_binding: args
                .phone_binding
                .or(file.phone_binding)
                .unwrap_or(PhoneBinding::Verify),
            session_ttl,
            data_key,
            credentials,
            accounts: AccountPolicy::default(),
            sandbox_forced: sandbox_asked,
            json_logs,
            token_lock_lease,
            rate_limits,
            trusted_proxies,
            connection_limits,
        })
    }

    /// Sandbox mode: no WeChat credentials, WeChat simulated in process.
    pub fn is_sandbox(&self) -> bool {
        self.credentials.is_none()
    }

    /// The database URL in use: the given one, or SQLite in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("wxlogin.db").display()),
        }
    }
}

/// A credential's value: absent, or non-empty. Set but blank is an error naming the variable.
fn present(name: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(v) if v.trim().is_empty() => Err(ConfigError(format!(
            "{name} is set but empty (a secret that failed to load?): set it, or unset it for sandbox mode"
        ))),
        other => Ok(other),
    }
}

/// A non-zero duration setting given as humantime text (`10s`, `1m`), or its default.
fn duration_setting(
    flag: &str,
    text: Option<String>,
    default: &str,
) -> Result<Duration, ConfigError> {
    let text = text.unwrap_or_else(|| default.into());
    let value = humantime::parse_duration(&text)
        .map_err(|e| ConfigError(format!("{flag} {text:?}: {e} (try {default})")))?;
    if value.is_zero() {
        return Err(ConfigError(format!("{flag} must be more than 0")));
    }
    Ok(value)
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_are_sandbox_on_localhost() {
        let s = Settings::resolve(ServeArgs::default(), no_env).unwrap();
        assert!(s.is_sandbox());
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.session_ttl, Duration::from_secs(30 * 86400));
        assert_eq!(s.phone_binding, PhoneBinding::Verify);
        assert!(s.database_url().starts_with("sqlite://"));
        assert_eq!(
            s.connection_limits,
            crate::server::ConnectionLimits::default()
        );
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("wxlogin-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wxlogin.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\nsession_ttl = \"2h\"\nphone_binding = \"concurrent\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            session_ttl: Some("1h".into()),
            ..Default::default()
        };
        let s = Settings::resolve(args, no_env).unwrap();
        assert_eq!(s.listen.port(), 9999);
        assert_eq!(s.session_ttl, Duration::from_secs(3600));
        assert_eq!(s.phone_binding, PhoneBinding::Concurrent);
    }

    #[test]
    fn half_credentials_and_bad_values_are_refused_clearly() {
        let only_id = |k: &str| (k == "WX_APPID").then(|| "wx0123456789abcdef".to_string());
        assert!(
            Settings::resolve(ServeArgs::default(), only_id)
                .unwrap_err()
                .to_string()
                .contains("WX_SECRET")
        );
        let ttl = ServeArgs {
            session_ttl: Some("forever".into()),
            ..Default::default()
        };
        assert!(
            Settings::resolve(ttl, no_env)
                .unwrap_err()
                .to_string()
                .contains("session-ttl")
        );
        let url = ServeArgs {
            wechat_base_url: Some("http://127.0.0.1:9000".into()),
            ..Default::default()
        };
        assert!(Settings::resolve(url, no_env).is_err());
        let both = |k: &str| match k {
            "WX_APPID" => Some("wx0123456789abcdef".to_string()),
            "WX_SECRET" => Some("s3cr3t".to_string()),
            _ => None,
        };
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
        ] {
            assert!(Settings::resolve(bad, no_env).is_err());
        }
        let s = Settings::resolve(ServeArgs::default(), both).unwrap();
        assert!(!s.is_sandbox());
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[test]
    fn set_but_empty_credentials_are_errors_never_sandbox() {
        for (name, appid, secret) in [
            ("WX_APPID", "", "s"),
            ("WX_SECRET", "wx0123456789abcdef", "  "),
        ] {
            let env = |k: &str| match k {
                "WX_APPID" => Some(appid.to_string()),
                "WX_SECRET" => Some(secret.to_string()),
                _ => None,
            };
            let err = Settings::resolve(ServeArgs::default(), env)
                .unwrap_err()
                .to_string();
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
            let refused = Settings::resolve(args.clone(), no_env)
                .unwrap_err()
                .to_string();
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
    }
}

#[cfg(test)]
mod readme {
    use super::ServeArgs;
    use clap::Args;

    /// The README's configuration table lists exactly the flags `serve` has, each with its environment variable.
    #[test]
    fn the_readme_table_is_the_flags() {
        let readme = include_str!("../../../README.md");
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
        let readme = include_str!("../../../README.md");
        let max_connections = d::MAX_CONNECTIONS.to_string();
        for (flag, default) in [
            ("listen", d::LISTEN),
            ("data-dir", d::DATA_DIR),
            ("session-ttl", d::SESSION_TTL),
            ("phone-binding", d::PHONE_BINDING),
            ("token-lock-lease", d::TOKEN_LOCK_LEASE),
            ("header-timeout", d::HEADER_TIMEOUT),
            ("request-timeout", d::REQUEST_TIMEOUT),
            ("idle-timeout", d::IDLE_TIMEOUT),
            ("max-connections", &max_connections),
            ("drain-timeout", d::DRAIN_TIMEOUT),
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
}
