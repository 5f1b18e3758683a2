//! A login ticket reserved by one `/api/v1/phone` request.

use crate::api::error::ApiError;
use crate::store::Store;
use std::sync::Arc;

/// Released when the phone step fails (counting WeChat's refusals of the code against the ticket), and also when
/// the request is dropped halfway (the client went away, the request timed out): then in a task of its own, so
/// the ticket does not stay held until its reservation runs out.
pub(super) struct Held {
    store: Arc<dyn Store>,
    hash: [u8; 32],
    armed: bool,
}

impl Held {
    pub(super) fn new(store: Arc<dyn Store>, hash: [u8; 32]) -> Self {
        Self {
            store,
            hash,
            armed: true,
        }
    }

    /// The ticket was consumed with the login.
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }

    /// Gives the ticket back after `err`. Only a code WeChat refused counts against the ticket (up to `cap`); an
    /// outage or a busy WeChat does not.
    pub(super) async fn release(mut self, err: &ApiError, cap: Option<u32>) {
        self.armed = false;
        let refused = matches!(
            err,
            ApiError::PhoneCodeInvalid | ApiError::PhoneCodeMismatch
        );
        match self.store.release_ticket(&self.hash, refused, cap).await {
            Ok(true) => tracing::info!("ticket spent: too many refused phone codes"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "releasing a ticket failed; it frees itself when its reservation ends")
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // No runtime left (the process is ending): the reservation runs out by itself.
        if let (true, Ok(runtime)) = (self.armed, tokio::runtime::Handle::try_current()) {
            let (store, hash) = (self.store.clone(), self.hash);
            runtime.spawn(async move {
                if let Err(e) = store.release_ticket(&hash, false, None).await {
                    tracing::warn!(error = %e, "releasing an abandoned ticket failed");
                }
            });
        }
    }
}
