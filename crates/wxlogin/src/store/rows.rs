//! Rows as both drivers decode them, and the records they become.

use super::{
    AccountId, AccountRecord, AuditRecord, Candidate, IdentityId, IdentityRecord, StoredPhone,
    TicketRecord,
};

/// An `accounts` row.
#[derive(sqlx::FromRow)]
pub(super) struct AccountRow {
    id: String,
    unionid: Option<String>,
    phone_enc: Option<Vec<u8>>,
    phone_hash: Option<Vec<u8>>,
    phone_appid: Option<String>,
    phone_openid: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<AccountRow> for AccountRecord {
    fn from(row: AccountRow) -> Self {
        let phone = match (
            row.phone_enc,
            row.phone_hash,
            row.phone_appid,
            row.phone_openid,
        ) {
            (Some(enc), Some(hash), Some(appid), Some(openid)) => Some(StoredPhone {
                enc,
                hash,
                appid,
                openid,
            }),
            // The table's CHECK constraints keep the four columns all set or all NULL.
            _ => None,
        };
        AccountRecord {
            id: AccountId(row.id),
            unionid: row.unionid,
            phone,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CandidateRow {
    #[sqlx(flatten)]
    account: AccountRow,
    holds_identity: i64,
    app_identities: i64,
}

impl From<CandidateRow> for Candidate {
    fn from(row: CandidateRow) -> Self {
        Candidate {
            account: row.account.into(),
            holds_identity: row.holds_identity > 0,
            has_app_identity: row.app_identities > 0,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct IdentityRow {
    identity_id: i64,
    account_id: String,
    appid: String,
    openid: String,
    identity_created_at: i64,
    identity_updated_at: i64,
}

impl From<IdentityRow> for IdentityRecord {
    fn from(row: IdentityRow) -> Self {
        IdentityRecord {
            id: IdentityId(row.identity_id),
            account_id: AccountId(row.account_id),
            appid: row.appid,
            openid: row.openid,
            created_at: row.identity_created_at,
            updated_at: row.identity_updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    #[sqlx(flatten)]
    account: AccountRow,
    identity_id: i64,
    appid: String,
    openid: String,
    identity_created_at: i64,
    identity_updated_at: i64,
}

impl From<SessionRow> for super::SessionRecord {
    fn from(row: SessionRow) -> Self {
        let account = AccountRecord::from(row.account);
        super::SessionRecord {
            identity: IdentityRecord {
                id: IdentityId(row.identity_id),
                account_id: account.id.clone(),
                appid: row.appid,
                openid: row.openid,
                created_at: row.identity_created_at,
                updated_at: row.identity_updated_at,
            },
            account,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct TicketRow {
    appid: String,
    openid: String,
    unionid: Option<String>,
    expires_at: i64,
}

impl From<TicketRow> for TicketRecord {
    fn from(row: TicketRow) -> Self {
        TicketRecord {
            appid: row.appid,
            openid: row.openid,
            unionid: row.unionid,
            expires_at: row.expires_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    at: i64,
    event: String,
    account_id: String,
    other_account: Option<String>,
    appid: Option<String>,
    subject: Option<Vec<u8>>,
    reason: Option<String>,
}

impl TryFrom<AuditRow> for AuditRecord {
    type Error = super::StoreError;

    fn try_from(row: AuditRow) -> Result<Self, Self::Error> {
        let event = row.event.parse().map_err(|_| {
            super::StoreError::Database(sqlx::Error::Decode(
                format!("unknown audit event {:?}", row.event).into(),
            ))
        })?;
        Ok(AuditRecord {
            at: row.at,
            event,
            account_id: AccountId(row.account_id),
            other_account: row.other_account.map(AccountId),
            appid: row.appid,
            subject: row.subject,
            reason: row.reason,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct SigningKeyRow {
    generation: i64,
    kid: String,
    private_key_enc: Vec<u8>,
    public_jwk: String,
    created_at: i64,
}

impl From<SigningKeyRow> for super::SigningKeyRecord {
    fn from(row: SigningKeyRow) -> Self {
        super::SigningKeyRecord {
            generation: row.generation,
            kid: row.kid,
            private_key_enc: row.private_key_enc,
            public_jwk: row.public_jwk,
            created_at: row.created_at,
        }
    }
}
