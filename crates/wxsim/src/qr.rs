//! The images getwxacodeunlimit answers and the device API's scan reads back.
//!
//! A real wxacode is WeChat's round "sun code", which only WeChat can read. The simulator draws a standard QR code
//! instead (a documented simulator choice), so any QR reader, the sandbox included, can read it. Its text is
//!
//! ```text
//! wxsim://wxacode?appid=<appid>&page=<page>&env=<env_version>&scene=<scene>
//! ```
//!
//! with each value encoded like JavaScript's `encodeURIComponent` (e.g.
//! `wxsim://wxacode?appid=wx0123456789abcdef&page=pages%2Fqr-confirm%2Fqr-confirm&env=release&scene=a%3D1%26b%3D2`),
//! the fields in that order. [`WxaCode::parse`] takes them in any order and refuses a text missing one.

use std::io::Cursor;

use qrcode::{Color, EcLevel, QrCode};

/// What a simulator QR code's text starts with.
const PREFIX: &str = "wxsim://wxacode?";
/// Light modules around the code, as the QR standard asks.
const QUIET_ZONE: usize = 4;
/// Bigger images are refused before decoding (a sandbox upload, not a photo library).
const MAX_PIXELS: u64 = 4096 * 4096;

/// What a simulator wxacode carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WxaCode {
    pub(crate) appid: String,
    pub(crate) page: String,
    pub(crate) env_version: String,
    pub(crate) scene: String,
}

impl WxaCode {
    /// The text the QR code encodes (see the module doc).
    pub(crate) fn to_text(&self) -> String {
        format!(
            "{PREFIX}appid={}&page={}&env={}&scene={}",
            encode_uri_component(&self.appid),
            encode_uri_component(&self.page),
            encode_uri_component(&self.env_version),
            encode_uri_component(&self.scene),
        )
    }

    /// A text of ours, or `None`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let query = text.strip_prefix(PREFIX)?;
        let (mut appid, mut page, mut env, mut scene) = (None, None, None, None);
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=')?;
            let slot = match key {
                "appid" => &mut appid,
                "page" => &mut page,
                "env" => &mut env,
                "scene" => &mut scene,
                _ => continue,
            };
            *slot = Some(decode_uri_component(value)?);
        }
        Some(Self {
            appid: appid.filter(|a| !a.is_empty())?,
            page: page.filter(|p| !p.is_empty())?,
            env_version: env.filter(|e| !e.is_empty())?,
            scene: scene?,
        })
    }
}

/// JavaScript's `encodeURIComponent`: everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )` as `%XX` of its UTF-8.
pub(crate) fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `decodeURIComponent`; `None` for a malformed escape or bytes that are not UTF-8.
pub(crate) fn decode_uri_component(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// How the image looks: getwxacodeunlimit's `width`, `line_color` and `is_hyaline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Style {
    /// Side of the square image in pixels.
    pub(crate) width: u32,
    pub(crate) line_rgb: [u8; 3],
    /// A transparent background instead of a white one.
    pub(crate) hyaline: bool,
}

/// A PNG, `style.width` pixels square, of a QR code (error correction M) of `text`.
pub(crate) fn render_png(text: &str, style: &Style) -> Result<Vec<u8>, String> {
    let code = QrCode::with_error_correction_level(text, EcLevel::M).map_err(|e| e.to_string())?;
    let modules = code.width();
    let colors = code.to_colors();
    let total = modules + 2 * QUIET_ZONE;
    let size = usize::try_from(style.width).map_err(|e| e.to_string())?;
    let channels = if style.hyaline { 4 } else { 3 };
    let mut pixels = Vec::with_capacity(size * size * channels);
    for y in 0..size {
        let my = (y * total / size).checked_sub(QUIET_ZONE);
        for x in 0..size {
            let mx = (x * total / size).checked_sub(QUIET_ZONE);
            let dark = match (mx, my) {
                (Some(mx), Some(my)) if mx < modules && my < modules => {
                    colors[my * modules + mx] == Color::Dark
                }
                _ => false,
            };
            let rgb = if dark { style.line_rgb } else { [255; 3] };
            pixels.extend_from_slice(&rgb);
            if style.hyaline {
                pixels.push(if dark { 255 } else { 0 });
            }
        }
    }
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, style.width, style.width);
    encoder.set_color(if style.hyaline {
        png::ColorType::Rgba
    } else {
        png::ColorType::Rgb
    });
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(png_bytes)
}

