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
