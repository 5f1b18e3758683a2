//! getwxacodeunlimit against an in-process fake that answers like WeChat: PNG bytes labelled `image/jpeg`, or JSON
//! `{errcode, errmsg}` labelled `application/json`. Records each request's query and body.

mod common;

use serde_json::json;
use std::sync::{Arc, Mutex};
use weixin::{
    Client, EnvVersion, Errcode, Error, MAX_QR_IMAGE_BYTES, MiniProgramPage, Scene, UnlimitedQrCode,
};

/// The first bytes of a PNG, then bytes that are not UTF-8: returned as given or the test fails.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe\x00\x80qr";

#[derive(Clone)]
struct Reply {
    content_type: &'static str,
    body: Vec<u8>,
    /// Sent as a chunked stream without Content-Length.
    streamed: bool,
}

fn image(content_type: &'static str, body: &[u8]) -> Reply {
    Reply {
        content_type,
        body: body.to_vec(),
        streamed: false,
    }
}

fn wechat_error(errcode: i64) -> Reply {
    image(
        "application/json; charset=UTF-8",
        json!({"errcode": errcode, "errmsg": format!("refused rid: 6650-{errcode}")})
            .to_string()
            .as_bytes(),
    )
}

#[derive(Default)]
struct Seen {
    /// (query, body) of each getwxacodeunlimit request.
    requests: Vec<(String, serde_json::Value)>,
    tokens_issued: usize,
}

struct Fake {
    client: Client,
    seen: Arc<Mutex<Seen>>,
}

impl Fake {
    fn hits(&self) -> usize {
        self.seen.lock().unwrap().requests.len()
    }
    fn tokens_issued(&self) -> usize {
        self.seen.lock().unwrap().tokens_issued
    }
    fn request(&self, n: usize) -> (String, serde_json::Value) {
        self.seen.lock().unwrap().requests[n].clone()
    }
}

/// The n-th getwxacodeunlimit request gets `replies[min(n, len-1)]`; every stable_token call issues a new token.
async fn fake(replies: Vec<Reply>) -> Fake {
    use axum::body::Body;
    use axum::http::{Uri, header};
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    let handler = move |uri: Uri, body: axum::body::Bytes| {
        let (s, replies) = (s.clone(), replies.clone());
        async move {
            let reply = {
                let mut seen = s.lock().unwrap();
                if uri.path() == "/cgi-bin/stable_token" {
                    seen.tokens_issued += 1;
                    let token = format!("TOKEN{}", seen.tokens_issued);
                    return axum::response::Response::builder()
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from(
                            json!({"access_token": token, "expires_in": 7200}).to_string(),
                        ))
                        .unwrap();
                }
                assert_eq!(uri.path(), "/wxa/getwxacodeunlimit");
                let n = seen.requests.len();
                seen.requests.push((
                    uri.query().unwrap_or_default().to_owned(),
                    serde_json::from_slice(&body).unwrap(),
                ));
                replies[n.min(replies.len() - 1)].clone()
            };
            let body = if reply.streamed {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> = reply
                    .body
                    .chunks(64 * 1024)
                    .map(|c| Ok(c.to_vec()))
                    .collect();
                Body::from_stream(futures::stream::iter(chunks))
            } else {
                Body::from(reply.body)
            };
            axum::response::Response::builder()
                .header(header::CONTENT_TYPE, reply.content_type)
                .body(body)
                .unwrap()
        }
    };
    let app = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = common::fast(
        weixin::Config::new(
            weixin::AppId::parse("wx0123456789abcdef").unwrap(),
            weixin::AppSecret::new("s3cr3t"),
        )
        .with_base_url(format!("http://{addr}")),
    );
    Fake {
        client: Client::new(config).unwrap(),
        seen,
    }
}

fn request() -> UnlimitedQrCode {
    UnlimitedQrCode::new(Scene::parse("sid=Ab3-_.~!*").unwrap())
}

#[tokio::test]
async fn the_image_comes_back_as_given_and_the_body_has_wechats_fields() {
    let f = fake(vec![image("image/jpeg", PNG)]).await;
    let qr = request()
        .with_page(MiniProgramPage::parse("pages/scan/index").unwrap())
        .with_check_path(false)
        .with_env_version(EnvVersion::Trial)
        .with_width(280)
        .unwrap();
    let img = f.client.get_unlimited_qr_code(&qr).await.unwrap();
    assert_eq!(img.bytes, PNG);
    assert_eq!(img.content_type, "image/jpeg");
    // Labelled JPEG by WeChat, PNG by its bytes: the data URL says what the bytes are.
    assert_eq!(img.media_type(), "image/png");
    assert!(
        img.to_data_url()
            .starts_with("data:image/png;base64,iVBORw0KGgo")
    );
    assert!(
        !format!("{img:?}").contains("PNG"),
        "Debug shows the length only"
    );

    let (query, body) = f.request(0);
    assert_eq!(query, "access_token=TOKEN1");
    assert_eq!(
        body,
        json!({"scene": "sid=Ab3-_.~!*", "page": "pages/scan/index", "check_path": false,
               "env_version": "trial", "width": 280})
    );

    // The defaults: the home page (no `page`), check_path on, release, 430 px.
    f.client.get_unlimited_qr_code(&request()).await.unwrap();
    assert_eq!(
        f.request(1).1,
        json!({"scene": "sid=Ab3-_.~!*", "check_path": true, "env_version": "release", "width": 430})
    );
    assert_eq!(f.tokens_issued(), 1);
}

