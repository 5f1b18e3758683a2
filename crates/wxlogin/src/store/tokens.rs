//! What the store keeps for the token side: a session's refresh token, its rotation, and the signing keys.

use super::UnixTime;

/// A session's current refresh token, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refresh {
    /// SHA-256 of the token's secret.
    pub secret_hash: [u8; 32],
    /// The absolute end (`refresh_absolute_ttl` after the login): no refresh extends the session past it.
    pub ends_at: UnixTime,
}

/// One use of a refresh token: the presented secret is replaced by the next one and the session's expiry slides
/// to `expires_at` (never past its absolute end), in one transaction with remembering the presented secret as
/// spent. Only a session of one of `apps` is rotated (a token belongs to its app: an instance leaves the sessions
/// of apps it does not serve untouched).
#[derive(Clone, Debug)]
pub struct Rotation {
    pub session: [u8; 32],
    pub presented: [u8; 32],
    pub next: [u8; 32],
    pub expires_at: UnixTime,
    pub now: UnixTime,
    pub apps: Vec<String>,
}

/// What [`super::Store::rotate_refresh`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotationOutcome {
    /// The session now answers to the next secret only; the session as the rotation left it, read in the same
    /// transaction (the access token is minted from it).
    Rotated(Box<super::SessionRecord>),
    /// The presented secret was rotated away before: the session was deleted (reuse detection, OAuth 2.0 Security
    /// BCP: a stolen refresh token and its rightful holder cannot both go on).
    Reused,
    /// No live session holds this secret and it was never this session's: nothing changed.
    Invalid,
}

/// An ES256 signing key. The highest generation signs; older ones are published until what they signed expired.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub generation: i64,
    pub kid: String,
    /// PKCS#8, sealed with the data key (bound to the kid).
    pub private_key_enc: Vec<u8>,
    /// The public key as a JWK (JSON).
    pub public_jwk: String,
    pub created_at: UnixTime,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("generation", &self.generation)
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}
