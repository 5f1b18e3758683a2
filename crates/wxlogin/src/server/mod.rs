//! The accept loop: every connection bounded in time (see [`connection`]) and in number, the client's address
//! handed to the router, and a shutdown that ends within the drain timeout plus a short grace.
//!
//! It replaces `axum::serve`, which holds slow, idle and stuck clients for ever.

mod connection;

use crate::api::drain::Drain;
use crate::api::error::ApiError;
use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use connection::{Conn, WatchedIo};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

/// File descriptors kept free of connections: the database pool, Redis, the WeChat client's own connections,
/// and files (logs, the data dir).
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// After the drain, how long connections get to finish the response they are writing before they are dropped.
/// Short: the drain already waited for the logins in flight; what is left is idle sockets and stuck clients.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How long the accept loop pauses when the process is out of descriptors, so the connections it just closed can
/// release theirs (and so it does not spin on an error that repeats).
const DESCRIPTOR_BACKOFF: Duration = Duration::from_millis(50);

/// Idle connections closed per EMFILE/ENFILE, to give accept room.
const EVICT_ON_EMFILE: usize = 16;

/// The "out of descriptors" warning is logged at most this often: under a flood it would repeat per accept.
const EMFILE_WARN_EVERY: Duration = Duration::from_secs(10);

/// How long and how many, per connection and in total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A complete request head within this of accept (new connection) or of its first byte (keep-alive).
    pub header_timeout: Duration,
    /// A request's handler, body read included, is cut at this with 408 `request_timeout`.
    pub request_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Connections open at once; lowered at start to what RLIMIT_NOFILE allows.
    pub max_connections: usize,
    /// On shutdown, how long the requests in flight may take to finish before the service stops anyway.
    pub drain_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            drain_timeout: Duration::from_secs(15),
        }
    }
}

/// The connection cap that fits in `nofile_soft` descriptors once [`RESERVED_DESCRIPTORS`] are kept free; never
/// below 1 (a tiny limit still serves, one connection at a time).
pub fn effective_max_connections(requested: usize, nofile_soft: u64) -> usize {
    let room = nofile_soft.saturating_sub(RESERVED_DESCRIPTORS).max(1);
    requested.min(usize::try_from(room).unwrap_or(usize::MAX))
}

/// Raises RLIMIT_NOFILE's soft limit to the hard limit; answers the soft limit now in force, if it can be read.
fn raise_nofile_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => Some(soft),
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit (RLIMIT_NOFILE)");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// When a request must be answered by: set per request by [`serve`], enforced by [`enforce_request_timeout`]
/// (a layer of `api::finish`, inside the request log so a timeout is logged like any answer).
#[derive(Debug, Clone, Copy)]
pub struct RequestDeadline(pub Instant);

/// Answers 408 `request_timeout` when the handler, its body read included, is not done by the request's
/// [`RequestDeadline`]. Requests without one (tests that drive the router in process) are not timed.
pub async fn enforce_request_timeout(request: Request, next: Next) -> Response {
    match request.extensions().get::<RequestDeadline>().copied() {
        None => next.run(request).await,
        Some(RequestDeadline(deadline)) => {
            match tokio::time::timeout_at(deadline, next.run(request)).await {
                Ok(response) => response,
                Err(_) => ApiError::RequestTimeout.into_response(),
            }
        }
    }
}

/// The open connections, for the cap and for eviction.
#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Makes room for one more connection under `max` by closing the idle ones that have waited longest;
    /// answers whether there is room. An evicted connection leaves the registry at once, so the count is right
    /// before its task has closed the socket.
    fn make_room(&self, max: usize) -> bool {
        let mut conns = self.lock();
        let excess = (conns.len() + 1).saturating_sub(max);
        if excess == 0 {
            return true;
        }
        let evicted = evict_oldest_idle(&mut conns, excess);
        evicted == excess
    }

    /// Closes up to `n` idle connections, oldest first; answers how many.
    fn evict_idle(&self, n: usize) -> usize {
        evict_oldest_idle(&mut self.lock(), n)
    }
}

/// A connection's place in the registry, given up on drop.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

fn evict_oldest_idle(conns: &mut HashMap<u64, Arc<Conn>>, n: usize) -> usize {
    let mut idle: Vec<(Instant, u64)> = conns
        .iter()
        .filter_map(|(id, conn)| {
            let track = conn.track();
            track.evictable().then(|| (track.since(), *id))
        })
        .collect();
    let n = n.min(idle.len());
    if n == 0 {
        return 0;
    }
    idle.select_nth_unstable(n - 1);
    for (_, id) in &idle[..n] {
        if let Some(conn) = conns.remove(id) {
            conn.evict();
        }
    }
    n
}

