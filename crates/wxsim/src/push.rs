//! WeChat's message push (消息推送), from WeChat's side: each app's push URL, Token and EncodingAESKey, and the
//! user-data events a user causes (`user_authorization_revoke` when they withdraw an authorization,
//! `user_authorization_cancellation` when they close their WeChat account), signed, encrypted in safe mode and
//! POSTed as WeChat does (`wechat-api.md`, "Message push").
//!
//! Written here from WeChat's description, not shared with the client crate's receiving side, so each checks the
//! other.

use aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::{BlockModeEncrypt, KeyIvInit, block_padding::NoPadding};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::time::Duration;

use crate::error::SimError;
use crate::state::Inner;

/// WeChat gives up on a push after 5 s.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how an app's pushes go: `PUT /apps/{appid}/push`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushTarget {
    /// http(s) URL the events are POSTed to.
    pub url: String,
    /// The Token (3–32 letters and digits).
    pub token: String,
    /// The EncodingAESKey (43 letters and digits): safe mode. `None`: plaintext mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_aes_key: Option<String>,
    /// `json` (default) or `xml`.
    #[serde(default)]
    pub format: PushFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushFormat {
    #[default]
    Json,
    Xml,
}

/// A target as the device API shows it: never the Token or the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushTargetView {
    pub url: String,
    pub mode: &'static str,
    pub format: PushFormat,
}

/// What a user did that WeChat pushes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserEvent {
    /// Withdrew an authorization: `RevokeInfo` names which (8 = the phone number).
    Revoke { revoke_info: String },
    /// Closed their WeChat account.
    Cancel,
}

