//! What every handler shares, and the steps the login flows have in common (sealing a phone, minting a session).

use super::error::ApiError;
use crate::client_ip::TrustedProxies;
use crate::config::PhoneBinding;
use crate::phone_crypto::{PhoneCipher, row_id};
use crate::ratelimit::{Limit, RateLimiter};
use crate::store::{NewSession, Store, UnixTime, UserRecord};
use crate::tokens::SessionToken;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a login ticket lives: as long as the phone code it waits for (WeChat: 5 minutes).
pub const TICKET_TTL: Duration = Duration::from_secs(300);

/// Shared by every handler.
pub struct AppState {
    pub wechat: weixin::Client,
    pub store: Arc<dyn Store>,
    pub cipher: PhoneCipher,
    pub binding: PhoneBinding,
    pub session_ttl: Duration,
    /// The shared access-token store, when the cluster has one (checked by /readyz).
    pub redis: Option<Arc<weixin::RedisTokenStore>>,
    /// In-flight API requests, and whether a shutdown is draining them.
    pub drain: Arc<super::drain::Drain>,
    /// How long an /api/v1/phone request holds its ticket at most: longer than any request may run, so only a
    /// crashed instance's reservation ever runs out.
    pub ticket_lease: Duration,
    /// The most one WeChat exchange may take: a login makes at most two in a row, within the request timeout.
    pub wechat_deadline: Duration,
    /// Phone codes WeChat may refuse for one ticket before the ticket is spent (`None`: no cap).
    pub phone_failures_per_ticket: Option<u32>,
    /// Limits per client IP, WeChat user and app (cluster-wide through Redis when configured).
    pub limiter: RateLimiter,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
}

pub fn unix_now() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A phone number ready for the store: sealed to its row, with its lookup hash.
pub struct SealedPhone {
    pub enc: Vec<u8>,
    pub hash: Vec<u8>,
}

/// A freshly minted session: the token for the client, the record for the store.
pub struct Minted {
    pub token: SessionToken,
    pub record: NewSession,
}

impl AppState {
    pub fn appid(&self) -> &str {
        self.wechat.appid().as_str()
    }

    /// Spends one request of `key`'s budget under `limit`, or answers 429 with the wait.
    pub async fn limit(&self, limit: Limit, key: &str) -> Result<(), ApiError> {
        self.limiter.check(limit, key).await.map_err(|retry| {
            tracing::debug!(limit = %limit, "rate limited");
            ApiError::RateLimited {
                retry_after_secs: retry.header_secs(),
            }
        })
    }

    /// The limits every login route passes before it may call WeChat: the client's address, then the app.
    pub async fn limit_login(&self, client: &super::client::ClientIp) -> Result<(), ApiError> {
        self.limit(Limit::Ip, &client.rate_key()).await?;
        self.limit(Limit::App, self.appid()).await
    }

    pub fn seal_phone(&self, openid: &str, phone: &weixin::PhoneNumber) -> SealedPhone {
        SealedPhone {
            enc: self
                .cipher
                .seal(&row_id(self.appid(), openid), &phone.phone_number),
            hash: self.cipher.lookup_hash(&phone.phone_number),
        }
    }

    pub fn open_phone(&self, user: &UserRecord) -> Result<String, ApiError> {
        Ok(self
            .cipher
            .open(&row_id(&user.appid, &user.openid), &user.phone_enc)?)
    }

    pub fn mint_session(&self) -> Minted {
        let token = SessionToken::generate();
        let now = unix_now();
        let record = NewSession {
            token_hash: token.hash(),
            expires_at: now + self.session_ttl.as_secs() as i64,
            now,
        };
        Minted { token, record }
    }

    /// The answer for a logged-in user (`status: "ok"`), shared by every route that logs in.
    pub fn session_answer(&self, phone: &str, openid: &str, token: &SessionToken) -> Value {
        json!({
            "status": "ok",
            "phone": phone,
            "openid": openid,
            "token": token.expose(),
            "expiresIn": self.session_ttl.as_secs(),
        })
    }
}

/// `{"code":0,"msg":"success","data":…}`.
pub fn success(data: Value) -> axum::Json<Value> {
    axum::Json(json!({ "code": 0, "msg": "success", "data": data }))
}
