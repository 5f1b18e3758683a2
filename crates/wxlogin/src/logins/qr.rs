//! Web login through the mini program (scan to log in), read top to bottom:
//!
//! 1. The web page creates a login ([`Logins::qr_create`]): a mini program code whose `scene` is the id, and a
//!    poll token only that page holds.
//! 2. It long-polls with the poll token ([`Logins::qr_poll`]). A poll with nothing new to say waits — holding no
//!    database connection — until a change wakes it ([`super::wake`]), its wait ends, or the code expires.
//! 3. A mini program user scans the code ([`Logins::qr_scan`]): their phone is told what is asking (the web's IP,
//!    browser, origin and time), so they can tell their own browser from a phishing page. From then on only they
//!    may decide.
//! 4. They confirm or deny ([`Logins::qr_decide`]); the change wakes the web's poll, on this instance or (with
//!    PostgreSQL) on any.
//! 5. The first poll that sees `confirmed` collects the web's tokens: a new session on the scanner's identity,
//!    written in the same transaction that marks the tokens collected, so they are handed out once. The tokens
//!    are never stored.

use super::land::Who;
use super::{Authenticated, LoggedIn, Logins};
use crate::api::error::{ApiError, Exchange};
use crate::logins::apps::App;
use crate::ratelimit::Limit;
use crate::store::{
    Holder, NewQrLogin, Plan, QrChange, QrLoginRecord, QrStatus, Scanner, Step, StoreError,
    UnixTime, WebClient,
};
use crate::tokens::{PollToken, QrId, RefreshToken};
use std::time::Duration;
use tokio::time::Instant;
use weixin::{EnvVersion, Scene, UnlimitedQrCode};

/// How long a code can be scanned and decided on.
pub const QR_TTL: Duration = Duration::from_secs(120);
/// The longest a poll waits for a change.
pub const QR_WAIT_MAX: Duration = Duration::from_secs(25);
/// A confirmed login's tokens can still be collected this long after its code expired: a user who confirms at
/// the last second still logs the web page in.
const COLLECT_GRACE: i64 = 30;

/// A new scan login, for the web page.
pub struct QrCreated {
    pub id: QrId,
    pub poll_token: PollToken,
    pub image: weixin::QrImage,
    pub expires_in: Duration,
}

/// What a poll answers.
pub enum QrState {
    Pending,
    Scanned,
    /// With the web's login the first time it is answered; `None` after.
    Confirmed(Option<Box<LoggedIn>>),
    Denied,
    Expired,
}

/// What the phone is shown after a scan.
pub struct QrScanned {
    pub web: WebClient,
    pub created_at: UnixTime,
    pub expires_in: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Confirm,
    Deny,
}

/// A scan login's status as of `now`: `pending` or `scanned` past expiry is expired, and so is a confirmed login
/// whose tokens were not collected within the grace.
fn status_at(row: &QrLoginRecord, now: UnixTime) -> Option<QrStatus> {
    match row.status {
        QrStatus::Pending | QrStatus::Scanned if row.expires_at <= now => None,
        QrStatus::Confirmed if !row.delivered && row.expires_at + COLLECT_GRACE <= now => None,
        status => Some(status),
    }
}

impl Logins {
    /// Step 1: a login for the web page of `web`, with its mini program code.
    pub async fn qr_create(&self, app: &App, web: WebClient) -> Result<QrCreated, ApiError> {
        // Every code is a WeChat call (getwxacodeunlimit allows 5,000 a minute per app).
        self.limit(Limit::App, app.appid.as_str()).await?;
        let id = QrId::generate();
        let scene = Scene::parse(id.as_str()).map_err(|_| ApiError::Internal)?;
        let code = UnlimitedQrCode::new(scene)
            .with_page(app.qr.page.clone())
            .with_env_version(app.qr.env_version)
            // WeChat checks the page against the published version only: a trial or development version's
            // confirm page may not be published yet.
            .with_check_path(app.qr.env_version == EnvVersion::Release);
        let image = self
            .within_deadline(app.wechat.get_unlimited_qr_code(&code))
            .await?
            .map_err(|e| ApiError::from_wechat(Exchange::QrCode, &e))?;
        let poll_token = PollToken::generate();
        let now = self.clock.now();
        self.store
            .create_qr_login(NewQrLogin {
                id: id.as_str().to_owned(),
                appid: app.appid.as_str().to_owned(),
                poll_hash: poll_token.hash(),
                web,
                created_at: now,
                expires_at: now + QR_TTL.as_secs() as i64,
            })
            .await?;
        Ok(QrCreated {
            id,
            poll_token,
            image,
            expires_in: QR_TTL,
        })
    }

