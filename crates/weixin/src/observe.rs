//! A hook that sees every HTTP attempt the client makes, so a service can count WeChat calls by API and outcome
//! (e.g. as Prometheus counters) without this crate depending on a metrics library.

use crate::error::Error;
use std::fmt;
use std::sync::Arc;

/// How one HTTP attempt to WeChat ended. A bounded set of values, fit for a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// WeChat answered with this errcode; `0` is success (a missing errcode counts as 0).
    Errcode(i64),
    /// No answer within the timeout.
    Timeout,
    /// The connection failed (DNS, refused, reset, TLS).
    Connect,
    /// A non-200 HTTP status from something in between.
    HttpStatus(u16),
    /// A 200 whose body was not what WeChat documents.
    BadBody,
}

impl CallOutcome {
    /// The outcome of an attempt that ended with `result`. Errors that happen after the exchange (a watermark of
    /// another app) are not the call's outcome: only the ones an attempt itself produces are mapped; any other is
    /// reported as a bad body, the nearest kind.
    pub(crate) fn of<T>(result: &Result<T, Error>) -> Self {
        match result {
            Ok(_) => Self::Errcode(0),
            Err(Error::Api { errcode, .. }) => Self::Errcode(errcode.code()),
            Err(Error::Timeout { .. }) => Self::Timeout,
            Err(Error::Connect { .. }) => Self::Connect,
            Err(Error::Http { status, .. }) => Self::HttpStatus(*status),
            Err(_) => Self::BadBody,
        }
    }
}

/// Label form: the errcode as a decimal string (`"0"`, `"40029"`, `"-1"`), else `timeout`, `connect`,
/// `http_502`, `bad_body`.
impl fmt::Display for CallOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Errcode(code) => write!(f, "{code}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Connect => f.write_str("connect"),
            Self::HttpStatus(status) => write!(f, "http_{status}"),
            Self::BadBody => f.write_str("bad_body"),
        }
    }
}

/// Told about every HTTP attempt, retries and access-token fetches included. Called on the request's task right
/// after the attempt: keep it cheap and never block.
pub trait CallObserver: Send + Sync + 'static {
    /// One attempt at `api` (a stable short name: `jscode2session`, `getuserphonenumber`, `stable_token`,
    /// `checksession`, `getwxacodeunlimit`, `charge_usage`) ended with `outcome`.
    fn call(&self, api: &'static str, outcome: CallOutcome);
}

/// A shared observer as the client's [`Config`](crate::Config) holds it (printable, cloneable).
#[derive(Clone)]
pub struct Observer(pub Arc<dyn CallObserver>);

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Errcode;

    #[test]
    fn outcomes_print_as_bounded_labels() {
        let busy: Result<(), Error> = Err(Error::Api {
            api: "x",
            errcode: Errcode::SystemBusy,
            message: "busy".into(),
            attempts: 1,
        });
        assert_eq!(CallOutcome::of(&busy).to_string(), "-1");
        assert_eq!(CallOutcome::of(&Ok::<_, Error>(())).to_string(), "0");
        let gateway: Result<(), Error> = Err(Error::Http {
            api: "x",
            status: 502,
        });
        assert_eq!(CallOutcome::of(&gateway).to_string(), "http_502");
        let timeout: Result<(), Error> = Err(Error::Timeout { api: "x" });
        assert_eq!(CallOutcome::of(&timeout).to_string(), "timeout");
        let garbled: Result<(), Error> = Err(Error::Decode {
            api: "x",
            detail: "syntax".into(),
        });
        assert_eq!(CallOutcome::of(&garbled).to_string(), "bad_body");
    }
}