/// A push that was made: exactly what went out, and what the URL answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushDelivery {
    pub sent: SentPush,
    pub answer: PushAnswer,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SentPush {
    /// The URL with its query (signature, timestamp, nonce; safe mode: encrypt_type, msg_signature).
    pub url: String,
    pub content_type: &'static str,
    pub body: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PushAnswer {
    pub status: u16,
    pub body: String,
}

/// Every app's push target.
#[derive(Default)]
pub(crate) struct PushTargets(parking_lot::Mutex<HashMap<String, PushTarget>>);

impl PushTargets {
    pub(crate) fn set(&self, appid: &str, target: PushTarget) -> Result<PushTargetView, SimError> {
        let invalid = |why: &str| SimError::InvalidRequest(why.to_owned());
        if !(target.url.starts_with("http://") || target.url.starts_with("https://")) {
            return Err(invalid("url must be http(s)"));
        }
        let alnum = |t: &str| t.bytes().all(|b| b.is_ascii_alphanumeric());
        if !(3..=32).contains(&target.token.len()) || !alnum(&target.token) {
            return Err(invalid("token must be 3 to 32 letters and digits"));
        }
        if let Some(key) = &target.encoding_aes_key
            && (key.len() != 43 || !alnum(key))
        {
            return Err(invalid("encodingAesKey must be 43 letters and digits"));
        }
        let view = view(&target);
        self.0.lock().insert(appid.to_owned(), target);
        Ok(view)
    }

    pub(crate) fn get(&self, appid: &str) -> Option<PushTarget> {
        self.0.lock().get(appid).cloned()
    }
}

pub(crate) fn view(target: &PushTarget) -> PushTargetView {
    PushTargetView {
        url: target.url.clone(),
        mode: if target.encoding_aes_key.is_some() {
            "safe"
        } else {
            "plaintext"
        },
        format: target.format,
    }
}

impl Inner {
    /// The push WeChat makes when the user with `openid` does `event`, made now; `NoPushTarget` when the app
    /// has none configured.
    pub(crate) async fn push_user_event(
        &self,
        openid: &str,
        event: UserEvent,
    ) -> Result<PushDelivery, PushFailure> {
        let user = self.user(openid).map_err(PushFailure::Sim)?;
        let app = self.app(user.app);
        let appid = app.creds.appid.clone();
        let target = self.pushes.get(&appid).ok_or(PushFailure::NoTarget)?;
        let now = self.clock.now();
        let mut fields = vec![
            ("ToUserName", original_id(&appid)),
            ("FromUserName", user.openid.clone()),
            ("CreateTime", now.to_string()),
            ("MsgType", "event".to_owned()),
        ];
        match event {
            UserEvent::Revoke { revoke_info } => {
                fields.push(("Event", "user_authorization_revoke".to_owned()));
                fields.push(("OpenID", user.openid.clone()));
                fields.push(("AppID", appid.clone()));
                fields.push(("RevokeInfo", revoke_info));
            }
            UserEvent::Cancel => {
                // The account is closed whatever the push's fate: WeChat's side is done.
                self.close_account(&user);
                fields.push(("Event", "user_authorization_cancellation".to_owned()));
                fields.push(("OpenID", user.openid.clone()));
                fields.push(("AppID", appid.clone()));
            }
        }
        let sent = seal(&target, &appid, &fields, now);
        let answer = deliver(&sent).await?;
        Ok(PushDelivery { sent, answer })
    }
}

/// Why a push could not be made.
#[derive(Debug)]
pub(crate) enum PushFailure {
    Sim(SimError),
    NoTarget,
    Unreachable(String),
}

/// A stable made-up original id (`gh_` + 12 hex digits) per app: WeChat's `ToUserName`.
fn original_id(appid: &str) -> String {
    format!("gh_{}", &hex::encode(Sha1::digest(appid.as_bytes()))[..12])
}

/// The body (and query) WeChat sends for `fields` to `target`.
fn seal(target: &PushTarget, appid: &str, fields: &[(&str, String)], now: u64) -> SentPush {
    let timestamp = now.to_string();
    let nonce = rand::random::<u32>().to_string();
    let mut query = vec![
        ("signature", sign(&[&target.token, &timestamp, &nonce])),
        ("timestamp", timestamp.clone()),
        ("nonce", nonce.clone()),
    ];
    let message = render(target.format, fields);
    let body = match &target.encoding_aes_key {
        None => message,
        Some(key) => {
            let encrypted = encrypt(key, &message, appid);
            query.push(("encrypt_type", "aes".to_owned()));
            query.push((
                "msg_signature",
                sign(&[&target.token, &timestamp, &nonce, &encrypted]),
            ));
            let to = fields[0].1.clone();
            render(target.format, &[("ToUserName", to), ("Encrypt", encrypted)])
        }
    };
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let separator = if target.url.contains('?') { '&' } else { '?' };
    SentPush {
        url: format!("{}{separator}{}", target.url, query.join("&")),
        content_type: match target.format {
            PushFormat::Json => "application/json",
            PushFormat::Xml => "text/xml",
        },
        body,
    }
}

/// JSON (CreateTime a number) or XML (text in CDATA, CreateTime bare), as WeChat writes them.
fn render(format: PushFormat, fields: &[(&str, String)]) -> String {
    match format {
        PushFormat::Json => {
            let mut object = serde_json::Map::new();
            for (name, value) in fields {
                let value = match (*name, value.parse::<u64>()) {
                    ("CreateTime", Ok(n)) => n.into(),
                    _ => value.clone().into(),
                };
                object.insert((*name).to_owned(), value);
            }
            serde_json::Value::Object(object).to_string()
        }
        PushFormat::Xml => {
            let mut xml = String::from("<xml>");
            for (name, value) in fields {
                if *name == "CreateTime" {
                    xml += &format!("<{name}>{value}</{name}>");
                } else {
                    xml += &format!("<{name}><![CDATA[{value}]]></{name}>");
                }
            }
            xml + "</xml>"
        }
    }
}

/// sha1 hex of the parts sorted and joined.
fn sign(parts: &[&str]) -> String {
    let mut parts = parts.to_vec();
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

/// AESKey = base64(EncodingAESKey + "="), IV = its first 16 bytes; 16 random bytes ‖ length (u32 BE) ‖ message
/// ‖ appid, PKCS#7-padded to 32-byte blocks.
fn encrypt(encoding_aes_key: &str, message: &str, appid: &str) -> String {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let key: [u8; 32] = engine
        .decode(format!("{encoding_aes_key}="))
        .ok()
        .and_then(|k| k.try_into().ok())
        .expect("a key checked when it was set");
    let mut plain = rand::random::<[u8; 16]>().to_vec();
    plain.extend((message.len() as u32).to_be_bytes());
    plain.extend(message.as_bytes());
    plain.extend(appid.as_bytes());
    let pad = 32 - plain.len() % 32;
    plain.extend(std::iter::repeat_n(pad as u8, pad));
    let iv: [u8; 16] = key[..16].try_into().expect("16 bytes");
    let ciphertext = cbc::Encryptor::<Aes256>::new(&key.into(), &iv.into())
        .encrypt_padded_vec::<NoPadding>(&plain);
    STANDARD.encode(ciphertext)
}

/// POSTs it, as WeChat does, waiting at most 5 s.
async fn deliver(sent: &SentPush) -> Result<PushAnswer, PushFailure> {
    let client = reqwest::Client::builder()
        .timeout(PUSH_TIMEOUT)
        .build()
        .map_err(|e| PushFailure::Unreachable(e.to_string()))?;
    let response = client
        .post(&sent.url)
        .header("content-type", sent.content_type)
        .body(sent.body.clone())
        .send()
        .await
        .map_err(|e| PushFailure::Unreachable(e.to_string()))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| PushFailure::Unreachable(e.to_string()))?;
    Ok(PushAnswer { status, body })
}
