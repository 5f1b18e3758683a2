//! Logging setup, in one place. `RUST_LOG` sets the filter (default: info for wxlogin, warnings elsewhere).
//! Nothing secret is ever recorded: secrets are types that print `[redacted]`, phones print masked, and the
//! request line names the route template, not the URI.

use tracing_subscriber::EnvFilter;

const DEFAULT_FILTER: &str = "info,sqlx=warn,hyper=warn,reqwest=warn,tower_http=warn";

/// Installs the global subscriber; `json` selects one JSON object per line.
pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(ansi);
    // A second init (tests that start several apps in one process) is harmless: keep the first.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The Prometheus recorder behind `GET /metrics`, installed once per process (several apps in one test process
/// share it). Label values are route templates and error ids only: bounded, and never personal.
pub fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("wxlogin_request_duration_seconds".into()),
                &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
            )
            .expect("static, non-empty buckets")
            .build_recorder();
        let handle = recorder.handle();
        // An application embedding wxlogin may have installed its own recorder: then ours stays empty.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::debug!("a metrics recorder was already installed; /metrics shows wxlogin's own only if it is ours");
        }
        handle
    })
}

/// Records one finished request, and, for a login route, the login by flow and outcome.
pub fn record_request(route: &str, status: u16, outcome: &'static str, seconds: f64) {
    metrics::counter!("wxlogin_requests_total", "route" => route.to_owned(), "status" => status.to_string(), "outcome" => outcome).increment(1);
    metrics::histogram!("wxlogin_request_duration_seconds", "route" => route.to_owned())
        .record(seconds);
    // A wrong method never reached the login: it is no login attempt.
    if let Some(flow) = login_flow(route)
        && outcome != "method_not_allowed"
    {
        metrics::counter!("wxlogin_logins_total", "flow" => flow, "outcome" => outcome)
            .increment(1);
    }
}

/// The login flow a route template serves: `one_call` (`/api/getPhone`), `silent` (`/api/v1/login`: `ok` includes
/// the `phone_required` answers), `phone` (`/api/v1/phone`, with a ticket or a session), `refresh`
/// (`/api/v1/refresh` and the OAuth token endpoint), `qr` (a scan login confirmed on the phone).
fn login_flow(route: &str) -> Option<&'static str> {
    Some(match route {
        "/api/getPhone" => "one_call",
        "/api/v1/login" => "silent",
        "/api/v1/phone" => "phone",
        "/api/v1/refresh" | "/oauth2/token" => "refresh",
        "/api/v1/qr-login/{id}/confirm" => "qr",
        _ => return None,
    })
}

/// Counts every HTTP attempt the WeChat client makes as `wxlogin_wechat_calls_total{api, outcome}`: `outcome` is
/// the errcode (`"0"` for success) or the transport failure (`timeout`, `connect`, `http_502`, `bad_body`). Both
/// labels come from bounded sets; nothing of the request (token, code, secret) is recorded.
#[derive(Debug, Default)]
pub struct WechatCalls;

impl weixin::CallObserver for WechatCalls {
    fn call(&self, api: &'static str, outcome: weixin::CallOutcome) {
        metrics::counter!("wxlogin_wechat_calls_total", "api" => api, "outcome" => outcome.to_string())
            .increment(1);
    }
}

/// One phone verification WeChat billed that the service used: a phone code of `kind` that getuserphonenumber
/// redeemed for `appid`. (WeChat bills when the button hands out the code; codes never sent to us, or sent and
/// refused as expired, are billed but not counted here: docs/operations.md.)
pub fn record_phone_verification(appid: &str, kind: weixin::PhoneVerificationKind) {
    metrics::counter!("wxlogin_phone_verifications_total", "appid" => appid.to_owned(), "kind" => kind.as_str())
        .increment(1);
}

/// What the last quota poll read for `appid` and `kind`: verifications left, and verifications WeChat billed (the
/// packs' `used`: every code the button handed out, redeemed by us or not).
pub fn set_phone_quota(
    appid: &str,
    kind: weixin::PhoneVerificationKind,
    usage: &weixin::ChargeUsage,
) {
    metrics::gauge!("wxlogin_phone_quota_remaining", "appid" => appid.to_owned(), "kind" => kind.as_str())
        .set(usage.remaining() as f64);
    metrics::gauge!("wxlogin_phone_verifications_billed", "appid" => appid.to_owned(), "kind" => kind.as_str())
        .set(usage.billed() as f64);
}

#[cfg(test)]
mod tests {
    #[test]
    fn login_routes_name_their_flow() {
        assert_eq!(super::login_flow("/api/v1/login"), Some("silent"));
        assert_eq!(
            super::login_flow("/api/v1/qr-login/{id}/confirm"),
            Some("qr")
        );
        assert_eq!(super::login_flow("/api/v1/me"), None);
    }
}
