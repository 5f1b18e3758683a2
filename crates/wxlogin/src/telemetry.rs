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

/// Records one finished request.
pub fn record_request(route: &str, status: u16, outcome: &'static str, seconds: f64) {
    metrics::counter!("wxlogin_requests_total", "route" => route.to_owned(), "status" => status.to_string(), "outcome" => outcome).increment(1);
    metrics::histogram!("wxlogin_request_duration_seconds", "route" => route.to_owned())
        .record(seconds);
}
