//! The client's address, as rate limits see it: the peer, or the address a trusted proxy forwarded for.

use super::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// The client address of a request.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The rate-limit key (an IPv6 client by its /64).
    pub fn rate_key(&self) -> String {
        crate::client_ip::rate_key(self.0)
    }
}

impl FromRequestParts<Arc<AppState>> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Infallible> {
        // The server puts the peer address on every request; a request without one (driven in process, with no
        // socket) is keyed as one unknown client rather than refused.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0)
            .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        Ok(Self(crate::client_ip::client_ip(
            peer,
            &parts.headers,
            &state.trusted_proxies,
        )))
    }
}
