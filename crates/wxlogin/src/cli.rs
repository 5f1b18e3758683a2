//! The command line: `wxlogin serve`, `wxlogin sim`, `wxlogin keys`, and the operator's `users`, `sessions` and
//! `audit` (in `admin.rs`).

use crate::config::{ServeArgs, Settings};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;

#[derive(Debug, Parser)]
#[command(
    name = "wxlogin",
    version,
    about = "WeChat Mini Program phone-number quick login: the service, and an offline WeChat simulator"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start; boxing ServeArgs would only add a deref.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the login service (sandbox mode when WX_APPID/WX_SECRET are not set).
    Serve(ServeArgs),
    /// Run the WeChat simulator alone (WeChat's routes at the root, the device API under /sandbox/v1).
    Sim(SimArgs),
    /// The keys that sign access tokens (in the database, sealed with the data key).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Find, show or delete a person's account (by --account, --openid or --phone). Takes the service's settings.
    Users {
        #[command(subcommand)]
        action: crate::admin::UsersAction,
    },
    /// End a person's sessions at once. Takes the service's settings.
    Sessions {
        #[command(subcommand)]
        action: crate::admin::SessionsAction,
    },
    /// The audit log of a person's account (by --account, --openid or --phone; no phone or openid is in it).
    Audit(crate::admin::Target),
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Store a new signing key. Every instance signs with it within 10 s; the previous key stays published (JWKS)
    /// until the tokens it signed have expired. Takes the service's settings (database, data key).
    Rotate(ServeArgs),
    /// List the signing keys and their state.
    List(ServeArgs),
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);
    #[derive(Debug, thiserror::Error)]
    #[error("middle")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn every_cause_is_said_once() {
        let err = Outer(Middle(std::io::Error::other("connection refused")));
        assert_eq!(
            super::with_causes(&err),
            "outer: middle: connection refused"
        );
    }
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// An app the simulator knows, as APPID:SECRET (repeatable), bound to the simulator's Open Platform
    /// account: one unionid per person across these apps. With no --app nor --app-unbound, one sandbox app is
    /// made and printed.
    #[arg(long = "app", value_parser = parse_app)]
    pub apps: Vec<wxsim::AppCredentials>,
    /// An app not bound to the Open Platform account, as APPID:SECRET (repeatable): its users get no unionid
    /// until `POST /sandbox/v1/apps/{appid}/bind`.
    #[arg(long = "app-unbound", value_parser = parse_app)]
    pub unbound_apps: Vec<wxsim::AppCredentials>,
}

impl SimArgs {
    /// The simulator these flags describe.
    fn sim_config(&self) -> wxsim::SimConfig {
        wxsim::SimConfig {
            unbound_apps: self.unbound_apps.clone(),
            ..wxsim::SimConfig::with_apps(self.apps.clone())
        }
    }
}

fn parse_app(text: &str) -> Result<wxsim::AppCredentials, String> {
    let (appid, secret) = text.split_once(':').ok_or("expected APPID:SECRET")?;
    if appid.is_empty() || secret.is_empty() {
        return Err("expected APPID:SECRET, both non-empty".into());
    }
    Ok(wxsim::AppCredentials {
        appid: appid.into(),
        secret: secret.into(),
    })
}

#[cfg(test)]
mod sim_args_tests {
    use super::{Cli, Command};
    use clap::Parser;

    #[test]
    fn apps_bound_and_unbound() {
        let argv = [
            "wxlogin",
            "sim",
            "--app",
            "wxa:sa",
            "--app-unbound",
            "wxc:sc",
            "--app",
            "wxb:sb",
        ];
        let Command::Sim(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("the sim command");
        };
        let sim = wxsim::Simulator::new(args.sim_config());
        let appids: Vec<String> = sim.apps().into_iter().map(|a| a.appid).collect();
        assert_eq!(appids, ["wxa", "wxb", "wxc"]);
        assert_eq!(sim.is_bound("wxa"), Some(true));
        assert_eq!(sim.is_bound("wxb"), Some(true));
        assert_eq!(sim.is_bound("wxc"), Some(false));
        assert!(Cli::try_parse_from(["wxlogin", "sim", "--app-unbound", "wxc"]).is_err());
    }
}

