//! The phone-verification quota poller: every `quota_poll_interval` (default 10 minutes) it reads each served
//! app's quota from WeChat (`/wxa/charge/usage/get`, one call per app and kind of verification) and sets
//! `wxlogin_phone_quota_remaining{appid, kind}` and `wxlogin_phone_verifications_billed{appid, kind}`. In sandbox
//! mode the apps' client points at the embedded simulator, which models the quota, so the gauges work out of the
//! box.

use std::time::Duration;

use weixin::PhoneVerificationKind;

/// Most time one app's poll may take: a slow WeChat delays the next poll, never stacks polls up.
const POLL_TIMEOUT: Duration = Duration::from_secs(20);

/// Polls the quota of `clients`' apps every `interval`, the first time one interval after start. Runs until the
/// process ends.
///
/// Not at once: a start would then always fetch every app's access token and call WeChat before any user did,
/// which costs a cluster restart N×apps calls and changes what a freshly started instance has done (tests count
/// its WeChat calls). The gauge is absent until the first poll.
pub fn spawn(clients: Vec<weixin::Client>, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        // After a stall (a suspended laptop, a long WeChat outage), poll once, not once per missed tick.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for client in &clients {
                poll_app(client).await;
            }
        }
    });
}

/// Reads both kinds of one app. A failure is logged (the error names the API and errcode, never the token) and
/// leaves the gauge at its last value.
async fn poll_app(client: &weixin::Client) {
    for kind in PhoneVerificationKind::ALL {
        match tokio::time::timeout(POLL_TIMEOUT, client.charge_usage(kind)).await {
            Ok(Ok(usage)) => {
                crate::telemetry::set_phone_quota(client.appid().as_str(), kind, &usage);
            }
            Ok(Err(e)) => {
                tracing::warn!(appid = %client.appid(), kind = %kind, error = %e, "reading the phone-verification quota failed");
            }
            Err(_) => {
                tracing::warn!(appid = %client.appid(), kind = %kind, timeout_s = POLL_TIMEOUT.as_secs(), "reading the phone-verification quota timed out");
            }
        }
    }
}
