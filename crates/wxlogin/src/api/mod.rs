//! The HTTP API: routes, the request log line, and the error answers for what no handler sees (unknown route,
//! wrong method, panic).

mod account;
mod discovery;
pub mod drain;
pub mod edge;
pub mod error;
mod login;
mod oauth;
pub mod openapi;
pub mod privacy;
mod push;
mod qr;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use edge::AppState;
use error::{ApiError, ErrorId};
use std::sync::Arc;
use std::time::Instant;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The service's own routes (without the sandbox), and the OpenAPI document generated from the same
/// registrations: a route is served only through `routes!`, so it cannot be served undocumented.
pub fn routes(state: Arc<AppState>) -> Router {
    let api = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(login::get_phone))
        .routes(routes!(login::login))
        .routes(routes!(login::phone))
        .routes(routes!(account::me, privacy::delete_me))
        .routes(routes!(privacy::export))
        .routes(routes!(account::logout))
        .routes(routes!(oauth::refresh))
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::revoke))
        .routes(routes!(oauth::introspect))
        .routes(routes!(discovery::userinfo))
        .routes(routes!(discovery::verify))
        .routes(routes!(qr::create))
        .routes(routes!(qr::poll))
        .routes(routes!(qr::scan))
        .routes(routes!(qr::confirm))
        .routes(routes!(qr::deny))
        .routes(routes!(push::check, push::receive))
        .route_layer(middleware::from_fn_with_state(
            state.drain.clone(),
            drain::track,
        ))
        // Answers that carry a token or a person's data must not sit in a proxy's or a browser's cache.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    let (router, doc) = OpenApiRouter::new()
        .merge(api)
        .routes(routes!(discovery::openid_configuration))
        .routes(routes!(discovery::jwks))
        .routes(routes!(account::healthz))
        .routes(routes!(account::readyz))
        .routes(routes!(account::metrics))
        .routes(routes!(openapi_json))
        .split_for_parts();
    let doc = openapi::finish(doc, &state.logins.apps);
    // A state field rather than an `Extension` layer: a layer would add the document to every request.
    let _ = state
        .openapi
        .set(Arc::from(doc.to_json().unwrap_or_default()));
    router
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(edge::BODY_LIMIT))
        .with_state(state)
}

/// CORS for the web pages of `origins` (`cors_origins`): the API and token routes may be called from them with a
/// Bearer token (no cookies: credentials are not allowed). `None` without origins: same origin only.
pub fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-wx-appid"),
            ])
            .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "the OpenAPI 3.1 document of this service", body = Object)))]
async fn openapi_json(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> impl IntoResponse {
    let doc = state
        .openapi
        .get()
        .map_or_else(String::new, |doc| doc.to_string());
    ([(header::CONTENT_TYPE, "application/json")], doc)
}

/// Wraps the whole app: unknown routes, panics, and one log line per request.
pub fn finish(router: Router) -> Router {
    router
        .fallback(|| async { ApiError::NotFound })
        // Inside the request log, so a request cut by the timeout is logged (408) like any other.
        .layer(middleware::from_fn(crate::server::enforce_request_timeout))
        .layer(middleware::from_fn(log_request))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            ApiError::Internal.into_response()
        }))
}

/// One line per request: request id, method, route template (never the raw URI: the sandbox's WeChat routes
/// carry the AppSecret and access tokens in their query), status, latency and outcome.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = format!("{:016x}", rand::random::<u64>());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    let outcome = response.extensions().get::<ErrorId>().map_or("ok", |e| e.0);
    let route = route.or_else(|| {
        response
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned())
    });
    tracing::info!(
        target: "wxlogin::request",
        request_id = %request_id,
        method = %method,
        route = route.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        latency_ms = format_args!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
        outcome,
        "request"
    );
    crate::telemetry::record_request(
        route.as_deref().unwrap_or("-"),
        response.status().as_u16(),
        outcome,
        started.elapsed().as_secs_f64(),
    );
    if let Ok(value) = request_id.parse() {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