    /// Step 2: the status, at once when it changed since the last answer (or is final), else after waiting up to
    /// `wait` for a change. Only the holder of the poll token learns anything: anyone else, and an unknown id,
    /// get 401.
    pub async fn qr_poll(
        &self,
        id: &QrId,
        token: &PollToken,
        wait: Duration,
    ) -> Result<QrState, ApiError> {
        let deadline = Instant::now() + wait.min(self.policy.qr_wait_max);
        loop {
            // Registered before the read: a change between the read and the wait still wakes this poll.
            let mut waiter = self.waiters.register(id.as_str());
            let row = self.store.qr_login(id.as_str()).await?;
            let row = row
                .filter(|row| row.poll_hash == token.hash())
                .ok_or(ApiError::Unauthorized)?;
            let now = self.clock.now();
            let status = status_at(&row, now);
            let left = deadline.saturating_duration_since(Instant::now());
            let news = status != Some(row.reported);
            let fin = matches!(status, None | Some(QrStatus::Confirmed | QrStatus::Denied));
            if news || fin || left.is_zero() {
                return self.answer(&row, status, now).await;
            }
            let until_expiry = Duration::from_secs((row.expires_at - now).max(0) as u64);
            tokio::select! {
                () = waiter.changed() => {}
                () = tokio::time::sleep(left.min(until_expiry)) => {}
            }
        }
    }

    /// The poll's answer, recording what it told the web (and collecting the tokens of a confirmed login).
    async fn answer(
        &self,
        row: &QrLoginRecord,
        status: Option<QrStatus>,
        now: UnixTime,
    ) -> Result<QrState, ApiError> {
        let Some(status) = status else {
            return Ok(QrState::Expired);
        };
        let state = match status {
            QrStatus::Pending => QrState::Pending,
            QrStatus::Scanned => QrState::Scanned,
            QrStatus::Denied => QrState::Denied,
            // Collecting the tokens records what was reported in the same write.
            QrStatus::Confirmed => return self.collect(row, now).await,
        };
        if status != row.reported {
            self.store
                .change_qr_login(&row.id, QrChange::Reported(status), now)
                .await?;
        }
        Ok(state)
    }

    /// Step 5: the web's session, once.
    async fn collect(&self, row: &QrLoginRecord, now: UnixTime) -> Result<QrState, ApiError> {
        if row.delivered {
            return Ok(QrState::Confirmed(None));
        }
        let scanner = row.scanned_by.as_ref().ok_or(ApiError::Internal)?;
        // The scanner's account lost its identity or phone since the confirm (deleted, or the phone moved): there
        // is nobody to log in, which the web page handles as a refusal.
        let found = self.store.identity(&scanner.appid, &scanner.openid).await?;
        let Some((found, stored)) = found.and_then(|f| {
            let phone = f.account.phone.clone()?;
            Some((f, phone))
        }) else {
            return Ok(QrState::Denied);
        };
        let token = RefreshToken::generate();
        let plan = Plan {
            now,
            steps: vec![
                Step::ClaimQrLogin {
                    id: row.id.clone(),
                    collectable_after: now - COLLECT_GRACE,
                },
                self.session_step(Holder::Id(found.identity.id), &token, now),
            ],
        };
        match self.store.apply(plan).await {
            Ok(()) => {}
            Err(StoreError::QrCollected) => return Ok(QrState::Confirmed(None)),
            Err(StoreError::Conflict) => return Ok(QrState::Denied),
            Err(other) => return Err(other.into()),
        }
        let phone = self.open_phone(&stored)?;
        let who = Who {
            account: found.account.id,
            appid: &scanner.appid,
            openid: &scanner.openid,
            unionid: found.account.unionid.as_deref(),
        };
        let logged_in = self.logged_in(who, phone, token)?;
        tracing::info!(account = %logged_in.account_id, qr_login = %row.id, "web logged in by scan");
        Ok(QrState::Confirmed(Some(Box::new(logged_in))))
    }

