//! The sandbox device API: plays the phone (users, login and phone codes) and the test operator (apps' Open
//! Platform binding, clock, faults, limits, stats). JSON in and out, camelCase; errors are 4xx
//! `{"error":"snake_case_id","message":"…"}`.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Simulator;
use crate::batch::{BatchItem, BatchRequest};
use crate::codes::PhoneCodeRequest;
use crate::config::Limits;
use crate::error::SimError;
use crate::faults::{Faults, Route};
use crate::query::param;
use crate::scan::ScanRequest;
use crate::state::{AppBinding, NewUser, SandboxUser};

/// Room for a batch of 100,000 openids.
const BODY_LIMIT: usize = 16 << 20;
/// Cap on one clock step, so sim time never nears overflow (about 3,000 years).
const MAX_ADVANCE: u64 = 100_000_000_000;

pub(crate) fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/apps", get(list_apps))
        .route("/apps/{appid}/bind", post(bind_app))
        .route(
            "/apps/{appid}/quota",
            get(crate::quota::get_quota).post(crate::quota::post_quota),
        )
        .route("/users", get(list_users).post(create_user))
        .route("/apps/{appid}/push", get(get_push).put(put_push))
        .route("/users/revoke", post(revoke))
        .route("/users/cancel", post(cancel))
        .route("/login-code", post(login_code))
        .route("/phone-code", post(phone_code))
        .route("/scan", post(scan))
        .route("/batch", post(batch))
        .route("/clock", get(get_clock).post(advance_clock))
        .route(
            "/faults",
            get(get_faults).put(put_faults).delete(delete_faults),
        )
        .route("/limits", get(get_limits).put(put_limits))
        .route("/stats", get(stats))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(sim)
}

/// A refused device request.
pub(crate) struct DeviceError {
    status: StatusCode,
    id: &'static str,
    message: String,
    /// The errno the phone's button callback would carry (1400001: no quota), so a device plays it as WeChat.
    errno: Option<i64>,
}

impl DeviceError {
    pub(crate) fn new(status: StatusCode, id: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            id,
            message: message.into(),
            errno: None,
        }
    }
}

impl From<SimError> for DeviceError {
    fn from(e: SimError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        Self {
            errno: e.errno(),
            ..Self::new(status, e.id(), e.to_string())
        }
    }
}

impl IntoResponse for DeviceError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.id, "message": self.message});
        if let Some(errno) = self.errno {
            body["errno"] = json!(errno);
        }
        (self.status, Json(body)).into_response()
    }
}

pub(crate) type DeviceResult<T> = Result<T, DeviceError>;

/// The body as `T`, whatever its Content-Type: not JSON → `invalid_json`, JSON of the wrong shape →
/// `invalid_body`.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> DeviceResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        let id = if e.is_data() {
            "invalid_body"
        } else {
            "invalid_json"
        };
        DeviceError::new(StatusCode::BAD_REQUEST, id, e.to_string())
    })
}

async fn not_found(uri: Uri) -> DeviceError {
    DeviceError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no sandbox route {}", uri.path()),
    )
}

async fn method_not_allowed() -> DeviceError {
    DeviceError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this sandbox route does not take that method",
    )
}

/// A body that must be empty or carry no fields (`{}`): routes whose whole request is in the path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

/// `GET /apps`: the apps, in order, with whether each is bound (never a secret): what a sandbox page offers to run
/// as.
async fn list_apps(State(sim): State<Simulator>) -> Json<Vec<AppBinding>> {
    Json(
        sim.apps()
            .into_iter()
            .map(|app| AppBinding {
                bound: sim.is_bound(&app.appid).unwrap_or(false),
                appid: app.appid,
            })
            .collect(),
    )
}

