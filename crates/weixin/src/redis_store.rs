//! A [`TokenStore`] in Redis: one access token for every instance of a deployment, and a refresh lock with a
//! lease so the cluster refreshes once and a crashed holder blocks it for one lease at most.
//!
//! Keys are namespaced by AppID (`wxlogin:{appid}:access_token`, `wxlogin:{appid}:refresh_lock`), so several
//! mini programs can share one Redis. Invalidation and unlock are Lua scripts that compare before they delete:
//! an instance that saw an old token fail cannot throw away the fresh one, and an instance whose lease ran out
//! cannot release a lock someone else now holds.
//!
//! If Redis cannot be reached, the store falls back to a per-process cache and says so in the log. That is safe
//! with stable_token: in normal mode WeChat hands every caller the same token, so instances refreshing on their
//! own do not invalidate each other (the 40001 storms come from `/cgi-bin/token`, which wxlogin never calls).

use crate::error::{Error, Result};
use crate::secret::AccessToken;
use crate::token::{CachedToken, MemoryTokenStore, RefreshLock, TokenStore};
use crate::types::AppId;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const INVALIDATE: &str = r"
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Access tokens in Redis, shared by a cluster.
pub struct RedisTokenStore {
    redis: ConnectionManager,
    prefix: String,
    local: MemoryTokenStore,
    degraded: AtomicBool,
}

impl std::fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn store_error(e: redis::RedisError) -> Error {
    // Redis errors name the failing command and kind, never a value or the URL's password.
    Error::TokenStore(format!("redis: {}", e.kind_name()))
}

trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for redis::RedisError {
    fn kind_name(&self) -> String {
        if self.is_timeout() {
            "timed out".into()
        } else if self.is_connection_refusal() || self.is_connection_dropped() || self.is_io_error()
        {
            "unreachable".into()
        } else {
            format!("{:?}", self.kind())
        }
    }
}

impl RedisTokenStore {
    /// Connects lazily to `url` (`redis://host:port/db`): the service starts even while Redis is down.
    /// Commands time out after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self> {
        let client =
            redis::Client::open(url).map_err(|_| Error::Config("invalid Redis URL".into()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let redis = ConnectionManager::new_lazy_with_config(client, config).map_err(store_error)?;
        Ok(Self {
            redis,
            prefix: "wxlogin".into(),
            local: MemoryTokenStore::new(),
            degraded: AtomicBool::new(false),
        })
    }

    /// Uses another key prefix (default `wxlogin`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// `PING`: for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.redis.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    fn token_key(&self, appid: &AppId) -> String {
        format!("{}:{}:access_token", self.prefix, appid.as_str())
    }

    fn lock_key(&self, appid: &AppId) -> String {
        format!("{}:{}:refresh_lock", self.prefix, appid.as_str())
    }

    /// Runs `op` against Redis; on a Redis failure, logs once per outage and runs `fallback` on the local cache.
    async fn or_local<T, F, Fut, L, LFut>(&self, op: F, fallback: L) -> Result<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
        L: FnOnce() -> LFut,
        LFut: std::future::Future<Output = Result<T>>,
    {
        match op(self.redis.clone()).await {
            Ok(v) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::warn!(
                        "Redis token store reachable again; the access token is shared by the cluster again"
                    );
                }
                Ok(v)
            }
            Err(e) => {
                if !self.degraded.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %store_error(e), "Redis token store unavailable; caching the access token in this process until it is back");
                }
                fallback().await
            }
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[async_trait]
impl TokenStore for RedisTokenStore {
    async fn get(&self, appid: &AppId) -> Result<Option<CachedToken>> {
        let key = self.token_key(appid);
        self.or_local(
            |mut c| async move {
                let (token, fresh, expires): (Option<String>, Option<u64>, Option<u64>) =
                    redis::cmd("HMGET")
                        .arg(&key)
                        .arg("token")
                        .arg("fresh_until")
                        .arg("expires_at")
                        .query_async(&mut c)
                        .await?;
                Ok(match (token, fresh, expires) {
                    (Some(t), Some(fresh_until), Some(expires_at)) => Some(CachedToken {
                        token: AccessToken::new(t),
                        fresh_until,
                        expires_at,
                    }),
                    _ => None,
                })
            },
            || self.local.get(appid),
        )
        .await
    }

    async fn put(&self, appid: &AppId, token: &CachedToken) -> Result<()> {
        let key = self.token_key(appid);
        // Redis drops the key when WeChat's expiry passes, so a dead token is never served from the cache.
        let ttl = token.expires_at.saturating_sub(unix_now()).max(1);
        let local = self.local.put(appid, token).await;
        self.or_local(
            |mut c| async move {
                redis::pipe()
                    .atomic()
                    .hset_multiple(
                        &key,
                        &[
                            ("token", token.token.expose().to_owned()),
                            ("fresh_until", token.fresh_until.to_string()),
                            ("expires_at", token.expires_at.to_string()),
                        ],
                    )
                    .ignore()
                    .expire(&key, ttl as i64)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            },
            || async { local },
        )
        .await
    }

    async fn invalidate(&self, appid: &AppId, failed: &AccessToken) -> Result<bool> {
        let key = self.token_key(appid);
        let local = self.local.invalidate(appid, failed).await?;
        self.or_local(
            |mut c| async move {
                let deleted: i64 = redis::Script::new(INVALIDATE)
                    .key(&key)
                    .arg(failed.expose())
                    .invoke_async(&mut c)
                    .await?;
                Ok(deleted > 0)
            },
            || async { Ok(local) },
        )
        .await
    }

    async fn try_lock(&self, appid: &AppId, lease: Duration) -> Result<Option<RefreshLock>> {
        let key = self.lock_key(appid);
        let holder = crate::random_hex(16);
        let millis = lease.as_millis().max(1) as u64;
        self.or_local(
            |mut c| {
                let holder = holder.clone();
                async move {
                    let set: Option<String> = redis::cmd("SET")
                        .arg(&key)
                        .arg(&holder)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis)
                        .query_async(&mut c)
                        .await?;
                    Ok(set.map(|_| RefreshLock { holder }))
                }
            },
            || self.local.try_lock(appid, lease),
        )
        .await
    }

    async fn unlock(&self, appid: &AppId, lock: &RefreshLock) -> Result<()> {
        let key = self.lock_key(appid);
        self.local.unlock(appid, lock).await?;
        self.or_local(
            |mut c| async move {
                let _: i64 = redis::Script::new(UNLOCK)
                    .key(&key)
                    .arg(&lock.holder)
                    .invoke_async(&mut c)
                    .await?;
                Ok(())
            },
            || async { Ok(()) },
        )
        .await
    }
}
