//! `Rate`: "how many per how long", parsed once from the text an operator writes (`"20/min"`, `"100/10s"`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A rate limit: at most `count` at once (the burst), refilled at `count` per `per`.
///
/// This is GCRA (a token bucket without a timer): `"20/min"` lets 20 requests through at once, then one every 3 s.
/// A steady client at or below the rate is never refused; a burst never exceeds `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    count: u32,
    per: Duration,
}

/// Why a rate text was refused; the message names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid rate {text:?}: {reason} (expected COUNT/PERIOD, e.g. \"20/min\", \"5/s\", \"1000/h\", \"100/10s\")"
)]
pub struct RateParseError {
    text: String,
    reason: &'static str,
}

impl Rate {
    /// The shortest refill interval: the Redis script counts in microseconds, so a finer interval would round to 0.
    const MIN_INTERVAL: Duration = Duration::from_micros(1);

    /// A rate of `count` per `per`; refused when either is zero or the interval `per / count` is under 1 µs.
    pub fn new(count: u32, per: Duration) -> Result<Self, &'static str> {
        if count == 0 {
            return Err("the count must be at least 1 (use \"off\" to disable a limit)");
        }
        if per.is_zero() {
            return Err("the period must be longer than zero");
        }
        if per / count < Self::MIN_INTERVAL {
            return Err("more than one per microsecond is not supported");
        }
        Ok(Self { count, per })
    }

    /// The burst: how many pass at once from a fresh state.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period over which `count` are refilled.
    pub fn per(&self) -> Duration {
        self.per
    }

    /// Time to refill one: after a burst is spent, one request passes every `interval`.
    pub fn interval(&self) -> Duration {
        self.per / self.count
    }
}

/// Seconds in one unit of a period; the spellings operators write in TOML.
fn unit_seconds(unit: &str) -> Option<u64> {
    match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => Some(1),
        "min" | "mins" | "minute" | "minutes" => Some(60),
        "h" | "hr" | "hour" | "hours" => Some(3600),
        "d" | "day" | "days" => Some(86_400),
        _ => None,
    }
}

impl FromStr for Rate {
    type Err = RateParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| RateParseError {
            text: text.to_owned(),
            reason,
        };
        let (count, period) = text.split_once('/').ok_or_else(|| fail("no \"/\""))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| fail("the count is not a whole number"))?;
        let period = period.trim();
        // The period is an optional whole multiplier then a unit: "min", "10s", "2h".
        let digits = period.len()
            - period
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        let (multiplier, unit) = period.split_at(digits);
        let multiplier: u64 = if multiplier.is_empty() {
            1
        } else {
            multiplier
                .parse()
                .map_err(|_| fail("the period's multiplier is too large"))?
        };
        let unit = unit_seconds(unit.trim())
            .ok_or_else(|| fail("unknown period unit (use s, min, h or d)"))?;
        let seconds = multiplier
            .checked_mul(unit)
            .ok_or_else(|| fail("the period is too long"))?;
        Rate::new(count, Duration::from_secs(seconds)).map_err(fail)
    }
}

/// Writes the canonical form, which parses back to the same rate: `20/min`, `100/10s`.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.per.as_secs();
        let (n, unit) = [(86_400, "d"), (3600, "h"), (60, "min")]
            .into_iter()
            .find(|(unit, _)| secs.checked_rem(*unit) == Some(0))
            .map_or((secs, "s"), |(unit, name)| (secs / unit, name));
        if n == 1 {
            write!(f, "{}/{unit}", self.count)
        } else {
            write!(f, "{}/{n}{unit}", self.count)
        }
    }
}

impl<'de> serde::Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        text.parse().unwrap()
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(
            rate("20/min"),
            Rate::new(20, Duration::from_secs(60)).unwrap()
        );
        assert_eq!(rate("5/s"), Rate::new(5, Duration::from_secs(1)).unwrap());
        assert_eq!(
            rate("1000/h"),
            Rate::new(1000, Duration::from_secs(3600)).unwrap()
        );
        assert_eq!(
            rate("100/10s"),
            Rate::new(100, Duration::from_secs(10)).unwrap()
        );
        assert_eq!(
            rate(" 7 / 2 minutes "),
            Rate::new(7, Duration::from_secs(120)).unwrap()
        );
        assert_eq!(
            rate("1/d"),
            Rate::new(1, Duration::from_secs(86_400)).unwrap()
        );
    }

    #[test]
    fn interval_is_the_period_shared_by_the_count() {
        assert_eq!(rate("20/min").interval(), Duration::from_secs(3));
        assert_eq!(rate("100/10s").interval(), Duration::from_millis(100));
        assert_eq!(rate("6000/min").interval(), Duration::from_millis(10));
    }

    #[test]
    fn display_round_trips() {
        for text in ["20/min", "5/s", "1000/h", "100/10s", "3/2h", "1/d", "9/90s"] {
            assert_eq!(rate(text).to_string(), text);
            assert_eq!(rate(&rate(text).to_string()), rate(text));
        }
    }

    #[test]
    fn refuses_bad_text_and_names_it() {
        for (text, why) in [
            ("20", "no \"/\""),
            ("/min", "not a whole number"),
            ("-1/min", "not a whole number"),
            ("1.5/min", "not a whole number"),
            ("0/min", "at least 1"),
            ("20/0s", "longer than zero"),
            ("20/fortnight", "unknown period unit"),
            ("20/m", "unknown period unit"),
            ("20/", "unknown period unit"),
            ("20/10", "unknown period unit"),
            ("20/min/s", "unknown period unit"),
            ("20/99999999999999999999s", "too large"),
            ("20/9999999999999999999d", "too long"),
            ("4000000000/s", "microsecond"),
            ("off", "no \"/\""),
        ] {
            let err = text.parse::<Rate>().unwrap_err().to_string();
            assert!(err.contains(&format!("{text:?}")), "{text}: {err}");
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn deserializes_from_a_string() {
        #[derive(serde::Deserialize)]
        struct T {
            r: Rate,
        }
        let t: T = toml::from_str(r#"r = "100/10s""#).unwrap();
        assert_eq!(t.r, rate("100/10s"));
        let err = toml::from_str::<T>(r#"r = "100 per minute""#)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("\"100 per minute\""), "{err}");
    }
}
