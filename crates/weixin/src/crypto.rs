//! Legacy `encryptedData` decryption (AES-128-CBC, PKCS#7) and the session_key signature of checksession.

use crate::error::DecryptError;
use aes::Aes128;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use cbc::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Decodes base64 as WeChat clients deliver it. Form decoding turns `+` into a space and some stacks use the
/// URL-safe alphabet; neither space nor `-`/`_` is ever valid standard base64, so repairing them is unambiguous.
pub(crate) fn decode_lenient(field: &'static str, value: &str) -> Result<Vec<u8>, DecryptError> {
    let value = value.trim();
    if value.contains(['-', '_']) {
        return URL_SAFE
            .decode(value)
            .map_err(|_| DecryptError::Base64(field));
    }
    let repaired = value.replace(' ', "+");
    STANDARD
        .decode(repaired)
        .map_err(|_| DecryptError::Base64(field))
}

/// Decrypts `encryptedData` with the session_key and iv (all base64). Returns the plaintext bytes.
pub(crate) fn decrypt(
    session_key: &str,
    encrypted_data: &str,
    iv: &str,
) -> Result<Vec<u8>, DecryptError> {
    let key = decode_lenient("session_key", session_key)?;
    let iv = decode_lenient("iv", iv)?;
    let data = decode_lenient("encryptedData", encrypted_data)?;
    let key: [u8; 16] = key
        .try_into()
        .map_err(|_| DecryptError::Length("session_key"))?;
    let iv: [u8; 16] = iv.try_into().map_err(|_| DecryptError::Length("iv"))?;
    if data.is_empty() || data.len() % 16 != 0 {
        return Err(DecryptError::Padding);
    }
    cbc::Decryptor::<Aes128>::new(&key.into(), &iv.into())
        .decrypt_padded_vec::<Pkcs7>(&data)
        .map_err(|_| DecryptError::Padding)
}

/// checksession's signature: lower-case hex HMAC-SHA256 keyed with the UTF-8 bytes of the base64 session_key
/// *string* (not its decoded bytes), over the given message (empty for checksession).
pub fn session_signature(session_key: &str, message: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(session_key.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wechat_documented_signature_vector() {
        assert_eq!(
            session_signature("o0q0otL8aEzpcZL/FT9WsQ==", br#"{"foo":"bar"}"#),
            "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
        );
    }

    #[test]
    fn lenient_base64_repairs_form_decoding() {
        assert_eq!(
            decode_lenient("x", "a+8=").unwrap(),
            decode_lenient("x", "a 8=").unwrap()
        );
        assert_eq!(
            decode_lenient("x", "a-8=").unwrap(),
            decode_lenient("x", "a+8=").unwrap()
        );
        assert_eq!(decode_lenient("x", "***"), Err(DecryptError::Base64("x")));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decrypt_never_panics(key in "\\PC{0,40}", data in "\\PC{0,200}", iv in "\\PC{0,40}") {
            let _ = decrypt(&key, &data, &iv);
        }

        #[test]
        fn signature_is_64_lowercase_hex(key in "\\PC{0,40}", msg in proptest::collection::vec(any::<u8>(), 0..64)) {
            let sig = session_signature(&key, &msg);
            prop_assert_eq!(sig.len(), 64);
            prop_assert!(sig.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
    }
}