/// Why a command failed, and the exit code that says so: 2 for a setting the operator must fix (as clap does
/// for a bad command line), 1 for anything else.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub exit_code: u8,
}

impl Failure {
    pub(crate) fn other(err: impl std::fmt::Display) -> Self {
        Self {
            message: err.to_string(),
            exit_code: 1,
        }
    }
}

impl From<crate::config::ConfigError> for Failure {
    fn from(err: crate::config::ConfigError) -> Self {
        Self {
            message: err.to_string(),
            exit_code: 2,
        }
    }
}

impl From<crate::app::StartError> for Failure {
    fn from(err: crate::app::StartError) -> Self {
        let exit_code = if err.is_configuration() { 2 } else { 1 };
        Self {
            message: with_causes(&err),
            exit_code,
        }
    }
}

/// The error and every cause under it ("database: the database is unavailable: … Connection refused"), each
/// said once: an operator needs the why, not only the what. The causes are ours or the drivers' messages, which
/// name no secret (URLs are never part of them).
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = inner.source();
    }
    message
}

/// `wxlogin keys rotate|list`.
async fn keys(action: KeysAction) -> Result<(), Failure> {
    use crate::logins::clock::{Clock, SystemClock};
    let (KeysAction::Rotate(args) | KeysAction::List(args)) = &action;
    let settings = Settings::resolve(args.clone(), |k| std::env::var(k).ok())?;
    let (store, cipher) = crate::app::open_data(&settings).await?;
    let now = SystemClock.now();
    if let KeysAction::Rotate(_) = action {
        let key = crate::access::keys::rotate(store.as_ref(), &cipher, now)
            .await
            .map_err(Failure::other)?;
        println!(
            "signing key {} (generation {}) stored: every instance signs with it within {} s",
            key.kid,
            key.generation,
            crate::access::keys::RELOAD_EVERY.as_secs()
        );
    }
    let grace = settings.tokens.access_ttl + crate::access::keys::RELOAD_EVERY;
    let keys = store.signing_keys().await.map_err(Failure::other)?;
    let published = crate::access::keys::published(&keys, grace, now);
    println!("generation  kid                                          created (unix)  state");
    for (i, key) in keys.iter().enumerate().rev() {
        let state = if i + 1 == keys.len() {
            "signing"
        } else if published.iter().any(|p| p.generation == key.generation) {
            "published (verifies tokens it signed until they expire)"
        } else {
            "retired"
        };
        println!(
            "{:<10}  {:<43}  {:<14}  {state}",
            key.generation, key.kid, key.created_at
        );
    }
    Ok(())
}

/// Runs the parsed command to completion; the process exit code follows from the result.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::resolve(args, |k| std::env::var(k).ok())?;
            crate::telemetry::init(settings.json_logs);
            let running = crate::app::start(settings, crate::app::shutdown_signal()).await?;
            running.wait().await.map_err(Failure::other)
        }
        Command::Keys { action } => keys(action).await,
        Command::Users { action } => crate::admin::users(action).await,
        Command::Sessions { action } => crate::admin::sessions(action).await,
        Command::Audit(target) => crate::admin::audit(target).await,
        Command::Sim(args) => {
            crate::telemetry::init(false);
            let generated = args.apps.is_empty() && args.unbound_apps.is_empty();
            let sim = wxsim::Simulator::new(args.sim_config());
            let listener = tokio::net::TcpListener::bind(args.listen)
                .await
                .map_err(|e| Failure::other(format!("cannot listen on {}: {e}", args.listen)))?;
            let addr = listener.local_addr().map_err(Failure::other)?;
            // The simulator's credentials are test values, printed on purpose so a user can configure a client.
            for app in sim.apps() {
                if generated {
                    println!("sandbox app: appid={} secret={}", app.appid, app.secret);
                } else if sim.is_bound(&app.appid) == Some(false) {
                    println!("app: appid={} (not bound: no unionid)", app.appid);
                } else {
                    println!("app: appid={}", app.appid);
                }
            }
            println!(
                "WeChat simulator listening on http://{addr} (device API: http://{addr}/sandbox/v1)"
            );
            tokio::select! {
                r = wxsim::serve(sim, listener) => r.map_err(Failure::other),
                _ = crate::app::shutdown_signal() => Ok(()),
            }
        }
    }
}
