//! getUnlimitedQRCode (`POST /wxa/getwxacodeunlimit`): a mini program code for a page and a short `scene`,
//! answered as image bytes, or as WeChat's JSON `{errcode, errmsg}` when refused.
//!
//! WeChat's doc: `/miniprogram/dev/server/API/qrcode-link/qr-code/api_getunlimitedqrcode.html`.

use crate::client::{Client, api_status, transport};
use crate::error::{Error, Result};
use crate::retry::CallKind;
use crate::types::ParseError;
use crate::wire;
use serde::{Deserialize, Serialize};
use std::fmt;

const API: &str = "getwxacodeunlimit";

/// The largest image accepted (2 MiB; WeChat's codes are tens of KiB even at width 1280). A larger answer is an
/// [`Error::Decode`], read no further than the cap.
pub const MAX_QR_IMAGE_BYTES: usize = 2 * 1024 * 1024;

/// A JSON error answer is a few hundred bytes; this bounds what a misbehaving upstream can make us buffer.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// The characters WeChat allows in a scene besides ASCII letters and digits. `%` is not among them: a scene is
/// never URL-encoded on the way in (WeChat answers 40129).
const SCENE_PUNCTUATION: &[u8] = b"!#$&'()*+,/:;=?@-._~";

/// The longest scene WeChat accepts (40169 beyond).
pub const MAX_SCENE_LEN: usize = 32;

/// The `scene` a mini program code carries to the page (`options.scene`, URL-encoded there): 1–32 characters from
/// ASCII letters, digits and ``!#$&'()*+,/:;=?@-._~``.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scene(String);

impl Scene {
    /// Parses a scene, refusing what WeChat would answer 40129 or 40169 to.
    pub fn parse(value: impl Into<String>) -> Result<Self, ParseError> {
        let value = value.into();
        let field = "scene";
        if value.is_empty() {
            return Err(ParseError {
                field,
                reason: "must not be empty",
            });
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || SCENE_PUNCTUATION.contains(&b))
        {
            return Err(ParseError {
                field,
                reason: "may hold only letters, digits and !#$&'()*+,/:;=?@-._~",
            });
        }
        // Only ASCII is left, so bytes are characters.
        if value.len() > MAX_SCENE_LEN {
            return Err(ParseError {
                field,
                reason: "is longer than 32 characters",
            });
        }
        Ok(Self(value))
    }

    /// The scene as sent to WeChat.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Scene {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, ParseError> {
        Self::parse(value)
    }
}

impl From<Scene> for String {
    fn from(value: Scene) -> String {
        value.0
    }
}

/// A mini program page path as getwxacodeunlimit wants it: `pages/index/index`, without a leading `/` (41030)
/// and without a query (the scene carries the parameters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MiniProgramPage(String);

impl MiniProgramPage {
    /// Parses a page path: 1–256 printable ASCII characters, no leading `/`, no `?`.
    pub fn parse(value: impl Into<String>) -> Result<Self, ParseError> {
        let value = value.into();
        let field = "page";
        let reason = if value.is_empty() {
            Some("must not be empty")
        } else if value.len() > 256 {
            Some("is too long")
        } else if !value.bytes().all(|b| b.is_ascii_graphic()) {
            Some("may hold only printable ASCII without spaces")
        } else if value.starts_with('/') {
            Some("must not start with /")
        } else if value.contains('?') {
            Some("must not carry a query (put the parameters in the scene)")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(ParseError { field, reason }),
            None => Ok(Self(value)),
        }
    }

    /// The path as sent to WeChat.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MiniProgramPage {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, ParseError> {
        Self::parse(value)
    }
}

impl From<MiniProgramPage> for String {
    fn from(value: MiniProgramPage) -> String {
        value.0
    }
}

/// Which version of the mini program the code opens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvVersion {
    /// The published version (WeChat's default).
    #[default]
    Release,
    /// The trial version.
    Trial,
    /// The development version.
    Develop,
}

impl EnvVersion {
    /// WeChat's name: `release`, `trial` or `develop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Trial => "trial",
            Self::Develop => "develop",
        }
    }
}