/// Why an image could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// Not a PNG we can decode (or too big).
    NotPng(String),
    /// A PNG without a readable QR code in it.
    NoQrCode,
}

/// The texts of the QR codes in a PNG (transparent pixels count as white), in the order found.
pub(crate) fn read_png(bytes: &[u8]) -> Result<Vec<String>, ReadError> {
    let not_png = |e: png::DecodingError| ReadError::NotPng(e.to_string());
    let limits = png::Limits { bytes: 128 << 20 };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(not_png)?;
    let (w, h) = reader.info().size();
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(ReadError::NotPng(format!(
            "{w}x{h} pixels is more than the sandbox reads"
        )));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| ReadError::NotPng("image too large".into()))?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(not_png)?;
    let channels = frame.color_type.samples();
    let (w, h) = (frame.width as usize, frame.height as usize);
    let line = frame.line_size;
    let grey = |x: usize, y: usize| -> u8 {
        let p = &buf[y * line + x * channels..][..channels];
        let (luma, alpha) = match p {
            [g] => (u32::from(*g), 255),
            [g, a] => (u32::from(*g), u32::from(*a)),
            [r, g, b] => (luma(*r, *g, *b), 255),
            [r, g, b, a, ..] => (luma(*r, *g, *b), u32::from(*a)),
            [] => (255, 255),
        };
        // Over a white background.
        let v = (luma * alpha + 255 * (255 - alpha)) / 255;
        u8::try_from(v).unwrap_or(u8::MAX)
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, grey);
    let texts: Vec<String> = image
        .detect_grids()
        .into_iter()
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect();
    if texts.is_empty() {
        Err(ReadError::NoQrCode)
    } else {
        Ok(texts)
    }
}

fn luma(r: u8, g: u8, b: u8) -> u32 {
    (299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b)) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(scene: &str) -> WxaCode {
        WxaCode {
            appid: "wx0123456789abcdef".into(),
            page: "pages/qr-confirm/qr-confirm".into(),
            env_version: "release".into(),
            scene: scene.into(),
        }
    }

    #[test]
    fn text_format_round_trips() {
        let c = code("a=1&b=2");
        let text = c.to_text();
        assert_eq!(
            text,
            "wxsim://wxacode?appid=wx0123456789abcdef&page=pages%2Fqr-confirm%2Fqr-confirm&env=release&scene=a%3D1%26b%3D2"
        );
        assert_eq!(WxaCode::parse(&text), Some(c));
        assert_eq!(WxaCode::parse("https://example.com/?scene=1"), None);
        assert_eq!(WxaCode::parse("wxsim://wxacode?appid=wx1&scene=1"), None);
        assert_eq!(
            WxaCode::parse("wxsim://wxacode?appid=wx1&page=p&env=release&scene=%zz"),
            None
        );
    }

    #[test]
    fn encodes_like_encode_uri_component() {
        let scene = "!#$&'()*+,/:;=?@-._~Az09";
        assert_eq!(
            encode_uri_component(scene),
            "!%23%24%26'()*%2B%2C%2F%3A%3B%3D%3F%40-._~Az09"
        );
        assert_eq!(
            decode_uri_component(&encode_uri_component(scene)).as_deref(),
            Some(scene)
        );
        assert_eq!(encode_uri_component("é"), "%C3%A9");
        assert_eq!(decode_uri_component("%"), None);
    }

    #[test]
    fn renders_readable_pngs() {
        let text = code("id=42&t=x").to_text();
        for style in [
            Style {
                width: 280,
                line_rgb: [0; 3],
                hyaline: false,
            },
            Style {
                width: 1280,
                line_rgb: [0, 0, 128],
                hyaline: true,
            },
        ] {
            let png = render_png(&text, &style).unwrap();
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
            assert_eq!(read_png(&png).unwrap(), vec![text.clone()]);
        }
        assert!(matches!(read_png(b"GIF89a"), Err(ReadError::NotPng(_))));
        let blank = render_png(
            "",
            &Style {
                width: 8,
                line_rgb: [255; 3],
                hyaline: false,
            },
        )
        .unwrap();
        assert_eq!(read_png(&blank), Err(ReadError::NoQrCode));
    }
}