fn is_out_of_descriptors(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Serves `router` on `listener` until `shutdown` resolves; then drains (still serving), stops accepting, lets
/// connections finish within a short grace, and drops the rest.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    drain: Arc<Drain>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut limits = limits;
    if let Some(soft) = raise_nofile_limit() {
        limits.max_connections = effective_max_connections(limits.max_connections, soft);
        tracing::info!(
            max_connections = limits.max_connections,
            nofile = soft,
            "connection cap in force"
        );
    }
    let limits = Arc::new(limits);
    let builder = http_builder();
    let registry = Arc::new(Registry::default());
    let (graceful, graceful_rx) = tokio::sync::watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut next_id: u64 = 0;
    let mut last_emfile_warning: Option<Instant> = None;
    let mut emfile_errors: u64 = 0;

    let drain_timeout = limits.drain_timeout;
    let drain_first = async move {
        shutdown.await;
        // Still accepting and serving: in sandbox mode the logins in flight call the simulator through this
        // listener.
        drain.drain(drain_timeout).await;
    };
    let mut drain_first = std::pin::pin!(drain_first);

    loop {
        tokio::select! {
            () = &mut drain_first => break,
            Some(_) = tasks.join_next() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) if is_out_of_descriptors(&error) => {
                        emfile_errors += 1;
                        let evicted = registry.evict_idle(EVICT_ON_EMFILE);
                        if last_emfile_warning.is_none_or(|at| at.elapsed() >= EMFILE_WARN_EVERY) {
                            tracing::warn!(
                                %error,
                                errors = emfile_errors,
                                evicted,
                                "out of file descriptors accepting connections; closing idle ones \
                                 (raise RLIMIT_NOFILE or lower --max-connections)"
                            );
                            last_emfile_warning = Some(Instant::now());
                            emfile_errors = 0;
                        }
                        tokio::time::sleep(DESCRIPTOR_BACKOFF).await;
                        continue;
                    }
                    Err(error) => {
                        // Per-connection failures (ECONNABORTED, …): the next accept is unaffected. The pause
                        // keeps an unexpected repeating error from spinning a core.
                        tracing::debug!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                if !registry.make_room(limits.max_connections) {
                    tracing::debug!(
                        max_connections = limits.max_connections,
                        "at the connection cap with no idle connection to close; refusing a new one"
                    );
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                next_id += 1;
                let id = next_id;
                let conn = Conn::new(Instant::now());
                registry.lock().insert(id, conn.clone());
                let io = TokioIo::new(WatchedIo::new(stream, conn.clone()));
                let service = {
                    let (router, conn, timeout) = (router.clone(), conn.clone(), limits.request_timeout);
                    hyper::service::service_fn(move |request| {
                        handle(router.clone(), conn.clone(), peer, timeout, request)
                    })
                };
                let connection = builder.serve_connection(io, service).into_owned();
                let limits = limits.clone();
                let registry = registry.clone();
                let graceful = graceful_rx.clone();
                tasks.spawn(async move {
                    // Leaves the registry however the task ends (a panic included), or the cap would shrink.
                    let _registered = Registered { registry, id };
                    let connection = std::pin::pin!(connection);
                    conn.watch(&limits, connection, graceful, |c| c.graceful_shutdown()).await;
                });
            }
        }
    }

    drop(listener);
    tracing::info!(
        connections = tasks.len(),
        "stopped accepting; closing connections"
    );
    // Idle connections close at once; busy ones finish the response they are on.
    let _ = graceful.send(true);
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            "connections still open after the shutdown grace; dropping them"
        );
    }
    tasks.shutdown().await;
    Ok(())
}

fn http_builder() -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Our watchdog times heads (see `connection`): hyper's timer would also close idle keep-alive
        // connections.
        .header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Pings find peers that vanished without a FIN (a phone that lost its network), which would otherwise
        // hold a connection slot until the idle timeout.
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20))
        // Each stream is a request with a handler; 100 (the RFC's recommended minimum) is plenty for an API
        // whose clients send a few requests per login, and bounds what one connection can start at once.
        .max_concurrent_streams(100);
    builder
}

/// One request through the router: the peer's address and the deadline in its extensions, and the connection
/// marked serving until the response body has been sent.
async fn handle(
    router: Router,
    conn: Arc<Conn>,
    peer: SocketAddr,
    request_timeout: Duration,
    mut request: hyper::Request<hyper::body::Incoming>,
) -> Result<Response, std::convert::Infallible> {
    let serving = conn.serving();
    let extensions = request.extensions_mut();
    extensions.insert(ConnectInfo(peer));
    extensions.insert(RequestDeadline(Instant::now() + request_timeout));
    let response = match router.oneshot(request.map(axum::body::Body::new)).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    // The guard rides in the body: hyper drops the body once it has written it out (or given up on it).
    Ok(response.map(|body| {
        axum::body::Body::new(body.map_frame(move |frame| {
            let _ = &serving;
            frame
        }))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_everything_else() {
        assert_eq!(effective_max_connections(10_000, 1024), 960);
        assert_eq!(effective_max_connections(10_000, 1_048_576), 10_000);
        assert_eq!(effective_max_connections(500, 1024), 500);
        assert_eq!(effective_max_connections(10_000, 10), 1);
    }

    #[tokio::test]
    async fn room_is_made_by_closing_the_longest_idle_first() {
        let registry = Registry::default();
        let t0 = Instant::now();
        let old_idle = Conn::new(t0);
        let busy = Conn::new(t0);
        let _serving = busy.serving();
        let young_idle = Conn::new(t0 + Duration::from_secs(1));
        for (id, conn) in [(1, &old_idle), (2, &busy), (3, &young_idle)] {
            registry.lock().insert(id, conn.clone());
        }
        assert!(registry.make_room(3));
        let left: Vec<u64> = {
            let mut ids: Vec<u64> = registry.lock().keys().copied().collect();
            ids.sort_unstable();
            ids
        };
        assert_eq!(left, vec![2, 3]);
        assert!(registry.make_room(2));
        assert_eq!(registry.lock().len(), 1);
        // Only the busy one is left: no room at a cap of 1.
        assert!(!registry.make_room(1));
    }
}
