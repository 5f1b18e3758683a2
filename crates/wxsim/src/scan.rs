//! The device API's `POST /scan`: a sandbox user scans a mini program code with WeChat, and gets the launch
//! options the mini program would see (`/miniprogram/dev/api/base/app/life-cycle/wx.getLaunchOptionsSync.html`).

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::qr::{self, ReadError, WxaCode};
use crate::state::Inner;
use crate::wxacode::{ENV_VERSIONS, check_scene};

/// The launch scene of "scan a mini program code" (1048: long-press, 1049: from the album).
pub const SCAN_LAUNCH_SCENE: u32 = 1047;

/// What `POST /scan` takes: an image of a code (`image`), or what a code carries (`scene`, `page`, `appid`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanRequest {
    /// The scanning user.
    pub openid: String,
    /// A PNG as getwxacodeunlimit answers it, in base64 or as a `data:image/…;base64,` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Instead of `image`: the code's scene.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene: Option<String>,
    /// With `scene`; default: the app's home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// With `scene`; default: the user's app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// With `scene`: `release` (default), `trial` or `develop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_version: Option<String>,
}

/// What the mini program gets when the user scans the code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchOptions {
    pub appid: String,
    /// The code's page (no leading `/`).
    pub path: String,
    /// What `Page.onLoad(query)` gets.
    pub query: LaunchQuery,
    /// The numeric launch scene, [`SCAN_LAUNCH_SCENE`].
    pub scene: u32,
    pub openid: String,
    pub env_version: String,
}

/// The page's query: the code's scene, URL-encoded (`decodeURIComponent(query.scene)` gives it back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchQuery {
    pub scene: String,
}

impl Inner {
    pub(crate) fn scan(&self, req: &ScanRequest) -> Result<LaunchOptions, SimError> {
        let user = self.active_user(&req.openid)?;
        let user_app = self.app(user.app);
        let code = match (&req.image, &req.scene) {
            (Some(image), None) => {
                if req.page.is_some() || req.appid.is_some() || req.env_version.is_some() {
                    return Err(SimError::InvalidRequest(
                        "page, appid and envVersion come from the image; send them only with scene"
                            .into(),
                    ));
                }
                read_code(image)?
            }
            (None, Some(scene)) => {
                check_scene(scene).map_err(|_| {
                    SimError::InvalidRequest(format!(
                        "invalid scene {scene:?}: 1 to 32 characters from digits, letters and !#$&'()*+,/:;=?@-._~"
                    ))
                })?;
                let app = match &req.appid {
                    None => user_app,
                    Some(id) => self
                        .app_by_id(id)
                        .ok_or_else(|| SimError::UnknownApp(id.clone()))?,
                };
                let env_version = req.env_version.as_deref().unwrap_or("release");
                if !ENV_VERSIONS.contains(&env_version) {
                    return Err(SimError::InvalidRequest(format!(
                        "envVersion must be one of {}",
                        ENV_VERSIONS.join(", ")
                    )));
                }
                WxaCode {
                    appid: app.creds.appid.clone(),
                    page: req
                        .page
                        .clone()
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| app.home_page().to_owned()),
                    env_version: env_version.to_owned(),
                    scene: scene.clone(),
                }
            }
            _ => {
                return Err(SimError::InvalidRequest(
                    "send either image or scene".into(),
                ));
            }
        };
        let app = self
            .app_by_id(&code.appid)
            .ok_or_else(|| SimError::UnknownApp(code.appid.clone()))?;
        // An openid names a person in one app: the sandbox user must be one of the code's app.
        if app.index != user.app {
            return Err(SimError::InvalidRequest(format!(
                "openid {:?} is a user of {}, the code is of {}",
                user.openid, user_app.creds.appid, app.creds.appid
            )));
        }
        Ok(LaunchOptions {
            appid: code.appid,
            path: code.page,
            query: LaunchQuery {
                scene: qr::encode_uri_component(&code.scene),
            },
            scene: SCAN_LAUNCH_SCENE,
            openid: user.openid.clone(),
            env_version: code.env_version,
        })
    }
}

/// The code in a base64 PNG (or `data:` URL), if it is one of ours.
fn read_code(image: &str) -> Result<WxaCode, SimError> {
    let image = image.trim();
    let b64 = match image.strip_prefix("data:") {
        Some(url) => {
            url.split_once(";base64,")
                .ok_or_else(|| {
                    SimError::InvalidImage(
                        "a data: URL must be base64 (data:image/png;base64,…)".into(),
                    )
                })?
                .1
        }
        None => image,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| SimError::InvalidImage(format!("not base64: {e}")))?;
    let texts = qr::read_png(&bytes).map_err(|e| match e {
        ReadError::NotPng(why) => SimError::InvalidImage(format!("not a PNG: {why}")),
        ReadError::NoQrCode => SimError::NotAWxaCode("no QR code found in the image".into()),
    })?;
    texts.iter().find_map(|t| WxaCode::parse(t)).ok_or_else(|| {
        SimError::NotAWxaCode(format!(
            "the QR code is not a simulator wxacode (wxsim://wxacode?…): {:?}",
            texts[0]
        ))
    })
}
