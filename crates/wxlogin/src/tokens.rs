//! Refresh tokens, the opaque session tokens of earlier releases, and login tickets: handed to the client once;
//! only a hash of their secret is stored, so a copy of the database opens no session. (Access tokens are JWTs:
//! `crate::access`.)

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
            // Session tokens are minted only by tests now.
            #[cfg_attr(not(test), allow(dead_code))]
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
bearer_type!(
    /// A scan login's poll token: the web page that created the login, and nobody else, learns its outcome.
    PollToken, "wxq_"
);

/// Bytes of a session token that carry its minting time (milliseconds, big-endian).
const TIME_BYTES: usize = 6;

/// Opaque session tokens are no longer minted (a login answers an access token and a refresh token); those of
/// earlier releases are looked up until they expire. The release at 68eac3b minted them time first (6 bytes of
/// milliseconds, then 208 random bits) and stored them under [`SessionToken::key`]; earlier ones under their plain
/// SHA-256 ([`SessionToken::legacy_key`]). Minting stays for tests of both.
impl SessionToken {
    #[cfg(test)]
    pub fn generate() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self::minted_at(millis)
    }

    #[cfg(test)]
    fn minted_at(millis: u64) -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes[TIME_BYTES..]);
        bytes[..TIME_BYTES].copy_from_slice(&millis.to_be_bytes()[8 - TIME_BYTES..]);
        Self::from_bytes(bytes)
    }

    /// What a session is stored under: the token's time bytes, then 208 bits of its SHA-256 (a stored key gives
    /// no token back; the time is no secret).
    #[cfg(test)]
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

    /// What releases before 68eac3b stored a session under: the token's SHA-256. Their sessions stay valid until
    /// they expire.
    pub fn legacy_key(&self) -> [u8; 32] {
        self.sha256()
    }
}

/// What `Authorization: Bearer` carries: an access token (a JWT; checked by `crate::access`), or an opaque session
/// token of an earlier release (valid until it expires).
#[derive(Clone, Debug)]
pub enum Bearer {
    Access(String),
    Opaque(SessionToken),
}

impl Bearer {
    /// Only the shapes we mint: `wxs_…`, or three base64url segments within the JWT size limit. The JWT's content is
    /// checked by its verification.
    pub fn parse(text: &str) -> Option<Self> {
        if text.starts_with("wxs_") {
            return SessionToken::parse(text).map(Self::Opaque);
        }
        let segments = text.split('.').count();
        let charset = text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        (segments == 3 && charset && text.len() <= crate::access::jwt::MAX_TOKEN_LEN)
            .then(|| Self::Access(text.to_owned()))
    }
}

/// A session's id: its minting time in milliseconds, then 208 random bits. It is the session's key in the store
/// (time first: a login appends to the sessions index instead of changing a page at a random place) and the `sid`
/// claim of its access tokens. Not a secret: it opens nothing without the refresh token's secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub [u8; 32]);

impl SessionId {
    pub fn generate() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes[TIME_BYTES..]);
        bytes[..TIME_BYTES].copy_from_slice(&millis.to_be_bytes()[8 - TIME_BYTES..]);
        Self(bytes)
    }

    /// The `sid` claim: 43 base64url characters.
    pub fn to_claim(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn from_claim(text: &str) -> Option<Self> {
        if text.len() != ENCODED_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The keys to look the session up by (a session of this release has one).
    pub fn lookup(&self) -> crate::store::SessionKeys {
        crate::store::SessionKeys {
            key: self.0,
            legacy: self.0,
        }
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionId({})", self.to_claim())
    }
}

/// A refresh token: `wxr_`, then base64url of the session id and 256 random bits (the secret). The id finds the
/// session by its primary key; the store keeps only the secret's SHA-256, compared in constant time. Each use
/// rotates the secret ([`crate::logins`]: refresh).
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    text: String,
    session: SessionId,
    secret: [u8; 32],
}

const REFRESH_PREFIX: &str = "wxr_";
/// 64 bytes in unpadded base64url.
const REFRESH_ENCODED_LEN: usize = 86;

impl RefreshToken {
    /// The first refresh token of a new session.
    pub fn generate() -> Self {
        Self::next(SessionId::generate())
    }

