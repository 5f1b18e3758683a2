//! The token side (design.md, "Tokens other services can verify"): the access token's issuer, audiences,
//! lifetime and optional claims, the refresh token's lifetimes, forward auth, and the resource servers allowed to
//! introspect (`[[clients]]`).

use super::apps::secret_from;
use super::layers::Merged;
use super::{ConfigError, defaults, duration};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Duration;

/// The token side's flags (top-level keys in the file).
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct TokenArgs {
    /// The `iss` of access tokens and of the discovery document: the public base URL of this service as clients
    /// reach it (e.g. `https://login.example.com`); default: `http://` and the listen address.
    #[arg(long, env = "WXLOGIN_ISSUER")]
    pub issuer: Option<String>,
    /// The `aud` of access tokens (comma-separated); default `wxlogin`.
    #[arg(long, env = "WXLOGIN_AUDIENCES", value_delimiter = ',')]
    pub audiences: Option<Vec<String>>,
    /// Access token lifetime, e.g. `15m`.
    #[arg(long, env = "WXLOGIN_ACCESS_TOKEN_TTL")]
    pub access_token_ttl: Option<String>,
    /// A session ends this long after its refresh token was last used (sliding), e.g. `30d`; default: the
    /// `--session-ttl`.
    #[arg(long, env = "WXLOGIN_REFRESH_TOKEN_TTL")]
    pub refresh_token_ttl: Option<String>,
    /// A session ends this long after its login whatever its refreshes, e.g. `180d`.
    #[arg(long, env = "WXLOGIN_REFRESH_ABSOLUTE_TTL")]
    pub refresh_absolute_ttl: Option<String>,
    /// Extra access-token claims (comma-separated): `openid`, `unionid`.
    #[arg(long, env = "WXLOGIN_TOKEN_CLAIMS", value_delimiter = ',')]
    pub token_claims: Option<Vec<String>>,
    /// `/auth/verify` also answers `X-Auth-Phone` (the phone in clear, to the proxy in front of a backend).
    #[arg(long, env = "WXLOGIN_FORWARD_AUTH_PHONE", value_name = "true|false")]
    pub forward_auth_phone: Option<bool>,
}

/// One `[[clients]]` entry as written: a resource server that may call `/oauth2/introspect`. No `Debug`: it holds a
/// secret as plain text until it is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientEntry {
    id: String,
    secret: Option<String>,
    secret_env: Option<String>,
}

/// The token side, checked.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `None`: `http://` and the listen address.
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub refresh_absolute_ttl: Duration,
    pub openid_claim: bool,
    pub unionid_claim: bool,
    pub forward_phone: bool,
    pub clients: Vec<ClientCredentials>,
}

/// A resource server's credentials for introspection.
#[derive(Clone)]
pub struct ClientCredentials {
    pub id: String,
    pub secret: secrecy::SecretString,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientCredentials({}, [redacted])", self.id)
    }
}

pub(super) fn resolve(
    merged: &Merged,
    session_ttl: Duration,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<TokenSettings, ConfigError> {
    let issuer = match merged.issuer.as_deref().map(str::trim) {
        None => None,
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            Some(url.trim_end_matches('/').to_owned())
        }
        Some(other) => {
            return Err(ConfigError(format!(
                "--issuer {other:?}: the public base URL of this service, e.g. https://login.example.com"
            )));
        }
    };
    let audiences: Vec<String> = match &merged.audiences {
        None => vec![defaults::AUDIENCE.to_owned()],
        Some(list) => list.iter().map(|a| a.trim().to_owned()).collect(),
    };
    if audiences.is_empty() || audiences.iter().any(String::is_empty) {
        return Err(ConfigError(
            "--audiences: give at least one, none empty".into(),
        ));
    }
    let access_ttl = duration("--access-token-ttl", &merged.access_token_ttl, "15m")?;
    if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&access_ttl) {
        return Err(ConfigError(
            "--access-token-ttl must be between 1s and 24h: a third party accepts an access token until it expires, even after logout".into(),
        ));
    }
    let refresh_ttl = match &merged.refresh_token_ttl {
        Some(text) => duration("--refresh-token-ttl", text, "30d")?,
        None => session_ttl,
    };
    let refresh_absolute_ttl = duration(
        "--refresh-absolute-ttl",
        &merged.refresh_absolute_ttl,
        "180d",
    )?;
    if refresh_ttl <= access_ttl || refresh_absolute_ttl <= access_ttl {
        return Err(ConfigError(
            "--refresh-token-ttl and --refresh-absolute-ttl must be longer than --access-token-ttl"
                .into(),
        ));
    }
    let mut openid_claim = false;
    let mut unionid_claim = false;
    for claim in &merged.token_claims {
        match claim.trim() {
            "openid" => openid_claim = true,
            "unionid" => unionid_claim = true,
            other => {
                return Err(ConfigError(format!(
                    "--token-claims {other:?}: the extra claims are openid and unionid"
                )));
            }
        }
    }
    Ok(TokenSettings {
        issuer,
        audiences,
        access_ttl,
        refresh_ttl,
        refresh_absolute_ttl,
        openid_claim,
        unionid_claim,
        forward_phone: merged.forward_auth_phone,
        clients: clients(&merged.clients, env)?,
    })
}

fn clients(
    entries: &[ClientEntry],
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<ClientCredentials>, ConfigError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let id = entry.id.trim();
        if id.is_empty() || !seen.insert(id.to_owned()) {
            return Err(ConfigError(format!(
                "[[clients]] id {id:?}: each client needs an id of its own"
            )));
        }
        let what = format!("[[clients]] id {id}");
        let secret = secret_from(&what, &entry.secret, &entry.secret_env, env)?;
        if secret.len() < 16 {
            return Err(ConfigError(format!(
                "{what}: the secret is shorter than 16 characters (generate one with: openssl rand -base64 32)"
            )));
        }
        out.push(ClientCredentials {
            id: id.to_owned(),
            secret: secret.into(),
        });
    }
    Ok(out)
}
