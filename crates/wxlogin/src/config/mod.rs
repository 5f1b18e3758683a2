//! Configuration: flags > environment > a TOML file (`--config`) > defaults, resolved once at start into
//! [`Settings`].
//!
//! The layering is figment's ([`layers`]): each setting is declared once in a serde struct whose `Default` takes
//! the values of [`defaults`]; the TOML file and then the flags are merged over it. clap reads each flag's
//! environment variable into [`ServeArgs`] (the flag wins), so a variable is checked exactly as its flag is and
//! shows in `--help`. This module then turns the merged text into checked values.

mod apps;
mod layers;
#[cfg(test)]
mod readme;
#[cfg(test)]
mod tests;
mod tokens;
mod web;

pub use apps::{AccountArgs, AccountPolicy, AppSettings, PhoneConflict, PushSettings};
pub use tokens::{ClientCredentials, TokenArgs, TokenSettings};
pub use web::{WebArgs, WebSettings};

use crate::client_ip::TrustedProxies;
use crate::ratelimit::RateLimitConfig;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Defaults, as the README's configuration table states them.
pub mod defaults {
    pub const LISTEN: &str = "127.0.0.1:8080";
    pub const DATA_DIR: &str = "./wxlogin-data";
    pub const SESSION_TTL: &str = "30d";
    pub const PHONE_BINDING: &str = "verify";
    pub const LOG_FORMAT: &str = "text";
    pub const TOKEN_LOCK_LEASE: &str = "10s";
    pub const QUOTA_POLL_INTERVAL: &str = "10m";
    pub const PURGE_INTERVAL: &str = "10m";
    pub const HEADER_TIMEOUT: &str = "10s";
    pub const REQUEST_TIMEOUT: &str = "30s";
    pub const IDLE_TIMEOUT: &str = "60s";
    pub const MAX_CONNECTIONS: usize = 10_000;
    pub const DRAIN_TIMEOUT: &str = "15s";
    pub const LINK_BY_PHONE: bool = true;
    pub const PHONE_CONFLICT: &str = "move";
    pub const AUDIENCE: &str = "wxlogin";
    pub const ACCESS_TOKEN_TTL: &str = "15m";
    pub const REFRESH_ABSOLUTE_TTL: &str = "180d";
    pub const QR_PAGE: &str = "pages/qr-confirm/qr-confirm";
    pub const QR_ENV_VERSION: &str = "release";
}

/// How `/api/getPhone` ties the phone code to the user of the login code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PhoneBinding {
    /// jscode2session first, then getuserphonenumber with the openid: WeChat checks the phone code is that
    /// user's. Two round trips.
    Verify,
    /// Both exchanges at once, without the check. One round trip.
    Concurrent,
}

/// `wxlogin serve` flags; each also reads its environment variable (clap: the flag wins). Serialized, the flags
/// that were given are figment's top layer; the field names are the TOML keys.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (keys as the flags, with underscores), and the tables
    /// `[[apps]]`, `[accounts]`, `[rate_limits]` and `[[clients]]` (resource servers that may introspect tokens).
    #[arg(long, env = "WXLOGIN_CONFIG")]
    #[serde(skip)]
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
    /// WeChat's API base URL (a `wxlogin sim` for tests); needs an app (WX_APPID and WX_SECRET, or `[[apps]]`).
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
    /// How often each app's phone-verification quota is read from WeChat (one call per app and kind); `0` off.
    #[arg(long, env = "WXLOGIN_QUOTA_POLL_INTERVAL")]
    pub quota_poll_interval: Option<String>,
    /// How often expired sessions, tickets and spent refresh tokens are deleted (in batches); `0` off.
    #[arg(long, env = "WXLOGIN_PURGE_INTERVAL")]
    pub purge_interval: Option<String>,
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
    // Absent is not "false": `sandbox = true` in the file still holds when the flag is not given.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
    /// `off` turns every rate limit off (load tests, or a limiter in front); `on` (default) applies the
    /// `[rate_limits]` table of the config file, or its defaults.
    #[arg(long, env = "WXLOGIN_RATE_LIMITS", value_enum)]
    // Not a layer over the file's `rate_limits` table: `on` means "that table", so it is applied after merging.
    #[serde(skip)]
    pub rate_limits: Option<RateLimitSwitch>,
    /// Proxies whose `X-Forwarded-For` is trusted for the client address (comma-separated IPs or CIDRs, e.g.
    /// `10.0.0.0/8,127.0.0.1`); default: none, the peer address is the client.
    #[arg(long, env = "WXLOGIN_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// The `[accounts]` table's settings.
    #[command(flatten)]
    pub accounts: AccountArgs,
    /// The token side's settings (top-level keys).
    #[command(flatten)]
    #[serde(flatten)]
    pub tokens: TokenArgs,
    /// Web pages: CORS and scan login (top-level keys).
    #[command(flatten)]
    #[serde(flatten)]
    pub web: WebArgs,
}