/// What to draw: [`UnlimitedQrCode::new`] gives WeChat's defaults (home page, `check_path` on, release, 430 px).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlimitedQrCode {
    scene: Scene,
    page: Option<MiniProgramPage>,
    check_path: bool,
    env_version: EnvVersion,
    width: u32,
}

impl UnlimitedQrCode {
    /// The narrowest width WeChat draws, in pixels.
    pub const MIN_WIDTH: u32 = 280;
    /// The widest.
    pub const MAX_WIDTH: u32 = 1280;
    /// WeChat's default.
    pub const DEFAULT_WIDTH: u32 = 430;

    /// A code for `scene` with WeChat's defaults.
    pub fn new(scene: Scene) -> Self {
        Self {
            scene,
            page: None,
            check_path: true,
            env_version: EnvVersion::Release,
            width: Self::DEFAULT_WIDTH,
        }
    }

    /// Opens `page` instead of the home page.
    pub fn with_page(mut self, page: MiniProgramPage) -> Self {
        self.page = Some(page);
        self
    }

    /// `false` lets the code name a page the published version does not have yet (for trial and develop).
    pub fn with_check_path(mut self, check_path: bool) -> Self {
        self.check_path = check_path;
        self
    }

    /// Opens this version of the mini program.
    pub fn with_env_version(mut self, env_version: EnvVersion) -> Self {
        self.env_version = env_version;
        self
    }

    /// The width in pixels, 280–1280.
    pub fn with_width(mut self, width: u32) -> Result<Self, ParseError> {
        if !(Self::MIN_WIDTH..=Self::MAX_WIDTH).contains(&width) {
            return Err(ParseError {
                field: "width",
                reason: "must be between 280 and 1280",
            });
        }
        self.width = width;
        Ok(self)
    }

    /// The scene.
    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    /// The page, `None` for the home page.
    pub fn page(&self) -> Option<&MiniProgramPage> {
        self.page.as_ref()
    }

    /// Whether WeChat checks the page exists in the published version.
    pub fn check_path(&self) -> bool {
        self.check_path
    }

    /// The version opened.
    pub fn env_version(&self) -> EnvVersion {
        self.env_version
    }

    /// The width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
}

/// The code's image, exactly as WeChat sent it. WeChat labels it `image/jpeg` though the bytes may be PNG;
/// browsers sniff the bytes, so a data URL with the label as given displays either way.
#[derive(Clone, PartialEq, Eq)]
pub struct QrImage {
    /// The image bytes, not re-encoded.
    pub bytes: Vec<u8>,
    /// The media type WeChat labelled them with, without parameters (e.g. `image/jpeg`).
    pub content_type: String,
}

impl QrImage {
    /// What the bytes are: PNG or JPEG by their signature (WeChat's label may say JPEG for PNG bytes), else the
    /// label as given.
    pub fn media_type(&self) -> &str {
        if self.bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            "image/png"
        } else if self.bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            "image/jpeg"
        } else {
            &self.content_type
        }
    }

    /// `data:<media type>;base64,<bytes>`, for an `<img src>`: labelled with what the bytes are, so a strict
    /// consumer (or a test) reads PNG bytes as PNG.
    pub fn to_data_url(&self) -> String {
        use base64::Engine;
        format!(
            "data:{};base64,{}",
            self.media_type(),
            base64::engine::general_purpose::STANDARD.encode(&self.bytes)
        )
    }
}

impl fmt::Debug for QrImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QrImage")
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Client {
    /// `getwxacodeunlimit`: a mini program code (no limit on how many) that opens the page with `scene`.
    /// Needs the access token (a rejected one is refreshed once, as for the phone call); `-1` and transport
    /// failures are retried, since drawing a code has no side effect.
    pub async fn get_unlimited_qr_code(&self, request: &UnlimitedQrCode) -> Result<QrImage> {
        let url = format!("{}/wxa/getwxacodeunlimit", self.base_url());
        let body = wire::UnlimitedQrRequest {
            scene: request.scene.as_str(),
            page: request.page.as_ref().map(MiniProgramPage::as_str),
            check_path: request.check_path,
            env_version: request.env_version.as_str(),
            width: request.width,
        };
        self.with_token(|token| {
            let (url, body) = (&url, &body);
            async move {
                self.call_with(
                    API,
                    CallKind::Idempotent,
                    || {
                        self.http()
                            .post(url)
                            .query(&[("access_token", token.expose())])
                            .json(body)
                    },
                    read_qr_image,
                )
                .await
            }
        })
        .await
    }
}

