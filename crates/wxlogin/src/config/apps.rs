//! The apps a service serves (`[[apps]]`, or `WX_APPID`/`WX_SECRET` for one) and how their users become
//! accounts (`[accounts]`). See design.md, "Accounts across apps".

use super::ConfigError;
use super::defaults;
use super::layers::Merged;
use crate::logins::apps::QrTarget;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// A WeChat app the service logs users into.
#[derive(Debug, Clone)]
pub struct AppSettings {
    pub appid: weixin::AppId,
    pub secret: weixin::AppSecret,
    /// A display name (`name` in `[[apps]]`), for operators.
    pub name: Option<String>,
    /// Where its scan-login codes open (`qr_page`, `qr_env_version`).
    pub qr: QrTarget,
    /// Its WeChat message push (`push_token`, `push_aes_key`): `None` answers 404 at `/wechat/push/{appid}`.
    pub push: Option<PushSettings>,
}

/// An app's message-push settings as configured in WeChat's console: the Token, and the EncodingAESKey for safe
/// mode. Both are secrets (a Token lets anyone sign pushes).
#[derive(Clone)]
pub struct PushSettings {
    pub token: String,
    pub aes_key: Option<String>,
}

/// The values never print.
impl std::fmt::Debug for PushSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSettings")
            .field("token", &"[redacted]")
            .field("aes_key", &self.aes_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// How WeChat users of several apps become accounts (`[accounts]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountPolicy {
    /// The same verified phone in another app is the same account.
    pub link_by_phone: bool,
    /// The same phone verified by another WeChat user of the same app.
    pub phone_conflict: PhoneConflict,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        use clap::ValueEnum;
        Self {
            link_by_phone: defaults::LINK_BY_PHONE,
            phone_conflict: PhoneConflict::from_str(defaults::PHONE_CONFLICT, false)
                .expect("a valid default"),
        }
    }
}

/// What happens when a phone already on one account is verified by another WeChat user of the same app (a
/// recycled number, or a second WeChat account): a phone belongs to at most one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PhoneConflict {
    /// The phone moves to the newest verifier; the old account keeps its identity, loses the phone and its
    /// sessions end.
    Move,
    /// 409 `phone_in_use`, nothing written.
    Deny,
}

/// `--link-by-phone`, `--phone-conflict`: the `[accounts]` table's flags (serialized under `accounts`).
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct AccountArgs {
    /// `true` (default): the same verified phone in another app is the same account; `false`: one account per
    /// app unless WeChat's unionid says it is the same person.
    #[arg(long, env = "WXLOGIN_LINK_BY_PHONE", value_name = "true|false")]
    pub link_by_phone: Option<bool>,
    /// `move` (default): a phone verified by another WeChat user of the same app moves to them; `deny`: refused
    /// with 409 `phone_in_use`.
    #[arg(long, env = "WXLOGIN_PHONE_CONFLICT", value_enum)]
    pub phone_conflict: Option<PhoneConflict>,
}

/// One `[[apps]]` entry as written. No `Debug`: it holds a secret as plain text until it is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AppEntry {
    appid: String,
    secret: Option<String>,
    secret_env: Option<String>,
    name: Option<String>,
    qr_page: Option<String>,
    qr_env_version: Option<String>,
    push_token: Option<String>,
    push_token_env: Option<String>,
    push_aes_key: Option<String>,
    push_aes_key_env: Option<String>,
}

