//! `[rate_limits]`: which limits apply, with their defaults in one place.

use serde::Deserialize;

use super::Rate;

/// The `[rate_limits]` table. Each key takes a rate (`"20/min"`) or `"off"`; a key left out keeps its default
/// ([`RateLimitConfig::defaults`]). `--rate-limits off` is [`RateLimitConfig::off`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per client address (an IPv6 client is keyed by its /64).
    #[serde(deserialize_with = "rate_or_off")]
    pub per_ip: Option<Rate>,
    /// Logins per WeChat user (openid).
    #[serde(deserialize_with = "rate_or_off")]
    pub per_openid: Option<Rate>,
    /// WeChat calls per app, summed over all clients. The default stays below WeChat's own per-app quota, so junk
    /// cannot spend the quota real users need.
    #[serde(deserialize_with = "rate_or_off")]
    pub per_app: Option<Rate>,
    /// Failed phone codes accepted on one ticket before the ticket is spent.
    #[serde(deserialize_with = "count_or_off")]
    pub phone_failures_per_ticket: Option<u32>,
}

impl RateLimitConfig {
    /// The defaults, chosen so real traffic never meets them and junk cannot spend WeChat's quota.
    pub fn defaults() -> Self {
        Self {
            // Many phones share one carrier NAT (CGNAT) address, and one app launch makes a few requests (login,
            // phone, refresh). 120/min is a busy office or campus behind one address; a script sending junk codes
            // still gets at most 2 WeChat calls per second per address.
            per_ip: Some(rate(120, 60)),
            // One person logs in a few times a minute at most (re-launches, a second device); 20 at once then one
            // every 3 s leaves room for retries, and stays well under WeChat's own code2Session cap of 100 calls per
            // user per minute (errcode 45011), so one user's loop is answered here and not by WeChat.
            per_openid: Some(rate(20, 60)),
            // Below WeChat's own per-app frequency quota (stable_token allows 10,000 a minute per app; code2Session
            // and getuserphonenumber answer 45011 when an app calls too often), so
            // junk sent from many addresses at once is refused here before it spends the quota real users need.
            // 100 logins a second is far above a normal mini program's peak; raise it if yours is bigger.
            per_app: Some(rate(6000, 60)),
            // A user may mistype or let a phone code expire a few times; more failures on one ticket are guessing.
            phone_failures_per_ticket: Some(5),
        }
    }

    /// Every limit disabled: `--rate-limits off` / `WXLOGIN_RATE_LIMITS=off` (load tests, or a limiter in front).
    pub fn off() -> Self {
        Self {
            per_ip: None,
            per_openid: None,
            per_app: None,
            phone_failures_per_ticket: None,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self::defaults()
    }
}

/// A default rate; the values above are constants that `Rate::new` accepts.
fn rate(count: u32, per_secs: u64) -> Rate {
    match Rate::new(count, std::time::Duration::from_secs(per_secs)) {
        Ok(rate) => rate,
        Err(why) => unreachable!("default rate {count}/{per_secs}s: {why}"),
    }
}

const OFF: &str = "off";

fn rate_or_off<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Rate>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim() == OFF {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("{e}, or \"off\" to disable it")))
}

fn count_or_off<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Option<u32>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number of at least 1, or \"off\"")
        }

        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
            match u32::try_from(n) {
                // 0 would mean "spend the ticket before any failure": almost surely a mistake for "off".
                Ok(0) => Err(E::custom(
                    "0 failures per ticket: use \"off\" to disable the cap, or at least 1",
                )),
                Ok(n) => Ok(Some(n)),
                Err(_) => Err(E::custom(format!("{n} failures per ticket is too many"))),
            }
        }

        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
            match u64::try_from(n) {
                Ok(n) => self.visit_u64(n),
                Err(_) => Err(E::custom(format!(
                    "{n} failures per ticket: must be at least 1, or \"off\""
                ))),
            }
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            if text.trim() == OFF {
                return Ok(None);
            }
            match text.trim().parse::<u64>() {
                Ok(n) => self.visit_u64(n),
                Err(_) => Err(E::custom(format!(
                    "invalid failures per ticket {text:?}: a whole number of at least 1, or \"off\""
                ))),
            }
        }
    }
    d.deserialize_any(Visitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        rate_limits: RateLimitConfig,
    }

    fn parse(toml_text: &str) -> Result<RateLimitConfig, String> {
        toml::from_str::<File>(toml_text)
            .map(|f| f.rate_limits)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let d = RateLimitConfig::defaults();
        assert_eq!(d.per_ip, Some("120/min".parse().unwrap()));
        assert_eq!(d.per_openid, Some("20/min".parse().unwrap()));
        assert_eq!(d.per_app, Some("6000/min".parse().unwrap()));
        assert_eq!(d.phone_failures_per_ticket, Some(5));
        assert_eq!(RateLimitConfig::default(), d);
    }

    #[test]
    fn missing_table_or_keys_keep_defaults() {
        assert_eq!(parse("").unwrap(), RateLimitConfig::defaults());
        assert_eq!(parse("[rate_limits]").unwrap(), RateLimitConfig::defaults());
        let c = parse("[rate_limits]\nper_ip = \"300/min\"").unwrap();
        assert_eq!(c.per_ip, Some("300/min".parse().unwrap()));
        assert_eq!(c.per_openid, RateLimitConfig::defaults().per_openid);
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            r#"[rate_limits]
per_ip = "1/s"
per_openid = "2/h"
per_app = "100/10s"
phone_failures_per_ticket = 3
"#,
        )
        .unwrap();
        assert_eq!(c.per_ip, Some("1/s".parse().unwrap()));
        assert_eq!(c.per_openid, Some("2/h".parse().unwrap()));
        assert_eq!(c.per_app, Some("100/10s".parse().unwrap()));
        assert_eq!(c.phone_failures_per_ticket, Some(3));
    }

    #[test]
    fn off_disables_each_one() {
        let c = parse(
            r#"[rate_limits]
per_ip = "off"
per_openid = "off"
per_app = "off"
phone_failures_per_ticket = "off"
"#,
        )
        .unwrap();
        assert_eq!(c, RateLimitConfig::off());
        let c = parse("[rate_limits]\nper_openid = \"off\"").unwrap();
        assert_eq!(c.per_openid, None);
        assert!(c.per_ip.is_some() && c.per_app.is_some());
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        let err = parse("[rate_limits]\nper_user = \"1/s\"").unwrap_err();
        assert!(err.contains("per_user"), "{err}");
        let err = parse("[rate_limits]\nper_ip = \"lots\"").unwrap_err();
        assert!(
            err.contains("\"lots\"") && err.contains("\"off\" to disable"),
            "{err}"
        );
        let err = parse("[rate_limits]\nper_ip = \"0/min\"").unwrap_err();
        assert!(err.contains("off"), "{err}");
        let err = parse("[rate_limits]\nper_ip = 20").unwrap_err();
        assert!(err.contains("per_ip") || err.contains("string"), "{err}");
        let err = parse("[rate_limits]\nphone_failures_per_ticket = 0").unwrap_err();
        assert!(err.contains("off"), "{err}");
        let err = parse("[rate_limits]\nphone_failures_per_ticket = -2").unwrap_err();
        assert!(err.contains("-2"), "{err}");
        let err = parse("[rate_limits]\nphone_failures_per_ticket = \"many\"").unwrap_err();
        assert!(err.contains("\"many\""), "{err}");
    }
}
