//! Assembly: from [`Settings`] to a listening service, in sandbox or production mode, with graceful shutdown.

use crate::access::Access;
use crate::access::jwt::TokenPolicy;
use crate::access::keys::SigningKeys;
use crate::api::{self, edge::AppState};
use crate::config::{ConfigError, PhoneBinding, Settings};
use crate::logins::apps::{App, Apps};
use crate::logins::clock::{Clock, SystemClock};
use crate::logins::link::LinkPolicy;
use crate::logins::{Logins, Policy};
use crate::phone_crypto::PhoneCipher;
use crate::ratelimit::RateLimiter;
use crate::store::{self, Store};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("data dir: {0}")]
    DataDir(std::io::Error),
    #[error("data key: {0}")]
    DataKey(#[from] crate::phone_crypto::CryptoError),
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    #[error("WeChat client: {0}")]
    Client(#[from] weixin::Error),
    #[error("signing keys: {0}")]
    Keys(#[from] crate::access::keys::KeyError),
    #[error(
        "data key: this is not the key the database was written with ({0}); start with the original WXLOGIN_DATA_KEY (a key check value stored at the first start does not match this one)"
    )]
    KeyMismatch(&'static str),
}

impl StartError {
    /// A setting the operator must fix (exit code 2), rather than something that may pass on a retry.
    pub fn is_configuration(&self) -> bool {
        match self {
            Self::Config(_) | Self::DataKey(_) | Self::KeyMismatch(_) => true,
            Self::Store(store::StoreError::Config(_)) => true,
            Self::Keys(crate::access::keys::KeyError::Decrypt(_)) => true,
            Self::Listen { .. }
            | Self::DataDir(_)
            | Self::Store(_)
            | Self::Client(_)
            | Self::Keys(_) => false,
        }
    }
}

/// The name of the data key's check value in the `meta` table.
const KEY_CHECK: &str = "data_key_check";

/// Refuses a data key other than the one the database was written with, before any user is served: otherwise
/// every stored user would get 500 after spending a login code, and new rows would be sealed under a second key.
async fn check_data_key(store: &dyn Store, cipher: &PhoneCipher) -> Result<(), StartError> {
    if store.meta_get(KEY_CHECK).await?.is_none() {
        // A database from before key check values: its rows tell. One that opens is proof of the key.
        if let Some(phone) = store.any_phone().await? {
            let row = crate::phone_crypto::row_id(&phone.appid, &phone.openid);
            if cipher.open(&row, &phone.enc).is_err() {
                return Err(StartError::KeyMismatch(
                    "a stored phone number does not decrypt",
                ));
            }
        }
    }
    let stored = store
        .meta_get_or_insert(KEY_CHECK, &cipher.check_value())
        .await?;
    if !cipher.matches_check_value(&stored) {
        return Err(StartError::KeyMismatch("the key check value differs"));
    }
    Ok(())
}

/// A service that is listening: its address, and in sandbox mode the simulator behind `/sandbox`.
/// The data key's cipher: the configured key; in sandbox mode without one, the key generated into the data dir.
fn data_cipher(settings: &Settings) -> Result<PhoneCipher, StartError> {
    match (&settings.data_key, settings.is_sandbox()) {
        (Some(key), _) => Ok(PhoneCipher::from_base64(&key.0)?),
        (None, true) => Ok(PhoneCipher::load_or_create(
            &settings.data_dir.join("data.key"),
        )?),
        (None, false) => Err(ConfigError("WXLOGIN_DATA_KEY (or --data-key) is required with real WeChat credentials: it encrypts phone numbers at rest. Generate one with: openssl rand -base64 32".into()).into()),
    }
}

/// The database and the data key of a service's settings, checked against each other: what the admin commands
/// (`wxlogin keys …`) work on, without starting the service.
pub async fn open_data(settings: &Settings) -> Result<(Arc<dyn Store>, PhoneCipher), StartError> {
    if settings.database_url.is_none() && !settings.data_dir.join("wxlogin.db").exists() {
        return Err(ConfigError(format!(
            "no database at {}: give the service's --database-url or --data-dir",
            settings.data_dir.display()
        ))
        .into());
    }
    let cipher = data_cipher(settings)?;
    let store = store::open(&settings.database_url()).await?;
    check_data_key(store.as_ref(), &cipher).await?;
    Ok((store, cipher))
}

pub struct Running {
    pub addr: SocketAddr,
    pub sim: Option<wxsim::Simulator>,
    pub store: Arc<dyn Store>,
    /// The apps served, the first (in sandbox mode, the sandbox's main app) first.
    pub appids: Vec<String>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Running {
    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.server
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// Waits until the server ends (after a shutdown signal).
    pub async fn wait(self) -> std::io::Result<()> {
        let _keep = self.stop;
        self.server
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Starts the service and returns once it listens. `shutdown` resolving starts a graceful stop.
pub async fn start(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    start_on(settings, Arc::new(SystemClock), shutdown).await
}

/// [`start`] with the logins and signing keys on `clock`: tests move a `ManualClock` to expire things over HTTP
/// without waiting. No setting selects another clock than the system's.
pub async fn start_on(
    settings: Settings,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: settings.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: settings.listen,
        source,
    })?;

    let (wechat_configs, sim) = match settings.apps.as_slice() {
        [] => {
            crate::private_file::create_dir(&settings.data_dir).map_err(StartError::DataDir)?;
            let sim_config =
                crate::sandbox::load_or_create_config(&settings.data_dir.join("sandbox-app.json"))
                    .map_err(StartError::DataDir)?;
            // The client reaches the simulator over real HTTP, through this very listener: the same code path
            // as production, only the base URL differs.
            let host = if addr.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], addr.port()))
            } else {
                addr
            };
            let mut configs = Vec::new();
            let sim = wxsim::Simulator::new(sim_config.clone());
            for (i, app) in sim_config.apps.iter().enumerate() {
                let appid = weixin::AppId::parse(app.appid.clone())
                    .map_err(|e| ConfigError(format!("sandbox app id: {e}")))?;
                let config = weixin::Config::new(appid, weixin::AppSecret::new(app.secret.clone()))
                    .with_base_url(format!("http://{host}/sandbox/wechat"));
                let push = crate::sandbox::push(&sim, &app.appid, host, i == 0)
                    .map_err(|e| ConfigError(format!("sandbox push: {e}")))?;
                configs.push((config, None, settings.web.qr.clone(), Some(push)));
            }
            (configs, Some(sim))
        }
        apps => {
            let mut configs = Vec::new();
            for app in apps {
                let mut config = weixin::Config::new(app.appid.clone(), app.secret.clone());
                if let Some(url) = &settings.wechat_base_url {
                    config = config.with_base_url(url);
                }
                let push = match &app.push {
                    Some(push) => Some(
                        weixin::push::PushKeys::new(&push.token, push.aes_key.as_deref())
                            .map_err(|e| ConfigError(format!("app {}: push: {e}", app.appid)))?,
                    ),
                    None => None,
                };
                configs.push((config, app.name.clone(), app.qr.clone(), push));
            }
            (configs, None)
        }
    };
    let cipher = data_cipher(&settings)?;
    if settings.database_url.is_none() {
        crate::private_file::create_dir(&settings.data_dir).map_err(StartError::DataDir)?;
    }
    let store = store::open(&settings.database_url()).await?;
    check_data_key(store.as_ref(), &cipher).await?;
    let redis = match &settings.redis_url {
        Some(url) => Some(Arc::new(weixin::RedisTokenStore::new(
            url,
            Duration::from_secs(1),
        )?)),
        None => None,
    };
    let mut apps = Vec::new();
    for (mut config, name, qr, push) in wechat_configs {
        config.lock_lease = settings.token_lock_lease;
        let config = config.with_observer(Arc::new(crate::telemetry::WechatCalls));
        // Each app its own access token; through Redis, under a key of its own appid.
        let wechat = match &redis {
            Some(store) => weixin::Client::with_token_store(config, store.clone())?,
            None => weixin::Client::new(config)?,
        };
        apps.push(App {
            appid: wechat.appid().clone(),
            name,
            wechat,
            qr,
            push,
        });
    }
    if let Some(interval) = settings.quota_poll_interval {
        crate::quota::spawn(apps.iter().map(|a| a.wechat.clone()).collect(), interval);
    }
    let apps = if sim.is_some() {
        Apps::with_first_as_default(apps)
    } else {
        Apps::new(apps)
    };
    let appids: Vec<String> = apps.iter().map(|a| a.appid.as_str().to_owned()).collect();
    let limiter = RateLimiter::new(
        &settings.rate_limits,
        settings.redis_url.as_deref(),
        cipher.rate_limit_key(),
    )
    .map_err(|e| ConfigError(format!("rate limits: {e}")))?;
    let keys = Arc::new(
        SigningKeys::open(
            store.clone(),
            cipher.clone(),
            settings.tokens.access_ttl,
            clock.now(),
        )
        .await?,
    );
    keys.spawn_reloader(clock.clone());
    let token_policy = TokenPolicy {
        issuer: settings.issuer(addr),
        audiences: settings.tokens.audiences.clone(),
        access_ttl: settings.tokens.access_ttl,
        openid_claim: settings.tokens.openid_claim,
        unionid_claim: settings.tokens.unionid_claim,
    };
    let drain = Arc::new(api::drain::Drain::default());
    // Scan-login polls here wake on changes other instances announce (PostgreSQL); a connection of its own.
    let waiters = crate::logins::wake::Waiters::default();
    waiters.follow(store.clone()).await?;
    let request_timeout = settings.connection_limits.request_timeout;
    let purge_clock = clock.clone();
    let logins = Logins {
        apps,
        store: store.clone(),
        cipher,
        clock,
        limiter,
        access: Access::new(keys, token_policy),
        live: moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(crate::logins::LIVE_FOR)
            .build(),
        waiters: waiters.clone(),
        policy: Policy {
            binding: settings.phone_binding,
            refresh_ttl: settings.tokens.refresh_ttl,
            refresh_absolute_ttl: settings.tokens.refresh_absolute_ttl,
            forward_phone: settings.tokens.forward_phone,
            link: LinkPolicy {
                link_by_phone: settings.accounts.link_by_phone,
                phone_conflict: settings.accounts.phone_conflict,
            },
            // A login makes at most two exchanges in a row; together they stay within the request timeout.
            wechat_deadline: request_timeout * 2 / 5,
            // No request runs longer than the request timeout, so the lease only runs out for a crashed instance.
            ticket_lease: request_timeout + Duration::from_secs(5),
            phone_failures_per_ticket: settings.rate_limits.phone_failures_per_ticket,
            qr_wait_max: crate::logins::qr::QR_WAIT_MAX
                .min(request_timeout.saturating_sub(Duration::from_secs(5))),
        },
    };
    let state = Arc::new(AppState {
        logins,
        redis,
        drain: drain.clone(),
        trusted_proxies: settings.trusted_proxies.clone(),
        openapi: Default::default(),
        clients: settings.tokens.clients.clone(),
    });

    let mut router = api::routes(state);
    if let Some(cors) = api::cors(&settings.web.cors_origins) {
        router = router.layer(cors);
    }
    if let Some(sim) = &sim {
        router = router.merge(crate::sandbox::routes(sim));
    }
    let router = api::finish(router);

    crate::telemetry::prometheus();
    announce(&settings, addr, &appids, sim.is_some());
    if let Some(interval) = settings.purge_interval {
        spawn_purge(store.clone(), purge_clock, interval);
    }

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = settings.connection_limits.clone();
    let server = tokio::spawn(async move {
        crate::server::serve(listener, router, limits, drain, async move {
            tokio::select! {
                _ = shutdown => {}
                _ = stopped => {}
            }
            tracing::info!(
                "shutting down: /readyz now answers 503; finishing the logins in flight"
            );
        })
        .await
    });
    Ok(Running {
        addr,
        sim,
        store,
        appids,
        server,
        stop,
    })
}