    /// Step 3: the mini program user of `auth` scanned code `id`.
    pub async fn qr_scan(&self, auth: &Authenticated, id: &QrId) -> Result<QrScanned, ApiError> {
        let scanner = scanner(auth);
        let now = self.clock.now();
        let changed = self
            .store
            .change_qr_login(id.as_str(), QrChange::Scan(&scanner), now)
            .await?;
        let row = self.store.qr_login(id.as_str()).await?;
        match row {
            Some(row) if changed => {
                self.announce(id).await;
                Ok(QrScanned {
                    web: row.web,
                    created_at: row.created_at,
                    expires_in: Duration::from_secs((row.expires_at - now).max(0) as u64),
                })
            }
            row => Err(refusal(row.as_ref(), &scanner, now)),
        }
    }

    /// Step 4: the scanner confirms or denies.
    pub async fn qr_decide(
        &self,
        auth: &Authenticated,
        id: &QrId,
        decision: Decision,
    ) -> Result<(), ApiError> {
        let scanner = scanner(auth);
        let now = self.clock.now();
        let to = match decision {
            Decision::Confirm => QrStatus::Confirmed,
            Decision::Deny => QrStatus::Denied,
        };
        let change = QrChange::Decide { by: &scanner, to };
        if self.store.change_qr_login(id.as_str(), change, now).await? {
            self.announce(id).await;
            tracing::info!(account = %auth.session.account.id, qr_login = %id.as_str(), ?decision, "scan login decided");
            return Ok(());
        }
        let row = self.store.qr_login(id.as_str()).await?;
        match refusal(row.as_ref(), &scanner, now) {
            // Still `pending`: this user never scanned it.
            ApiError::QrLoginUsed
                if row.as_ref().is_some_and(|r| r.status == QrStatus::Pending) =>
            {
                Err(ApiError::QrLoginNotScanned)
            }
            other => Err(other),
        }
    }

    /// Wakes the polls of `id`: here at once, and on other instances through the store. The change is committed
    /// either way; a lost announcement only delays another instance's poll to the end of its wait.
    async fn announce(&self, id: &QrId) {
        self.waiters.wake(id.as_str());
        if let Err(e) = self.store.announce_qr_login(id.as_str()).await {
            tracing::warn!(error = %e, "announcing a scan-login change failed");
        }
    }
}

fn scanner(auth: &Authenticated) -> Scanner {
    Scanner {
        appid: auth.session.identity.appid.clone(),
        openid: auth.session.identity.openid.clone(),
    }
}

/// Why a scan, confirm or deny by `scanner` changed nothing, from the row as it is now.
fn refusal(row: Option<&QrLoginRecord>, scanner: &Scanner, now: UnixTime) -> ApiError {
    match row {
        // A code of another app than the session's is not one this user could have scanned.
        None => ApiError::QrLoginNotFound,
        Some(row) if row.appid != scanner.appid => ApiError::QrLoginNotFound,
        Some(row) if matches!(row.status, QrStatus::Confirmed | QrStatus::Denied) => {
            ApiError::QrLoginUsed
        }
        Some(row) if row.expires_at <= now => ApiError::QrLoginExpired,
        // Scanned by someone else, or (for a decision) not scanned yet: see `qr_decide`.
        Some(_) => ApiError::QrLoginUsed,
    }
}