/// The apps to serve: `[[apps]]`, or the one app of `WX_APPID`/`WX_SECRET` (or the file's `appid`/`secret`), or
/// none (sandbox mode). `env` reads the variables.
pub(super) fn resolve(
    merged: &Merged,
    qr: &QrTarget,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<AppSettings>, ConfigError> {
    // A variable that is set but empty is a failed secret injection, never a request for sandbox mode.
    let env_appid = present("WX_APPID", env("WX_APPID"))?;
    let env_secret = present("WX_SECRET", env("WX_SECRET"))?;
    let file_appid = present("appid", merged.appid.clone())?;
    let file_secret = present("secret", merged.secret.clone())?;
    if !merged.apps.is_empty() {
        let single: Vec<&str> = [
            ("WX_APPID", env_appid.is_some()),
            ("WX_SECRET", env_secret.is_some()),
            ("appid", file_appid.is_some()),
            ("secret", file_secret.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if !single.is_empty() {
            return Err(ConfigError(format!(
                "[[apps]] and {} are both set: they define one app each way; list every app under [[apps]], or use WX_APPID/WX_SECRET alone",
                single.join(", ")
            )));
        }
        return listed(&merged.apps, qr, env);
    }
    let single = match (env_appid.or(file_appid), env_secret.or(file_secret)) {
        (Some(appid), Some(secret)) => vec![AppSettings {
            appid: weixin::AppId::parse(appid.trim()).map_err(|e| {
                ConfigError(format!("WX_APPID is not a valid AppID ({})", e.reason))
            })?,
            secret: weixin::AppSecret::new(secret.trim()),
            name: None,
            qr: qr.clone(),
            push: push(
                "WX_PUSH_TOKEN",
                present("WX_PUSH_TOKEN", env("WX_PUSH_TOKEN"))?,
                "WX_PUSH_AES_KEY",
                present("WX_PUSH_AES_KEY", env("WX_PUSH_AES_KEY"))?,
            )?,
        }],
        (None, None) => Vec::new(),
        (Some(_), None) => {
            return Err(ConfigError(
                "WX_APPID is set but WX_SECRET is not: set both, or neither for sandbox mode"
                    .into(),
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError(
                "WX_SECRET is set but WX_APPID is not: set both, or neither for sandbox mode"
                    .into(),
            ));
        }
    };
    Ok(single)
}

/// The `[[apps]]` entries, checked: each appid valid and listed once, each with exactly one secret source.
fn listed(
    entries: &[AppEntry],
    default_qr: &QrTarget,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<AppSettings>, ConfigError> {
    let mut seen = HashSet::new();
    let mut apps = Vec::with_capacity(entries.len());
    for entry in entries {
        let appid = weixin::AppId::parse(entry.appid.trim()).map_err(|e| {
            ConfigError(format!(
                "[[apps]] appid {:?} is not a valid AppID ({})",
                entry.appid, e.reason
            ))
        })?;
        if !seen.insert(appid.clone()) {
            return Err(ConfigError(format!(
                "[[apps]] lists appid {appid} twice: list each app once"
            )));
        }
        let what = format!("[[apps]] appid {appid}");
        let secret =
            weixin::AppSecret::new(secret_from(&what, &entry.secret, &entry.secret_env, env)?);
        let name = entry
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let qr = match (&entry.qr_page, &entry.qr_env_version) {
            (None, None) => default_qr.clone(),
            (page, env_version) => super::web::target(
                &format!("{what}: qr_page"),
                page.as_deref().unwrap_or(default_qr.page.as_str()),
                &format!("{what}: qr_env_version"),
                env_version
                    .as_deref()
                    .unwrap_or(default_qr.env_version.as_str()),
            )?,
        };
        let optional = |value: &Option<String>, value_env: &Option<String>, key: &str| match (
            value, value_env,
        ) {
            (None, None) => Ok(None),
            _ => secret_from(&format!("{what}: {key}"), value, value_env, env).map(Some),
        };
        let push = push(
            &format!("{what}: push_token"),
            optional(&entry.push_token, &entry.push_token_env, "push_token")?,
            &format!("{what}: push_aes_key"),
            optional(&entry.push_aes_key, &entry.push_aes_key_env, "push_aes_key")?,
        )?;
        apps.push(AppSettings {
            appid,
            secret,
            name,
            qr,
            push,
        });
    }
    Ok(apps)
}

/// An entry's secret (`what` names the entry): `secret` inline, or `secret_env`, the name of the variable that
/// holds it.
pub(super) fn secret_from(
    what: &str,
    secret: &Option<String>,
    secret_env: &Option<String>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let fail = |why: String| ConfigError(format!("{what}: {why}"));
    match (secret, secret_env) {
        (Some(_), Some(_)) => Err(fail("both secret and secret_env are set: give one".into())),
        (None, None) => Err(fail(
            "no secret: set secret_env to the name of the environment variable that holds it (or secret)"
                .into(),
        )),
        (Some(secret), None) if secret.trim().is_empty() => Err(fail("secret is empty".into())),
        (Some(secret), None) => Ok(secret.trim().to_owned()),
        (None, Some(var)) => {
            let var = var.trim();
            // Only a name is ever printed. A value that does not look like one may be the secret itself, pasted
            // into the wrong key: say so without echoing it.
            if !is_variable_name(var) {
                return Err(fail("secret_env must be the NAME of an environment variable (A-Z, 0-9 and _, not starting with a digit), not the secret itself".into()));
            }
            match env(var) {
                None => Err(fail(format!(
                    "secret_env names {var}, which is not set"
                ))),
                Some(value) if value.trim().is_empty() => Err(fail(format!(
                    "secret_env names {var}, which is set but empty (a secret that failed to load?)"
                ))),
                Some(value) => Ok(value.trim().to_owned()),
            }
        }
    }
}

/// An app's push settings from its token and key (each named by `*_name` in errors), checked against WeChat's
/// shapes: a Token of 3–32 letters and digits, an EncodingAESKey of 43. A key without a token is an error.
fn push(
    token_name: &str,
    token: Option<String>,
    key_name: &str,
    key: Option<String>,
) -> Result<Option<PushSettings>, ConfigError> {
    let alnum = |text: &str| text.bytes().all(|b| b.is_ascii_alphanumeric());
    match (token, key) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ConfigError(format!(
            "{key_name} is set but {token_name} is not: safe mode needs both"
        ))),
        (Some(token), key) => {
            let token = token.trim().to_owned();
            if !(3..=32).contains(&token.len()) || !alnum(&token) {
                return Err(ConfigError(format!(
                    "{token_name} must be 3 to 32 letters and digits, as WeChat's console takes it"
                )));
            }
            let aes_key = match key.map(|k| k.trim().to_owned()) {
                Some(k) if k.len() != 43 || !alnum(&k) => {
                    return Err(ConfigError(format!(
                        "{key_name} must be the 43 letters and digits of the EncodingAESKey"
                    )));
                }
                other => other,
            };
            Ok(Some(PushSettings { token, aes_key }))
        }
    }
}

/// `SOME_NAME`: upper case, digits and underscores. A WeChat AppSecret is 32 lower-case hex characters, so it
/// never passes for one.
fn is_variable_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A credential's value: absent, or non-empty. Set but blank is an error naming the variable (or key).
fn present(name: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(v) if v.trim().is_empty() => Err(ConfigError(format!(
            "{name} is set but empty (a secret that failed to load?): set it, or unset it for sandbox mode"
        ))),
        other => Ok(other),
    }
}
