//! The client: configuration, the access token, and the calls of the login flow. The HTTP exchange they share is
//! in [`call`].

mod call;

pub(crate) use call::{api_status, transport};

use crate::crypto;
use crate::error::{Error, Result};
use crate::observe::{CallObserver, Observer};
use crate::retry::{CallKind, RetryPolicy};
use crate::secret::{AccessToken, AppSecret, SessionKey};
use crate::token::{CachedToken, MemoryTokenStore, TokenStore};
use crate::types::{
    AppId, LoginCode, OpenId, PhoneCode, PhoneInfo, PhoneNumber, UnionId, Watermark,
};
use crate::wire;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// WeChat's production API host.
pub const DEFAULT_BASE_URL: &str = "https://api.weixin.qq.com";

/// How to reach WeChat as one mini program.
#[derive(Debug, Clone)]
pub struct Config {
    /// The mini program's AppID.
    pub appid: AppId,
    /// Its AppSecret.
    pub secret: AppSecret,
    /// Base URL without a trailing slash: WeChat's by default, the simulator's in tests and sandbox mode.
    pub base_url: String,
    /// Time allowed to open a connection (default 2 s).
    pub connect_timeout: Duration,
    /// Time allowed for a whole exchange (default 5 s).
    pub request_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// How long before WeChat's expiry a token is refreshed (default 120 s). Kept under 300 s on purpose:
    /// stable_token renews its token only in the last 5 minutes, so a margin of 300 s or more would fetch the
    /// same token again and again.
    pub refresh_margin: Duration,
    /// Lease of the refresh lock (default 10 s): how long a crashed refresher can hold up others.
    pub lock_lease: Duration,
    /// How often a caller checks for a token another instance is fetching (default 25 ms).
    pub lock_poll: Duration,
    /// Told about every HTTP attempt (default none): how a service counts calls by API and errcode.
    pub observer: Option<Observer>,
}

impl Config {
    /// A configuration with the defaults above.
    pub fn new(appid: AppId, secret: AppSecret) -> Self {
        Self {
            appid,
            secret,
            base_url: DEFAULT_BASE_URL.to_owned(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            refresh_margin: Duration::from_secs(120),
            lock_lease: Duration::from_secs(10),
            lock_poll: Duration::from_millis(25),
            observer: None,
        }
    }

    /// Reports every HTTP attempt (retries and token fetches included) to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(Observer(observer));
        self
    }

    /// Points the client at another host (the simulator).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into().trim_end_matches('/').to_owned();
        self
    }
}

/// What `code_to_session` gives: who the user is, and the secret session_key.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user's openid in this app.
    pub openid: OpenId,
    /// The unionid, when the app is bound to an Open Platform account.
    pub unionid: Option<UnionId>,
    /// The session_key (never prints).
    pub session_key: SessionKey,
}