/// `--rate-limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RateLimitSwitch {
    On,
    Off,
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
    /// The WeChat apps served, in the order configured; none in sandbox mode.
    pub apps: Vec<AppSettings>,
    /// How WeChat users of several apps become accounts.
    pub accounts: AccountPolicy,
    /// `--sandbox`: sandbox mode asked for explicitly (warned about at start).
    pub sandbox_forced: bool,
    pub json_logs: bool,
    pub token_lock_lease: Duration,
    /// How often the quota poller reads WeChat's phone-verification quota; `None`: never (`0`).
    pub quota_poll_interval: Option<Duration>,
    /// How often expired rows are purged; `None`: never (`0`).
    pub purge_interval: Option<Duration>,
    /// The limits in force (all off with `--rate-limits off`).
    pub rate_limits: RateLimitConfig,
    pub trusted_proxies: TrustedProxies,
    pub connection_limits: crate::server::ConnectionLimits,
    pub tokens: TokenSettings,
    pub web: WebSettings,
}

/// The data key's text, which never prints.
#[derive(Clone)]
pub struct DataKeyText(pub String);

impl std::fmt::Debug for DataKeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A setting that cannot be used, said in words an operator can act on (one line, never a secret's value).
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Merges defaults, the TOML file and the flags (with their environment variables, already merged by clap),
    /// then checks the result. `env` reads the variables that have no flag: `WX_APPID`, `WX_SECRET` (a secret on a
    /// command line shows in `ps`) and those `[[apps]]` name in `secret_env`.
    pub fn resolve(
        args: ServeArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let merged = layers::merge(&args)?;
        let web = web::resolve(&merged)?;
        let apps = apps::resolve(&merged, &web.qr, &env)?;
        let sandbox_asked = merged.sandbox;
        if sandbox_asked && !apps.is_empty() {
            return Err(ConfigError(
                "--sandbox with an app configured (WX_APPID/WX_SECRET or [[apps]]): choose one (sandbox mode simulates WeChat)"
                    .into(),
            ));
        }
        if apps.is_empty() && merged.wechat_base_url.is_some() {
            return Err(ConfigError("--wechat-base-url needs an app: WX_APPID and WX_SECRET, or [[apps]] (sandbox mode uses its own simulator)".into()));
        }
        let session_ttl = duration("--session-ttl", &merged.session_ttl, "30d or 12h")?;
        if session_ttl < Duration::from_secs(60) {
            return Err(ConfigError("--session-ttl must be at least 1m".into()));
        }
        let tokens = tokens::resolve(&merged, session_ttl, &env)?;
        let token_lock_lease = duration("--token-lock-lease", &merged.token_lock_lease, "10s")?;
        if token_lock_lease < Duration::from_millis(100) {
            return Err(ConfigError(
                "--token-lock-lease must be at least 100ms".into(),
            ));
        }
        let quota_poll_interval = duration(
            "--quota-poll-interval",
            &merged.quota_poll_interval,
            "10m, or 0 to turn it off",
        )?;
        let quota_poll_interval = (!quota_poll_interval.is_zero()).then_some(quota_poll_interval);
        let purge_interval = duration(
            "--purge-interval",
            &merged.purge_interval,
            "10m, or 0 to turn it off",
        )?;
        let purge_interval = (!purge_interval.is_zero()).then_some(purge_interval);
        let json_logs = match merged.log_format.as_str() {
            "text" => false,
            "json" => true,
            other => {
                return Err(ConfigError(format!(
                    "--log-format {other:?}: use text or json"
                )));
            }
        };
        let listen = merged.listen;
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let data_key = non_empty(merged.data_key).map(DataKeyText);
        if apps.is_empty() && !sandbox_asked {
            // Sandbox mode lets anyone mint a login for any phone: it is only reached when nothing says
            // production. Each check names the setting, so the operator knows what to fix.
            let production_hint = if !listen.ip().is_loopback() {
                Some(format!("--listen {listen} is not a loopback address"))
            } else if merged.database_url.is_some() {
                Some("a database URL is set (--database-url / WXLOGIN_DATABASE_URL)".into())
            } else if merged.redis_url.is_some() {
                Some("a Redis URL is set (--redis-url / WXLOGIN_REDIS_URL)".into())
            } else if data_key.is_some() {
                Some("a data key is set (--data-key / WXLOGIN_DATA_KEY)".into())
            } else {
                None
            };
            if let Some(hint) = production_hint {
                return Err(ConfigError(format!(
                    "no app configured (WX_APPID/WX_SECRET or [[apps]]), but {hint}: refusing to start the sandbox (simulated WeChat) on what looks like production; configure the app, or pass --sandbox to run the sandbox anyway"
                )));
            }
        }
        let rate_limits = match args.rate_limits {
            Some(RateLimitSwitch::Off) => RateLimitConfig::off(),
            Some(RateLimitSwitch::On) | None => merged.rate_limits,
        };
        let connection_limits = crate::server::ConnectionLimits {
            header_timeout: positive(
                "--header-timeout",
                &merged.header_timeout,
                defaults::HEADER_TIMEOUT,
            )?,
            request_timeout: positive(
                "--request-timeout",
                &merged.request_timeout,
                defaults::REQUEST_TIMEOUT,
            )?,
            idle_timeout: positive(
                "--idle-timeout",
                &merged.idle_timeout,
                defaults::IDLE_TIMEOUT,
            )?,
            max_connections: merged.max_connections,
            drain_timeout: positive(
                "--drain-timeout",
                &merged.drain_timeout,
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
            data_dir: merged.data_dir,
            database_url: merged.database_url,
            redis_url: merged.redis_url,
            wechat_base_url: merged.wechat_base_url,
            phone_binding: merged.phone_binding,
            session_ttl,
            data_key,
            apps,
            accounts: merged.accounts,
            sandbox_forced: sandbox_asked,
            json_logs,
            token_lock_lease,
            quota_poll_interval,
            purge_interval,
            rate_limits,
            trusted_proxies: merged.trusted_proxies,
            connection_limits,
            tokens,
            web,
        })
    }

    /// Sandbox mode: no WeChat app configured, WeChat simulated in process.
    pub fn is_sandbox(&self) -> bool {
        self.apps.is_empty()
    }

    /// The `iss` of access tokens: as configured, or `http://` and the listen address (an unspecified address as
    /// loopback).
    pub fn issuer(&self, bound: SocketAddr) -> String {
        self.tokens.issuer.clone().unwrap_or_else(|| {
            let host = if bound.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], bound.port()))
            } else {
                bound
            };
            format!("http://{host}")
        })
    }

    /// The database URL in use: the given one, or SQLite in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("wxlogin.db").display()),
        }
    }
}

/// A duration given as humantime text (`10s`, `30d`); the error names the flag and suggests a value.
fn duration(flag: &str, text: &str, example: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text)
        .map_err(|e| ConfigError(format!("{flag} {text:?}: {e} (try {example})")))
}

/// A connection bound: a non-zero duration (zero would close every connection at once).
fn positive(flag: &str, text: &str, example: &str) -> Result<Duration, ConfigError> {
    let value = duration(flag, text, example)?;
    if value.is_zero() {
        return Err(ConfigError(format!("{flag} must be more than 0")));
    }
    Ok(value)
}
