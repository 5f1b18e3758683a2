//! Draining on shutdown. On SIGTERM the service first reports not ready (so a load balancer stops sending), lets
//! the logins in flight finish — while still listening, because in sandbox mode those logins call the simulator
//! through this very listener — and only then stops accepting connections.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Counts API requests in flight and says whether the service is draining.
#[derive(Default)]
pub struct Drain {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
    /// Woken when draining starts: long polls answer at once rather than hold the drain up.
    started: Notify,
}

struct InFlight<'a>(&'a Drain);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Drain {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Resolves once draining has started.
    pub async fn stopping(&self) {
        // Created before the check: `notify_waiters` reaches a future made before it, polled or not.
        let started = self.started.notified();
        if self.is_draining() {
            return;
        }
        started.await;
    }

    /// Starts draining and waits until no API request is in flight, or `limit` has passed.
    pub async fn drain(&self, limit: Duration) {
        self.draining.store(true, Ordering::Release);
        self.started.notify_waiters();
        let wait = async {
            loop {
                let idle = self.idle.notified();
                if self.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        };
        if tokio::time::timeout(limit, wait).await.is_err() {
            tracing::warn!(
                in_flight = self.in_flight.load(Ordering::Acquire),
                "drain limit reached; stopping anyway"
            );
        }
    }
}

/// Middleware on the API routes: counts the request while it runs (a dropped request counts as done).
pub async fn track(State(drain): State<Arc<Drain>>, request: Request, next: Next) -> Response {
    drain.in_flight.fetch_add(1, Ordering::AcqRel);
    let _guard = InFlight(&drain);
    next.run(request).await
}