/// A typed async client for WeChat's Mini Program server API. Cheap to clone; share one per app.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    http: reqwest::Client,
    store: Arc<dyn TokenStore>,
    /// Funnels this process's refreshes into one, so N concurrent callers cost one lock attempt and one fetch.
    refresh_gate: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("appid", &self.inner.config.appid)
            .field("base_url", &self.inner.config.base_url)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Client {
    /// A client with the in-process token store.
    pub fn new(config: Config) -> Result<Self> {
        Self::with_token_store(config, Arc::new(MemoryTokenStore::new()))
    }

    /// A client whose access token lives in `store` (e.g. shared by a cluster).
    pub fn with_token_store(config: Config, store: Arc<dyn TokenStore>) -> Result<Self> {
        if !config.base_url.starts_with("http://") && !config.base_url.starts_with("https://") {
            return Err(Error::Config(format!(
                "base URL must start with http:// or https://: {}",
                config.base_url
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // Below the 60 s keep-alive idle timeout servers commonly use (wxlogin's own, which the sandbox calls):
            // the pool drops a connection before the server does, never racing its close with a request.
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::Config(e.without_url().to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                store,
                refresh_gate: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The AppID this client acts for.
    pub fn appid(&self) -> &AppId {
        &self.inner.config.appid
    }

    /// The base URL in use.
    pub fn base_url(&self) -> &str {
        &self.inner.config.base_url
    }

    /// The HTTP client (its timeouts come from the config).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// `jscode2session`: trades a `wx.login` code for the user's openid, unionid and session_key.
    pub async fn code_to_session(&self, code: &LoginCode) -> Result<Session> {
        let c = &self.inner.config;
        let url = format!("{}/sns/jscode2session", c.base_url);
        let answer: wire::SessionAnswer = self
            .call("jscode2session", CallKind::RedeemsLoginCode, || {
                self.inner.http.get(&url).query(&[
                    ("appid", c.appid.as_str()),
                    ("secret", c.secret.expose()),
                    ("js_code", code.as_str()),
                    ("grant_type", "authorization_code"),
                ])
            })
            .await?;
        let bad = |field: &str| Error::Decode {
            api: "jscode2session",
            detail: format!("{field} is not a valid id"),
        };
        Ok(Session {
            openid: OpenId::parse(answer.openid).map_err(|_| bad("openid"))?,
            unionid: match answer.unionid {
                Some(u) if !u.is_empty() => Some(UnionId::parse(u).map_err(|_| bad("unionid"))?),
                _ => None,
            },
            session_key: SessionKey::new(answer.session_key),
        })
    }

    /// `getuserphonenumber`: trades a phone code for the verified phone number. With `openid`, WeChat checks that
    /// the code belongs to that user. The watermark must name our app, or the answer is refused.
    pub async fn get_phone_number(
        &self,
        code: &PhoneCode,
        openid: Option<&OpenId>,
    ) -> Result<PhoneInfo> {
        let url = format!(
            "{}/wxa/business/getuserphonenumber",
            self.inner.config.base_url
        );
        let body = wire::PhoneRequest {
            code: code.as_str(),
            openid: openid.map(OpenId::as_str),
        };
        let answer: wire::PhoneAnswer = self
            .with_token(|token| {
                let (url, body) = (&url, &body);
                async move {
                    self.call("getuserphonenumber", CallKind::RedeemsPhoneCode, || {
                        self.inner
                            .http
                            .post(url)
                            .query(&[("access_token", token.expose())])
                            .json(body)
                    })
                    .await
                }
            })
            .await?;
        self.checked_phone(answer.phone_info)
    }

    /// `checksession`: whether `session_key` is still the user's current one. `Ok(false)` when WeChat answers
    /// 87009 (signature mismatch: the key rotated or is wrong).
    pub async fn check_session_key(
        &self,
        openid: &OpenId,
        session_key: &SessionKey,
    ) -> Result<bool> {
        let url = format!("{}/wxa/checksession", self.inner.config.base_url);
        let signature = crypto::session_signature(session_key.expose(), b"");
        let result: Result<wire::Status> = self
            .with_token(|token| {
                let (url, signature) = (&url, &signature);
                async move {
                    self.call("checksession", CallKind::Idempotent, || {
                        self.inner.http.get(url).query(&[
                            ("access_token", token.expose()),
                            ("openid", openid.as_str()),
                            ("signature", signature.as_str()),
                            ("sig_method", "hmac_sha256"),
                        ])
                    })
                    .await
                }
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(Error::Api {
                errcode: crate::Errcode::InvalidSignature,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Legacy: decrypts `encryptedData` (AES-128-CBC, PKCS#7, base64) with the session_key and iv and checks
    /// its watermark. Returns the JSON WeChat encrypted.
    pub fn decrypt_data(
        &self,
        session_key: &SessionKey,
        encrypted_data: &str,
        iv: &str,
    ) -> Result<serde_json::Value> {
        let plain = crypto::decrypt(session_key.expose(), encrypted_data, iv)?;
        let value: serde_json::Value =
            serde_json::from_slice(&plain).map_err(|e| crate::DecryptError::Json(e.to_string()))?;
        let appid = value
            .pointer("/watermark/appid")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        self.check_watermark(appid)?;
        Ok(value)
    }

    /// Legacy: decrypts the getPhoneNumber button's `encryptedData` into a checked phone number.
    pub fn decrypt_phone_number(
        &self,
        session_key: &SessionKey,
        encrypted_data: &str,
        iv: &str,
    ) -> Result<PhoneInfo> {
        let value = self.decrypt_data(session_key, encrypted_data, iv)?;
        let fields: wire::PhoneFields =
            serde_json::from_value(value).map_err(|e| crate::DecryptError::Json(e.to_string()))?;
        self.checked_phone(fields)
    }

    /// A valid access token: the cached one while fresh, else one refresh shared by every concurrent caller.
    pub async fn access_token(&self) -> Result<AccessToken> {
        let appid = &self.inner.config.appid;
        if let Some(cached) = self.inner.store.get(appid).await?
            && cached.is_fresh(unix_now())
        {
            return Ok(cached.token);
        }
        self.refresh(None).await
    }

    fn check_watermark(&self, appid: &str) -> Result<()> {
        let ours = self.inner.config.appid.as_str();
        if appid != ours {
            return Err(Error::WatermarkMismatch {
                expected: ours.to_owned(),
                got: appid.to_owned(),
            });
        }
        Ok(())
    }

    fn checked_phone(&self, f: wire::PhoneFields) -> Result<PhoneInfo> {
        self.check_watermark(&f.watermark.appid)?;
        Ok(PhoneInfo {
            phone: PhoneNumber {
                phone_number: f.phone_number,
                pure_phone_number: f.pure_phone_number,
                country_code: f.country_code,
            },
            watermark: Watermark {
                timestamp: f.watermark.timestamp,
                appid: f.watermark.appid,
            },
        })
    }

    /// Runs a call that needs the access token. If WeChat rejects the token (40001/42001/40014), the token is
    /// dropped from the store (only if it is still the one that failed), refreshed once, and the call retried once.
    pub(crate) async fn with_token<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(AccessToken) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let token = self.access_token().await?;
        match call(token.clone()).await {
            Err(e) if e.errcode().is_some_and(|c| c.is_token_rejected()) => {
                tracing::info!(appid = %self.inner.config.appid, errcode = e.errcode().map(|c| c.code()), "WeChat rejected the access token; refreshing once");
                self.inner
                    .store
                    .invalidate(&self.inner.config.appid, &token)
                    .await?;
                let fresh = self.refresh(Some(&token)).await?;
                call(fresh).await
            }
            other => other,
        }
    }

    /// Single-flight refresh. In this process, callers queue on `refresh_gate` and the first one fetches; the
    /// others find the new token on their re-check. Across processes the store's leased lock does the same:
    /// whoever fails to take it polls the store until the holder has put a token or the lease has run out.
    async fn refresh(&self, failed: Option<&AccessToken>) -> Result<AccessToken> {
        let inner = &*self.inner;
        let appid = &inner.config.appid;
        let _gate = inner.refresh_gate.lock().await;
        let give_up = Instant::now() + inner.config.lock_lease * 3;
        loop {
            if let Some(cached) = inner.store.get(appid).await?
                && cached.is_fresh(unix_now())
                && Some(&cached.token) != failed
            {
                return Ok(cached.token);
            }
            if let Some(lock) = inner.store.try_lock(appid, inner.config.lock_lease).await? {
                let fetched = self.fetch_token(failed).await;
                let stored = match &fetched {
                    Ok(t) => inner.store.put(appid, t).await,
                    Err(_) => Ok(()),
                };
                inner.store.unlock(appid, &lock).await?;
                stored?;
                return fetched.map(|t| t.token);
            }
            if Instant::now() >= give_up {
                return Err(Error::TokenStore(
                    "gave up waiting for another instance's token refresh".into(),
                ));
            }
            tokio::time::sleep(inner.config.lock_poll).await;
        }
    }

    /// Fetches from stable_token in normal mode. If WeChat hands back the very token that just failed (it keeps
    /// returning a valid token in normal mode), one forced refresh follows: that is WeChat's remedy for a token
    /// that is known bad, and it happens at most once per failure.
    async fn fetch_token(&self, failed: Option<&AccessToken>) -> Result<CachedToken> {
        let fetched = self.stable_token(false).await?;
        if failed.is_some_and(|f| *f == fetched.token) {
            tracing::warn!(appid = %self.inner.config.appid, "stable_token returned the rejected token; forcing a refresh");
            return self.stable_token(true).await;
        }
        Ok(fetched)
    }

    async fn stable_token(&self, force_refresh: bool) -> Result<CachedToken> {
        let c = &self.inner.config;
        let url = format!("{}/cgi-bin/stable_token", c.base_url);
        let body = wire::StableTokenRequest {
            grant_type: "client_credential",
            appid: c.appid.as_str(),
            secret: c.secret.expose(),
            force_refresh,
        };
        let answer: wire::TokenAnswer = self
            .call("stable_token", CallKind::Idempotent, || {
                self.inner.http.post(&url).json(&body)
            })
            .await?;
        let now = unix_now();
        let margin = c.refresh_margin.as_secs();
        // Use the token until `margin` before expiry, but never for less than half its life: a short
        // expires_in (WeChat guarantees at least 300 s) must not turn into a refresh loop.
        let usable = answer
            .expires_in
            .saturating_sub(margin)
            .max(answer.expires_in / 2);
        tracing::debug!(appid = %c.appid, expires_in = answer.expires_in, force_refresh, "fetched an access token");
        Ok(CachedToken {
            token: AccessToken::new(answer.access_token),
            fresh_until: now + usable,
            expires_at: now + answer.expires_in,
        })
    }
}
