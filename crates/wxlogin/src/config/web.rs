//! Web pages (design.md, "Web login through the mini program"): the origins whose pages may call the API from a
//! browser (`cors_origins`), and where a scan login's mini program code opens (`qr_page`, `qr_env_version`: the
//! defaults of every app, which an `[[apps]]` entry may override).

use super::ConfigError;
use super::layers::Merged;
use crate::logins::apps::QrTarget;
use clap::Args;
use serde::Serialize;

/// The web side's flags (top-level keys in the file).
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct WebArgs {
    /// Origins of web pages that may call the API from a browser (comma-separated, e.g.
    /// `https://admin.example.com,http://localhost:5173`); default: none (same origin only).
    #[arg(long, env = "WXLOGIN_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// The mini program page a scan login's code opens (the template's confirm page), without a leading `/`.
    #[arg(long, env = "WXLOGIN_QR_PAGE")]
    pub qr_page: Option<String>,
    /// Which version of the mini program a scan login's code opens: `release` (default), `trial` or `develop`.
    #[arg(long, env = "WXLOGIN_QR_ENV_VERSION")]
    pub qr_env_version: Option<String>,
}

/// The web side, checked.
#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    /// Exact origins (`scheme://host[:port]`, lower case).
    pub cors_origins: Vec<String>,
    /// Where codes open, unless an `[[apps]]` entry says otherwise (and for the sandbox's apps).
    pub qr: QrTarget,
}

pub(super) fn resolve(merged: &Merged) -> Result<WebSettings, ConfigError> {
    let cors_origins = merged
        .cors_origins
        .iter()
        .map(|o| origin(o))
        .collect::<Result<Vec<_>, _>>()?;
    let qr = target(
        "--qr-page",
        &merged.qr_page,
        "--qr-env-version",
        &merged.qr_env_version,
    )?;
    Ok(WebSettings { cors_origins, qr })
}

/// A checked `qr_page` and `qr_env_version` (the names say where they were given, for the error).
pub(super) fn target(
    page_name: &str,
    page: &str,
    env_name: &str,
    env_version: &str,
) -> Result<QrTarget, ConfigError> {
    let page = weixin::MiniProgramPage::parse(page.trim()).map_err(|e| {
        ConfigError(format!(
            "{page_name} {page:?}: {} (a page path such as pages/qr-confirm/qr-confirm)",
            e.reason
        ))
    })?;
    let env_version = match env_version.trim() {
        "release" => weixin::EnvVersion::Release,
        "trial" => weixin::EnvVersion::Trial,
        "develop" => weixin::EnvVersion::Develop,
        other => {
            return Err(ConfigError(format!(
                "{env_name} {other:?}: use release, trial or develop"
            )));
        }
    };
    Ok(QrTarget { page, env_version })
}

/// An origin as browsers send it: `http(s)://host[:port]`, nothing after. `*` is refused: any web site could
/// then start a scan login in a user's name and show the code as its own.
fn origin(text: &str) -> Result<String, ConfigError> {
    let text = text.trim().to_ascii_lowercase();
    let fail = || {
        ConfigError(format!(
            "--cors-origins {text:?}: give origins such as https://admin.example.com (scheme and host, optional port, no path or trailing slash; * is not allowed)"
        ))
    };
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(fail)?;
    let host = rest.rsplit_once(':').map_or(rest, |(host, port)| {
        if port.parse::<u16>().is_ok() {
            host
        } else {
            ""
        }
    });
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if !host_ok {
        return Err(fail());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in [
            "https://admin.example.com",
            "http://127.0.0.1:5173",
            "HTTPS://Admin.Example.com",
            "http://[::1]:8080",
        ] {
            assert!(origin(good).is_ok(), "{good}");
        }
        assert_eq!(
            origin("HTTPS://Admin.Example.com").unwrap(),
            "https://admin.example.com"
        );
        for bad in [
            "*",
            "admin.example.com",
            "https://admin.example.com/",
            "https://admin.example.com/path",
            "https://",
            "ftp://x.example.com",
            "https://a.example.com:port",
            "https://a b.example.com",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn targets_name_what_is_wrong() {
        let ok = target("--qr-page", "pages/qr/qr", "--qr-env-version", "trial").unwrap();
        assert_eq!(ok.env_version, weixin::EnvVersion::Trial);
        let err = target("--qr-page", "/pages/qr", "--qr-env-version", "release").unwrap_err();
        assert!(err.0.starts_with("--qr-page"), "{err}");
        let err = target("--qr-page", "pages/qr", "--qr-env-version", "beta").unwrap_err();
        assert!(err.0.contains("release, trial or develop"), "{err}");
    }
}
