//! Access tokens as JWTs in the profile of RFC 9068: `typ: at+jwt`, ES256, `kid`; claims `iss`, `sub` (the account),
//! `aud`, `exp`, `iat`, `jti`, `client_id` and `azp` (the app), `sid` (the session), and `openid`/`unionid` when the
//! operator asks for them. Signing and verifying are jsonwebtoken's (aws-lc-rs underneath); this module only says
//! which claims and which checks.

use super::keys::KeyRing;
use crate::store::UnixTime;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The `typ` of RFC 9068 §2.1 (a media type: `application/` may be written, and case does not matter).
pub(super) const TYP: &str = "at+jwt";
/// No honest access token comes near this: refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 4096;

/// What the operator configured about access tokens.
#[derive(Clone, Debug)]
pub struct TokenPolicy {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub access_ttl: Duration,
    /// Put the identity's `openid` (and `unionid`) in the token: a backend then needs no look-up for them.
    pub openid_claim: bool,
    pub unionid_claim: bool,
}

/// An access token's claims.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub azp: String,
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
}

/// `aud`: one string when there is one audience (what most libraries expect), else an array (RFC 7519 §4.1.3).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn of(audiences: &[String]) -> Self {
        match audiences {
            [one] => Self::One(one.clone()),
            many => Self::Many(many.to_vec()),
        }
    }
}

/// Who a token is for, as a login knows it.
pub struct Subject<'a> {
    pub account_id: &'a str,
    pub appid: &'a str,
    pub openid: &'a str,
    pub unionid: Option<&'a str>,
    /// The session's id as the `sid` claim.
    pub sid: String,
}

impl TokenPolicy {
    /// A signed access token for `subject`, valid from `now` for `access_ttl`.
    pub fn mint(
        &self,
        ring: &KeyRing,
        subject: Subject<'_>,
        now: UnixTime,
    ) -> Result<String, super::keys::SignError> {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: subject.account_id.to_owned(),
            aud: Audience::of(&self.audiences),
            exp: now + self.access_ttl.as_secs() as i64,
            iat: now,
            // 128 random bits from the thread's generator (a UUID would ask the kernel each time).
            jti: hex::encode(rand::random::<[u8; 16]>()),
            client_id: subject.appid.to_owned(),
            azp: subject.appid.to_owned(),
            sid: subject.sid,
            openid: self.openid_claim.then(|| subject.openid.to_owned()),
            unionid: subject
                .unionid
                .filter(|_| self.unionid_claim)
                .map(str::to_owned),
        };
        ring.signer.sign(&claims)
    }

    /// The claims of a token this service signed, for `iss` and one of `audiences`, unexpired at `now`.
    pub fn verify(
        &self,
        ring: &KeyRing,
        token: &str,
        now: UnixTime,
    ) -> Result<AccessClaims, Rejected> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Rejected::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejected::Malformed)?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            t == TYP || t == "application/at+jwt"
        });
        if header.alg != Algorithm::ES256 || !typ_ok {
            return Err(Rejected::Invalid);
        }
        let kid = header.kid.ok_or(Rejected::Invalid)?;
        let key = ring.verifier(&kid).ok_or(Rejected::UnknownKey(kid))?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry against the service's clock (tests move it), with no leeway: every instance shares one clock
        // source, and a token that has expired must not open anything.
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map_err(|_| Rejected::Invalid)?;
        if data.claims.exp <= now {
            return Err(Rejected::Expired);
        }
        Ok(data.claims)
    }
}

