//! Rate limits: per client address, per WeChat user and per app, so junk cannot spend WeChat's quota.

mod config;
mod rate;

pub use config::RateLimitConfig;
pub use rate::{Rate, RateParseError};
