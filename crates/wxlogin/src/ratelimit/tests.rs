//! Tests of the whole limiter: in process, on a shared Redis, and with Redis unreachable.

use std::time::{Duration, Instant};

use super::*;

fn only(limit: Limit, rate: &str) -> RateLimitConfig {
    let rate = Some(rate.parse().unwrap());
    let mut config = RateLimitConfig::off();
    match limit {
        Limit::Ip => config.per_ip = rate,
        Limit::OpenId => config.per_openid = rate,
        Limit::App => config.per_app = rate,
    }
    config
}

/// A key prefix no other test run uses, so parallel runs on one Redis do not share budgets.
fn test_prefix() -> String {
    format!("wxlogin-test:{}:rl", uuid::Uuid::new_v4().simple())
}

#[test]
fn retry_after_header_rounds_up_to_whole_seconds() {
    assert_eq!(RetryAfter(Duration::ZERO).header_secs(), 1);
    assert_eq!(RetryAfter(Duration::from_millis(1)).header_secs(), 1);
    assert_eq!(RetryAfter(Duration::from_secs(3)).header_secs(), 3);
    assert_eq!(RetryAfter(Duration::from_millis(3001)).header_secs(), 4);
}

#[test]
fn needs_a_runtime_for_its_housekeeping() {
    let err = new_limiter(&RateLimitConfig::defaults(), None)
        .err()
        .unwrap();
    assert!(matches!(err, RateLimitError::NoRuntime), "{err}");
}

#[tokio::test]
async fn in_process_burst_then_refusal() {
    let limiter = new_limiter(&only(Limit::OpenId, "20/min"), None).unwrap();
    for i in 0..20 {
        assert!(limiter.check(Limit::OpenId, "o1").await.is_ok(), "call {i}");
    }
    let RetryAfter(wait) = limiter.check(Limit::OpenId, "o1").await.unwrap_err();
    // One every 3 s once the burst is spent; a little real time passed during the burst.
    assert!(
        wait <= Duration::from_secs(3) && wait > Duration::from_millis(2500),
        "{wait:?}"
    );
    assert!(
        limiter.check(Limit::OpenId, "o2").await.is_ok(),
        "another key has its own budget"
    );
    assert!(
        limiter.check(Limit::Ip, "o1").await.is_ok(),
        "a disabled limit passes"
    );
    assert!(!limiter.is_enabled(Limit::Ip));
}

#[tokio::test]
async fn everything_off_passes_everything() {
    let limiter = new_limiter(&RateLimitConfig::off(), Some("redis://127.0.0.1:1")).unwrap();
    assert!(
        limiter.cluster.is_none(),
        "no Redis needed when nothing is limited"
    );
    for _ in 0..10_000 {
        for limit in Limit::ALL {
            assert!(limiter.check(limit, "k").await.is_ok());
        }
    }
}

#[tokio::test]
async fn an_invalid_redis_url_is_refused_without_repeating_it() {
    let err = new_limiter(
        &RateLimitConfig::defaults(),
        Some("http://user:s3cret@host"),
    )
    .err()
    .unwrap();
    assert!(matches!(err, RateLimitError::InvalidRedisUrl));
    assert!(!err.to_string().contains("s3cret"));
}

/// Whether Redis answers on 127.0.0.1:6379. With `WXLOGIN_TEST_REDIS=1` its absence fails the test instead.
async fn redis_url() -> Option<&'static str> {
    const URL: &str = "redis://127.0.0.1:6379";
    let required = std::env::var("WXLOGIN_TEST_REDIS").is_ok_and(|v| v == "1");
    let ping = async {
        let client = redis::Client::open(URL).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Some(_)) => Some(URL),
        _ if required => panic!("WXLOGIN_TEST_REDIS=1 but Redis does not answer on {URL}"),
        _ => {
            eprintln!(
                "skipped: Redis does not answer on {URL} (set WXLOGIN_TEST_REDIS=1 to require it)"
            );
            None
        }
    }
}