/// Why a token was refused (all of them are a 401 to the client; the kinds are for the log and for reloading keys).
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Not a JWT at all (bad base64, bad JSON, too long, an unknown `alg` such as `none`).
    Malformed,
    /// Signed by a key this instance does not know (yet: another instance may have rotated).
    UnknownKey(String),
    /// A bad signature, wrong `typ`/`alg`/`iss`/`aud`, missing claims.
    Invalid,
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;

    const NOW: UnixTime = 1_800_000_000;

    fn policy() -> TokenPolicy {
        TokenPolicy {
            issuer: "https://login.example.com".into(),
            audiences: vec!["wxlogin".into()],
            access_ttl: Duration::from_secs(900),
            openid_claim: true,
            unionid_claim: false,
        }
    }

    fn minted(ring: &KeyRing) -> String {
        let subject = Subject {
            account_id: "acc_0123456789abcdef01234567",
            appid: "wx0123456789abcdef",
            openid: "o-1",
            unionid: Some("u-1"),
            sid: "s".repeat(43),
        };
        policy().mint(ring, subject, NOW).unwrap()
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires_with_its_claims() {
        let ring = super::super::keys::test_ring();
        let token = minted(&ring);
        let claims = policy().verify(&ring, &token, NOW + 899).unwrap();
        assert_eq!(claims.sub, "acc_0123456789abcdef01234567");
        assert_eq!(claims.aud, Audience::One("wxlogin".into()));
        assert_eq!(
            (claims.azp.as_str(), claims.client_id.as_str()),
            ("wx0123456789abcdef", "wx0123456789abcdef")
        );
        assert_eq!(claims.openid.as_deref(), Some("o-1"));
        assert_eq!(claims.unionid, None, "not configured");
        assert_eq!(
            policy().verify(&ring, &token, NOW + 900),
            Err(Rejected::Expired)
        );
        let other = TokenPolicy {
            audiences: vec!["billing".into()],
            ..policy()
        };
        assert_eq!(other.verify(&ring, &token, NOW), Err(Rejected::Invalid));
        let elsewhere = TokenPolicy {
            issuer: "https://evil.example".into(),
            ..policy()
        };
        assert_eq!(elsewhere.verify(&ring, &token, NOW), Err(Rejected::Invalid));
        // Another ring does not know the kid.
        let stranger = super::super::keys::test_ring();
        assert!(matches!(
            policy().verify(&stranger, &token, NOW),
            Err(Rejected::UnknownKey(_))
        ));
    }

    #[test]
    fn none_and_hs256_and_a_wrong_typ_are_refused() {
        let ring = super::super::keys::test_ring();
        let token = minted(&ring);
        let mut parts = token.split('.');
        let (header, payload) = (parts.next().unwrap(), parts.next().unwrap());
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        let with = |changes: serde_json::Value, signature: &str| {
            let mut h = header.clone();
            for (k, v) in changes.as_object().unwrap() {
                h[k] = v.clone();
            }
            format!(
                "{}.{payload}.{signature}",
                URL_SAFE_NO_PAD.encode(h.to_string())
            )
        };
        let none = with(serde_json::json!({"alg": "none"}), "");
        assert_eq!(policy().verify(&ring, &none, NOW), Err(Rejected::Malformed));
        let hs = with(serde_json::json!({"alg": "HS256"}), "c2ln");
        assert_eq!(policy().verify(&ring, &hs, NOW), Err(Rejected::Invalid));
        let signature = token.rsplit('.').next().unwrap();
        let typ = with(serde_json::json!({"typ": "JWT"}), signature);
        assert_eq!(policy().verify(&ring, &typ, NOW), Err(Rejected::Invalid));
        let huge = with(
            serde_json::json!({"x": "a".repeat(MAX_TOKEN_LEN)}),
            signature,
        );
        assert_eq!(policy().verify(&ring, &huge, NOW), Err(Rejected::Malformed));
    }

    proptest! {
        #[test]
        fn any_text_is_refused_without_a_panic(text in "\\PC{0,300}") {
            let ring = super::super::keys::test_ring();
            prop_assert!(policy().verify(&ring, &text, NOW).is_err());
        }

        #[test]
        fn any_three_base64url_segments_are_refused(
            header in proptest::collection::vec(any::<u8>(), 0..200),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            signature in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let ring = super::super::keys::test_ring();
            let text = [header, payload, signature].map(|p| URL_SAFE_NO_PAD.encode(p)).join(".");
            prop_assert!(policy().verify(&ring, &text, NOW).is_err());
        }
    }
}
