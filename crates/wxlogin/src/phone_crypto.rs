//! Phone numbers at rest (China's PIPL treats them as personal data): AES-256-GCM encryption, and an HMAC-SHA256
//! keyed hash beside it so a number can be looked up without decrypting every row. Both keys are derived from
//! the one data key, so a leak of the lookup hashes does not help decrypt.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::path::Path;

const NONCE_LEN: usize = 12;

/// Encrypts and decrypts phone numbers; computes their lookup hash.
#[derive(Clone)]
pub struct PhoneCipher {
    aead: Aes256Gcm,
    lookup_key: [u8; 32],
    check_value: [u8; 32],
    rate_limit_key: [u8; 32],
}

impl std::fmt::Debug for PhoneCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhoneCipher([redacted])")
    }
}

/// Why a data key or a stored phone could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "the data key must be base64 of exactly 32 bytes (generate one with: openssl rand -base64 32)"
    )]
    BadKey,
    #[error("cannot read or write the data key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error(
        "a stored phone number could not be decrypted (wrong data key, or the row was altered)"
    )]
    Decrypt,
}

fn derive(key: &[u8; 32], purpose: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(purpose);
    mac.finalize().into_bytes().into()
}

impl PhoneCipher {
    /// From the base64 data key.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Self::from_key(&key))
    }

    fn from_key(key: &[u8; 32]) -> Self {
        let enc = derive(key, b"wxlogin phone encryption v1");
        Self {
            aead: Aes256Gcm::new(&enc.into()),
            lookup_key: derive(key, b"wxlogin phone lookup v1"),
            check_value: derive(key, b"wxlogin key check v1"),
            rate_limit_key: derive(key, b"wxlogin rate limit keys v1"),
        }
    }

    /// A keyed hash of a fixed label: stored once beside the data, it tells whether a later start has the same
    /// key, and reveals nothing about the key (HMAC-SHA256 is a PRF).
    pub fn check_value(&self) -> [u8; 32] {
        self.check_value
    }

    /// The key that hashes client addresses and openids into rate-limit keys (Redis key names): derived from the
    /// data key, so every instance of a cluster names a client the same way.
    pub fn rate_limit_key(&self) -> [u8; 32] {
        self.rate_limit_key
    }

    /// Whether `stored` is this key's check value (in constant time: it is derived from the key).
    pub fn matches_check_value(&self, stored: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        stored.len() == 32 && bool::from(self.check_value.ct_eq(stored))
    }

    /// Sandbox mode: the key generated once into the data dir (mode 0600), read back on later starts so stored
    /// phones stay readable across restarts.
    pub fn load_or_create(path: &Path) -> Result<Self, CryptoError> {
        let err = |e: std::io::Error| CryptoError::KeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                let text = base64::engine::general_purpose::STANDARD.encode(key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                crate::private_file::create(path, &text).map_err(err)?;
                Ok(Self::from_key(&key))
            }
            Err(e) => Err(err(e)),
        }
    }

    /// `nonce || ciphertext`, bound to the row's (appid, openid) so a blob copied to another user fails to open.
    pub fn seal(&self, row: &str, phone: &str) -> Vec<u8> {
        self.seal_bytes(row.as_bytes(), phone.as_bytes())
    }

    /// The phone number sealed by [`seal`](Self::seal) for the same row.
    pub fn open(&self, row: &str, blob: &[u8]) -> Result<String, CryptoError> {
        let plain = self.open_bytes(row.as_bytes(), blob)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Decrypt)
    }

    /// `nonce || ciphertext` of any secret at rest (a phone, a signing key), bound to `aad`: a blob opens only
    /// for the same `aad`.
    pub fn seal_bytes(&self, aad: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .aead
            .encrypt(&Nonce::from(nonce), Payload { msg, aad })
            .expect("AES-GCM encryption of a short message cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    /// What [`seal_bytes`](Self::seal_bytes) sealed with the same `aad`.
    pub fn open_bytes(&self, aad: &[u8], blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if blob.len() <= NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Decrypt)?;
        self.aead
            .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad })
            .map_err(|_| CryptoError::Decrypt)
    }

    /// The keyed lookup hash of a phone number.
    /// The keyed hash that names an identity in the audit log: with the lookup key, so it can be found again
    /// from an openid, but not read back without the data key. Domain-separated from phone hashes.
    pub fn subject_hash(&self, appid: &str, openid: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.lookup_key)
            .expect("HMAC takes any key length");
        mac.update(b"identity\0");
        mac.update(row_id(appid, openid).as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    pub fn lookup_hash(&self, phone: &str) -> Vec<u8> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.lookup_key).expect("any key length");
        mac.update(phone.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// The row a phone blob belongs to: binds ciphertexts to (appid, openid).
pub fn row_id(appid: &str, openid: &str) -> String {
    format!("{appid}\u{0}{openid}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cipher() -> PhoneCipher {
        PhoneCipher::from_key(&[7u8; 32])
    }

    #[test]
    fn sealed_phones_hold_no_plaintext_and_open_only_for_their_row() {
        let c = cipher();
        let blob = c.seal(&row_id("wx1", "o1"), "13800138000");
        assert!(!blob.windows(11).any(|w| w == b"13800138000"));
        assert_eq!(c.open(&row_id("wx1", "o1"), &blob).unwrap(), "13800138000");
        assert!(c.open(&row_id("wx1", "o2"), &blob).is_err());
        assert!(
            PhoneCipher::from_key(&[8u8; 32])
                .open(&row_id("wx1", "o1"), &blob)
                .is_err()
        );
        assert_ne!(
            blob,
            c.seal(&row_id("wx1", "o1"), "13800138000"),
            "a fresh nonce each time"
        );
        assert_eq!(c.lookup_hash("13800138000"), c.lookup_hash("13800138000"));
        assert_ne!(
            c.lookup_hash("13800138000"),
            PhoneCipher::from_key(&[8u8; 32]).lookup_hash("13800138000")
        );
    }

    #[test]
    fn the_check_value_tells_keys_apart_and_is_not_the_key() {
        let key = [7u8; 32];
        let a = PhoneCipher::from_key(&key);
        let b = PhoneCipher::from_key(&[8u8; 32]);
        assert!(a.matches_check_value(&a.check_value()));
        assert!(!a.matches_check_value(&b.check_value()));
        assert!(!a.matches_check_value(&a.check_value()[..31]));
        assert_ne!(a.check_value(), key);
        assert_ne!(a.check_value()[..], a.lookup_hash("")[..]);
    }

    #[test]
    fn keys_are_checked() {
        assert!(PhoneCipher::from_base64("not base64!").is_err());
        assert!(PhoneCipher::from_base64("AAAA").is_err());
        assert!(
            PhoneCipher::from_base64(&base64::engine::general_purpose::STANDARD.encode([1u8; 32]))
                .is_ok()
        );
    }

    #[test]
    fn the_sandbox_key_file_is_private_and_stable() {
        let dir = std::env::temp_dir().join(format!(
            "wxlogin-key-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let path = dir.join("data.key");
        let a = PhoneCipher::load_or_create(&path).unwrap();
        let b = PhoneCipher::load_or_create(&path).unwrap();
        assert_eq!(a.lookup_hash("1"), b.lookup_hash("1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    proptest! {
        #[test]
        fn round_trip(phone in "\\+?[0-9]{4,16}", openid in "[A-Za-z0-9_-]{1,40}") {
            let c = cipher();
            let row = row_id("wx0123456789abcdef", &openid);
            prop_assert_eq!(c.open(&row, &c.seal(&row, &phone)).unwrap(), phone);
        }
    }
}
