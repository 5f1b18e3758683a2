//! What a token opens, and how a session goes on and ends: the session behind a Bearer token (an access token, or
//! an opaque token of an earlier release), the refresh that rotates its refresh token, logout and revocation, and
//! the live-session check behind forward auth and introspection.
//!
//! An access token's signature says whom it was minted for; whether its session still lives is the store's to
//! say. Our routes ask the store every time; forward auth and introspection, which a backend may call on every
//! request, remember a live session for [`LIVE_FOR`] at most, so a logout on another instance reaches them
//! within that.

use super::land::Who;
use super::{Logins, Me};
use crate::access::jwt::{AccessClaims, Subject};
use crate::api::error::ApiError;
use crate::logins::apps::App;
use crate::store::{Rotation, RotationOutcome, SessionKeys, SessionRecord, UnixTime};
use crate::tokens::{Bearer, RefreshToken, SessionId};
use std::sync::Arc;
use std::time::Duration;

/// The longest a live session is remembered by forward auth and introspection (per instance).
pub const LIVE_FOR: Duration = Duration::from_millis(500);

/// A session a Bearer token opened.
pub struct Authenticated {
    pub app: Arc<App>,
    pub session: SessionRecord,
    /// What the session is stored under (to end it).
    pub keys: SessionKeys,
    /// The access token's claims; `None` for an opaque token of an earlier release.
    pub claims: Option<Arc<AccessClaims>>,
}

/// A live session as forward auth and introspection answer it.
pub struct Live {
    pub session: SessionRecord,
    /// In clear, only when `forward_auth_phone` asks for it.
    pub phone: Option<String>,
}

/// What [`Logins::live`] found.
pub struct Checked {
    pub live: Arc<Live>,
    /// `None` for an opaque token of an earlier release.
    pub claims: Option<Arc<AccessClaims>>,
    pub keys: SessionKeys,
}

/// A refresh: the session's next refresh token and a new access token.
pub struct Refreshed {
    pub logged_in_as: SessionRecord,
    pub access_token: String,
    pub expires_in: Duration,
    pub refresh_token: RefreshToken,
    pub refresh_expires_in: Duration,
}

