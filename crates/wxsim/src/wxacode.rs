//! getUnlimitedQRCode: `POST /wxa/getwxacodeunlimit?access_token=…` answers the image of a mini program code
//! (`/miniprogram/dev/server/API/qrcode-link/qr-code/api_getunlimitedqrcode.html`). The image is a standard QR
//! code in a PNG (see `qr.rs` for its text); errors are WeChat's JSON.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::Simulator;
use crate::clock::minute;
use crate::errcode::Errcode;
use crate::faults::Route;
use crate::qr::{self, Style, WxaCode};
use crate::query::param;
use crate::state::AppState;
use crate::wechat::{enter, finish, require};

/// The scene's longest length, in characters.
pub(crate) const MAX_SCENE_CHARS: usize = 32;
const WIDTHS: std::ops::RangeInclusive<i64> = 280..=1280;
const DEFAULT_WIDTH: u32 = 430;
pub(crate) const ENV_VERSIONS: [&str; 3] = ["release", "trial", "develop"];

pub(crate) async fn get_unlimited(
    State(sim): State<Simulator>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let inner = &*sim.inner;
    let result = match enter(inner, Route::WxaCodeUnlimit).await {
        Err(e) => Err(e),
        Ok(()) => (|| {
            require(&method, Method::POST)?;
            let now = inner.clock.now();
            let app =
                inner.check_access_token(param(uri.query(), "access_token").as_deref(), now)?;
            let app = inner.app(app);
            // WeChat: 5,000 calls a minute, answered with 45009 (its quota errcode), not 45011.
            if !app
                .windows
                .wxacode
                .hit(minute(now), inner.limits.wxacode_per_minute())
            {
                return Err(Errcode::DAILY_LIMIT);
            }
            let request = CodeRequest::parse(&body, app)?;
            let code = WxaCode {
                appid: app.creds.appid.clone(),
                page: request.page,
                env_version: request.env_version,
                scene: request.scene,
            };
            let png = qr::render_png(&code.to_text(), &request.style).map_err(|e| {
                tracing::error!(error = %e, "could not draw a wxacode");
                Errcode::SYSTEM_ERROR
            })?;
            Ok(image_response(png))
        })(),
    };
    finish(inner, Route::WxaCodeUnlimit, result)
}

/// The image, labelled as WeChat labels it.
fn image_response(png: Vec<u8>) -> Response {
    // Guess: WeChat labels the image `image/jpeg` while live clients sniff PNG bytes; which one it really sends
    // is unconfirmed. The simulator sends PNG bytes labelled `image/jpeg`, so a client that trusts the label
    // over the bytes is caught.
    let mut response = (StatusCode::OK, png).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    response
}

/// A getwxacodeunlimit body, checked.
#[derive(Debug)]
struct CodeRequest {
    scene: String,
    page: String,
    env_version: String,
    style: Style,
}

impl CodeRequest {
    // Guess: WeChat does not document the order of its checks; the simulator checks the body is JSON (40169),
    // then the scene (40169, 40129), then page (41030), then the other arguments (40097), then check_path.
    // Unknown fields are ignored; a field of the wrong type answers 40097 (the scene's: 40169).
    fn parse(body: &[u8], app: &AppState) -> Result<Self, Errcode> {
        let body: Value =
            serde_json::from_slice(body).map_err(|_| Errcode::INVALID_SCENE_LENGTH)?;
        let body = body.as_object().ok_or(Errcode::INVALID_SCENE_LENGTH)?;
        let field = |name: &str| body.get(name).filter(|v| !v.is_null());

        let scene = match field("scene") {
            None => "",
            Some(v) => v.as_str().ok_or(Errcode::INVALID_SCENE_LENGTH)?,
        };
        check_scene(scene)?;

        let page = match field("page") {
            None => "",
            Some(v) => v.as_str().ok_or(Errcode::INVALID_ARGS)?,
        };
        // Guess: a query in `page` (WeChat: "cannot carry parameters") answers 41030 like a leading `/`.
        if page.starts_with('/') || page.contains('?') {
            return Err(Errcode::INVALID_PAGE);
        }
        let page = if page.is_empty() {
            app.home_page()
        } else {
            page
        };

        let check_path = flag(field("check_path"), true)?;
        let env_version = match field("env_version") {
            None => "release",
            Some(v) => v
                .as_str()
                .filter(|e| ENV_VERSIONS.contains(e))
                .ok_or(Errcode::INVALID_ARGS)?,
        };
        let width = match field("width") {
            None => DEFAULT_WIDTH,
            Some(v) => number(v)
                .filter(|w| WIDTHS.contains(w))
                .and_then(|w| u32::try_from(w).ok())
                .ok_or(Errcode::INVALID_ARGS)?,
        };
        let auto_color = flag(field("auto_color"), false)?;
        let line_rgb = match field("line_color") {
            None => [0; 3],
            Some(v) => line_color(v.as_object().ok_or(Errcode::INVALID_ARGS)?)?,
        };
        let hyaline = flag(field("is_hyaline"), false)?;

        if check_path && !app.pages.iter().any(|p| p == page) {
            return Err(Errcode::INVALID_PAGE);
        }
        Ok(Self {
            scene: scene.to_owned(),
            page: page.to_owned(),
            env_version: env_version.to_owned(),
            style: Style {
                width,
                // A simulator choice: WeChat picks a colour from the app's icon with auto_color; the simulator
                // draws black.
                line_rgb: if auto_color { [0; 3] } else { line_rgb },
                hyaline,
            },
        })
    }
}

