//! Waking the long polls of scan logins. A poll that has nothing new to say waits on its id here — holding no
//! database connection — until a change on this instance wakes it, or, with PostgreSQL, a change another
//! instance announced (`LISTEN`/`NOTIFY`, one connection per instance). A waiter registers before it reads the
//! row, so a change between its read and its wait still wakes it.

use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The metric of polls waiting here for a change.
const WAITING: &str = "wxlogin_qr_polls_waiting";

/// One waiting poll in [`WAITING`], for as long as it lives.
struct Counted;

impl Counted {
    fn new() -> Self {
        metrics::gauge!(WAITING).increment(1.0);
        Counted
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        metrics::gauge!(WAITING).decrement(1.0);
    }
}

/// The polls waiting on this instance, by scan-login id. An entry lives only while a poll waits on it.
#[derive(Clone, Default)]
pub struct Waiters {
    waiting: Arc<Mutex<HashMap<String, watch::Sender<u64>>>>,
}

/// One poll's registration: [`Waiter::changed`] resolves on the first wake after it was made.
pub struct Waiter {
    id: String,
    receiver: Option<watch::Receiver<u64>>,
    waiters: Waiters,
}

impl Waiters {
    /// Registers a poll on `id`.
    pub fn register(&self, id: &str) -> Waiter {
        let mut waiting = self.lock();
        let sender = waiting
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(0).0);
        Waiter {
            id: id.to_owned(),
            receiver: Some(sender.subscribe()),
            waiters: self.clone(),
        }
    }

    /// Wakes the polls waiting on `id` here.
    pub fn wake(&self, id: &str) {
        if let Some(sender) = self.lock().get(id) {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wakes every waiting poll (announcements may have been missed): each reads its row again.
    pub fn wake_all(&self) {
        for sender in self.lock().values() {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// How many ids polls wait on here.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wakes polls here on what other instances announce, for as long as the process runs. Nothing to do where the
    /// store has no other instances.
    pub async fn follow(&self, store: Arc<dyn Store>) -> Result<(), crate::store::StoreError> {
        let Some(mut announcements) = store.qr_announcements().await? else {
            return Ok(());
        };
        let waiters = self.clone();
        tokio::spawn(async move {
            loop {
                match announcements.next().await {
                    Ok(Some(id)) => waiters.wake(&id),
                    // Reconnected: what was announced meanwhile is lost, so everyone looks again.
                    Ok(None) => waiters.wake_all(),
                    Err(e) => {
                        tracing::warn!(error = %e, "listening for scan-login changes failed; retrying in 1s");
                        waiters.wake_all();
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
        // A panic while holding this lock leaves the map consistent (every operation is one map call).
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Waiter {
    /// Resolves on the next wake of this id after the registration. Counted as a waiting poll while it waits
    /// (also when the wait is given up: the count goes with the future).
    pub async fn changed(&mut self) {
        let _counted = Counted::new();
        if let Some(receiver) = &mut self.receiver
            && receiver.changed().await.is_err()
        {
            // The sender is kept while any receiver lives: unreachable, but never spin.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let mut waiting = self.waiters.lock();
        if waiting
            .get(&self.id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            waiting.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_after_registering_is_never_missed_and_entries_go_with_their_polls() {
        let waiters = Waiters::default();
        let mut first = waiters.register("a");
        let mut second = waiters.register("a");
        let other = waiters.register("b");
        // Woken before anyone awaits: the registration still sees it.
        waiters.wake("a");
        first.changed().await;
        second.changed().await;
        assert_eq!(waiters.len(), 2);
        drop(first);
        assert_eq!(waiters.len(), 2, "one poll still waits on a");
        drop(second);
        drop(other);
        assert!(waiters.is_empty());
        // Waking an id nobody waits on is a no-op and leaves nothing behind.
        waiters.wake("a");
        waiters.wake_all();
        assert!(waiters.is_empty());
    }

    #[tokio::test]
    async fn wake_all_reaches_every_id() {
        let waiters = Waiters::default();
        let mut a = waiters.register("a");
        let mut b = waiters.register("b");
        waiters.wake_all();
        a.changed().await;
        b.changed().await;
    }
}
