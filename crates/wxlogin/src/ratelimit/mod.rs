//! Rate limits: per client address, per WeChat user and per app, so junk cannot spend WeChat's quota.
//!
//! [`RateLimiter::check`] answers pass, or how long until one would pass (`Retry-After`). Without Redis the limits
//! are per instance (governor, in process); with Redis they are cluster-wide (the same GCRA in a Lua script). When
//! Redis is slow or down, each check falls back to the in-process limiter: limits then hold per instance, never
//! "no limit" and never "everyone refused".

mod cluster;
mod config;
mod local;
mod rate;

use std::sync::{Arc, Weak};
use std::time::Duration;

pub use config::RateLimitConfig;
pub use rate::{Rate, RateParseError};

use cluster::ClusterLimits;
use local::LocalLimits;

/// Which budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// The client address ([`crate::client_ip::rate_key`]).
    Ip,
    /// The WeChat user (openid).
    OpenId,
    /// The app (appid): all WeChat calls for one app.
    App,
}

impl Limit {
    const ALL: [Limit; 3] = [Limit::Ip, Limit::OpenId, Limit::App];

    /// The name in Redis keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Ip => "ip",
            Limit::OpenId => "openid",
            Limit::App => "app",
        }
    }

    fn index(self) -> usize {
        match self {
            Limit::Ip => 0,
            Limit::OpenId => 1,
            Limit::App => 2,
        }
    }

    fn rate(self, config: &RateLimitConfig) -> Option<Rate> {
        match self {
            Limit::Ip => config.per_ip,
            Limit::OpenId => config.per_openid,
            Limit::App => config.per_app,
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Refused: one request would pass after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// For the `Retry-After` header: whole seconds, rounded up, at least 1 (0 would invite an immediate retry).
    pub fn header_secs(&self) -> u64 {
        let secs = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        secs.max(1)
    }
}

/// Why a [`RateLimiter`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// The URL is not repeated: it may hold a password.
    #[error("invalid Redis URL for rate limits")]
    InvalidRedisUrl,
    #[error("Redis client for rate limits: {0}")]
    Redis(String),
    #[error("rate {0} cannot be enforced")]
    InvalidRate(Rate),
    #[error(
        "the rate limiter must be created inside a Tokio runtime (it starts a housekeeping task)"
    )]
    NoRuntime,
}

/// How often idle keys are dropped from the in-process limiters. Between two passes memory grows with distinct
/// clients seen; a key is dropped once idle for about two refill intervals.
const RETAIN_EVERY: Duration = Duration::from_secs(30);

/// The Redis key prefix: `wxlogin:rl:{limit}:{hash}`.
const KEY_PREFIX: &str = "wxlogin:rl";

/// The rate limits of one instance. Cheap to share behind an `Arc`; `check` never blocks on a lock.
pub struct RateLimiter {
    rates: [Option<Rate>; 3],
    local: Arc<LocalLimits>,
    cluster: Option<ClusterLimits>,
}

impl RateLimiter {
    /// Limits per `config`; cluster-wide when `redis_url` is given (connected lazily: Redis may be down at start).
    ///
    /// Must be called inside a Tokio runtime: it spawns the task that drops idle keys from the in-process limiters
    /// every [`RETAIN_EVERY`]; the task ends by itself once the `RateLimiter` is dropped.
    ///
    /// `key_secret` keys the hashes that name addresses and openids in Redis; every instance must use the same.
    pub fn new(
        config: &RateLimitConfig,
        redis_url: Option<&str>,
        key_secret: [u8; 32],
    ) -> Result<Self, RateLimitError> {
        Self::with_key_prefix(config, redis_url, KEY_PREFIX, key_secret)
    }

    fn with_key_prefix(
        config: &RateLimitConfig,
        redis_url: Option<&str>,
        prefix: &str,
        key_secret: [u8; 32],
    ) -> Result<Self, RateLimitError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| RateLimitError::NoRuntime)?;
        let mut rates = [None; 3];
        for limit in Limit::ALL {
            rates[limit.index()] = limit.rate(config);
        }
        let local = Arc::new(LocalLimits::new(config)?);
        // Redis is not even configured when every limit is off: nothing would ever be asked of it.
        let cluster = match redis_url {
            Some(url) if rates.iter().any(Option::is_some) => {
                Some(ClusterLimits::new(url, prefix, key_secret)?)
            }
            _ => None,
        };
        runtime.spawn(retain_recent(Arc::downgrade(&local)));
        Ok(Self {
            rates,
            local,
            cluster,
        })
    }

    /// Whether `limit` is on (a disabled limit always passes).
    pub fn is_enabled(&self, limit: Limit) -> bool {
        self.rates[limit.index()].is_some()
    }

    /// Spends one request of `key`'s budget under `limit`, or says how long until one would pass.
    pub async fn check(&self, limit: Limit, key: &str) -> Result<(), RetryAfter> {
        let Some(rate) = self.rates[limit.index()] else {
            return Ok(());
        };
        if let Some(cluster) = &self.cluster {
            match cluster.check(limit, rate, key).await {
                Ok(Ok(())) => {
                    // Also spent locally, so that if Redis fails the fallback already knows this instance's recent
                    // passes instead of handing every client a fresh burst. The local budget is the same, so it
                    // refuses nothing Redis let through (its count here is at most the cluster's).
                    let _ = self.local.check(limit, key);
                    return Ok(());
                }
                Ok(Err(retry)) => return Err(retry),
                Err(cluster::Unavailable) => {}
            }
        }
        self.local.check(limit, key)
    }
}

/// Drops idle keys periodically; holds only a weak reference so the limiter's drop ends it.
async fn retain_recent(local: Weak<LocalLimits>) {
    let mut tick = tokio::time::interval(RETAIN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; nothing to drop yet
    loop {
        tick.tick().await;
        let Some(local) = local.upgrade() else { return };
        local.retain_recent();
    }
}

#[cfg(test)]
mod tests;
