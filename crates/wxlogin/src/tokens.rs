//! Session tokens and login tickets: 256 random bits, handed to the client once; only their SHA-256 is stored,
//! so a copy of the database opens no session.

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
            /// A fresh random value.
            pub fn generate() -> Self {
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                Self(format!("{}{}", $prefix, URL_SAFE_NO_PAD.encode(bytes)))
            }

            /// Accepts only the exact shape we mint; anything else (forged, truncated) is refused before any
            /// database look-up.
            pub fn parse(text: &str) -> Option<Self> {
                let body = text.strip_prefix($prefix)?;
                (body.len() == ENCODED_LEN && URL_SAFE_NO_PAD.decode(body).is_ok_and(|b| b.len() == 32))
                    .then(|| Self(text.to_owned()))
            }

            /// What the store keeps.
            pub fn hash(&self) -> [u8; 32] {
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
        assert_eq!(t.hash(), SessionToken::parse(t.expose()).unwrap().hash());
    }
}
