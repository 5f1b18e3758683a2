//! Secret values: the AppSecret, access tokens and session keys. None of them ever prints; `Debug` and
//! `Display` show `[redacted]`, so a stray `{:?}` in a log line cannot leak them.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The secret itself. Call it only where the value goes on the wire.
            pub fn expose(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                // Constant time is not needed here (these are compared with values we minted or cached),
                // but it costs nothing to avoid an early exit.
                let (a, b) = (self.expose().as_bytes(), other.expose().as_bytes());
                a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
            }
        }

        impl Eq for $name {}
    };
}

secret_type!(
    /// The mini program's AppSecret (小程序 AppSecret).
    AppSecret
);
secret_type!(
    /// An access token for WeChat's server API.
    AccessToken
);
secret_type!(
    /// The user's `session_key`: 16 bytes, base64 (24 characters). It decrypts legacy `encryptedData`.
    SessionKey
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = AppSecret::new("0123456789abcdef");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", SessionKey::new("k")), "[redacted]");
        assert_eq!(
            format!("{:?}", Some(AccessToken::new("t"))),
            "Some([redacted])"
        );
        assert_eq!(s.expose(), "0123456789abcdef");
        assert_eq!(AccessToken::new("a"), AccessToken::new("a"));
        assert_ne!(AccessToken::new("a"), AccessToken::new("ab"));
    }
}