fn announce(settings: &Settings, addr: SocketAddr, appids: &[String], sandbox: bool) {
    let appid = appids.join(", ");
    let binding = match settings.phone_binding {
        PhoneBinding::Verify => "verify",
        PhoneBinding::Concurrent => "concurrent",
    };
    if sandbox && settings.sandbox_forced {
        tracing::warn!(
            "--sandbox: WeChat is simulated and anyone who reaches http://{addr}/sandbox/v1 can log in as any phone number; never expose this to real users"
        );
    }
    if sandbox {
        tracing::info!(
            "sandbox mode: no WX_APPID/WX_SECRET set, WeChat is simulated at http://{addr}/sandbox/wechat (apps {appid}, one Open Platform account); \
             try it: open http://{addr}/sandbox/ or follow the README's curl walk-through \
             (curl -X POST http://{addr}/sandbox/v1/users -d '{{\"phoneNumber\":\"13800138000\"}}')"
        );
    } else {
        tracing::info!(
            "production mode: apps {appid}, WeChat at {}",
            settings
                .wechat_base_url
                .as_deref()
                .unwrap_or(weixin::DEFAULT_BASE_URL)
        );
    }
    tracing::info!(%addr, phone_binding = binding, database = if settings.database_url.is_some() { "external" } else { "sqlite (data dir)" }, token_store = if settings.redis_url.is_some() { "redis (shared)" } else { "in process" }, "wxlogin listening");
}

/// Expired sessions and tickets are refused by their expiry anyway; this only keeps the tables small. The first
/// purge runs one interval after start, so a restart (or many instances starting together) does not begin with
/// one; each runs in batches paced by [`PURGE_YIELD`] ([`Store::purge_expired`]) so logins go on while it deletes.
fn spawn_purge(store: Arc<dyn Store>, clock: Arc<dyn Clock>, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let started = std::time::Instant::now();
            match store.purge_expired(clock.now(), PURGE_YIELD).await {
                Ok(0) => tracing::debug!("nothing expired to purge"),
                Ok(rows) => tracing::info!(
                    rows,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "purged expired sessions, tickets and spent refresh tokens"
                ),
                Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
            }
        }
    });
}

/// How much longer than a purge batch took the purge waits before the next: it holds the database (SQLite's one
/// writer) at most 1/(1+4) of the time, so logins keep about four fifths of their throughput while it runs. With a
/// million of 3M sessions expired (bench scenario g, SQLite), batches back to back left new-user logins a sixth of
/// it (386 against 2,196 logins/s); paced, 1,883 against 2,182, the purge taking 579 s instead of 100.
const PURGE_YIELD: u32 = 4;

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