/// Tells the image from an error by the Content-Type, as WxJava and silenceper do: `application/json` is
/// `{errcode, errmsg}`, `image/*` is the code; never by trying to decode the bytes as an image.
async fn read_qr_image(response: reqwest::Response, attempt: u32) -> Result<QrImage> {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if content_type == "application/json" {
        let body = read_capped(response, MAX_JSON_BYTES).await?;
        api_status(API, &body, attempt)?;
        return Err(Error::Decode {
            api: API,
            detail: "a JSON answer without an errcode instead of an image".into(),
        });
    }
    if !content_type.starts_with("image/") {
        let mut shown = content_type;
        shown.truncate(64);
        return Err(Error::Decode {
            api: API,
            detail: if shown.is_empty() {
                "an answer without a Content-Type".into()
            } else {
                format!("an answer of Content-Type {shown:?}, neither an image nor JSON")
            },
        });
    }
    let bytes = read_capped(response, MAX_QR_IMAGE_BYTES).await?;
    if bytes.is_empty() {
        return Err(Error::Decode {
            api: API,
            detail: "an empty image".into(),
        });
    }
    Ok(QrImage {
        bytes,
        content_type,
    })
}

/// Reads the body, refusing (without reading on) one longer than `cap` bytes.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>> {
    let too_big = || Error::Decode {
        api: API,
        detail: format!("the answer is larger than {cap} bytes"),
    };
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport(API))? {
        if body.len() + chunk.len() > cap {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pages_and_widths_are_checked() {
        assert!(MiniProgramPage::parse("pages/index/index").is_ok());
        for bad in ["", "/pages/index/index", "pages/a?x=1", "pages/a b"] {
            assert!(MiniProgramPage::parse(bad).is_err(), "{bad:?}");
        }
        let qr = UnlimitedQrCode::new(Scene::parse("a=1").unwrap());
        assert_eq!(
            (qr.width(), qr.check_path(), qr.env_version(), qr.page()),
            (430, true, EnvVersion::Release, None)
        );
        assert!(qr.clone().with_width(279).is_err());
        assert!(qr.clone().with_width(1281).is_err());
        assert_eq!(qr.clone().with_width(280).unwrap().width(), 280);
        assert_eq!(qr.with_width(1280).unwrap().width(), 1280);
        assert_eq!(
            serde_json::to_string(&EnvVersion::Develop).unwrap(),
            "\"develop\""
        );
    }

    #[test]
    fn scenes_at_the_edges() {
        assert!(Scene::parse("").is_err());
        assert!(Scene::parse("a%20b").is_err());
        assert!(Scene::parse("x".repeat(33)).is_err());
        assert!(Scene::parse("x".repeat(32)).is_ok());
        assert!(Scene::parse("!#$&'()*+,/:;=?@-._~").is_ok());
        assert!(Scene::parse("é").is_err());
    }

    proptest! {
        #[test]
        fn scene_accepted_iff_1_to_32_allowed_chars(
            s in prop_oneof![
                "[A-Za-z0-9!#$&'()*+,/:;=?@._~-]{0,40}",
                "\\PC{0,40}",
                "[A-Za-z0-9%\" <>\\[\\]{}|^`\\\\]{0,40}",
            ]
        ) {
            let allowed = |c: char| c.is_ascii_alphanumeric() || "!#$&'()*+,/:;=?@-._~".contains(c);
            let n = s.chars().count();
            let ok = (1..=32).contains(&n) && s.chars().all(allowed);
            prop_assert_eq!(Scene::parse(s.clone()).is_ok(), ok);
        }
    }
}
