//! The login routes: the seed's one call (`/api/getPhone`), and silent login (`/api/v1/login`) followed by the
//! verified phone step (`/api/v1/phone`) only for users we do not know yet.

use super::auth;
use super::body::JsonObject;
use super::client::ClientIp;
use super::error::{ApiError, Exchange, FieldProblem};
use super::state::{AppState, TICKET_TTL, success, unix_now};
use crate::config::PhoneBinding;
use crate::ratelimit::Limit;
use crate::store::{NewTicket, TicketReservation, UserUpsert};
use crate::tokens::Ticket;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;
use weixin::{LoginCode, OpenId, PhoneCode, PhoneInfo, Session};

type Answer = Result<Json<Value>, ApiError>;

async fn login_exchange(state: &AppState, code: &LoginCode) -> Result<Session, ApiError> {
    within_deadline(state, state.wechat.code_to_session(code))
        .await?
        .map_err(|e| ApiError::from_wechat(Exchange::Login, &e))
}

/// Bounds one WeChat exchange (its retries and a token refresh included) by the share of the request timeout
/// it is given, so a login answers 503 `wechat_unavailable` before the whole request is cut.
async fn within_deadline<T>(
    state: &AppState,
    exchange: impl std::future::Future<Output = T>,
) -> Result<T, ApiError> {
    tokio::time::timeout(state.wechat_deadline, exchange)
        .await
        .map_err(|_elapsed| {
            tracing::warn!(
                deadline_ms = state.wechat_deadline.as_millis() as u64,
                "WeChat exchange ran out of time"
            );
            ApiError::WechatUnavailable
        })
}

async fn phone_exchange(
    state: &AppState,
    code: &PhoneCode,
    openid: Option<&OpenId>,
) -> Result<PhoneInfo, ApiError> {
    within_deadline(state, state.wechat.get_phone_number(code, openid))
        .await?
        .map_err(|e| ApiError::from_wechat(Exchange::Phone, &e))
}

/// `POST /api/getPhone {phoneCode, loginCode}`: both codes in one call. In `verify` mode the login code is
/// exchanged first and its openid goes with the phone code, so WeChat refuses a phone code of another user;
/// `concurrent` saves a round trip and skips that check.
pub async fn get_phone(
    State(state): State<Arc<AppState>>,
    client: ClientIp,
    body: JsonObject,
) -> Answer {
    let login_code: LoginCode = body.required("loginCode")?;
    let phone_code: PhoneCode = body.required("phoneCode")?;
    state.limit_login(&client).await?;
    let (session, info) = match state.binding {
        PhoneBinding::Verify => {
            let session = login_exchange(&state, &login_code).await?;
            state.limit(Limit::OpenId, session.openid.as_str()).await?;
            let info = phone_exchange(&state, &phone_code, Some(&session.openid)).await?;
            (session, info)
        }
        PhoneBinding::Concurrent => {
            let (session, info) = tokio::join!(
                login_exchange(&state, &login_code),
                phone_exchange(&state, &phone_code, None)
            );
            let session = session?;
            state.limit(Limit::OpenId, session.openid.as_str()).await?;
            (session, info?)
        }
    };
    let openid = session.openid.as_str();
    let sealed = state.seal_phone(openid, &info.phone);
    let minted = state.mint_session();
    let upsert = UserUpsert {
        appid: state.appid().to_owned(),
        openid: openid.to_owned(),
        unionid: session.unionid.map(String::from),
        phone_enc: sealed.enc,
        phone_hash: sealed.hash,
        now: unix_now(),
    };
    state
        .store
        .upsert_user_with_session(upsert, minted.record)
        .await?;
    tracing::info!(phone = %info.phone, "phone login");
    let mut data = state.session_answer(&info.phone.phone_number, openid, &minted.token);
    // The seed's answer has no status field; keep it exactly as the seed's front end knows it.
    if let Some(map) = data.as_object_mut() {
        map.remove("status");
    }
    Ok(success(data))
}

/// `POST /api/v1/login {loginCode}`: jscode2session only. A known user is logged in; an unknown one gets a
/// ticket for `/api/v1/phone` and no account yet.
pub async fn login(
    State(state): State<Arc<AppState>>,
    client: ClientIp,
    body: JsonObject,
) -> Answer {
    let code: LoginCode = body.required("loginCode")?;
    state.limit_login(&client).await?;
    let session = login_exchange(&state, &code).await?;
    let openid = session.openid.as_str();
    state.limit(Limit::OpenId, openid).await?;
    if let Some(user) = state.store.find_user(state.appid(), openid).await? {
        let phone = state.open_phone(&user)?;
        let minted = state.mint_session();
        state.store.create_session(user.id, minted.record).await?;
        return Ok(success(state.session_answer(&phone, openid, &minted.token)));
    }
    let ticket = Ticket::generate();
    let now = unix_now();
    state
        .store
        .create_ticket(NewTicket {
            ticket_hash: ticket.hash(),
            appid: state.appid().to_owned(),
            openid: openid.to_owned(),
            unionid: session.unionid.map(String::from),
            expires_at: now + TICKET_TTL.as_secs() as i64,
            now,
        })
        .await?;
    Ok(success(
        json!({ "status": "phone_required", "ticket": ticket.expose(), "expiresIn": TICKET_TTL.as_secs() }),
    ))
}

