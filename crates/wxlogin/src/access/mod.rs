//! Access tokens other services verify with their own JOSE library: minted at every login and refresh, checked
//! on every route that takes `Authorization: Bearer`. A token's signature says who it was minted for; whether its
//! session is still live (logout, revocation, reuse of a refresh token) is the store's to say: see
//! `crate::logins::bearer`.

pub mod jwt;
pub mod keys;

use jwt::{AccessClaims, Rejected, Subject, TokenPolicy};
use keys::SigningKeys;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Signing and verifying, with the key ring of this instance.
pub struct Access {
    pub keys: Arc<SigningKeys>,
    pub policy: TokenPolicy,
    /// Tokens whose signature and claims were checked, until they expire: a backend behind forward auth sends
    /// the same token with every request, and an ES256 verification is most of the cost of answering it.
    /// Keyed by the SHA-256 of the whole token (a signature alone could be paired with another payload), so no
    /// token is kept in memory.
    verified: moka::sync::Cache<[u8; 32], Arc<AccessClaims>>,
}

/// Tokens remembered as verified, at most (each ~400 bytes: ~20 MiB when full).
const VERIFIED_CAPACITY: u64 = 50_000;

impl Access {
    pub fn new(keys: Arc<SigningKeys>, policy: TokenPolicy) -> Self {
        let verified = moka::sync::Cache::builder()
            .max_capacity(VERIFIED_CAPACITY)
            .time_to_live(policy.access_ttl)
            .build();
        Self {
            keys,
            policy,
            verified,
        }
    }

    /// A new access token.
    pub fn mint(
        &self,
        subject: Subject<'_>,
        now: crate::store::UnixTime,
    ) -> Result<String, keys::SignError> {
        self.policy.mint(&self.keys.ring(), subject, now)
    }

    /// The claims of a valid, unexpired token of ours. A token signed by a key this instance has not read yet
    /// (another instance rotated) makes it read the keys again, at most once a second.
    pub async fn verify(
        &self,
        token: &str,
        now: crate::store::UnixTime,
    ) -> Result<Arc<AccessClaims>, Rejected> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest) {
            if claims.exp > now {
                return Ok(claims);
            }
            return Err(Rejected::Expired);
        }
        let claims = match self.policy.verify(&self.keys.ring(), token, now) {
            Err(Rejected::UnknownKey(kid)) if self.keys.reload_for(&kid, now).await => {
                self.policy.verify(&self.keys.ring(), token, now)?
            }
            other => other?,
        };
        let claims = Arc::new(claims);
        self.verified.insert(digest, claims.clone());
        Ok(claims)
    }
}
