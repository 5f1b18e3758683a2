//! The layers, merged by figment: [`Merged::default`] (the defaults), then the TOML file, then the flags that
//! were given. Every setting is declared once, in [`Merged`]; its field name is the TOML key and the flag's name.

use super::apps::{AccountPolicy, AppEntry};
use super::tokens::ClientEntry;
use super::{ConfigError, PhoneBinding, ServeArgs, defaults};
use crate::client_ip::TrustedProxies;
use crate::ratelimit::RateLimitConfig;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Every setting after merging, as text where the check needs the flag's name in its message (durations, the
/// log format); [`super::Settings::resolve`] checks them.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Merged {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub wechat_base_url: Option<String>,
    pub phone_binding: PhoneBinding,
    pub session_ttl: String,
    pub data_key: Option<String>,
    pub log_format: String,
    pub token_lock_lease: String,
    pub quota_poll_interval: String,
    pub purge_interval: String,
    pub header_timeout: String,
    pub request_timeout: String,
    pub idle_timeout: String,
    pub max_connections: usize,
    pub drain_timeout: String,
    pub sandbox: bool,
    pub rate_limits: RateLimitConfig,
    pub trusted_proxies: TrustedProxies,
    /// The one-app service's credentials in the file (`WX_APPID`/`WX_SECRET` win over them).
    pub appid: Option<String>,
    pub secret: Option<String>,
    pub apps: Vec<AppEntry>,
    pub accounts: AccountPolicy,
    pub issuer: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub access_token_ttl: String,
    pub refresh_token_ttl: Option<String>,
    pub refresh_absolute_ttl: String,
    pub token_claims: Vec<String>,
    pub forward_auth_phone: bool,
    pub clients: Vec<ClientEntry>,
    pub cors_origins: Vec<String>,
    pub qr_page: String,
    pub qr_env_version: String,
}

impl Default for Merged {
    fn default() -> Self {
        use clap::ValueEnum;
        Self {
            listen: defaults::LISTEN.parse().expect("a valid default"),
            data_dir: defaults::DATA_DIR.into(),
            database_url: None,
            redis_url: None,
            wechat_base_url: None,
            phone_binding: PhoneBinding::from_str(defaults::PHONE_BINDING, false)
                .expect("a valid default"),
            session_ttl: defaults::SESSION_TTL.into(),
            data_key: None,
            log_format: defaults::LOG_FORMAT.into(),
            token_lock_lease: defaults::TOKEN_LOCK_LEASE.into(),
            quota_poll_interval: defaults::QUOTA_POLL_INTERVAL.into(),
            purge_interval: defaults::PURGE_INTERVAL.into(),
            header_timeout: defaults::HEADER_TIMEOUT.into(),
            request_timeout: defaults::REQUEST_TIMEOUT.into(),
            idle_timeout: defaults::IDLE_TIMEOUT.into(),
            max_connections: defaults::MAX_CONNECTIONS,
            drain_timeout: defaults::DRAIN_TIMEOUT.into(),
            sandbox: false,
            rate_limits: RateLimitConfig::default(),
            trusted_proxies: TrustedProxies::default(),
            appid: None,
            secret: None,
            apps: Vec::new(),
            accounts: AccountPolicy::default(),
            issuer: None,
            audiences: None,
            access_token_ttl: defaults::ACCESS_TOKEN_TTL.into(),
            refresh_token_ttl: None,
            refresh_absolute_ttl: defaults::REFRESH_ABSOLUTE_TTL.into(),
            token_claims: Vec::new(),
            forward_auth_phone: false,
            clients: Vec::new(),
            cors_origins: Vec::new(),
            qr_page: defaults::QR_PAGE.into(),
            qr_env_version: defaults::QR_ENV_VERSION.into(),
        }
    }
}

/// The flags layer's name in figment's metadata: an error there is reported as `--flag-name: why`.
const FLAGS: &str = "flags";

/// Merges the layers. An error names the file and key, or the flag, that holds the bad value.
pub(super) fn merge(args: &ServeArgs) -> Result<Merged, ConfigError> {
    let mut figment = Figment::new();
    if let Some(path) = &args.config {
        figment = figment.merge(TomlFile::read(path)?);
    }
    figment
        .merge(Flags(args))
        .extract()
        .map_err(|e| describe(&e))
}

/// The `--config` file. Parsed with the workspace's `toml` (not figment's own TOML provider, which would bring
/// a second, older toml crate), so a syntax error reads as it always has: the path, then toml's line and column.
struct TomlFile {
    path: PathBuf,
    table: Dict,
}

impl TomlFile {
    fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        let table =
            toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Ok(Self {
            path: path.to_owned(),
            table,
        })
    }
}

impl Provider for TomlFile {
    fn metadata(&self) -> Metadata {
        Metadata::from("TOML file", self.path.as_path())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.table.clone()))
    }
}

/// The flags (and their environment variables) that were given.
struct Flags<'a>(&'a ServeArgs);

impl Provider for Flags<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named(FLAGS)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut data = figment::providers::Serialized::defaults(self.0).data()?;
        data.values_mut().for_each(drop_absent);
        Ok(data)
    }
}

/// An absent flag serializes as an empty value, which figment would merge over the file's value: drop it.
fn drop_absent(dict: &mut Dict) {
    dict.retain(|_, value| match value {
        Value::Empty(..) => false,
        Value::Dict(_, inner) => {
            drop_absent(inner);
            true
        }
        _ => true,
    });
}

/// figment's error as one line: where the value came from (the file and its key, or the flag), then why.
fn describe(err: &figment::Error) -> ConfigError {
    let lines: Vec<String> = err.clone().into_iter().map(|e| describe_one(&e)).collect();
    ConfigError(lines.join("; "))
}

fn describe_one(err: &figment::Error) -> String {
    let key = err.path.join(".");
    let why = &err.kind;
    match &err.metadata {
        Some(md) if md.name == FLAGS => {
            let flag = err.path.last().map(|k| k.replace('_', "-"));
            format!("--{}: {why}", flag.unwrap_or_default())
        }
        Some(Metadata {
            source: Some(Source::File(path)),
            ..
        }) if key.is_empty() => format!("{}: {why}", path.display()),
        Some(Metadata {
            source: Some(Source::File(path)),
            ..
        }) => format!("{}: {key}: {why}", path.display()),
        _ if key.is_empty() => why.to_string(),
        _ => format!("{key}: {why}"),
    }
}