#[tokio::test]
async fn each_errcode_is_typed_and_only_busy_is_retried() {
    for (code, expected) in [
        (40097, Errcode::InvalidArgs),
        (40129, Errcode::InvalidScene),
        (40169, Errcode::InvalidSceneLength),
        (41030, Errcode::InvalidPage),
        (85096, Errcode::ScancodeTimeNotAllowed),
        (45009, Errcode::DailyLimit),
        (-1, Errcode::SystemBusy),
    ] {
        let f = fake(vec![wechat_error(code)]).await;
        let err = f
            .client
            .get_unlimited_qr_code(&request())
            .await
            .unwrap_err();
        let attempts = if code == -1 { 3 } else { 1 };
        match &err {
            Error::Api {
                api,
                errcode,
                message,
                attempts: a,
            } => {
                assert_eq!(
                    (*api, *errcode, *a),
                    ("getwxacodeunlimit", expected, attempts),
                    "{code}"
                );
                assert!(message.ends_with(&format!("rid: 6650-{code}")), "{message}");
            }
            other => panic!("{code}: expected Error::Api, got {other:?}"),
        }
        assert_eq!(f.hits(), attempts as usize, "{code}");
        assert!(!err.to_string().contains("TOKEN"), "{err}");
    }
    assert!(Errcode::InvalidPage.is_configuration());
    assert!(!Errcode::InvalidScene.is_configuration());
}

#[tokio::test]
async fn busy_then_the_image() {
    let f = fake(vec![wechat_error(-1), image("image/jpeg", PNG)]).await;
    let img = f.client.get_unlimited_qr_code(&request()).await.unwrap();
    assert_eq!(img.bytes, PNG);
    assert_eq!(f.hits(), 2);
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_and_the_call_retried_once() {
    let f = fake(vec![wechat_error(40001), image("image/jpeg", PNG)]).await;
    let img = f.client.get_unlimited_qr_code(&request()).await.unwrap();
    assert_eq!(img.bytes, PNG);
    assert_eq!(f.tokens_issued(), 2);
    assert_eq!(f.request(0).0, "access_token=TOKEN1");
    assert_eq!(f.request(1).0, "access_token=TOKEN2");

    // Rejected again after the refresh: the error surfaces, no third try.
    let f = fake(vec![wechat_error(42001)]).await;
    let err = f
        .client
        .get_unlimited_qr_code(&request())
        .await
        .unwrap_err();
    assert_eq!(err.errcode(), Some(Errcode::AccessTokenExpired));
    assert_eq!((f.hits(), f.tokens_issued()), (2, 2));
}

#[tokio::test]
async fn the_content_type_decides_image_or_error() {
    // image/png is an image too.
    let f = fake(vec![image("image/png", PNG)]).await;
    let img = f.client.get_unlimited_qr_code(&request()).await.unwrap();
    assert_eq!(
        (img.bytes.as_slice(), img.content_type.as_str()),
        (PNG, "image/png")
    );

    // Labelled an image, it is an image: the bytes are never sniffed.
    let json_bytes = br#"{"errcode":40129,"errmsg":"invalid scene"}"#;
    let f = fake(vec![image("image/jpeg", json_bytes)]).await;
    let img = f.client.get_unlimited_qr_code(&request()).await.unwrap();
    assert_eq!(img.bytes, json_bytes);

    // Anything else is a decode error that names the type, even with a JSON body.
    for content_type in ["text/plain", "text/html", "application/octet-stream"] {
        let f = fake(vec![image(content_type, json_bytes)]).await;
        let err = f
            .client
            .get_unlimited_qr_code(&request())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Decode { api: "getwxacodeunlimit", detail } if detail.contains(content_type)),
            "{err:?}"
        );
        assert_eq!(f.hits(), 1);
    }

    // JSON that is not WeChat's error shape.
    let f = fake(vec![image("application/json", b"{\"ok\":true}")]).await;
    let err = f
        .client
        .get_unlimited_qr_code(&request())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    let f = fake(vec![image("application/json", PNG)]).await;
    let err = f
        .client
        .get_unlimited_qr_code(&request())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn an_oversize_image_is_refused() {
    let mut big = PNG.to_vec();
    big.resize(MAX_QR_IMAGE_BYTES + 1, 0);
    for streamed in [false, true] {
        let f = fake(vec![Reply {
            content_type: "image/jpeg",
            body: big.clone(),
            streamed,
        }])
        .await;
        let err = f
            .client
            .get_unlimited_qr_code(&request())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{streamed}: {err:?}");
        assert_eq!(f.hits(), 1);
    }
    // Exactly at the cap, streamed, is fine.
    big.truncate(MAX_QR_IMAGE_BYTES);
    let f = fake(vec![Reply {
        content_type: "image/jpeg",
        body: big.clone(),
        streamed: true,
    }])
    .await;
    let img = f.client.get_unlimited_qr_code(&request()).await.unwrap();
    assert_eq!(img.bytes, big);
}
