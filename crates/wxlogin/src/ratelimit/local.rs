//! The in-process limiter: one keyed governor (GCRA) per limit. It decides alone when no Redis is configured, and
//! stands in for Redis while Redis is unreachable, so limits hold per instance rather than not at all.

use std::num::NonZeroU32;

use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;

use super::{Limit, Rate, RateLimitConfig, RateLimitError, RetryAfter};

type Keyed<C> = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

/// Keyed limiters indexed by [`Limit::index`]; `None` where the limit is off.
pub(super) struct LocalLimits<C: Clock = DefaultClock> {
    limits: [Option<Keyed<C>>; 3],
}

/// Burst = count, one refilled every `per / count`: the semantics [`Rate`] documents.
fn quota(rate: Rate) -> Result<Quota, RateLimitError> {
    let burst = NonZeroU32::new(rate.count()).ok_or(RateLimitError::InvalidRate(rate))?;
    let quota = Quota::with_period(rate.interval()).ok_or(RateLimitError::InvalidRate(rate))?;
    Ok(quota.allow_burst(burst))
}

impl LocalLimits<DefaultClock> {
    pub(super) fn new(config: &RateLimitConfig) -> Result<Self, RateLimitError> {
        Self::with_clock(config, &DefaultClock::default())
    }
}

impl<C: Clock + Clone> LocalLimits<C> {
    pub(super) fn with_clock(config: &RateLimitConfig, clock: &C) -> Result<Self, RateLimitError> {
        let build = |rate: Option<Rate>| -> Result<Option<Keyed<C>>, RateLimitError> {
            rate.map(|rate| {
                Ok(governor::RateLimiter::new(
                    quota(rate)?,
                    DefaultKeyedStateStore::default(),
                    clock.clone(),
                ))
            })
            .transpose()
        };
        let mut limits = [None, None, None];
        for limit in Limit::ALL {
            limits[limit.index()] = build(limit.rate(config))?;
        }
        Ok(Self { limits })
    }

    /// Takes one from `key`'s budget, or says how long until one would pass. A disabled limit always passes.
    pub(super) fn check(&self, limit: Limit, key: &str) -> Result<(), RetryAfter> {
        let Some(keyed) = &self.limits[limit.index()] else {
            return Ok(());
        };
        keyed
            .check_key(&key.to_owned())
            .map_err(|not_until| RetryAfter(not_until.wait_time_from(keyed.clock().now())))
    }

    /// Forgets keys whose state equals a fresh one (idle for a whole period), so memory follows active clients.
    pub(super) fn retain_recent(&self) {
        for keyed in self.limits.iter().flatten() {
            keyed.retain_recent();
            keyed.shrink_to_fit();
        }
    }

