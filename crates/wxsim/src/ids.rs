//! The random and derived strings the simulator hands out: codes, tokens, openids, session keys, rids, and the
//! checkSession signature. Shapes follow what WeChat's own values look like.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::rng().fill_bytes(&mut buf);
    buf
}

/// `N` random bytes as `2N` lowercase hex digits.
pub(crate) fn random_hex<const N: usize>() -> String {
    hex::encode(random_bytes::<N>())
}

/// Length of a login or phone code.
pub(crate) const CODE_LEN: usize = 32;

/// A login or phone code: 24 random bytes (192 bits) as 32 URL-safe base64 characters, kept as a fixed array so
/// the code maps need no allocation per key.
pub(crate) type CodeKey = [u8; CODE_LEN];

pub(crate) fn new_code() -> CodeKey {
    let mut out = [0u8; CODE_LEN];
    let written = URL_SAFE_NO_PAD
        .encode_slice(random_bytes::<24>(), &mut out)
        .unwrap_or_default();
    debug_assert_eq!(written, CODE_LEN);
    out
}

/// The key of a code string, or `None` when it cannot be one of ours (then it is simply unknown).
pub(crate) fn code_key(code: &str) -> Option<CodeKey> {
    code.as_bytes().try_into().ok()
}

pub(crate) fn code_str(key: &CodeKey) -> &str {
    // Only ever built from base64 output, which is ASCII.
    std::str::from_utf8(key).unwrap_or_default()
}

/// The digits WeChat's access tokens start with (a version prefix, e.g. `78_…`).
const TOKEN_PREFIX: &str = "86_";
const TOKEN_RANDOM_BYTES: usize = 99;
/// `86_` + base64url(99 bytes) = 3 + 132.
pub(crate) const TOKEN_LEN: usize = 135;

pub(crate) fn new_access_token() -> String {
    let mut token = String::with_capacity(TOKEN_LEN);
    token.push_str(TOKEN_PREFIX);
    URL_SAFE_NO_PAD.encode_string(random_bytes::<TOKEN_RANDOM_BYTES>(), &mut token);
    token
}

// Guess: WeChat's token shape is not documented; ours is fixed so that a garbled token answers 40014.
/// Whether `token` has the shape of the simulator's access tokens (two digits, `_`, 132 URL-safe characters);
/// anything else answers 40014 rather than 40001.
pub(crate) fn is_token_shaped(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == TOKEN_LEN
        && b[0].is_ascii_digit()
        && b[1].is_ascii_digit()
        && b[2] == b'_'
        && b[3..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

/// An openid: `o` + 27 URL-safe characters (28 in all, like WeChat's), derived from the person and the app with
/// a per-simulator secret: like WeChat's, stable for a (user, app), different between apps, and meaningless
/// without the secret.
pub(crate) fn openid(seed: &[u8; 32], appid: &str, country_code: &str, phone: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(seed).expect("HMAC takes any key length");
    mac.update(b"openid:");
    mac.update(appid.as_bytes());
    mac.update(b":");
    mac.update(country_code.as_bytes());
    mac.update(b":");
    mac.update(phone.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut id = String::with_capacity(28);
    id.push('o');
    URL_SAFE_NO_PAD.encode_string(&digest[..20], &mut id);
    id
}

// Guess: all apps of one simulator share one Open Platform account, so a person's unionid is the same in all.
/// A unionid, derived from the person (country code + phone) and a per-simulator secret, so the same person has
/// the same unionid in every app of the simulator.
pub(crate) fn unionid(seed: &[u8; 32], country_code: &str, phone: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(seed).expect("HMAC takes any key length");
    mac.update(country_code.as_bytes());
    mac.update(b":");
    mac.update(phone.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut id = String::with_capacity(28);
    id.push('o');
    URL_SAFE_NO_PAD.encode_string(&digest[..20], &mut id);
    id
}

pub(crate) fn new_seed() -> [u8; 32] {
    random_bytes::<32>()
}

/// A session_key: 16 random bytes, standard base64 (24 characters, `==` padded), stored inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionKey([u8; 24]);

impl SessionKey {
    pub(crate) fn generate() -> Self {
        let mut out = [0u8; 24];
        let written = STANDARD
            .encode_slice(random_bytes::<16>(), &mut out)
            .unwrap_or_default();
        debug_assert_eq!(written, 24);
        Self(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// `hmac_sha256(key, msg)` as lowercase hex, the way WeChat's docs write it.
pub(crate) fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

/// What checksession expects: the key is the UTF-8 bytes of the base64 session_key *string*, the message is empty.
pub(crate) fn checksession_signature(session_key: &str) -> String {
    hmac_sha256_hex(session_key.as_bytes(), b"")
}

/// A request id for errmsg suffixes, shaped like WeChat's (`rid: 6437cc6f-2d7f7a63-3b0a4d2f`: the first part is
/// the unix time in hex).
pub(crate) fn rid(now: u64) -> String {
    let r = random_bytes::<8>();
    format!(
        "{:08x}-{}-{}",
        now & 0xffff_ffff,
        hex::encode(&r[..4]),
        hex::encode(&r[4..])
    )
}

pub(crate) fn random_f64() -> f64 {
    rand::random::<f64>()
}

/// A random mainland mobile number: `1`, a digit 3–9, nine more digits.
pub(crate) fn random_mainland_phone() -> String {
    use rand::Rng as _;
    let mut rng = rand::rng();
    let mut phone = String::with_capacity(11);
    phone.push('1');
    phone.push(char::from(b'0' + rng.random_range(3..=9u8)));
    for _ in 0..9 {
        phone.push(char::from(b'0' + rng.random_range(0..=9u8)));
    }
    phone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wechat_hmac_vector() {
        assert_eq!(
            hmac_sha256_hex(b"o0q0otL8aEzpcZL/FT9WsQ==", br#"{"foo":"bar"}"#),
            "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
        );
    }

    #[test]
    fn shapes() {
        let code = new_code();
        let s = code_str(&code);
        assert_eq!(s.len(), 32);
        assert!(
            s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(code_key(s), Some(code));
        assert_eq!(code_key("short"), None);

        let token = new_access_token();
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(is_token_shaped(&token));
        assert!(!is_token_shaped("ACCESS_TOKEN"));
        assert!(!is_token_shaped(&token.replace('_', "*")));

        let key = SessionKey::generate();
        assert_eq!(key.as_str().len(), 24);
        assert!(key.as_str().ends_with("=="));
        assert_eq!(STANDARD.decode(key.as_str()).unwrap().len(), 16);

        assert_eq!(openid(&[1; 32], "wx1", "86", "13800138000").len(), 28);
        let seed = new_seed();
        assert_eq!(
            unionid(&seed, "86", "13800138000"),
            unionid(&seed, "86", "13800138000")
        );
        assert_ne!(
            unionid(&seed, "86", "13800138000"),
            unionid(&seed, "86", "13800138001")
        );
        assert_eq!(rid(0x6437cc6f).len(), 26);
        let phone = random_mainland_phone();
        assert_eq!(phone.len(), 11);
        assert!(phone.starts_with('1'));
    }
}
