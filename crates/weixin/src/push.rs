//! WeChat's message push (消息推送) to a developer's URL: the URL check, the signatures, safe mode's AES-256-CBC
//! envelope, and the message in JSON or XML (`/miniprogram/dev/framework/server-ability/message-push.html`).
//!
//! [`PushKeys::open`] is the receiving side: nothing is parsed before the signature over it is checked, and every
//! input, however broken, is an [`PushError`], never a panic. [`PushKeys::seal`] is the sending side, as WeChat
//! does it, for the simulator and for tests.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit, block_padding::NoPadding};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha1::{Digest, Sha1};
use std::fmt;
use subtle::ConstantTimeEq;

/// WeChat pads safe-mode plaintexts to multiples of 32 bytes (PKCS#7 with a 32-byte block), not AES's 16.
const PAD_BLOCK: usize = 32;

/// An app's message-push settings: the Token, and the EncodingAESKey for safe mode (`None`: plaintext only).
#[derive(Clone)]
pub struct PushKeys {
    token: SecretString,
    aes_key: Option<[u8; 32]>,
}

/// Neither value prints.
impl fmt::Debug for PushKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushKeys")
            .field("token", &"[redacted]")
            .field("aes_key", &self.aes_key.map(|_| "[redacted]"))
            .finish()
    }
}

/// The query WeChat sends with a push (and with the URL check).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PushQuery {
    pub signature: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub echostr: Option<String>,
    pub encrypt_type: Option<String>,
    pub msg_signature: Option<String>,
    pub openid: Option<String>,
}

/// A pushed message: the fields every message has, and those of the user-data events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    pub to_user_name: String,
    pub from_user_name: String,
    pub create_time: i64,
    pub msg_type: String,
    pub event: Option<String>,
    pub openid: Option<String>,
    pub appid: Option<String>,
    /// A code (8 = the phone number, 6 = nickname and avatar, …), a number or a string on the wire.
    pub revoke_info: Option<String>,
}

/// The message's fields as text, whichever format carried them (XML has only text; JSON numbers are made text).
#[derive(Deserialize)]
struct Fields {
    #[serde(rename = "ToUserName")]
    to_user_name: Option<String>,
    #[serde(rename = "FromUserName")]
    from_user_name: Option<String>,
    #[serde(rename = "CreateTime")]
    create_time: Option<String>,
    #[serde(rename = "MsgType")]
    msg_type: Option<String>,
    #[serde(rename = "Event")]
    event: Option<String>,
    #[serde(rename = "OpenID")]
    openid: Option<String>,
    #[serde(rename = "AppID")]
    appid: Option<String>,
    #[serde(rename = "RevokeInfo")]
    revoke_info: Option<String>,
}

impl TryFrom<Fields> for PushMessage {
    type Error = PushError;

    fn try_from(f: Fields) -> Result<Self, PushError> {
        let missing = |name: &str| PushError::Malformed(format!("no {name}"));
        Ok(Self {
            to_user_name: f.to_user_name.unwrap_or_default(),
            from_user_name: f.from_user_name.unwrap_or_default(),
            create_time: f
                .create_time
                .ok_or_else(|| missing("CreateTime"))?
                .trim()
                .parse()
                .map_err(|_| PushError::Malformed("CreateTime is not a number".into()))?,
            msg_type: f.msg_type.ok_or_else(|| missing("MsgType"))?,
            event: f.event,
            openid: f.openid,
            appid: f.appid,
            revoke_info: f.revoke_info,
        })
    }
}

/// The body's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushFormat {
    Json,
    Xml,
}

/// A push as WeChat sends it: the query pairs, the Content-Type and the body.
#[derive(Debug, Clone)]
pub struct SealedPush {
    pub query: Vec<(String, String)>,
    pub content_type: &'static str,
    pub body: String,
}