    /// Keys held for `limit` (0 when it is off).
    #[cfg(test)]
    pub(super) fn len(&self, limit: Limit) -> usize {
        self.limits[limit.index()].as_ref().map_or(0, |k| k.len())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn config(per_ip: &str) -> RateLimitConfig {
        RateLimitConfig {
            per_ip: Some(per_ip.parse().unwrap()),
            ..RateLimitConfig::off()
        }
    }

    #[test]
    fn burst_then_refusal_with_the_refill_interval() {
        let clock = FakeRelativeClock::default();
        let local = LocalLimits::with_clock(&config("20/min"), &clock).unwrap();
        for i in 0..20 {
            assert!(local.check(Limit::Ip, "a").is_ok(), "call {i} of the burst");
        }
        let RetryAfter(wait) = local.check(Limit::Ip, "a").unwrap_err();
        assert_eq!(wait, Duration::from_secs(3));
        // Refused calls spend nothing: the wait does not grow.
        clock.advance(Duration::from_secs(1));
        let RetryAfter(wait) = local.check(Limit::Ip, "a").unwrap_err();
        assert_eq!(wait, Duration::from_secs(2));
    }

    #[test]
    fn refills_one_per_interval() {
        let clock = FakeRelativeClock::default();
        let local = LocalLimits::with_clock(&config("5/s"), &clock).unwrap();
        for _ in 0..5 {
            local.check(Limit::Ip, "a").unwrap();
        }
        let RetryAfter(wait) = local.check(Limit::Ip, "a").unwrap_err();
        assert_eq!(wait, Duration::from_millis(200));
        clock.advance(wait - Duration::from_millis(1));
        assert!(
            local.check(Limit::Ip, "a").is_err(),
            "just before the wait is over"
        );
        clock.advance(Duration::from_millis(1));
        assert!(local.check(Limit::Ip, "a").is_ok(), "once the wait is over");
        assert!(
            local.check(Limit::Ip, "a").is_err(),
            "only one was refilled"
        );
        // A full period refills the whole burst, and no more.
        clock.advance(Duration::from_secs(10));
        for _ in 0..5 {
            local.check(Limit::Ip, "a").unwrap();
        }
        assert!(local.check(Limit::Ip, "a").is_err());
    }

    #[test]
    fn at_most_burst_plus_refill_over_time() {
        // Rate N/per with M ≫ N calls: passes ≤ N + elapsed·N/per.
        let clock = FakeRelativeClock::default();
        let local = LocalLimits::with_clock(&config("10/s"), &clock).unwrap();
        let step = Duration::from_millis(7);
        let mut passed = 0u32;
        for _ in 0..1000 {
            passed += u32::from(local.check(Limit::Ip, "a").is_ok());
            clock.advance(step);
        }
        let elapsed = step * 1000;
        let bound = 10 + (elapsed.as_secs_f64() * 10.0).floor() as u32;
        assert!(passed <= bound, "{passed} passed, bound {bound}");
        assert!(
            passed + 1 >= bound,
            "a steady stream gets the whole rate: {passed} of {bound}"
        );
    }

    #[test]
    fn keys_and_limits_are_independent() {
        let clock = FakeRelativeClock::default();
        let config = RateLimitConfig {
            per_ip: Some("2/min".parse().unwrap()),
            per_openid: Some("1/min".parse().unwrap()),
            ..RateLimitConfig::off()
        };
        let local = LocalLimits::with_clock(&config, &clock).unwrap();
        local.check(Limit::Ip, "a").unwrap();
        local.check(Limit::Ip, "a").unwrap();
        assert!(local.check(Limit::Ip, "a").is_err());
        local.check(Limit::Ip, "b").unwrap();
        // The same text under another limit is another budget.
        local.check(Limit::OpenId, "a").unwrap();
        assert!(local.check(Limit::OpenId, "a").is_err());
    }

    #[test]
    fn a_disabled_limit_always_passes_and_holds_nothing() {
        let local = LocalLimits::with_clock(&config("1/h"), &FakeRelativeClock::default()).unwrap();
        for _ in 0..1000 {
            local.check(Limit::App, "wx1").unwrap();
            local.check(Limit::OpenId, "o1").unwrap();
        }
        assert_eq!(local.len(Limit::App), 0);
    }

    #[test]
    fn retain_recent_forgets_idle_keys() {
        let clock = FakeRelativeClock::default();
        let local = LocalLimits::with_clock(&config("3/min"), &clock).unwrap();
        for i in 0..100 {
            local.check(Limit::Ip, &format!("10.0.0.{i}")).unwrap();
        }
        clock.advance(Duration::from_secs(10));
        local.check(Limit::Ip, "busy").unwrap();
        local.check(Limit::Ip, "busy").unwrap();
        local.check(Limit::Ip, "busy").unwrap();
        local.retain_recent();
        assert_eq!(
            local.len(Limit::Ip),
            101,
            "10 s is not enough for the 20 s refill"
        );
        // governor keeps a key until one interval after it is back to a fresh state: the 100 keys spent one cell
        // at 0 s (fresh again at 20 s, dropped from 40 s); "busy" owes time until 70 s.
        clock.advance(Duration::from_secs(35));
        local.retain_recent();
        assert_eq!(
            local.len(Limit::Ip),
            1,
            "only the key still owing time stays"
        );
        assert!(
            local.check(Limit::Ip, "busy").is_ok(),
            "35 s refilled one of three"
        );
        assert!(local.check(Limit::Ip, "busy").is_err());
    }
}
