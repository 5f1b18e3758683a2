//! getwxacodeunlimit (images and errcodes) and the device API's scan of its images.

mod common;

use base64::Engine;
use common::{TestSim, errcode, foreign_token, start, start_with};
use serde_json::{Value, json};
use wxsim::SimConfig;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A getwxacodeunlimit call with a raw body: (content type, body bytes).
async fn wxacode_raw(t: &TestSim, token: &str, body: &str) -> (String, Vec<u8>) {
    let resp = t
        .http
        .post(t.url(&format!("/wxa/getwxacodeunlimit?access_token={token}")))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, resp.bytes().await.unwrap().to_vec())
}

async fn image(t: &TestSim, token: &str, body: &Value) -> Vec<u8> {
    let (content_type, bytes) = wxacode_raw(t, token, &body.to_string()).await;
    assert_eq!(
        content_type,
        "image/jpeg",
        "{body}: {}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(bytes.starts_with(PNG_SIGNATURE), "PNG bytes");
    bytes
}

/// The errcode of a refused call, checking it is JSON labelled as JSON with a rid.
async fn refused(t: &TestSim, token: &str, body: &str) -> i64 {
    let (content_type, bytes) = wxacode_raw(t, token, body).await;
    assert!(
        content_type.starts_with("application/json"),
        "{body}: {content_type}"
    );
    let v: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert!(v["errmsg"].as_str().unwrap().contains(" rid: "), "{v}");
    errcode(&v)
}

fn size_and_text(png_bytes: &[u8]) -> (u32, Vec<String>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.width, info.height);
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        buf[y * info.line_size + x * channels]
    });
    let texts = img
        .detect_grids()
        .into_iter()
        .map(|g| g.decode().unwrap().1)
        .collect();
    (info.width, texts)
}

#[tokio::test]
async fn answers_a_png_qr_code_labelled_jpeg() {
    let t = start().await;
    let token = t.access_token().await;
    let png = image(
        &t,
        &token,
        &json!({"scene": "sid=Ab3_x", "page": "pages/qr-confirm/qr-confirm"}),
    )
    .await;
    let (width, texts) = size_and_text(&png);
    assert_eq!(width, 430, "default width");
    assert_eq!(
        texts,
        [format!(
            "wxsim://wxacode?appid={}&page=pages%2Fqr-confirm%2Fqr-confirm&env=release&scene=sid%3DAb3_x",
            t.app.appid
        )]
    );

    // width, env_version, a home page by default, colours as strings, a transparent background.
    let png = image(
        &t,
        &token,
        &json!({"scene": "1", "width": 280, "env_version": "trial", "auto_color": false,
                "line_color": {"r": "0", "g": 0, "b": "80"}, "is_hyaline": true}),
    )
    .await;
    let (width, texts) = size_and_text(&png);
    assert_eq!(width, 280);
    assert!(
        texts[0].ends_with("&page=pages%2Findex%2Findex&env=trial&scene=1"),
        "{texts:?}"
    );
    let png = image(&t, &token, &json!({"scene": "1", "width": "1280"})).await;
    assert_eq!(size_and_text(&png).0, 1280);

    let stats = t.sim().stats();
    assert_eq!(stats.routes["/wxa/getwxacodeunlimit"].calls, 3);
    assert_eq!(stats.routes["/wxa/getwxacodeunlimit"].errors, 0);
}