/// Why a push (or a URL check) is refused. Nothing names a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("the query lacks {0}")]
    MissingParameter(&'static str),
    #[error("the signature is not the Token's")]
    BadSignature,
    #[error("the msg_signature is not the Token's")]
    BadMsgSignature,
    #[error("a safe-mode push, but no EncodingAESKey is configured")]
    NoKey,
    #[error("the ciphertext does not decrypt (base64, length or padding)")]
    BadCiphertext,
    #[error("the ciphertext is for another appid")]
    WrongAppid,
    #[error("not a push message: {0}")]
    Malformed(String),
    #[error("the EncodingAESKey must be 43 letters and digits")]
    BadKey,
}

impl PushKeys {
    /// The Token (any text WeChat's console took), and the 43-character EncodingAESKey for safe mode.
    pub fn new(token: &str, encoding_aes_key: Option<&str>) -> Result<Self, PushError> {
        let aes_key = match encoding_aes_key {
            None => None,
            Some(key) => {
                let key = key.trim();
                if key.len() != 43 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(PushError::BadKey);
                }
                // 43 characters carry 258 bits: the last character's spare bits are not zero in every key
                // WeChat's console makes, so they are ignored rather than refused.
                let engine = base64::engine::GeneralPurpose::new(
                    &base64::alphabet::STANDARD,
                    base64::engine::GeneralPurposeConfig::new()
                        .with_decode_allow_trailing_bits(true),
                );
                let bytes = engine
                    .decode(format!("{key}="))
                    .map_err(|_| PushError::BadKey)?;
                Some(bytes.try_into().map_err(|_| PushError::BadKey)?)
            }
        };
        Ok(Self {
            token: SecretString::from(token.trim().to_owned()),
            aes_key,
        })
    }

    /// The URL check (GET): answers `echostr` as it came when `signature` is the Token's.
    pub fn check_url(&self, query: &PushQuery) -> Result<String, PushError> {
        let (timestamp, nonce) = timestamp_nonce(query)?;
        let signature = required(&query.signature, "signature")?;
        if !self.signed(signature, &[timestamp, nonce]) {
            return Err(PushError::BadSignature);
        }
        required(&query.echostr, "echostr").map(str::to_owned)
    }

    /// A push (POST) for `appid`: plaintext mode, or safe mode (`encrypt_type=aes`). JSON or XML, told apart by
    /// the first byte that is not white space.
    pub fn open(
        &self,
        appid: &str,
        query: &PushQuery,
        body: &[u8],
    ) -> Result<PushMessage, PushError> {
        let (timestamp, nonce) = timestamp_nonce(query)?;
        let signature = query.signature.as_deref();
        let safe = query.encrypt_type.as_deref() == Some("aes");
        if !safe {
            let signature = signature.ok_or(PushError::MissingParameter("signature"))?;
            if !self.signed(signature, &[timestamp, nonce]) {
                return Err(PushError::BadSignature);
            }
            return parse(body);
        }
        // Safe mode: WeChat sends both signatures; each that is there must be right.
        if let Some(signature) = signature
            && !self.signed(signature, &[timestamp, nonce])
        {
            return Err(PushError::BadSignature);
        }
        let msg_signature = required(&query.msg_signature, "msg_signature")?;
        let encrypt = envelope(body)?;
        if !self.signed(msg_signature, &[timestamp, nonce, &encrypt]) {
            return Err(PushError::BadMsgSignature);
        }
        let key = self.aes_key.as_ref().ok_or(PushError::NoKey)?;
        parse(&decrypt(key, &encrypt, appid)?)
    }

    /// What WeChat would send: `message` in `format`, encrypted when `encrypt` (which needs the key), signed
    /// with `timestamp` and `nonce`.
    pub fn seal(
        &self,
        appid: &str,
        message: &PushMessage,
        format: PushFormat,
        encrypt: bool,
        timestamp: i64,
        nonce: &str,
    ) -> SealedPush {
        let timestamp = timestamp.to_string();
        let mut query = vec![
            ("signature".to_owned(), self.sign(&[&timestamp, nonce])),
            ("timestamp".to_owned(), timestamp.clone()),
            ("nonce".to_owned(), nonce.to_owned()),
        ];
        let plain = render(message, format);
        let body = match (encrypt, &self.aes_key) {
            (true, Some(key)) => {
                let ciphertext = encrypt_message(key, plain.as_bytes(), appid);
                query.push(("encrypt_type".to_owned(), "aes".to_owned()));
                query.push((
                    "msg_signature".to_owned(),
                    self.sign(&[&timestamp, nonce, &ciphertext]),
                ));
                match format {
                    PushFormat::Json => serde_json::json!({
                        "ToUserName": message.to_user_name,
                        "Encrypt": ciphertext,
                    })
                    .to_string(),
                    PushFormat::Xml => format!(
                        "<xml><ToUserName>{}</ToUserName><Encrypt>{}</Encrypt></xml>",
                        cdata(&message.to_user_name),
                        cdata(&ciphertext)
                    ),
                }
            }
            _ => plain,
        };
        SealedPush {
            query,
            content_type: match format {
                PushFormat::Json => "application/json",
                PushFormat::Xml => "text/xml",
            },
            body,
        }
    }

    /// sha1 hex of the Token and `parts`, sorted and concatenated: WeChat's signature.
    fn sign(&self, parts: &[&str]) -> String {
        let mut all: Vec<&str> = parts.to_vec();
        all.push(self.token.expose_secret());
        all.sort_unstable();
        hex::encode(Sha1::digest(all.concat().as_bytes()))
    }

    fn signed(&self, presented: &str, parts: &[&str]) -> bool {
        let expected = self.sign(parts);
        bool::from(
            expected
                .as_bytes()
                .ct_eq(presented.trim().to_ascii_lowercase().as_bytes()),
        )
    }
}