/// WeChat's rule for `scene`: 1 to 32 visible characters from digits, letters and ``!#$&'()*+,/:;=?@-._~``
/// (no `%`: no URL-encoding inside). Empty or too long → 40169, another character → 40129.
pub(crate) fn check_scene(scene: &str) -> Result<(), Errcode> {
    if scene.is_empty() || scene.chars().count() > MAX_SCENE_CHARS {
        return Err(Errcode::INVALID_SCENE_LENGTH);
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "!#$&'()*+,/:;=?@-._~".contains(c);
    if scene.chars().all(allowed) {
        Ok(())
    } else {
        Err(Errcode::INVALID_SCENE)
    }
}

fn flag(value: Option<&Value>, default: bool) -> Result<bool, Errcode> {
    value.map_or(Ok(default), |v| v.as_bool().ok_or(Errcode::INVALID_ARGS))
}

/// An integer, or a string of one: SDKs send `line_color` components (and sometimes `width`) as strings.
fn number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `{"r","g","b"}`, each 0–255 as a number or a string.
// Guess: a missing component counts as 0; one out of 0–255 answers 40097.
fn line_color(color: &Map<String, Value>) -> Result<[u8; 3], Errcode> {
    let component = |name: &str| match color.get(name).filter(|v| !v.is_null()) {
        None => Ok(0),
        Some(v) => number(v)
            .and_then(|n| u8::try_from(n).ok())
            .ok_or(Errcode::INVALID_ARGS),
    };
    Ok([component("r")?, component("g")?, component("b")?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes() {
        assert_eq!(check_scene("id=42&t=!#$'()*+,/:;?@-._~"), Ok(()));
        assert_eq!(check_scene(&"a".repeat(32)), Ok(()));
        assert_eq!(
            check_scene(&"a".repeat(33)),
            Err(Errcode::INVALID_SCENE_LENGTH)
        );
        assert_eq!(check_scene(""), Err(Errcode::INVALID_SCENE_LENGTH));
        for bad in ["a%20b", "a b", "中文", "a\"b", "a<b"] {
            assert_eq!(check_scene(bad), Err(Errcode::INVALID_SCENE), "{bad}");
        }
    }

    #[test]
    fn numbers_and_colors() {
        assert_eq!(number(&serde_json::json!(430)), Some(430));
        assert_eq!(number(&serde_json::json!("430")), Some(430));
        assert_eq!(number(&serde_json::json!(430.0)), Some(430));
        assert_eq!(number(&serde_json::json!(true)), None);
        let color = serde_json::json!({"r": "255", "g": 0, "b": "12"});
        assert_eq!(line_color(color.as_object().unwrap()), Ok([255, 0, 12]));
        let bad = serde_json::json!({"r": 256});
        assert_eq!(
            line_color(bad.as_object().unwrap()),
            Err(Errcode::INVALID_ARGS)
        );
    }
}
