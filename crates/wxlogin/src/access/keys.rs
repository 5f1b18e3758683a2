//! The ES256 signing keys, shared by every instance through the database (encrypted with the data key), and the
//! key ring each instance signs and verifies with.
//!
//! Generations: the first start stores generation 1; `wxlogin keys rotate` stores the next. The highest
//! generation signs. An older key stops signing when the next one is stored, but tokens it signed live on for up
//! to `access_token_ttl`, and an instance that has not reloaded yet may sign with it for up to [`RELOAD_EVERY`]
//! more: so it stays published (JWKS) and accepted for that long, then it is dropped.

use crate::phone_crypto::PhoneCipher;
use crate::store::{SigningKeyRecord, Store, StoreError, UnixTime};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How often an instance reads the keys again (a rotation by another process reaches it within this), besides
/// reading them at once when a token names a key it does not know.
pub const RELOAD_EVERY: Duration = Duration::from_secs(10);
/// An unknown `kid` makes an instance read the keys at most this often (a flood of forged kids costs one read).
const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "signing key {0} does not decrypt: the database was written with another data key, or the row was altered"
    )]
    Decrypt(String),
    #[error("signing key {0} is unreadable: {1}")]
    Corrupt(String, String),
    #[error("no signing key could be stored")]
    Exhausted,
}

/// The keys in force at one moment: the one that signs, and every published one by kid.
pub struct KeyRing {
    pub signer: Signer,
    verifiers: HashMap<String, DecodingKey>,
    /// `/.well-known/jwks.json`, rendered once per load.
    pub jwks: Arc<str>,
}

/// The key that signs, parsed once. jsonwebtoken's `encode` parses the PKCS#8 key again for every token (and
/// derives its public point, a scalar multiplication): that doubled the cost of signing on every login (profiled,
/// bench/results/2026-11-28-tokens.md). So tokens are signed here with the parsed key pair, by aws-lc-rs; the JWS
/// around the signature is RFC 7515's compact form, and jsonwebtoken verifies it (tests: jose and PyJWT too).
pub struct Signer {
    pub kid: String,
    key_pair: EcdsaKeyPair,
    /// `base64url(header)`: the same for every token this key signs.
    header: String,
}

impl Signer {
    fn new(kid: &str, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|e| KeyError::Corrupt(kid.to_owned(), e.to_string()))?;
        let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
        header.typ = Some(super::jwt::TYP.to_owned());
        header.kid = Some(kid.to_owned());
        let json = serde_json::to_vec(&header)
            .map_err(|e| KeyError::Corrupt(kid.to_owned(), e.to_string()))?;
        Ok(Self {
            kid: kid.to_owned(),
            key_pair,
            header: URL_SAFE_NO_PAD.encode(json),
        })
    }

    /// `header.payload.signature` (RFC 7515 §7.1) of `claims`. ES256's signature is `r || s`, 32 bytes each (RFC 7518
    /// §3.4): aws-lc-rs's FIXED format.
    pub fn sign(&self, claims: &impl serde::Serialize) -> Result<String, SignError> {
        let payload = serde_json::to_vec(claims).map_err(|_| SignError)?;
        let mut token = String::with_capacity(self.header.len() + payload.len() * 4 / 3 + 100);
        token.push_str(&self.header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = self
            .key_pair
            .sign(&SystemRandom::new(), token.as_bytes())
            .map_err(|_| SignError)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        Ok(token)
    }
}

/// Signing failed (the key pair refused, or the claims did not serialize): a bug, never the client's doing.
#[derive(Debug, thiserror::Error)]
#[error("signing an access token failed")]
pub struct SignError;

impl KeyRing {
    pub fn verifier(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifiers.get(kid)
    }
}

/// The key ring of this instance, reloaded from the store.
pub struct SigningKeys {
    store: Arc<dyn Store>,
    cipher: PhoneCipher,
    /// How long a retired key stays published: `access_token_ttl` + [`RELOAD_EVERY`].
    grace: Duration,
    ring: RwLock<Arc<KeyRing>>,
    last_unknown_reload: tokio::sync::Mutex<Option<Instant>>,
}