fn required<'a>(value: &'a Option<String>, name: &'static str) -> Result<&'a str, PushError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or(PushError::MissingParameter(name))
}

fn timestamp_nonce(query: &PushQuery) -> Result<(&str, &str), PushError> {
    Ok((
        required(&query.timestamp, "timestamp")?,
        required(&query.nonce, "nonce")?,
    ))
}

fn format_of(body: &[u8]) -> Result<PushFormat, PushError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(PushFormat::Json),
        Some(b'<') => Ok(PushFormat::Xml),
        _ => Err(PushError::Malformed("neither JSON nor XML".into())),
    }
}

/// The message in either format.
fn parse(body: &[u8]) -> Result<PushMessage, PushError> {
    let malformed = |e: &dyn fmt::Display| PushError::Malformed(e.to_string());
    let fields: Fields = match format_of(body)? {
        PushFormat::Json => {
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| malformed(&e))?;
            let serde_json::Value::Object(object) = value else {
                return Err(PushError::Malformed("not a JSON object".into()));
            };
            // Numbers as text, so both formats read alike; other types are not WeChat's and are dropped.
            let texts: serde_json::Map<String, serde_json::Value> = object
                .into_iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::String(_) => Some((k, v)),
                    serde_json::Value::Number(n) => Some((k, n.to_string().into())),
                    _ => None,
                })
                .collect();
            serde_json::from_value(serde_json::Value::Object(texts)).map_err(|e| malformed(&e))?
        }
        PushFormat::Xml => {
            let text = std::str::from_utf8(body).map_err(|e| malformed(&e))?;
            quick_xml::de::from_str(text).map_err(|e| malformed(&e))?
        }
    };
    fields.try_into()
}

/// Safe mode's body: the `Encrypt` field, in either format.
fn envelope(body: &[u8]) -> Result<String, PushError> {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "Encrypt")]
        encrypt: String,
    }
    let malformed = |e: &dyn fmt::Display| PushError::Malformed(e.to_string());
    let envelope: Envelope = match format_of(body)? {
        PushFormat::Json => serde_json::from_slice(body).map_err(|e| malformed(&e))?,
        PushFormat::Xml => {
            let text = std::str::from_utf8(body).map_err(|e| malformed(&e))?;
            quick_xml::de::from_str(text).map_err(|e| malformed(&e))?
        }
    };
    Ok(envelope.encrypt)
}