async fn bind_app(
    State(sim): State<Simulator>,
    appid: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> DeviceResult<Json<AppBinding>> {
    let Path(appid) = appid
        .map_err(|e| DeviceError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    if !body.is_empty() {
        parse::<NoFields>(&body)?;
    }
    Ok(Json(sim.bind_app(&appid)?))
}

async fn create_user(State(sim): State<Simulator>, body: Bytes) -> DeviceResult<Response> {
    let req: NewUser = parse(&body)?;
    let (user, created) = sim.inner.create_user(&req)?;
    // 200 with the existing user for a known phone: the browser sandbox "picks or creates".
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(sim.inner.sandbox_user(&user))).into_response())
}

#[derive(Serialize)]
struct UserList {
    users: Vec<SandboxUser>,
}

async fn list_users(State(sim): State<Simulator>, uri: Uri) -> DeviceResult<Json<UserList>> {
    let appid = param(uri.query(), "appid");
    let users = sim.users(appid.as_deref())?;
    Ok(Json(UserList { users }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenidBody {
    openid: String,
}

async fn put_push(
    State(sim): State<Simulator>,
    Path(appid): Path<String>,
    body: Bytes,
) -> DeviceResult<Response> {
    let target: crate::PushTarget = parse(&body)?;
    Ok(Json(sim.set_push_target(&appid, target)?).into_response())
}

async fn get_push(
    State(sim): State<Simulator>,
    Path(appid): Path<String>,
) -> DeviceResult<Response> {
    sim.inner
        .app_by_id(&appid)
        .ok_or_else(|| SimError::UnknownApp(appid.clone()))?;
    let target = sim.inner.pushes.get(&appid).ok_or_else(no_push_target)?;
    Ok(Json(crate::push::view(&target)).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RevokeBody {
    openid: String,
    /// Which authorization (8: the phone number).
    #[serde(default)]
    revoke_info: Option<String>,
}

/// The user withdraws an authorization: WeChat pushes `user_authorization_revoke`.
async fn revoke(State(sim): State<Simulator>, body: Bytes) -> DeviceResult<Response> {
    let req: RevokeBody = parse(&body)?;
    let event = crate::push::UserEvent::Revoke {
        revoke_info: req.revoke_info.unwrap_or_else(|| "8".to_owned()),
    };
    push(&sim, &req.openid, event).await
}

/// The user closes their WeChat account: WeChat pushes `user_authorization_cancellation`.
async fn cancel(State(sim): State<Simulator>, body: Bytes) -> DeviceResult<Response> {
    let req: OpenidBody = parse(&body)?;
    push(&sim, &req.openid, crate::push::UserEvent::Cancel).await
}

async fn push(
    sim: &Simulator,
    openid: &str,
    event: crate::push::UserEvent,
) -> DeviceResult<Response> {
    use crate::push::PushFailure;
    match sim.inner.push_user_event(openid, event).await {
        Ok(delivery) => Ok(Json(delivery).into_response()),
        Err(PushFailure::Sim(e)) => Err(e.into()),
        Err(PushFailure::NoTarget) => Err(no_push_target()),
        Err(PushFailure::Unreachable(why)) => Err(DeviceError::new(
            StatusCode::BAD_GATEWAY,
            "push_unreachable",
            format!("the push URL did not answer: {why}"),
        )),
    }
}

fn no_push_target() -> DeviceError {
    DeviceError::new(
        StatusCode::CONFLICT,
        "no_push_target",
        "the app has no push target: PUT /apps/{appid}/push first",
    )
}

async fn login_code(State(sim): State<Simulator>, body: Bytes) -> DeviceResult<Response> {
    let req: OpenidBody = parse(&body)?;
    Ok(Json(sim.login_code(&req.openid)?).into_response())
}

async fn phone_code(State(sim): State<Simulator>, body: Bytes) -> DeviceResult<Response> {
    let req: PhoneCodeRequest = parse(&body)?;
    Ok(Json(sim.phone_code_with(&req)?).into_response())
}

async fn scan(State(sim): State<Simulator>, body: Bytes) -> DeviceResult<Response> {
    let req: ScanRequest = parse(&body)?;
    // Decoding a big image takes a while: off the async workers.
    let options = tokio::task::spawn_blocking(move || sim.scan(&req))
        .await
        .map_err(|e| {
            DeviceError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })??;
    Ok(Json(options).into_response())
}

#[derive(Serialize)]
struct BatchAnswer {
    items: Vec<BatchItem>,
}

async fn batch(State(sim): State<Simulator>, body: Bytes) -> DeviceResult<Response> {
    let req: BatchRequest = parse(&body)?;
    // Up to 100,000 users: off the async workers.
    let items = tokio::task::spawn_blocking(move || sim.batch(req))
        .await
        .map_err(|e| {
            DeviceError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })??;
    Ok(Json(BatchAnswer { items }).into_response())
}

#[derive(Serialize)]
struct Now {
    now: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Advance {
    advance_seconds: u64,
}

async fn get_clock(State(sim): State<Simulator>) -> Json<Now> {
    Json(Now { now: sim.now() })
}

async fn advance_clock(State(sim): State<Simulator>, body: Bytes) -> DeviceResult<Json<Now>> {
    let req: Advance = parse(&body)?;
    if req.advance_seconds > MAX_ADVANCE {
        return Err(DeviceError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("advanceSeconds must be at most {MAX_ADVANCE}"),
        ));
    }
    Ok(Json(Now {
        now: sim.advance_clock(req.advance_seconds),
    }))
}

async fn get_faults(State(sim): State<Simulator>) -> Json<Faults> {
    Json(sim.faults())
}

/// `PUT /faults`: replaces the faults. `"revokeToken": true` also revokes every token once; a body with only
/// `revokeToken` leaves the faults as they are.
async fn put_faults(State(sim): State<Simulator>, body: Bytes) -> DeviceResult<Json<Faults>> {
    let mut fields: serde_json::Map<String, serde_json::Value> = parse(&body)?;
    let revoke = match fields.remove("revokeToken") {
        None => None,
        Some(v) => Some(v.as_bool().ok_or_else(|| {
            DeviceError::new(
                StatusCode::BAD_REQUEST,
                "invalid_faults",
                "revokeToken must be a boolean",
            )
        })?),
    };
    let faults = if revoke.is_some() && fields.is_empty() {
        None
    } else {
        let faults: Faults =
            serde_json::from_value(serde_json::Value::Object(fields)).map_err(|e| {
                DeviceError::new(StatusCode::BAD_REQUEST, "invalid_faults", e.to_string())
            })?;
        validate_faults(&faults)?;
        Some(faults)
    };
    if let Some(faults) = faults {
        sim.set_faults(faults);
    }
    if revoke == Some(true) {
        sim.revoke_tokens(None);
    }
    Ok(Json(sim.faults()))
}

fn validate_faults(faults: &Faults) -> DeviceResult<()> {
    let bad =
        |message: String| DeviceError::new(StatusCode::BAD_REQUEST, "invalid_faults", message);
    if !(0.0..=1.0).contains(&faults.rate) {
        return Err(bad(format!(
            "rate must be within 0..=1, not {}",
            faults.rate
        )));
    }
    if let Some(path) = faults.paths.iter().find(|p| Route::from_path(p).is_none()) {
        let known: Vec<&str> = Route::ALL.iter().map(|r| r.path()).collect();
        return Err(bad(format!(
            "unknown WeChat route {path:?}; known: {}",
            known.join(", ")
        )));
    }
    Ok(())
}

async fn delete_faults(State(sim): State<Simulator>) -> Json<serde_json::Value> {
    sim.clear_faults();
    Json(json!({}))
}

async fn get_limits(State(sim): State<Simulator>) -> Json<Limits> {
    Json(sim.limits())
}

async fn put_limits(State(sim): State<Simulator>, body: Bytes) -> DeviceResult<Json<Limits>> {
    let limits: Limits = parse(&body)?;
    Ok(Json(sim.set_limits(limits)))
}

async fn stats(State(sim): State<Simulator>) -> Json<crate::faults::Stats> {
    Json(sim.stats())
}
