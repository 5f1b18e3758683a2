//! The bodies the API answers, as types: what a client can rely on.

use crate::logins::{LoggedIn, Me};
use serde::Serialize;
use utoipa::ToSchema;

/// `{"code":0,"msg":"success","data":…}`: every success.
#[derive(Serialize, ToSchema)]
pub struct Success<T> {
    /// Always 0.
    pub code: i32,
    /// `"success"`.
    #[schema(value_type = String)]
    pub msg: &'static str,
    pub data: T,
}

impl<T: Serialize> Success<T> {
    pub fn new(data: T) -> axum::Json<Self> {
        axum::Json(Self {
            code: 0,
            msg: "success",
            data,
        })
    }
}

/// A logged-in user: a new session on an account.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionAnswer {
    /// `"ok"` on the v1 routes; absent on `/api/getPhone`, whose answer stays exactly the seed's.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable = false)]
    pub status: Option<&'static str>,
    pub account_id: String,
    pub appid: String,
    /// WeChat's `phoneNumber`.
    pub phone: String,
    pub openid: String,
    pub token: String,
    pub expires_in: u64,
}

impl SessionAnswer {
    pub fn v1(logged_in: LoggedIn) -> Self {
        Self::with_status(Some("ok"), logged_in)
    }

    /// The seed's answer has no status field.
    pub fn seed(logged_in: LoggedIn) -> Self {
        Self::with_status(None, logged_in)
    }

    fn with_status(status: Option<&'static str>, l: LoggedIn) -> Self {
        Self {
            status,
            account_id: l.account_id.as_str().to_owned(),
            appid: l.appid,
            phone: l.phone,
            openid: l.openid,
            token: l.token.expose().to_owned(),
            expires_in: l.expires_in.as_secs(),
        }
    }
}

/// `/api/v1/login` for someone we cannot log in yet.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneRequiredAnswer {
    /// `"phone_required"`.
    #[schema(value_type = String)]
    pub status: &'static str,
    pub ticket: String,
    pub expires_in: u64,
}

/// `/api/v1/login`: logged in, or the phone step comes next.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    LoggedIn(SessionAnswer),
    PhoneRequired(PhoneRequiredAnswer),
}

/// One WeChat user of the account in one app.
#[derive(Serialize, ToSchema)]
pub struct IdentityAnswer {
    pub appid: String,
    pub openid: String,
}

/// `/api/v1/me`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeAnswer {
    pub account_id: String,
    /// The app and WeChat user of this session.
    pub appid: String,
    pub openid: String,
    pub unionid: Option<String>,
    /// Masked (`138****8000`); `null` after the phone moved to another account.
    pub phone: Option<String>,
    pub identities: Vec<IdentityAnswer>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Me> for MeAnswer {
    fn from(me: Me) -> Self {
        let account = me.session.account;
        Self {
            account_id: account.id.as_str().to_owned(),
            appid: me.session.identity.appid,
            openid: me.session.identity.openid,
            unionid: account.unionid,
            phone: me.phone.as_deref().map(weixin::mask_phone),
            identities: me
                .identities
                .into_iter()
                .map(|i| IdentityAnswer {
                    appid: i.appid,
                    openid: i.openid,
                })
                .collect(),
            created_at: account.created_at,
            updated_at: account.updated_at,
        }
    }
}

/// `{}`: a success with nothing to say (logout).
#[derive(Serialize, ToSchema)]
pub struct Empty {}