impl SigningKeys {
    /// Loads the keys, storing the first one if there is none (the first instance to start wins).
    pub async fn open(
        store: Arc<dyn Store>,
        cipher: PhoneCipher,
        access_ttl: Duration,
        now: UnixTime,
    ) -> Result<Self, KeyError> {
        if store.signing_keys().await?.is_empty() {
            // Generation 1 is unique: of instances starting at once, one stores it and the others read it.
            store.add_signing_key(new_key(&cipher, 1, now)?).await?;
        }
        let grace = access_ttl + RELOAD_EVERY;
        let ring = load(store.as_ref(), &cipher, grace, now).await?;
        Ok(Self {
            store,
            cipher,
            grace,
            ring: RwLock::new(Arc::new(ring)),
            last_unknown_reload: tokio::sync::Mutex::new(None),
        })
    }

    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the keys again.
    pub async fn reload(&self, now: UnixTime) -> Result<(), KeyError> {
        let ring = load(self.store.as_ref(), &self.cipher, self.grace, now).await?;
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ring);
        Ok(())
    }

    /// A token named `kid`, which this instance does not know: another instance may have rotated. Reads the keys
    /// again, at most once per second whatever the traffic; true if `kid` is known now.
    pub async fn reload_for(&self, kid: &str, now: UnixTime) -> bool {
        let mut last = self.last_unknown_reload.lock().await;
        if self.ring().verifier(kid).is_some() {
            return true;
        }
        if last.is_some_and(|at| at.elapsed() < UNKNOWN_KID_RELOAD) {
            return false;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.reload(now).await {
            tracing::warn!(error = %e, "reading the signing keys failed");
        }
        self.ring().verifier(kid).is_some()
    }

    /// Reloads every [`RELOAD_EVERY`] for as long as the runtime runs.
    pub fn spawn_reloader(self: &Arc<Self>, clock: Arc<dyn crate::logins::clock::Clock>) {
        let keys = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(keys) = keys.upgrade() else { return };
                if let Err(e) = keys.reload(clock.now()).await {
                    tracing::warn!(error = %e, "reading the signing keys failed; signing with the ones read before");
                }
            }
        });
    }
}

/// `wxlogin keys rotate`: stores the next generation, which every instance signs with from its next reload.
pub async fn rotate(
    store: &dyn Store,
    cipher: &PhoneCipher,
    now: UnixTime,
) -> Result<SigningKeyRecord, KeyError> {
    // Two rotations at once: one gets the generation, the other tries the next.
    for _ in 0..5 {
        let next = store
            .signing_keys()
            .await?
            .last()
            .map_or(1, |k| k.generation + 1);
        let key = new_key(cipher, next, now)?;
        if store.add_signing_key(key.clone()).await? {
            return Ok(key);
        }
    }
    Err(KeyError::Exhausted)
}

/// A new P-256 key: the private key sealed, the public one as a JWK whose kid is its RFC 7638 thumbprint.
fn new_key(
    cipher: &PhoneCipher,
    generation: i64,
    now: UnixTime,
) -> Result<SigningKeyRecord, KeyError> {
    let corrupt = |e: &dyn std::fmt::Display| KeyError::Corrupt("new".into(), e.to_string());
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|e| corrupt(&e))?;
    let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).map_err(|e| corrupt(&e))?;
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| corrupt(&e))?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
    Ok(SigningKeyRecord {
        generation,
        private_key_enc: cipher.seal_bytes(&aad(&kid), pkcs8.as_ref()),
        public_jwk: serde_json::to_string(&jwk).map_err(|e| corrupt(&e))?,
        kid,
        created_at: now,
    })
}

/// What a sealed private key is bound to: a blob moved to another kid's row does not open.
fn aad(kid: &str) -> Vec<u8> {
    format!("signing-key\0{kid}").into_bytes()
}

