//! The cluster-wide limiter: the same GCRA as governor, run inside Redis by one Lua script so every instance spends
//! one budget. Redis' own `TIME` is the clock, so the instances' clocks do not matter.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::Sha256;

use super::{Limit, Rate, RateLimitError, RetryAfter};

/// GCRA over one key holding the theoretical arrival time (TAT, microseconds on Redis' clock).
/// ARGV[1]: emission interval in µs (per / count); ARGV[2]: burst (count).
/// Returns {1, 0} when the request passes, {0, µs until one would pass} when refused.
/// A refused request writes nothing, so hammering does not push the wait further out.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, allow_at - now}
end
-- The key expires when its state is back to fresh, so idle clients cost no memory.
-- '%.0f': Lua 5.1's tostring would write a 16-digit number in exponent form and lose precision.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
";

/// A login must not wait on a slow Redis: past this, the check is decided in process.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failure, Redis is left alone this long, so an outage costs at most one slow check per second rather
/// than [`REDIS_TIMEOUT`] on every request.
const RETRY_REDIS_AFTER: Duration = Duration::from_secs(1);
/// At most one warning per this interval while Redis stays unreachable.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Redis did not decide (unreachable, slow, or an error); the caller falls back to the in-process limiter.
#[derive(Debug)]
pub(super) struct Unavailable;

pub(super) struct ClusterLimits {
    redis: ConnectionManager,
    script: redis::Script,
    prefix: String,
    /// Keys the hash of addresses and openids in Redis' key names.
    key_secret: [u8; 32],
    /// Times below are milliseconds since `epoch`; atomics keep the check lock-free.
    epoch: Instant,
    skip_until_ms: AtomicU64,
    /// `u64::MAX`: no warning yet.
    last_warning_ms: AtomicU64,
    degraded: AtomicBool,
}

impl ClusterLimits {
    /// Connects lazily, so the service starts (and limits in process) while Redis is down.
    pub(super) fn new(
        url: &str,
        prefix: &str,
        key_secret: [u8; 32],
    ) -> Result<Self, RateLimitError> {
        // The error would repeat the URL, password included: say only that it is invalid.
        let client = redis::Client::open(url).map_err(|_| RateLimitError::InvalidRedisUrl)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let redis = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| RateLimitError::Redis(e.to_string()))?;
        Ok(Self {
            redis,
            script: redis::Script::new(GCRA),
            prefix: prefix.to_owned(),
            key_secret,
            epoch: Instant::now(),
            skip_until_ms: AtomicU64::new(0),
            last_warning_ms: AtomicU64::new(u64::MAX),
            degraded: AtomicBool::new(false),
        })
    }

    /// `{prefix}:{limit}:{hash}`: the key is hashed so openids and addresses are never stored in clear in Redis.
    pub(super) fn redis_key(&self, limit: Limit, key: &str) -> String {
        // Keyed (HMAC under a key derived from the data key, the same on every instance): a plain hash of an IPv4
        // address is reversed by trying all 2^32 of them.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key_secret)
            .expect("HMAC takes any key length");
        mac.update(key.as_bytes());
        let digest = hex::encode(mac.finalize().into_bytes());
        format!("{}:{}:{}", self.prefix, limit.as_str(), &digest[..32])
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Redis' decision, or `Unavailable` when it cannot give one within [`REDIS_TIMEOUT`].
    pub(super) async fn check(
        &self,
        limit: Limit,
        rate: Rate,
        key: &str,
    ) -> Result<Result<(), RetryAfter>, Unavailable> {
        if self.now_ms() < self.skip_until_ms.load(Ordering::Relaxed) {
            return Err(Unavailable);
        }
        let interval_us = u64::try_from(rate.interval().as_micros()).unwrap_or(u64::MAX);
        let mut conn = self.redis.clone();
        let mut invocation = self.script.key(self.redis_key(limit, key));
        invocation.arg(interval_us).arg(rate.count());
        let answer: Result<redis::RedisResult<(i64, i64)>, _> =
            tokio::time::timeout(REDIS_TIMEOUT, invocation.invoke_async(&mut conn)).await;
        match answer {
            Ok(Ok((allowed, wait_us))) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis answers again: rate limits are cluster-wide again");
                }
                if allowed == 1 {
                    Ok(Ok(()))
                } else {
                    let wait_us = u64::try_from(wait_us).unwrap_or(0);
                    Ok(Err(RetryAfter(Duration::from_micros(wait_us))))
                }
            }
            Ok(Err(e)) => Err(self.failed(limit, &describe(&e))),
            Err(_elapsed) => Err(self.failed(limit, "timed out")),
        }
    }

    fn failed(&self, limit: Limit, why: &str) -> Unavailable {
        self.degraded.store(true, Ordering::Relaxed);
        let now = self.now_ms();
        let retry_ms = u64::try_from(RETRY_REDIS_AFTER.as_millis()).unwrap_or(u64::MAX);
        self.skip_until_ms
            .store(now.saturating_add(retry_ms), Ordering::Relaxed);
        let warn_ms = u64::try_from(WARN_EVERY.as_millis()).unwrap_or(u64::MAX);
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= warn_ms;
        // compare_exchange: of several concurrent failures, one warns.
        if due
            && self
                .last_warning_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // The limit kind only: the key is an address or an openid.
            tracing::warn!(
                limit = limit.as_str(),
                error = why,
                "Redis unavailable for rate limits; limiting per instance until it answers"
            );
        }
        Unavailable
    }
}

/// The kind of failure, without the server's text (which could echo a key or the URL).
fn describe(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        "unreachable".into()
    } else {
        format!("{:?}", e.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failure_warns_once_per_interval_and_backs_off() {
        let cluster = ClusterLimits::new("redis://127.0.0.1:1", "t:rl", [7; 32]).unwrap();
        let _ = cluster.failed(Limit::Ip, "unreachable");
        let first = cluster.last_warning_ms.load(Ordering::Relaxed);
        assert_ne!(first, u64::MAX, "the first failure warns");
        assert!(cluster.skip_until_ms.load(Ordering::Relaxed) > cluster.now_ms());
        let _ = cluster.failed(Limit::App, "timed out");
        assert_eq!(
            cluster.last_warning_ms.load(Ordering::Relaxed),
            first,
            "no second warning within 10 s"
        );
        // During the back-off Redis is not even asked: the answer is immediate.
        let started = Instant::now();
        let rate = "1/min".parse().unwrap();
        assert!(cluster.check(Limit::Ip, rate, "k").await.is_err());
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn keys_name_the_limit_and_hide_the_key() {
        let cluster = ClusterLimits::new("redis://127.0.0.1:1", "wxlogin:rl", [7; 32]).unwrap();
        let key = cluster.redis_key(Limit::OpenId, "oAbc");
        let hash = key.strip_prefix("wxlogin:rl:openid:").unwrap();
        assert_eq!(hash.len(), 32);
        assert!(!key.contains("oAbc"));
        assert_eq!(
            key,
            cluster.redis_key(Limit::OpenId, "oAbc"),
            "stable across calls and instances"
        );
        assert_ne!(key, cluster.redis_key(Limit::OpenId, "oAbd"));
        // Keyed: without the deployment's key nobody can tell which address or openid a key names.
        let other = ClusterLimits::new("redis://127.0.0.1:1", "wxlogin:rl", [8; 32]).unwrap();
        assert_ne!(key, other.redis_key(Limit::OpenId, "oAbc"));
    }
}
