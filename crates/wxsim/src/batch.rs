//! Bulk minting for load tests: many users with codes, or fresh codes for known users, in one call.
//!
//! Phone codes minted here spend no phone-verification quota (quota.rs): a load test of 100,000 logins would
//! otherwise have to buy packs first, and what it measures is the service, not the bill. Button taps
//! (`POST /phone-code`) do spend.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::ids;
use crate::state::{Inner, NewUser, User};

/// Most users or openids one batch may name.
pub const MAX_BATCH: usize = 100_000;

/// Which codes a batch mints for existing users.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeKind {
    Login,
    Phone,
    #[default]
    Both,
}

/// What `POST /batch` takes: either `count` (new users with random mainland phones, each with one login and one
/// phone code) or `openids` (fresh codes of `kind`, default both, for existing users).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchRequest {
    #[serde(default)]
    pub count: Option<u64>,
    /// With `count`: the app of the new users (default: the first app).
    #[serde(default)]
    pub appid: Option<String>,
    #[serde(default)]
    pub openids: Option<Vec<String>>,
    #[serde(default)]
    pub kind: Option<CodeKind>,
}

/// One user of a batch and the codes minted for it (`null` when not asked for).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItem {
    pub openid: String,
    pub phone_number: String,
    pub login_code: Option<String>,
    pub phone_code: Option<String>,
}

impl Inner {
    pub(crate) fn batch(self: &Arc<Self>, req: BatchRequest) -> Result<Vec<BatchItem>, SimError> {
        match (req.count, req.openids) {
            (Some(count), None) => {
                if req.kind.is_some() {
                    return Err(SimError::InvalidRequest(
                        "kind goes with openids, not with count".into(),
                    ));
                }
                self.batch_new_users(count, req.appid)
            }
            (None, Some(openids)) => {
                if req.appid.is_some() {
                    return Err(SimError::InvalidRequest(
                        "appid goes with count, not with openids (an openid names its app)".into(),
                    ));
                }
                self.batch_codes(&openids, req.kind.unwrap_or_default())
            }
            _ => Err(SimError::InvalidRequest(
                "give either count or openids".into(),
            )),
        }
    }

    fn batch_new_users(
        self: &Arc<Self>,
        count: u64,
        appid: Option<String>,
    ) -> Result<Vec<BatchItem>, SimError> {
        let count = usize::try_from(count)
            .ok()
            .filter(|n| (1..=MAX_BATCH).contains(n))
            .ok_or_else(|| SimError::InvalidRequest(format!("count must be 1 to {MAX_BATCH}")))?;
        let mut request = NewUser {
            appid,
            phone_number: String::new(),
            country_code: None,
        };
        let mut items = Vec::with_capacity(count);
        while items.len() < count {
            request.phone_number = ids::random_mainland_phone();
            let (user, created) = self.create_user(&request)?;
            // A random phone that already has a user is drawn again: the batch's users are all new.
            if created {
                items.push(self.item(&user, CodeKind::Both));
            }
        }
        Ok(items)
    }

    fn batch_codes(
        self: &Arc<Self>,
        openids: &[String],
        kind: CodeKind,
    ) -> Result<Vec<BatchItem>, SimError> {
        if openids.len() > MAX_BATCH {
            return Err(SimError::InvalidRequest(format!(
                "at most {MAX_BATCH} openids"
            )));
        }
        // All or nothing: every openid is checked before any code is minted.
        let users = openids
            .iter()
            .map(|o| self.user(o))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(users.iter().map(|u| self.item(u, kind)).collect())
    }

    fn item(self: &Arc<Self>, user: &Arc<User>, kind: CodeKind) -> BatchItem {
        let login = matches!(kind, CodeKind::Login | CodeKind::Both);
        let phone = matches!(kind, CodeKind::Phone | CodeKind::Both);
        BatchItem {
            openid: user.openid.clone(),
            phone_number: user.phone.number(),
            login_code: login.then(|| self.mint_login_code(user).code),
            phone_code: phone.then(|| self.mint_phone_code(user, None).code),
        }
    }
}