impl Logins {
    /// The live session behind a Bearer token, or 401. An access token names its app (`azp`), which this
    /// instance must serve; an opaque token is looked up in the app the request names (`app_named`).
    pub async fn authenticate<'a>(
        &'a self,
        bearer: &Bearer,
        app_named: impl FnOnce() -> Result<&'a Arc<App>, ApiError>,
    ) -> Result<Authenticated, ApiError> {
        let now = self.clock.now();
        let (app, keys, claims) = match bearer {
            Bearer::Access(token) => {
                let claims = self.verify_access(token, now).await?;
                let (app, keys) = self.session_of(&claims)?;
                // A request that names another app than the token's is refused, as for an opaque token: a token
                // belongs to its app. Naming none (several apps) is fine: the token says which.
                match app_named() {
                    Ok(named) if named.appid != app.appid => return Err(ApiError::Unauthorized),
                    Ok(_) | Err(ApiError::AppRequired) => {}
                    Err(other) => return Err(other),
                }
                (app.clone(), keys, Some(claims))
            }
            Bearer::Opaque(token) => (app_named()?.clone(), token.lookup(), None),
        };
        let session = self
            .store
            .session(&keys, app.appid.as_str(), now)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Authenticated {
            app,
            session,
            keys,
            claims,
        })
    }

    /// `/auth/verify` and introspection: the live session behind a Bearer token (an access token's remembered
    /// for [`LIVE_FOR`]), its claims, and what it is stored under.
    pub async fn live(&self, bearer: &Bearer) -> Result<Checked, ApiError> {
        let now = self.clock.now();
        let token = match bearer {
            Bearer::Access(token) => token,
            Bearer::Opaque(token) => {
                // An opaque token of an earlier release names no app: it is whichever served app holds it.
                let keys = token.lookup();
                for app in self.apps.iter() {
                    let found = self.store.session(&keys, app.appid.as_str(), now).await?;
                    if let Some(session) = found {
                        let live = Arc::new(self.live_of(session)?);
                        return Ok(Checked {
                            live,
                            claims: None,
                            keys,
                        });
                    }
                }
                return Err(ApiError::Unauthorized);
            }
        };
        let claims = self.verify_access(token, now).await?;
        let (app, keys) = self.session_of(&claims)?;
        if let Some(live) = self.live.get(&keys.key) {
            return Ok(Checked {
                live,
                claims: Some(claims),
                keys,
            });
        }
        let session = self
            .store
            .session(&keys, app.appid.as_str(), now)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let live = Arc::new(self.live_of(session)?);
        self.live.insert(keys.key, live.clone());
        Ok(Checked {
            live,
            claims: Some(claims),
            keys,
        })
    }

    fn live_of(&self, session: SessionRecord) -> Result<Live, ApiError> {
        let phone = match (&session.account.phone, self.policy.forward_phone) {
            (Some(phone), true) => Some(self.open_phone(phone)?),
            _ => None,
        };
        Ok(Live { session, phone })
    }

    /// `/api/v1/me` and `/oauth2/userinfo`: the account behind the session, with every identity.
    pub async fn me(&self, auth: Authenticated) -> Result<Me, ApiError> {
        let phone = match &auth.session.account.phone {
            Some(phone) => Some(self.open_phone(phone)?),
            None => None,
        };
        let identities = self.store.identities(&auth.session.account.id).await?;
        Ok(Me {
            session: auth.session,
            phone,
            identities,
        })
    }

    /// `/api/v1/logout`: the session ends at once for every token of it (its refresh token, its access tokens
    /// on our routes and, within [`LIVE_FOR`], forward auth and introspection on every instance).
    pub async fn logout(&self, auth: &Authenticated) -> Result<(), ApiError> {
        let ended = self
            .store
            .delete_session(&auth.keys, auth.app.appid.as_str())
            .await?;
        self.live.invalidate(&auth.keys.key);
        ended.then_some(()).ok_or(ApiError::Unauthorized)
    }

    /// `/api/v1/refresh` and the refresh grant: the session's next refresh token and a new access token. The
    /// presented token stops working; presented again, it ends the session (`refresh_reused`).
    pub async fn refresh(&self, presented: &RefreshToken) -> Result<Refreshed, ApiError> {
        let now = self.clock.now();
        let sid = presented.session();
        let next = RefreshToken::next(sid);
        let rotation = Rotation {
            session: sid.0,
            presented: presented.secret_hash(),
            next: next.secret_hash(),
            expires_at: now + self.policy.refresh_ttl.as_secs() as i64,
            now,
            // A session of an app this instance does not serve is not touched (a token belongs to its app).
            apps: self
                .apps
                .iter()
                .map(|app| app.appid.as_str().to_owned())
                .collect(),
        };
        let session = match self.store.rotate_refresh(rotation).await? {
            RotationOutcome::Rotated(session) => *session,
            RotationOutcome::Reused => {
                self.live.invalidate(&sid.0);
                tracing::warn!(sid = ?sid, "a rotated refresh token was presented again: its session is ended");
                return Err(ApiError::RefreshReused);
            }
            RotationOutcome::Invalid => return Err(ApiError::RefreshInvalid),
        };
        let who = Who {
            account: session.account.id.clone(),
            appid: &session.identity.appid,
            openid: &session.identity.openid,
            unionid: session.account.unionid.as_deref(),
        };
        let access_token = self.mint(&who, sid, now)?;
        Ok(Refreshed {
            access_token,
            expires_in: self.access.policy.access_ttl,
            refresh_token: next,
            refresh_expires_in: self
                .policy
                .refresh_ttl
                .min(self.policy.refresh_absolute_ttl),
            logged_in_as: session,
        })
    }

    /// `/oauth2/revoke` (RFC 7009): ends the session of a refresh token or an access token. An unknown, expired or
    /// foreign token changes nothing and is no error (§2.2).
    pub async fn revoke(&self, token: &str) -> Result<(), ApiError> {
        if let Some(refresh) = RefreshToken::parse(token) {
            let sid = refresh.session();
            // Only the holder of the current secret ends the session: the sid alone is in every access token.
            self.store
                .end_session_with_refresh(&sid.0, &refresh.secret_hash())
                .await?;
            self.live.invalidate(&sid.0);
            return Ok(());
        }
        let Some(bearer) = Bearer::parse(token) else {
            return Ok(());
        };
        match self.live(&bearer).await {
            Ok(checked) => {
                let appid = &checked.live.session.identity.appid;
                self.store.delete_session(&checked.keys, appid).await?;
                self.live.invalidate(&checked.keys.key);
                Ok(())
            }
            Err(ApiError::Unauthorized) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// An access token for a session.
    pub(super) fn mint(
        &self,
        who: &Who<'_>,
        sid: SessionId,
        now: UnixTime,
    ) -> Result<String, ApiError> {
        let subject = Subject {
            account_id: who.account.as_str(),
            appid: who.appid,
            openid: who.openid,
            unionid: who.unionid,
            sid: sid.to_claim(),
        };
        self.access.mint(subject, now).map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            ApiError::Internal
        })
    }

    async fn verify_access(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<Arc<AccessClaims>, ApiError> {
        self.access.verify(token, now).await.map_err(|why| {
            tracing::debug!(?why, "access token refused");
            ApiError::Unauthorized
        })
    }

    /// The app and session an access token names; the app must be one of ours.
    fn session_of(&self, claims: &AccessClaims) -> Result<(&Arc<App>, SessionKeys), ApiError> {
        let app = self.apps.get(&claims.azp).ok_or(ApiError::Unauthorized)?;
        let sid = SessionId::from_claim(&claims.sid).ok_or(ApiError::Unauthorized)?;
        Ok((app, sid.lookup()))
    }
}
