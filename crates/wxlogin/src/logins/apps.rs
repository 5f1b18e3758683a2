//! The mini programs this service logs users into, and which one a request is for.

use crate::api::error::ApiError;
use std::sync::Arc;

/// One mini program: its WeChat client (with its own access token), its display name, and where its scan-login
/// codes open.
pub struct App {
    pub appid: weixin::AppId,
    pub name: Option<String>,
    pub wechat: weixin::Client,
    pub qr: QrTarget,
    /// Its message push (`push_token`, `push_aes_key`); `None`: `/wechat/push/{appid}` answers 404.
    pub push: Option<weixin::push::PushKeys>,
}

/// Where a scan login's mini program code opens: the confirm page (`qr_page`) of a version (`qr_env_version`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrTarget {
    pub page: weixin::MiniProgramPage,
    pub env_version: weixin::EnvVersion,
}

impl Default for QrTarget {
    fn default() -> Self {
        Self {
            page: weixin::MiniProgramPage::parse(crate::config::defaults::QR_PAGE)
                .expect("a valid default"),
            env_version: weixin::EnvVersion::Release,
        }
    }
}

/// What a request says about its app, from the most to the least explicit.
#[derive(Clone, Copy, Debug, Default)]
pub struct AppClaim<'a> {
    /// `appid` in the JSON body.
    pub body: Option<&'a str>,
    /// The `X-WX-AppId` header.
    pub header: Option<&'a str>,
    /// The `Referer` header: `wx.request` sends `https://servicewechat.com/{appid}/{version}/page-frame.html`.
    pub referer: Option<&'a str>,
}

/// The configured apps. A handful at most: a scan is as fast as a map.
pub struct Apps {
    apps: Vec<Arc<App>>,
    /// Whether a request that names no app goes to the first app even when there are several: only the sandbox
    /// does this (its second app is there to try linking; its walk-through and the seed's page name no app).
    first_is_default: bool,
}

impl Apps {
    /// Production: a request names its app unless there is only one.
    pub fn new(apps: Vec<App>) -> Self {
        Self {
            apps: apps.into_iter().map(Arc::new).collect(),
            first_is_default: false,
        }
    }

    /// The sandbox: a request that names no app is for the first.
    pub fn with_first_as_default(apps: Vec<App>) -> Self {
        Self {
            first_is_default: true,
            ..Self::new(apps)
        }
    }

    pub fn get(&self, appid: &str) -> Option<&Arc<App>> {
        self.apps.iter().find(|app| app.appid.as_str() == appid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<App>> {
        self.apps.iter()
    }

    /// The app a request is for: the body's `appid`, else the header, else the Referer WeChat sends, else the only
    /// app. Trusting the claim is safe: a login code only works with the appid that minted it, and a session only
    /// with its own app.
    pub fn select(&self, claim: AppClaim<'_>) -> Result<&Arc<App>, ApiError> {
        // The header is the client's own words too: one naming an app we do not serve is a mistake, even when the
        // body names another.
        if let Some(header) = claim.header
            && self.get(header).is_none()
        {
            return Err(ApiError::AppUnknown);
        }
        let named = claim
            .body
            .or(claim.header)
            .or_else(|| claim.referer.and_then(referer_appid));
        match named {
            Some(appid) => self.get(appid).ok_or(ApiError::AppUnknown),
            None => match self.apps.as_slice() {
                [only] => Ok(only),
                [first, ..] if self.first_is_default => Ok(first),
                _ => Err(ApiError::AppRequired),
            },
        }
    }
}

/// The appid in a Referer of WeChat's mini program runtime (`https://servicewechat.com/{appid}/{version}/…`);
/// any other Referer (a browser page) names no app.
fn referer_appid(referer: &str) -> Option<&str> {
    let path = referer.strip_prefix("https://servicewechat.com/")?;
    let appid = path.split('/').next()?;
    (!appid.is_empty()).then_some(appid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps(ids: &[&str]) -> Apps {
        Apps::new(
            ids.iter()
                .map(|id| {
                    let appid = weixin::AppId::parse(*id).unwrap();
                    App {
                        wechat: weixin::Client::new(weixin::Config::new(
                            appid.clone(),
                            weixin::AppSecret::new("s".repeat(32)),
                        ))
                        .unwrap(),
                        appid,
                        name: None,
                        qr: QrTarget::default(),
                        push: None,
                    }
                })
                .collect(),
        )
    }

    const A: &str = "wx00000000000000aa";
    const B: &str = "wx00000000000000bb";

    #[test]
    fn the_most_explicit_claim_wins() {
        let two = apps(&[A, B]);
        let pick = |claim| two.select(claim).map(|app| app.appid.as_str().to_owned());
        let referer_b = format!("https://servicewechat.com/{B}/3/page-frame.html");
        assert_eq!(
            pick(AppClaim {
                body: Some(A),
                header: Some(B),
                referer: Some(&referer_b)
            }),
            Ok(A.to_owned())
        );
        assert_eq!(
            pick(AppClaim {
                body: None,
                header: Some(A),
                referer: Some(&referer_b)
            }),
            Ok(A.to_owned())
        );
        assert_eq!(
            pick(AppClaim {
                referer: Some(&referer_b),
                ..AppClaim::default()
            }),
            Ok(B.to_owned())
        );
        assert_eq!(pick(AppClaim::default()), Err(ApiError::AppRequired));
        // A header naming an app we do not serve is refused even beside a body that names one we do.
        assert_eq!(
            pick(AppClaim {
                body: Some(A),
                header: Some("AAA"),
                referer: None
            }),
            Err(ApiError::AppUnknown)
        );
        assert_eq!(
            pick(AppClaim {
                referer: Some("https://example.com/wx00000000000000aa/1/"),
                ..AppClaim::default()
            }),
            Err(ApiError::AppRequired)
        );
        assert_eq!(
            pick(AppClaim {
                header: Some("wx0000000000000000"),
                ..AppClaim::default()
            }),
            Err(ApiError::AppUnknown)
        );
    }

    #[test]
    fn one_app_needs_no_name_but_a_wrong_name_is_refused() {
        let one = apps(&[A]);
        assert!(one.select(AppClaim::default()).is_ok());
        assert_eq!(
            one.select(AppClaim {
                body: Some(B),
                ..AppClaim::default()
            })
            .err(),
            Some(ApiError::AppUnknown)
        );
    }
}
