//! Where the access token lives between calls. The client asks a [`TokenStore`]; the store decides whether the
//! token is per process ([`MemoryTokenStore`]) or shared by every instance of a deployment (a Redis store, in
//! the service crate). The refresh lock is part of the trait, with a lease, so that a shared store can make a
//! whole cluster refresh once and a crashed lock holder cannot block it for longer than the lease.

use crate::error::Result;
use crate::secret::AccessToken;
use crate::types::AppId;
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// An access token and when to stop using it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedToken {
    /// The token.
    pub token: AccessToken,
    /// Unix seconds after which callers refresh instead of using it (a margin before WeChat's expiry).
    pub fresh_until: u64,
    /// Unix seconds at which WeChat said it expires.
    pub expires_at: u64,
}

impl CachedToken {
    /// Whether the token may still be used at `now` (unix seconds).
    pub fn is_fresh(&self, now: u64) -> bool {
        now < self.fresh_until
    }
}

/// Proof of holding the refresh lock of one app, for as long as its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshLock {
    /// A random id naming this holder, so only the holder can release the lock (compare-and-delete).
    pub holder: String,
}

/// Storage for access tokens, keyed by AppID so several mini programs never share a key.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// The cached token of this app, fresh or not.
    async fn get(&self, appid: &AppId) -> Result<Option<CachedToken>>;
    /// Stores a newly fetched token.
    async fn put(&self, appid: &AppId, token: &CachedToken) -> Result<()>;
    /// Drops the cached token only if it is still `failed` (compare-and-delete): a caller that saw an old token
    /// fail must not throw away a fresh one. Returns whether something was dropped.
    async fn invalidate(&self, appid: &AppId, failed: &AccessToken) -> Result<bool>;
    /// Tries to take the refresh lock for `lease`. `None` if someone else holds it; they will put a new token.
    async fn try_lock(&self, appid: &AppId, lease: Duration) -> Result<Option<RefreshLock>>;
    /// Releases the lock if `lock` still holds it.
    async fn unlock(&self, appid: &AppId, lock: &RefreshLock) -> Result<()>;
}

/// The default store: one process, one token per app. Concurrent callers in the process are already funnelled
/// through the client's own single-flight gate, so the lock here only has to honour leases.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<HashMap<AppId, CachedToken>>,
    locks: Mutex<HashMap<AppId, (String, Instant)>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn get(&self, appid: &AppId) -> Result<Option<CachedToken>> {
        Ok(self.tokens.lock().get(appid).cloned())
    }

    async fn put(&self, appid: &AppId, token: &CachedToken) -> Result<()> {
        self.tokens.lock().insert(appid.clone(), token.clone());
        Ok(())
    }

    async fn invalidate(&self, appid: &AppId, failed: &AccessToken) -> Result<bool> {
        let mut tokens = self.tokens.lock();
        if tokens.get(appid).is_some_and(|t| &t.token == failed) {
            tokens.remove(appid);
            return Ok(true);
        }
        Ok(false)
    }

    async fn try_lock(&self, appid: &AppId, lease: Duration) -> Result<Option<RefreshLock>> {
        let mut locks = self.locks.lock();
        let now = Instant::now();
        if locks.get(appid).is_some_and(|(_, until)| *until > now) {
            return Ok(None);
        }
        let holder = crate::random_hex(16);
        locks.insert(appid.clone(), (holder.clone(), now + lease));
        Ok(Some(RefreshLock { holder }))
    }

    async fn unlock(&self, appid: &AppId, lock: &RefreshLock) -> Result<()> {
        let mut locks = self.locks.lock();
        if locks
            .get(appid)
            .is_some_and(|(holder, _)| *holder == lock.holder)
        {
            locks.remove(appid);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(s: &str) -> CachedToken {
        CachedToken {
            token: AccessToken::new(s),
            fresh_until: 10,
            expires_at: 20,
        }
    }

    #[tokio::test]
    async fn invalidate_is_compare_and_delete() {
        let store = MemoryTokenStore::new();
        let app = AppId::parse("wx0123456789abcdef").unwrap();
        store.put(&app, &token("new")).await.unwrap();
        assert!(
            !store
                .invalidate(&app, &AccessToken::new("old"))
                .await
                .unwrap()
        );
        assert_eq!(store.get(&app).await.unwrap(), Some(token("new")));
        assert!(
            store
                .invalidate(&app, &AccessToken::new("new"))
                .await
                .unwrap()
        );
        assert_eq!(store.get(&app).await.unwrap(), None);
    }

    #[tokio::test]
    async fn lock_has_a_lease_and_only_its_holder_unlocks() {
        let store = MemoryTokenStore::new();
        let app = AppId::parse("wx0123456789abcdef").unwrap();
        let a = store
            .try_lock(&app, Duration::from_millis(30))
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .try_lock(&app, Duration::from_secs(1))
                .await
                .unwrap()
                .is_none()
        );
        store
            .unlock(
                &app,
                &RefreshLock {
                    holder: "someone else".into(),
                },
            )
            .await
            .unwrap();
        assert!(
            store
                .try_lock(&app, Duration::from_secs(1))
                .await
                .unwrap()
                .is_none()
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
        let b = store
            .try_lock(&app, Duration::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(a, b);
        store.unlock(&app, &b).await.unwrap();
        assert!(
            store
                .try_lock(&app, Duration::from_secs(1))
                .await
                .unwrap()
                .is_some()
        );
    }
}
