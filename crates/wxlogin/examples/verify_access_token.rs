//! How a team's Rust backend checks a wxlogin access token offline: discovery → JWKS → the key named by the token's
//! `kid` → ES256 signature, `typ: at+jwt`, `iss`, `aud`, `exp`. See docs/integration.md.
//!
//! ```sh
//! cargo run -p wxlogin --example verify_access_token -- http://127.0.0.1:8090 <token> [audience]
//! ```
//!
//! The first argument is wxlogin's issuer (its `--issuer`, e.g. `https://login.example.com`; in the sandbox
//! `http://` and the listen address); the audience defaults to `wxlogin` (its `--audiences`).
//!
//! Dependencies as in a team's Cargo.toml: `jsonwebtoken = { version = "11", features = ["aws_lc_rs"] }`,
//! `reqwest = { version = "0.13", features = ["json"] }`, `serde` (derive), `serde_json`, `tokio`.
//!
//! In a service, keep the `JwkSet` in memory and fetch it again (at most every few seconds) only when a token names
//! a `kid` it does not hold: that is how a key rotation reaches you with no restart. Fetching it per request, as this
//! one-shot program does, would put wxlogin on the path of every request.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::process::ExitCode;

/// The claims of a wxlogin access token (RFC 9068 profile).
#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    iss: String,
    /// The account: `acc_…`. Key your own data on this.
    sub: String,
    /// A string when wxlogin has one audience, an array when several.
    aud: serde_json::Value,
    exp: i64,
    iat: i64,
    jti: String,
    /// The session (the same for every access token of one login, across refreshes).
    sid: String,
    /// The WeChat appid of the mini program the user logged in through (`azp` is the same).
    client_id: String,
    azp: String,
    /// Only when wxlogin runs with `--token-claims openid` (and `unionid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unionid: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

type Error = Box<dyn std::error::Error>;

/// Checks `token` against the keys in `jwks`: ES256 signature by the key its `kid` names, `typ: at+jwt`, and the
/// `iss`, `aud`, `exp` and `sub` claims.
fn verify(jwks: &JwkSet, token: &str, issuer: &str, audience: &str) -> Result<AccessClaims, Error> {
    let header = jsonwebtoken::decode_header(token)?;
    // RFC 9068 §4: an access token says so in its header; this keeps any other JWT signed by the same keys out.
    let typ = header
        .typ
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if typ != "at+jwt" && typ != "application/at+jwt" {
        return Err(format!("not an access token: typ {:?}", header.typ).into());
    }
    let kid = header.kid.ok_or("the token has no kid")?;
    // Unknown kid: a key newer than this JwkSet (fetch it again) or a forged token.
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| format!("no key {kid} in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk)?;

    // Only ES256: a token that names another `alg` (`none`, HS256) is refused.
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // `exp` is checked with `validation.leeway` (60 s by default) for clock skew between hosts.
    let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)?;
    Ok(data.claims)
}

async fn fetch_keys(http: &reqwest::Client, issuer: &str) -> Result<JwkSet, Error> {
    let discovery: Discovery = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    // OpenID Connect Discovery §4.3: the document must be the issuer's own.
    if discovery.issuer != issuer {
        return Err(format!(
            "the discovery document names issuer {:?}, not {issuer:?}: pass wxlogin's --issuer exactly",
            discovery.issuer
        )
        .into());
    }
    let jwks: JwkSet = http
        .get(&discovery.jwks_uri)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(jwks)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (issuer, token, audience) = match args.as_slice() {
        [issuer, token] => (issuer, token, "wxlogin"),
        [issuer, token, audience] => (issuer, token, audience.as_str()),
        _ => {
            eprintln!("usage: verify_access_token ISSUER_URL ACCESS_TOKEN [AUDIENCE]");
            return ExitCode::from(2);
        }
    };
    let issuer = issuer.trim_end_matches('/');
    let http = reqwest::Client::new();
    let jwks = match fetch_keys(&http, issuer).await {
        Ok(jwks) => jwks,
        Err(err) => {
            eprintln!("could not fetch the keys: {err}");
            return ExitCode::from(2);
        }
    };
    match verify(&jwks, token, issuer, audience) {
        Ok(claims) => {
            let json =
                serde_json::to_string_pretty(&claims).unwrap_or_else(|_| format!("{claims:?}"));
            println!("valid access token\n{json}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("invalid access token: {err}");
            ExitCode::FAILURE
        }
    }
}
