//! Session tokens and login tickets, handed to the client once; only a hash is stored, so a copy of the database
//! opens no session.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 32 bytes in unpadded base64url.
const ENCODED_LEN: usize = 43;

macro_rules! bearer_type {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(format!("{}{}", $prefix, URL_SAFE_NO_PAD.encode(bytes)))
            }

            /// Accepts only the exact shape we mint; anything else (forged, truncated) is refused before any
            /// database look-up.
            pub fn parse(text: &str) -> Option<Self> {
                let body = text.strip_prefix($prefix)?;
                (body.len() == ENCODED_LEN && URL_SAFE_NO_PAD.decode(body).is_ok_and(|b| b.len() == 32))
                    .then(|| Self(text.to_owned()))
            }

            fn sha256(&self) -> [u8; 32] {
                Sha256::digest(self.0.as_bytes()).into()
            }

            /// The value for the client; nowhere else.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

bearer_type!(
    /// A session token (`Authorization: Bearer …`).
    SessionToken, "wxs_"
);
bearer_type!(
    /// A login ticket: proves a silent login saw this openid, for one `/api/v1/phone` within 5 minutes.
    Ticket, "wxt_"
);

/// Bytes of a session token that carry its minting time (milliseconds, big-endian).
const TIME_BYTES: usize = 6;

impl SessionToken {
    /// The minting time in milliseconds, then 208 random bits. The time comes first so that the keys of new
    /// sessions follow each other in the sessions index: a login appends there instead of changing a page at a
    /// random place (one page fewer written per login, bench/results).
    pub fn generate() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self::minted_at(millis)
    }

    fn minted_at(millis: u64) -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes[TIME_BYTES..]);
        bytes[..TIME_BYTES].copy_from_slice(&millis.to_be_bytes()[8 - TIME_BYTES..]);
        Self::from_bytes(bytes)
    }

    /// What a session is stored under: the token's time bytes, then 208 bits of its SHA-256 (a stored key gives
    /// no token back; the time is no secret).
    pub fn key(&self) -> [u8; 32] {
        self.key_from(&self.sha256())
    }

    /// The key, from the token's SHA-256 (computed once for [`Self::lookup`]).
    fn key_from(&self, digest: &[u8; 32]) -> [u8; 32] {
        let mut key = [0u8; 32];
        // Six bytes are exactly eight base64url characters.
        let time = self.0.strip_prefix("wxs_").and_then(|body| body.get(..8));
        if let Some(Ok(time)) = time.map(|t| URL_SAFE_NO_PAD.decode(t)) {
            key[..TIME_BYTES].copy_from_slice(&time);
        }
        key[TIME_BYTES..].copy_from_slice(&digest[..32 - TIME_BYTES]);
        key
    }

    /// Both keys a presented token may be stored under.
    pub fn lookup(&self) -> crate::store::SessionKeys {
        let legacy = self.legacy_key();
        crate::store::SessionKeys {
            key: self.key_from(&legacy),
            legacy,
        }
    }

    /// What releases up to c7092cb stored a session under: the token's SHA-256. Their sessions stay valid until
    /// they expire.
    pub fn legacy_key(&self) -> [u8; 32] {
        self.sha256()
    }
}

impl Ticket {
    /// 256 random bits.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// What the store keeps: the ticket's SHA-256.
    pub fn hash(&self) -> [u8; 32] {
        self.sha256()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_minted_shapes_parse() {
        let t = SessionToken::generate();
        assert_eq!(SessionToken::parse(t.expose()), Some(t.clone()));
        assert_eq!(SessionToken::parse(&t.expose()[..40]), None);
        assert_eq!(
            SessionToken::parse(&t.expose().replace("wxs_", "wxt_")),
            None
        );
        assert_eq!(Ticket::parse(t.expose()), None);
        assert_eq!(SessionToken::parse("wxs_forged"), None);
        assert_ne!(SessionToken::generate(), t);
        assert_eq!(format!("{t:?}"), "SessionToken([redacted])");
        assert_eq!(t.key(), SessionToken::parse(t.expose()).unwrap().key());
    }

    #[test]
    fn session_keys_follow_minting_order_and_hide_the_token() {
        let millis = 1_795_000_000_000;
        let first = SessionToken::minted_at(millis);
        for later in [millis + 1, millis + 1000, millis + 86_400_000] {
            assert!(first.key() < SessionToken::minted_at(later).key());
        }
        assert!(SessionToken::parse(first.expose()).is_some());
        assert_ne!(first.key(), first.legacy_key());
        // The key holds 26 bytes of the SHA-256, not the token's random bytes.
        let digest: [u8; 32] = Sha256::digest(first.expose().as_bytes()).into();
        assert_eq!(first.key()[6..], digest[..26]);
        assert_eq!(first.legacy_key(), digest);
        let lookup = first.lookup();
        assert_eq!(
            (lookup.key, lookup.legacy),
            (first.key(), first.legacy_key())
        );
    }
}