/// The keys published at `now`: the newest, and each older one until `grace` after its successor was stored.
pub fn published(
    keys: &[SigningKeyRecord],
    grace: Duration,
    now: UnixTime,
) -> Vec<&SigningKeyRecord> {
    keys.iter()
        .enumerate()
        .filter(|(i, _)| match keys.get(i + 1) {
            None => true,
            Some(next) => next.created_at + grace.as_secs() as i64 > now,
        })
        .map(|(_, k)| k)
        .collect()
}

async fn load(
    store: &dyn Store,
    cipher: &PhoneCipher,
    grace: Duration,
    now: UnixTime,
) -> Result<KeyRing, KeyError> {
    ring_from(&store.signing_keys().await?, cipher, grace, now)
}

/// The ring of `keys` at `now`.
fn ring_from(
    keys: &[SigningKeyRecord],
    cipher: &PhoneCipher,
    grace: Duration,
    now: UnixTime,
) -> Result<KeyRing, KeyError> {
    let newest = keys.last().ok_or(KeyError::Exhausted)?;
    let pkcs8 = cipher
        .open_bytes(&aad(&newest.kid), &newest.private_key_enc)
        .map_err(|_| KeyError::Decrypt(newest.kid.clone()))?;
    let signer = Signer::new(&newest.kid, &pkcs8)?;
    let mut verifiers = HashMap::new();
    let mut set = JwkSet { keys: Vec::new() };
    for key in published(keys, grace, now) {
        let corrupt = |e: &dyn std::fmt::Display| KeyError::Corrupt(key.kid.clone(), e.to_string());
        let jwk: Jwk = serde_json::from_str(&key.public_jwk).map_err(|e| corrupt(&e))?;
        verifiers.insert(
            key.kid.clone(),
            DecodingKey::from_jwk(&jwk).map_err(|e| corrupt(&e))?,
        );
        set.keys.push(jwk);
    }
    // Newest first: a client that takes the first key gets the one that signs.
    set.keys.reverse();
    let jwks =
        serde_json::to_string(&set).map_err(|e| KeyError::Corrupt("jwks".into(), e.to_string()))?;
    Ok(KeyRing {
        signer,
        verifiers,
        jwks: Arc::from(jwks),
    })
}

/// A ring of one new key, for tests of what signs and verifies.
#[cfg(test)]
pub(crate) fn test_ring() -> KeyRing {
    let cipher = test_cipher();
    let key = new_key(&cipher, 1, 0).expect("a new key");
    ring_from(&[key], &cipher, Duration::ZERO, 0).expect("a ring")
}

#[cfg(test)]
fn test_cipher() -> PhoneCipher {
    PhoneCipher::from_base64(&base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        [7u8; 32],
    ))
    .expect("a 32-byte key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(generation: i64, created_at: UnixTime) -> SigningKeyRecord {
        SigningKeyRecord {
            generation,
            kid: format!("k{generation}"),
            private_key_enc: Vec::new(),
            public_jwk: String::new(),
            created_at,
        }
    }

    #[test]
    fn a_retired_key_is_published_for_the_grace_after_its_successor() {
        let keys = [record(1, 0), record(2, 1000), record(3, 5000)];
        let kids = |now| -> Vec<i64> {
            published(&keys, Duration::from_secs(910), now)
                .iter()
                .map(|k| k.generation)
                .collect()
        };
        assert_eq!(kids(1000), [1, 2, 3]);
        assert_eq!(kids(1909), [1, 2, 3]);
        assert_eq!(kids(1910), [2, 3]);
        assert_eq!(kids(5909), [2, 3]);
        assert_eq!(kids(5910), [3]);
    }

    #[test]
    fn a_new_key_is_sealed_to_its_kid_and_published_as_an_es256_jwk() {
        let cipher = test_cipher();
        let key = new_key(&cipher, 1, 0).unwrap();
        let jwk: serde_json::Value = serde_json::from_str(&key.public_jwk).unwrap();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], key.kid.as_str());
        assert!(jwk.get("d").is_none(), "no private part is published");
        assert!(
            cipher
                .open_bytes(&aad(&key.kid), &key.private_key_enc)
                .is_ok()
        );
        assert!(
            cipher
                .open_bytes(&aad("another"), &key.private_key_enc)
                .is_err()
        );
    }
}
