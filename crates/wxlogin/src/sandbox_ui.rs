//! The browser sandbox page's static files, embedded in the binary: `crates/wxlogin/sandbox-ui/` at
//! `/sandbox/<file>`, and the template's own flow code from `miniprogram/` at `/sandbox/miniprogram/<path>`, so
//! the page runs exactly the code that ships.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use include_dir::{Dir, include_dir};

static UI: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/sandbox-ui");
/// Template files the page may load: the flow code and its config, nothing else of the project (the folder
/// also holds node_modules, which must not end up in the binary).
const MINIPROGRAM_FILES: &[(&str, &str)] = &[
    (
        "utils/auth.js",
        include_str!("../../../miniprogram/utils/auth.js"),
    ),
    (
        "utils/session.js",
        include_str!("../../../miniprogram/utils/session.js"),
    ),
    ("config.js", include_str!("../../../miniprogram/config.js")),
];

pub fn routes() -> Router {
    Router::new()
        .route(
            "/sandbox",
            get(|| async { axum::response::Redirect::permanent("/sandbox/") }),
        )
        .route("/sandbox/", get(|| async { file(&UI, "index.html") }))
        .route(
            "/sandbox/miniprogram/{*path}",
            get(|Path(path): Path<String>| async move {
                match MINIPROGRAM_FILES.iter().find(|(name, _)| *name == path) {
                    Some((name, text)) => serve(name, text.as_bytes()),
                    None => not_found(),
                }
            }),
        )
        .route(
            "/sandbox/{*path}",
            get(|Path(path): Path<String>| async move { file(&UI, &path) }),
        )
}

fn not_found() -> Response {
    crate::api::error::ApiError::NotFound.into_response()
}

fn file(dir: &'static Dir<'static>, path: &str) -> Response {
    match dir.get_file(path) {
        Some(f) => serve(path, f.contents()),
        None => not_found(),
    }
}

fn serve(path: &str, contents: &'static [u8]) -> Response {
    let kind = match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        contents,
    )
        .into_response()
}