/// AES-256-CBC (IV = the key's first 16 bytes), padding to 32-byte blocks, then 16 random bytes ‖ the message's
/// length (4 bytes, big-endian) ‖ the message ‖ the appid, which must be `appid`.
fn decrypt(key: &[u8; 32], encrypt: &str, appid: &str) -> Result<Vec<u8>, PushError> {
    let data = STANDARD
        .decode(encrypt.trim())
        .map_err(|_| PushError::BadCiphertext)?;
    if data.is_empty() || data.len() % PAD_BLOCK != 0 {
        return Err(PushError::BadCiphertext);
    }
    let iv: [u8; 16] = key[..16].try_into().expect("16 of 32 bytes");
    let mut plain = cbc::Decryptor::<aes::Aes256>::new(key.into(), &iv.into())
        .decrypt_padded_vec::<NoPadding>(&data)
        .map_err(|_| PushError::BadCiphertext)?;
    let pad = usize::from(*plain.last().ok_or(PushError::BadCiphertext)?);
    if pad == 0
        || pad > PAD_BLOCK
        || plain[plain.len() - pad..]
            .iter()
            .any(|&b| usize::from(b) != pad)
    {
        return Err(PushError::BadCiphertext);
    }
    plain.truncate(plain.len() - pad);
    if plain.len() < 20 {
        return Err(PushError::BadCiphertext);
    }
    let length = u32::from_be_bytes(plain[16..20].try_into().expect("4 bytes")) as usize;
    let rest = &plain[20..];
    if length > rest.len() {
        return Err(PushError::BadCiphertext);
    }
    let (message, inner_appid) = rest.split_at(length);
    if inner_appid != appid.as_bytes() {
        return Err(PushError::WrongAppid);
    }
    Ok(message.to_vec())
}

fn encrypt_message(key: &[u8; 32], message: &[u8], appid: &str) -> String {
    let mut plain = rand::random::<[u8; 16]>().to_vec();
    plain.extend_from_slice(&(message.len() as u32).to_be_bytes());
    plain.extend_from_slice(message);
    plain.extend_from_slice(appid.as_bytes());
    let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
    plain.extend(std::iter::repeat_n(pad as u8, pad));
    let iv: [u8; 16] = key[..16].try_into().expect("16 of 32 bytes");
    let ciphertext = cbc::Encryptor::<aes::Aes256>::new(key.into(), &iv.into())
        .encrypt_padded_vec::<NoPadding>(&plain);
    STANDARD.encode(ciphertext)
}

/// The message as WeChat writes it: JSON with its field names, or XML with CDATA text.
fn render(message: &PushMessage, format: PushFormat) -> String {
    let mut fields: Vec<(&str, &str)> = vec![
        ("ToUserName", &message.to_user_name),
        ("FromUserName", &message.from_user_name),
        ("MsgType", &message.msg_type),
    ];
    for (name, value) in [
        ("Event", &message.event),
        ("OpenID", &message.openid),
        ("AppID", &message.appid),
        ("RevokeInfo", &message.revoke_info),
    ] {
        if let Some(value) = value {
            fields.push((name, value));
        }
    }
    match format {
        PushFormat::Json => {
            let mut object = serde_json::Map::new();
            for (name, value) in fields {
                object.insert(name.into(), value.into());
            }
            object.insert("CreateTime".into(), message.create_time.into());
            serde_json::Value::Object(object).to_string()
        }
        PushFormat::Xml => {
            let mut xml = String::from("<xml>");
            for (name, value) in fields {
                xml += &format!("<{name}>{}</{name}>", cdata(value));
            }
            xml += &format!("<CreateTime>{}</CreateTime></xml>", message.create_time);
            xml
        }
    }
}

/// `<![CDATA[…]]>`, splitting any `]]>` inside so it cannot end the section early.
fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;