#[tokio::test]
async fn errcodes() {
    let t = start().await;
    let token = t.access_token().await;
    for (body, code) in [
        (r#"{"scene":"a%20b"}"#, 40129),
        (r#"{"scene":"a b"}"#, 40129),
        (&format!(r#"{{"scene":"{}"}}"#, "a".repeat(33)), 40169),
        (r#"{"scene":""}"#, 40169),
        (r#"{"page":"pages/index/index"}"#, 40169),
        ("scene=1", 40169),
        (r#"{"scene":"1","page":"/pages/index/index"}"#, 41030),
        (r#"{"scene":"1","page":"pages/index/index?a=1"}"#, 41030),
        (r#"{"scene":"1","page":"pages/draft/draft"}"#, 41030),
        (
            r#"{"scene":"1","page":"pages/draft/draft","check_path":true}"#,
            41030,
        ),
        (r#"{"scene":"1","width":100}"#, 40097),
        (r#"{"scene":"1","width":1281}"#, 40097),
        (r#"{"scene":"1","env_version":"beta"}"#, 40097),
        (r#"{"scene":"1","line_color":{"r":300}}"#, 40097),
        (r#"{"scene":"1","check_path":"no"}"#, 40097),
    ] {
        assert_eq!(refused(&t, &token, body).await, code, "{body}");
    }
    // An unpublished page is fine without check_path.
    let png = image(
        &t,
        &token,
        &json!({"scene": "1", "page": "pages/draft/draft", "check_path": false, "env_version": "develop"}),
    )
    .await;
    assert!(size_and_text(&png).1[0].contains("page=pages%2Fdraft%2Fdraft&env=develop"));

    assert_eq!(
        refused(&t, &foreign_token(), r#"{"scene":"1"}"#).await,
        40001
    );
    t.sim().revoke_tokens(None);
    assert_eq!(refused(&t, &token, r#"{"scene":"1"}"#).await, 40001);
    let resp = t
        .http
        .get(t.url(&format!("/wxa/getwxacodeunlimit?access_token={token}")))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(errcode(&v), 43002);
    let stats = t.sim().stats();
    assert_eq!(stats.routes["/wxa/getwxacodeunlimit"].errors, 18);
}

#[tokio::test]
async fn minute_limit_and_published_pages() {
    let t = start_with(SimConfig {
        published_pages: vec!["pages/home/home".into()],
        ..SimConfig::default()
    })
    .await;
    let token = t.access_token().await;
    assert_eq!(
        t.sim().published_pages(&t.app.appid).unwrap(),
        ["pages/home/home"]
    );
    assert_eq!(
        refused(&t, &token, r#"{"scene":"1","page":"pages/index/index"}"#).await,
        41030
    );
    let png = image(&t, &token, &json!({"scene": "1"})).await;
    assert!(size_and_text(&png).1[0].contains("page=pages%2Fhome%2Fhome"));
    t.sim().set_limits(wxsim::Limits {
        // Two calls so far this minute.
        wxacode_per_app_per_minute: 3,
        ..Default::default()
    });
    image(&t, &token, &json!({"scene": "1"})).await;
    assert_eq!(refused(&t, &token, r#"{"scene":"1"}"#).await, 45009);
}

#[tokio::test]
async fn scanning_a_code_gives_the_launch_options() {
    let t = start().await;
    let token = t.access_token().await;
    let user = t.user("13800138000");
    let scene = "sid=x1&t=9";
    let png = image(
        &t,
        &token,
        &json!({"scene": scene, "page": "pages/qr-confirm/qr-confirm"}),
    )
    .await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let expected = json!({
        "appid": t.app.appid,
        "path": "pages/qr-confirm/qr-confirm",
        "query": {"scene": "sid%3Dx1%26t%3D9"},
        "scene": 1047,
        "openid": user.openid,
        "envVersion": "release",
    });
    for image in [b64.clone(), format!("data:image/png;base64,{b64}")] {
        let body = json!({"image": image, "openid": user.openid}).to_string();
        let (status, v) = t.device("POST", "/scan", Some(&body)).await;
        assert_eq!((status, &v), (200, &expected));
    }
    // Without an image: the same launch options.
    let body =
        json!({"scene": scene, "page": "pages/qr-confirm/qr-confirm", "openid": user.openid});
    let (status, v) = t.device("POST", "/scan", Some(&body.to_string())).await;
    assert_eq!((status, v), (200, expected));

    // Errors: unknown user, not a PNG, a PNG without one of our codes, neither image nor scene.
    let other_qr = {
        let qr = qrcode::QrCode::new("https://example.com/").unwrap();
        let n = qr.width();
        let colors = qr.to_colors();
        let scale = 8;
        let size = (n + 8) * scale;
        let mut pixels = vec![255u8; size * size];
        for y in 0..size {
            for x in 0..size {
                let (mx, my) = ((x / scale).wrapping_sub(4), (y / scale).wrapping_sub(4));
                if mx < n && my < n && colors[my * n + mx] == qrcode::Color::Dark {
                    pixels[y * size + x] = 0;
                }
            }
        }
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, size as u32, size as u32);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&pixels).unwrap();
        w.finish().unwrap();
        base64::engine::general_purpose::STANDARD.encode(out)
    };
    for (body, status, error) in [
        (
            json!({"image": b64, "openid": "oNobody"}),
            404,
            "unknown_user",
        ),
        (
            json!({"image": "bm90IGEgcG5n", "openid": user.openid}),
            400,
            "invalid_image",
        ),
        (
            json!({"image": "%%%", "openid": user.openid}),
            400,
            "invalid_image",
        ),
        (
            json!({"image": other_qr, "openid": user.openid}),
            400,
            "not_a_wxacode",
        ),
        (json!({"openid": user.openid}), 400, "invalid_request"),
        (
            json!({"scene": "a%b", "openid": user.openid}),
            400,
            "invalid_request",
        ),
    ] {
        let (got, v) = t.device("POST", "/scan", Some(&body.to_string())).await;
        assert_eq!((got, v["error"].as_str()), (status, Some(error)), "{v}");
        assert!(v["message"].is_string());
    }
}
