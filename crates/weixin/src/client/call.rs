//! The HTTP exchange with WeChat that every call shares: sending, the status and errcode checks, transport errors
//! (which never carry the URL: it holds the AppSecret or the access token), the observer, and retries.

use super::Client;
use crate::error::{Error, Result};
use crate::observe::{CallOutcome, Observer};
use crate::retry::CallKind;
use crate::wire;
use serde::de::DeserializeOwned;

impl Client {
    /// One WeChat call with a JSON answer, with retries as `kind` allows.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        api: &'static str,
        kind: CallKind,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<T> {
        self.call_with(api, kind, request, |response, attempt| {
            read_json(api, response, attempt)
        })
        .await
    }

    /// One WeChat call with retries as `kind` allows; `read` turns a 200 answer into the result (JSON for most
    /// calls, image bytes for the QR code). Sending, the status check, transport errors and retries are shared.
    pub(crate) async fn call_with<T, R, Fut>(
        &self,
        api: &'static str,
        kind: CallKind,
        request: impl Fn() -> reqwest::RequestBuilder,
        read: R,
    ) -> Result<T>
    where
        R: Fn(reqwest::Response, u32) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let policy = &self.inner.config.retry;
        let mut attempt = 1;
        loop {
            let result = match send(api, request()).await {
                Ok(response) => read(response, attempt).await,
                Err(e) => Err(e),
            };
            if let Some(Observer(observer)) = &self.inner.config.observer {
                observer.call(api, CallOutcome::of(&result));
            }
            match result {
                Err(e) if kind.may_retry(policy, attempt, &e) => {
                    let delay = policy.delay(attempt);
                    tracing::debug!(api, attempt, delay_ms = delay.as_millis() as u64, error = %e, "retrying WeChat call");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// Maps a transport error to ours. Transport errors lose their URL: it carries the AppSecret or the access token
/// in its query.
pub(crate) fn transport(api: &'static str) -> impl Fn(reqwest::Error) -> Error {
    move |e: reqwest::Error| {
        if e.is_timeout() {
            Error::Timeout { api }
        } else {
            Error::Connect {
                api,
                source: e.without_url(),
            }
        }
    }
}

/// Sends the request; only a 200 is an answer (WeChat answers errors with 200; anything else is a gateway).
async fn send(api: &'static str, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
    let response = request.send().await.map_err(transport(api))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(Error::Http {
            api,
            status: status.as_u16(),
        });
    }
    Ok(response)
}

/// Reads `body` as WeChat's `{errcode, errmsg}`: an [`Error::Api`] for a non-zero errcode, else the status
/// (a missing errcode is success).
pub(crate) fn api_status(api: &'static str, body: &[u8], attempt: u32) -> Result<wire::Status> {
    let head: wire::Status = serde_json::from_slice(body).map_err(|e| Error::Decode {
        api,
        detail: format!("not JSON ({})", e.classify_name()),
    })?;
    if head.errcode != 0 {
        let errcode = crate::Errcode::from_code(head.errcode);
        tracing::debug!(
            api,
            errcode = head.errcode,
            attempt,
            "WeChat answered an errcode"
        );
        return Err(Error::Api {
            api,
            errcode,
            message: head.errmsg,
            attempts: attempt,
        });
    }
    Ok(head)
}

async fn read_json<T: DeserializeOwned>(
    api: &'static str,
    response: reqwest::Response,
    attempt: u32,
) -> Result<T> {
    // Parse the body whatever the Content-Type: jscode2session has been seen answering JSON as text/plain.
    let body = response.bytes().await.map_err(transport(api))?;
    api_status(api, &body, attempt)?;
    serde_json::from_slice(&body).map_err(|e| Error::Decode {
        api,
        detail: format!("missing or mistyped field ({})", e.classify_name()),
    })
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    /// serde's own message can quote the offending input (a session_key, say): name only the kind.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}
