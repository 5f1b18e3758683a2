//! Bounded exponential backoff with jitter, and which failures each kind of call may retry.

use crate::error::{Errcode, Error};
use rand::Rng;
use std::time::Duration;

/// How often and how patiently a call is retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total tries, the first included (default 3).
    pub max_attempts: u32,
    /// The first backoff delay (default 50 ms); it doubles per try.
    pub base_delay: Duration,
    /// The longest single delay (default 1 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The delay before try number `attempt + 1`: exponential, capped, with "equal jitter" (half fixed, half
    /// random) so a burst of callers that failed together does not come back together.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }
}

/// What repeating a call costs, which decides what may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// No side effect (token in normal mode, checksession): retry busy, connection errors, timeouts, gateways.
    Idempotent,
    /// Redeems a single-use login code: WeChat's table says busy is retried with backoff; a timeout may have
    /// reached WeChat and used the code, so only errors before sending (connect) are retried besides busy.
    RedeemsLoginCode,
    /// Redeems a single-use phone code. Whether a `-1` consumed it is undocumented, so busy is retried at
    /// most once (wechat-api.md); connect errors are retried like the others.
    RedeemsPhoneCode,
}

impl CallKind {
    /// Whether try number `attempt` (1-based), which failed with `error`, may be followed by another.
    pub(crate) fn may_retry(self, policy: &RetryPolicy, attempt: u32, error: &Error) -> bool {
        if attempt >= policy.max_attempts {
            return false;
        }
        match error {
            Error::Api {
                errcode: Errcode::SystemBusy,
                ..
            } => match self {
                CallKind::RedeemsPhoneCode => attempt < 2,
                _ => true,
            },
            Error::Connect { source, .. } if source.is_connect() => true,
            Error::Connect { .. } | Error::Timeout { .. } | Error::Http { .. } => {
                self == CallKind::Idempotent
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_bounded() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
        };
        for _ in 0..100 {
            let d1 = p.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            assert!(p.delay(30) <= Duration::from_millis(400));
        }
    }

    #[test]
    fn what_each_call_retries() {
        let p = RetryPolicy::default();
        let busy = Error::Api {
            api: "x",
            errcode: Errcode::SystemBusy,
            message: String::new(),
            attempts: 1,
        };
        let used = Error::Api {
            api: "x",
            errcode: Errcode::CodeUsed,
            message: String::new(),
            attempts: 1,
        };
        let limited = Error::Api {
            api: "x",
            errcode: Errcode::RateLimited,
            message: String::new(),
            attempts: 1,
        };
        let timeout = Error::Timeout { api: "x" };
        let bad_scene = Error::Api {
            api: "x",
            errcode: Errcode::InvalidScene,
            message: String::new(),
            attempts: 1,
        };
        assert!(!CallKind::Idempotent.may_retry(&p, 1, &bad_scene));
        assert!(CallKind::RedeemsLoginCode.may_retry(&p, 1, &busy));
        assert!(CallKind::RedeemsLoginCode.may_retry(&p, 2, &busy));
        assert!(!CallKind::RedeemsLoginCode.may_retry(&p, 3, &busy));
        assert!(CallKind::RedeemsPhoneCode.may_retry(&p, 1, &busy));
        assert!(!CallKind::RedeemsPhoneCode.may_retry(&p, 2, &busy));
        for kind in [
            CallKind::Idempotent,
            CallKind::RedeemsLoginCode,
            CallKind::RedeemsPhoneCode,
        ] {
            assert!(!kind.may_retry(&p, 1, &used));
            assert!(!kind.may_retry(&p, 1, &limited));
        }
        assert!(CallKind::Idempotent.may_retry(&p, 1, &timeout));
        assert!(!CallKind::RedeemsLoginCode.may_retry(&p, 1, &timeout));
    }
}