#[tokio::test]
async fn two_instances_share_one_budget_through_redis() {
    let Some(url) = redis_url().await else { return };
    let prefix = test_prefix();
    let config = only(Limit::Ip, "6/min");
    let a = RateLimiter::with_key_prefix(&config, Some(url), &prefix, [7; 32]).unwrap();
    let b = RateLimiter::with_key_prefix(&config, Some(url), &prefix, [7; 32]).unwrap();
    for i in 0..6 {
        let instance = if i % 2 == 0 { &a } else { &b };
        assert!(
            instance.check(Limit::Ip, "203.0.113.7").await.is_ok(),
            "call {i}"
        );
    }
    // Each instance let only 3 through itself: the refusal can only come from the shared budget.
    for instance in [&a, &b] {
        let RetryAfter(wait) = instance.check(Limit::Ip, "203.0.113.7").await.unwrap_err();
        assert!(
            wait <= Duration::from_secs(10) && wait > Duration::from_secs(9),
            "{wait:?}"
        );
    }
    assert!(
        a.check(Limit::Ip, "203.0.113.8").await.is_ok(),
        "another address has its own budget"
    );
}

#[tokio::test]
async fn redis_holds_hashed_keys_that_expire() {
    let Some(url) = redis_url().await else { return };
    let prefix = test_prefix();
    let limiter =
        RateLimiter::with_key_prefix(&only(Limit::OpenId, "2/min"), Some(url), &prefix, [7; 32])
            .unwrap();
    let openid = "oTestOpenIdNeverInClear";
    limiter.check(Limit::OpenId, openid).await.unwrap();

    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let hash = keys[0].strip_prefix(&format!("{prefix}:openid:")).unwrap();
    assert_eq!(hash.len(), 32);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(!keys[0].contains(openid));
    let value: String = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        !value.contains(openid) && value.parse::<u64>().is_ok(),
        "{value}"
    );
    // One spent of 2/min: fresh again 30 s later, so the key lives about that long.
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl_ms > 25_000 && ttl_ms <= 30_002, "{ttl_ms}");
}

#[tokio::test]
async fn redis_rate_over_time_stays_within_burst_plus_refill() {
    let Some(url) = redis_url().await else { return };
    let limiter =
        RateLimiter::with_key_prefix(&only(Limit::App, "5/s"), Some(url), &test_prefix(), [7; 32])
            .unwrap();
    let start = Instant::now();
    let mut passed = 0u32;
    let mut first_refusal = None;
    for _ in 0..300 {
        match limiter.check(Limit::App, "wx1").await {
            Ok(()) => passed += 1,
            Err(RetryAfter(wait)) => {
                first_refusal.get_or_insert(wait);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let bound = 5 + (elapsed * 5.0).floor() as u32;
    assert!(
        passed >= 5 && passed <= bound,
        "{passed} passed in {elapsed:.3}s, bound {bound}"
    );
    let wait = first_refusal.unwrap();
    assert!(wait <= Duration::from_millis(200), "{wait:?}");
    // After the wait, one passes (the wait is measured on Redis' clock; a few ms of margin for the round trips).
    let RetryAfter(wait) = limiter.check(Limit::App, "wx1").await.unwrap_err();
    tokio::time::sleep(wait + Duration::from_millis(5)).await;
    assert!(limiter.check(Limit::App, "wx1").await.is_ok());
}

/// A local port with nothing listening.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn unreachable_redis_falls_back_to_in_process_limits_quickly() {
    let url = format!("redis://127.0.0.1:{}", closed_port());
    let limiter = new_limiter(&only(Limit::Ip, "3/min"), Some(&url)).unwrap();
    let mut answers = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        answers.push(limiter.check(Limit::Ip, "198.51.100.1").await.is_ok());
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "a check took {:?}",
            start.elapsed()
        );
    }
    assert_eq!(
        answers,
        [true, true, true, false, false],
        "limited in process, not open nor closed"
    );
}

#[tokio::test]
async fn silent_redis_times_out_and_falls_back() {
    // Accepts connections (the kernel completes the handshake) but never answers: the slow-Redis case.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    let limiter = new_limiter(&only(Limit::Ip, "2/min"), Some(&url)).unwrap();
    let mut answers = Vec::new();
    for _ in 0..4 {
        let start = Instant::now();
        answers.push(limiter.check(Limit::Ip, "198.51.100.2").await.is_ok());
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "a check took {:?}",
            start.elapsed()
        );
    }
    assert_eq!(answers, [true, true, false, false]);
}

/// A limiter with the test's fixed key for Redis key names.
fn new_limiter(
    config: &RateLimitConfig,
    redis_url: Option<&str>,
) -> Result<RateLimiter, RateLimitError> {
    RateLimiter::new(config, redis_url, [7; 32])
}