    /// A fresh secret for `session` (a rotation).
    pub fn next(session: SessionId) -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&session.0);
        bytes[32..].copy_from_slice(&secret);
        Self {
            text: format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)),
            session,
            secret,
        }
    }

    /// Accepts only the exact shape we mint.
    pub fn parse(text: &str) -> Option<Self> {
        let body = text.strip_prefix(REFRESH_PREFIX)?;
        if body.len() != REFRESH_ENCODED_LEN {
            return None;
        }
        let bytes: [u8; 64] = URL_SAFE_NO_PAD.decode(body).ok()?.try_into().ok()?;
        let (session, secret) = bytes.split_at(32);
        Some(Self {
            text: text.to_owned(),
            session: SessionId(session.try_into().ok()?),
            secret: secret.try_into().ok()?,
        })
    }

    pub fn session(&self) -> SessionId {
        self.session
    }

    /// What the store keeps: the secret's SHA-256.
    pub fn secret_hash(&self) -> [u8; 32] {
        Sha256::digest(self.secret).into()
    }

    /// The value for the client; nowhere else.
    pub fn expose(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RefreshToken({:?}, [redacted])", self.session)
    }
}

/// Minted from 256 random bits; stored as their SHA-256.
macro_rules! secret_type {
    ($name:ident) => {
        impl $name {
            pub fn generate() -> Self {
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                Self::from_bytes(bytes)
            }

            /// What the store keeps: the SHA-256 of the whole token.
            pub fn hash(&self) -> [u8; 32] {
                self.sha256()
            }
        }
    };
}

secret_type!(Ticket);
secret_type!(PollToken);

/// A scan login's id: 128 random bits in unpadded base64url, 22 characters that WeChat takes as a mini program
/// code's `scene` as they are (at most 32 characters of `[0-9A-Za-z!#$&'()*+,/:;=?@._~-]`). Public: it is on the
/// web page's screen; the poll token is the secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QrId(String);

impl QrId {
    const LEN: usize = 22;

    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()))
    }

    /// Only the exact shape we mint.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == Self::LEN && URL_SAFE_NO_PAD.decode(text).is_ok_and(|b| b.len() == 16))
            .then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scan_login_ids_are_valid_scenes_and_parse_only_their_shape() {
        for _ in 0..64 {
            let id = QrId::generate();
            assert!(weixin::Scene::parse(id.as_str()).is_ok(), "{id:?}");
            assert_eq!(QrId::parse(id.as_str()), Some(id.clone()));
        }
        for bad in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAA+/",
        ] {
            assert_eq!(QrId::parse(bad), None, "{bad:?}");
        }
        let token = PollToken::generate();
        assert_eq!(PollToken::parse(token.expose()), Some(token.clone()));
        assert!(!format!("{token:?}").contains(&token.expose()[4..]));
    }

    #[test]
    fn refresh_tokens_carry_their_session_and_hide_their_secret() {
        let first = RefreshToken::generate();
        let parsed = RefreshToken::parse(first.expose()).unwrap();
        assert_eq!(parsed, first);
        assert_eq!(first.expose().len(), 4 + 86);
        let next = RefreshToken::next(first.session());
        assert_eq!(next.session(), first.session());
        assert_ne!(next.secret_hash(), first.secret_hash());
        assert!(!format!("{first:?}").contains(&first.expose()[40..]));
        let sid = first.session();
        assert_eq!(SessionId::from_claim(&sid.to_claim()), Some(sid));
        assert_eq!(RefreshToken::parse(&first.expose()[..80]), None);
        assert_eq!(
            RefreshToken::parse(&first.expose().replace("wxr_", "wxs_")),
            None
        );
    }

    proptest! {
        #[test]
        fn token_parsers_never_panic(text in "\\PC{0,200}") {
            let _ = Bearer::parse(&text);
            let _ = RefreshToken::parse(&text);
            let _ = SessionToken::parse(&text);
            let _ = Ticket::parse(&text);
            let _ = SessionId::from_claim(&text);
        }

        #[test]
        fn refresh_parser_takes_any_prefixed_86_chars_only_if_base64url(body in "[A-Za-z0-9_\\-]{86}") {
            let text = format!("wxr_{body}");
            // 86 base64url characters decode to 64 bytes unless the last one carries stray bits.
            if let Some(token) = RefreshToken::parse(&text) {
                prop_assert_eq!(token.expose(), text.as_str());
            }
        }
    }

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