/// `POST /api/v1/phone {phoneCode, ticket}` (or with a Bearer session instead of the ticket):
/// getuserphonenumber with the openid the ticket or session holds, so WeChat checks the code is that user's.
pub async fn phone(
    State(state): State<Arc<AppState>>,
    client: ClientIp,
    headers: HeaderMap,
    body: JsonObject,
) -> Answer {
    let phone_code: PhoneCode = body.required("phoneCode")?;
    let bearer = auth::bearer(&headers)?;
    state.limit_login(&client).await?;
    if let Some(token) = bearer {
        return change_phone(&state, &token, &phone_code).await;
    }
    let ticket_text = body
        .optional_text("ticket")?
        .ok_or(ApiError::field("ticket", FieldProblem::Missing))?;
    // A ticket of the wrong shape is as stale as an expired one: the client's remedy is the same (log in again).
    let ticket = Ticket::parse(ticket_text).ok_or(ApiError::TicketInvalid)?;
    // The ticket is taken for this request before WeChat is asked: a stale ticket costs no phone code (the
    // client can log in silently again and resend the same code), and of a double tap only the first request
    // redeems its code; the second answers 409 with its code unspent.
    let now = unix_now();
    let reservation = state
        .store
        .reserve_ticket(
            &ticket.hash(),
            state.appid(),
            now,
            now + state.ticket_lease.as_secs() as i64,
        )
        .await?;
    let record = match reservation {
        TicketReservation::Reserved(record) => record,
        TicketReservation::InUse => return Err(ApiError::TicketInUse),
        TicketReservation::Invalid => return Err(ApiError::TicketInvalid),
    };
    let held = HeldTicket::new(&state, ticket.hash());
    let openid = OpenId::parse(record.openid.clone()).map_err(|_| ApiError::Internal)?;
    let exchange = async {
        state.limit(Limit::OpenId, openid.as_str()).await?;
        phone_exchange(&state, &phone_code, Some(&openid)).await
    };
    let info = match exchange.await {
        Ok(info) => info,
        Err(err) => {
            held.release(&err).await;
            return Err(err);
        }
    };
    let sealed = state.seal_phone(openid.as_str(), &info.phone);
    let minted = state.mint_session();
    let consumed = state
        .store
        .consume_ticket_with_user(&ticket.hash(), sealed.enc, sealed.hash, minted.record)
        .await;
    held.disarm();
    consumed?.ok_or(ApiError::TicketInvalid)?;
    tracing::info!(phone = %info.phone, "phone bound");
    Ok(success(state.session_answer(
        &info.phone.phone_number,
        openid.as_str(),
        &minted.token,
    )))
}

/// A ticket reserved by this request. Released when the phone code fails (counting WeChat's refusals of the
/// code against the ticket), and also when the request is dropped halfway (the client went away, the request
/// timed out): then in a task of its own, so the ticket does not stay held until its reservation runs out.
struct HeldTicket {
    state: Arc<AppState>,
    hash: [u8; 32],
    armed: bool,
}

impl HeldTicket {
    fn new(state: &Arc<AppState>, hash: [u8; 32]) -> Self {
        Self {
            state: state.clone(),
            hash,
            armed: true,
        }
    }

    fn disarm(mut self) {
        self.armed = false;
    }

    async fn release(mut self, err: &ApiError) {
        self.armed = false;
        // Only a code WeChat refused counts against the ticket; an outage or a busy WeChat does not.
        let refused = matches!(
            err,
            ApiError::PhoneCodeInvalid | ApiError::PhoneCodeMismatch
        );
        let cap = self.state.phone_failures_per_ticket;
        match self
            .state
            .store
            .release_ticket(&self.hash, refused, cap)
            .await
        {
            Ok(true) => tracing::info!("ticket spent: too many refused phone codes"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "releasing a ticket failed; it frees itself when its reservation ends")
            }
        }
    }
}

impl Drop for HeldTicket {
    fn drop(&mut self) {
        // No runtime left (the process is ending): the reservation runs out by itself.
        if let (true, Ok(runtime)) = (self.armed, tokio::runtime::Handle::try_current()) {
            let (store, hash) = (self.state.store.clone(), self.hash);
            runtime.spawn(async move {
                if let Err(e) = store.release_ticket(&hash, false, None).await {
                    tracing::warn!(error = %e, "releasing an abandoned ticket failed");
                }
            });
        }
    }
}

async fn change_phone(
    state: &AppState,
    token: &crate::tokens::SessionToken,
    code: &PhoneCode,
) -> Answer {
    let user = auth::session_user(state, token).await?;
    let openid = OpenId::parse(user.openid.clone()).map_err(|_| ApiError::Internal)?;
    state.limit(Limit::OpenId, openid.as_str()).await?;
    let info = phone_exchange(state, code, Some(&openid)).await?;
    let sealed = state.seal_phone(openid.as_str(), &info.phone);
    state
        .store
        .update_phone(user.id, sealed.enc, sealed.hash, unix_now())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let minted = state.mint_session();
    state.store.create_session(user.id, minted.record).await?;
    tracing::info!(phone = %info.phone, "phone changed");
    Ok(success(state.session_answer(
        &info.phone.phone_number,
        openid.as_str(),
        &minted.token,
    )))
}
