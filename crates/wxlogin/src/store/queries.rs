//! Every statement the store runs, written once for both backends (SQLite 3.35+ and PostgreSQL both take `$N`
//! parameters, `ON CONFLICT`, `RETURNING`). Each statement is built by a function whose arguments are its
//! parameters in order, so the order lives in the signature, not in a comment.

use super::{
    AccountId, AccountRecord, AuditRecord, Candidate, IdentityId, IdentityRecord, Plan, Step,
    StoredPhone, TicketRecord, UnixTime,
};

/// One value bound to a statement.
#[derive(Clone, Debug)]
pub enum Arg {
    Int(i64),
    Text(String),
    OptText(Option<String>),
    Bytes(Vec<u8>),
    OptBytes(Option<Vec<u8>>),
}

/// SQL and its parameters.
#[derive(Clone, Debug)]
pub struct Query {
    pub sql: &'static str,
    pub args: Vec<Arg>,
}

fn query(sql: &'static str, args: Vec<Arg>) -> Query {
    Query { sql, args }
}

fn text(value: &str) -> Arg {
    Arg::Text(value.to_owned())
}

fn bytes(value: &[u8]) -> Arg {
    Arg::Bytes(value.to_vec())
}

/// A statement of a write, and what its row count must be.
#[derive(Clone, Debug)]
pub struct Statement {
    pub query: Query,
    pub expect: Expect,
}

impl Statement {
    /// A statement whose row count does not matter.
    pub(super) fn any(query: Query) -> Self {
        Self {
            query,
            expect: Expect::Any,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Any number of rows.
    Any,
    /// Exactly one row; none means another login changed what the plan was decided on.
    OneElseConflict,
    /// Exactly one row; none means the ticket is no longer live.
    OneElseTicketGone,
}

/// Which database a statement is for, where the SQL must differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

// ---- reads ----

/// The accounts a login may touch (see `Store::link_candidates`). One query: the three lookups use the primary
/// key and the two unique indexes.
pub(super) fn link_candidates(
    appid: &str,
    openid: &str,
    unionid: Option<&str>,
    phone_hash: Option<&[u8]>,
) -> Query {
    query(
        "SELECT a.id, a.unionid, a.phone_enc, a.phone_hash, a.phone_appid, a.phone_openid, a.created_at, a.updated_at, \
             (SELECT COUNT(*) FROM identities i WHERE i.account_id = a.id AND i.appid = $1 AND i.openid = $2) AS holds_identity, \
             (SELECT COUNT(*) FROM identities i WHERE i.account_id = a.id AND i.appid = $1) AS app_identities \
         FROM accounts a \
         WHERE a.id = (SELECT account_id FROM identities WHERE appid = $1 AND openid = $2) \
            OR a.unionid = $3 OR a.phone_hash = $4",
        vec![
            text(appid),
            text(openid),
            Arg::OptText(unionid.map(str::to_owned)),
            Arg::OptBytes(phone_hash.map(<[u8]>::to_vec)),
        ],
    )
}

/// An identity with its account (the columns of [`session`]).
pub(super) fn identity(appid: &str, openid: &str) -> Query {
    query(
        "SELECT a.id, a.unionid, a.phone_enc, a.phone_hash, a.phone_appid, a.phone_openid, a.created_at, a.updated_at, \
             i.id AS identity_id, i.appid, i.openid, i.created_at AS identity_created_at, i.updated_at AS identity_updated_at \
         FROM identities i JOIN accounts a ON a.id = i.account_id WHERE i.appid = $1 AND i.openid = $2",
        vec![text(appid), text(openid)],
    )
}

/// A live session of `appid`, with its identity and account.
pub(super) fn session(token_hash: &[u8; 32], now: UnixTime, appid: &str) -> Query {
    query(
        "SELECT a.id, a.unionid, a.phone_enc, a.phone_hash, a.phone_appid, a.phone_openid, a.created_at, a.updated_at, \
             i.id AS identity_id, i.appid, i.openid, i.created_at AS identity_created_at, i.updated_at AS identity_updated_at \
         FROM sessions s JOIN identities i ON i.id = s.identity_id JOIN accounts a ON a.id = i.account_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND i.appid = $3",
        vec![bytes(token_hash), Arg::Int(now), text(appid)],
    )
}

pub(super) fn delete_session(token_hash: &[u8; 32], appid: &str) -> Query {
    query(
        "DELETE FROM sessions WHERE token_hash = $1 \
         AND identity_id IN (SELECT id FROM identities WHERE appid = $2)",
        vec![bytes(token_hash), text(appid)],
    )
}

pub(super) fn account(id: &AccountId) -> Query {
    query(
        "SELECT a.id, a.unionid, a.phone_enc, a.phone_hash, a.phone_appid, a.phone_openid, a.created_at, a.updated_at \
         FROM accounts a WHERE a.id = $1",
        vec![text(id.as_str())],
    )
}

/// One account with a phone, any: to check the data key against what is stored.
pub(super) fn any_phone() -> Query {
    query(
        "SELECT a.id, a.unionid, a.phone_enc, a.phone_hash, a.phone_appid, a.phone_openid, a.created_at, a.updated_at \
         FROM accounts a WHERE a.phone_enc IS NOT NULL LIMIT 1",
        vec![],
    )
}

pub(super) fn identities(id: &AccountId) -> Query {
    query(
        "SELECT id AS identity_id, account_id, appid, openid, created_at AS identity_created_at, updated_at AS identity_updated_at \
         FROM identities WHERE account_id = $1 ORDER BY created_at, id",
        vec![text(id.as_str())],
    )
}

pub(super) fn audit(id: &AccountId) -> Query {
    query(
        "SELECT at, event, account_id, other_account, appid, subject, reason FROM audit_log \
         WHERE account_id = $1 OR other_account = $1 ORDER BY id",
        vec![text(id.as_str())],
    )
}

pub(super) fn count_accounts() -> Query {
    query("SELECT COUNT(*) FROM accounts", vec![])
}

pub(super) fn ping() -> Query {
    query("SELECT 1", vec![])
}

// ---- tickets ----

pub(super) fn insert_ticket(ticket: &super::NewTicket) -> Query {
    query(
        "INSERT INTO login_tickets (ticket_hash, appid, openid, unionid, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            bytes(&ticket.ticket_hash),
            text(&ticket.appid),
            text(&ticket.openid),
            Arg::OptText(ticket.unionid.clone()),
            Arg::Int(ticket.now),
            Arg::Int(ticket.expires_at),
        ],
    )
}

/// Takes the ticket for one request: only a live ticket of this app that nobody holds (or whose holder's lease
/// ran out, e.g. the instance crashed) comes back.
pub(super) fn reserve_ticket(
    ticket_hash: &[u8; 32],
    now: UnixTime,
    until: UnixTime,
    appid: &str,
) -> Query {
    query(
        "UPDATE login_tickets SET reserved_until = $3 \
         WHERE ticket_hash = $1 AND expires_at > $2 AND reserved_until <= $2 AND appid = $4 \
         RETURNING appid, openid, unionid, expires_at",
        vec![
            bytes(ticket_hash),
            Arg::Int(now),
            Arg::Int(until),
            text(appid),
        ],
    )
}

/// Is the ticket live (then a failed reservation means another request holds it)?
pub(super) fn ticket_live(ticket_hash: &[u8; 32], now: UnixTime, appid: &str) -> Query {
    query(
        "SELECT COUNT(*) FROM login_tickets WHERE ticket_hash = $1 AND expires_at > $2 AND appid = $3",
        vec![bytes(ticket_hash), Arg::Int(now), text(appid)],
    )
}

/// Gives the ticket back after a failure that was not the phone code's (WeChat busy, …).
pub(super) fn release_ticket(ticket_hash: &[u8; 32]) -> Query {
    query(
        "UPDATE login_tickets SET reserved_until = 0 WHERE ticket_hash = $1",
        vec![bytes(ticket_hash)],
    )
}

/// Gives the ticket back after WeChat refused the phone code; answers the failures so far.
pub(super) fn fail_ticket(ticket_hash: &[u8; 32]) -> Query {
    query(
        "UPDATE login_tickets SET reserved_until = 0, failures = failures + 1 \
         WHERE ticket_hash = $1 RETURNING CAST(failures AS BIGINT)",
        vec![bytes(ticket_hash)],
    )
}

pub(super) fn delete_ticket(ticket_hash: &[u8; 32]) -> Query {
    query(
        "DELETE FROM login_tickets WHERE ticket_hash = $1",
        vec![bytes(ticket_hash)],
    )
}

// ---- meta and upkeep ----

pub(super) fn meta_get(name: &str) -> Query {
    query("SELECT value FROM meta WHERE name = $1", vec![text(name)])
}

/// A first writer wins; later ones read its value back.
pub(super) fn meta_insert(name: &str, value: &[u8]) -> Query {
    query(
        "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        vec![text(name), bytes(value)],
    )
}

pub(super) fn purge(now: UnixTime) -> Vec<Statement> {
    [
        "DELETE FROM sessions WHERE expires_at <= $1",
        "DELETE FROM login_tickets WHERE expires_at <= $1",
    ]
    .into_iter()
    .map(|sql| Statement {
        query: query(sql, vec![Arg::Int(now)]),
        expect: Expect::Any,
    })
    .collect()
}

// ---- a plan's writes ----

/// The statements that write `plan`, in order.
pub(super) fn plan(plan: &Plan, dialect: Dialect) -> Vec<Statement> {
    let mut out = Vec::with_capacity(plan.steps.len() + 1);
    for step in &plan.steps {
        step_statements(step, plan.now, dialect, &mut out);
    }
    out
}

fn step_statements(step: &Step, now: UnixTime, dialect: Dialect, out: &mut Vec<Statement>) {
    let one = |query| Statement {
        query,
        expect: Expect::OneElseConflict,
    };
    let any = |query| Statement {
        query,
        expect: Expect::Any,
    };
    match step {
        Step::ConsumeTicket { ticket_hash } => out.push(Statement {
            query: query(
                "DELETE FROM login_tickets WHERE ticket_hash = $1 AND expires_at > $2",
                vec![bytes(ticket_hash), Arg::Int(now)],
            ),
            expect: Expect::OneElseTicketGone,
        }),
        Step::CreateAccount { id, unionid, phone } => out.push(one(query(
            "INSERT INTO accounts (id, unionid, phone_enc, phone_hash, phone_appid, phone_openid, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            vec![
                text(id.as_str()),
                Arg::OptText(unionid.clone()),
                Arg::OptBytes(phone.as_ref().map(|p| p.enc.clone())),
                Arg::OptBytes(phone.as_ref().map(|p| p.hash.clone())),
                Arg::OptText(phone.as_ref().map(|p| p.appid.clone())),
                Arg::OptText(phone.as_ref().map(|p| p.openid.clone())),
                Arg::Int(now),
            ],
        ))),
        Step::CreateIdentity {
            account,
            appid,
            openid,
        } => out.push(one(query(
            "INSERT INTO identities (account_id, appid, openid, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
            vec![text(account.as_str()), text(appid), text(openid), Arg::Int(now)],
        ))),
        Step::SetUnionid { account, unionid } => out.push(one(query(
            "UPDATE accounts SET unionid = $2, updated_at = $3 WHERE id = $1 AND unionid IS NULL",
            vec![text(account.as_str()), text(unionid), Arg::Int(now)],
        ))),
        Step::SetPhone { account, phone } => out.push(one(query(
            "UPDATE accounts SET phone_enc = $2, phone_hash = $3, phone_appid = $4, phone_openid = $5, updated_at = $6 \
             WHERE id = $1",
            vec![
                text(account.as_str()),
                bytes(&phone.enc),
                bytes(&phone.hash),
                text(&phone.appid),
                text(&phone.openid),
                Arg::Int(now),
            ],
        ))),
        Step::TakePhone { from, hash } => {
            out.push(one(query(
                "UPDATE accounts SET phone_enc = NULL, phone_hash = NULL, phone_appid = NULL, phone_openid = NULL, \
                 updated_at = $3 WHERE id = $1 AND phone_hash = $2",
                vec![text(from.as_str()), bytes(hash), Arg::Int(now)],
            )));
            out.push(any(query(
                "DELETE FROM sessions WHERE identity_id IN (SELECT id FROM identities WHERE account_id = $1)",
                vec![text(from.as_str())],
            )));
        }
        Step::Merge { from, into } => {
            out.push(any(query(
                "UPDATE identities SET account_id = $2, updated_at = $3 WHERE account_id = $1",
                vec![text(from.as_str()), text(into.as_str()), Arg::Int(now)],
            )));
            // Deleted before `into` takes its unionid or phone: both are unique.
            out.push(one(query(
                "DELETE FROM accounts WHERE id = $1",
                vec![text(from.as_str())],
            )));
        }
        Step::Session {
            appid,
            openid,
            token_hash,
            expires_at,
            require_phone,
        } => {
            // PostgreSQL: FOR SHARE makes a concurrent phone move either wait for this session (and then end it)
            // or be seen by it (and then no row: the login decides again). SQLite writes one at a time.
            let sql = match (dialect, require_phone) {
                (Dialect::Postgres, true) => {
                    "INSERT INTO sessions (token_hash, identity_id, created_at, expires_at) \
                     SELECT $1, i.id, $2, $3 FROM identities i JOIN accounts a ON a.id = i.account_id \
                     WHERE i.appid = $4 AND i.openid = $5 AND a.phone_hash IS NOT NULL FOR SHARE OF a"
                }
                (Dialect::Sqlite, true) => {
                    "INSERT INTO sessions (token_hash, identity_id, created_at, expires_at) \
                     SELECT $1, i.id, $2, $3 FROM identities i JOIN accounts a ON a.id = i.account_id \
                     WHERE i.appid = $4 AND i.openid = $5 AND a.phone_hash IS NOT NULL"
                }
                (_, false) => {
                    "INSERT INTO sessions (token_hash, identity_id, created_at, expires_at) \
                     SELECT $1, i.id, $2, $3 FROM identities i WHERE i.appid = $4 AND i.openid = $5"
                }
            };
            out.push(one(query(
                sql,
                vec![
                    bytes(token_hash),
                    Arg::Int(now),
                    Arg::Int(*expires_at),
                    text(appid),
                    text(openid),
                ],
            )));
        }
        Step::Audit(record) => out.push(any(query(
            "INSERT INTO audit_log (at, event, account_id, other_account, appid, subject, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                Arg::Int(record.at),
                Arg::Text(<&'static str>::from(record.event).to_owned()),
                text(record.account_id.as_str()),
                Arg::OptText(record.other_account.as_ref().map(|a| a.as_str().to_owned())),
                Arg::OptText(record.appid.clone()),
                Arg::OptBytes(record.subject.clone()),
                Arg::OptText(record.reason.clone()),
            ],
        ))),
    }
}

/// [`super::Store::quick_login`]: an account and identity only if nobody has the identity, the phone or the
/// unionid; then a session only if the identity's account holds the phone (and the unionid, when WeChat sent one).
/// The session statement must change one row, else nothing is written.
pub(super) fn quick_login(
    login: &super::QuickLogin,
    now: UnixTime,
    dialect: Dialect,
) -> Vec<Statement> {
    let mut out = Vec::with_capacity(4);
    if let Some(ticket_hash) = &login.ticket_hash {
        step_statements(
            &Step::ConsumeTicket {
                ticket_hash: *ticket_hash,
            },
            now,
            dialect,
            &mut out,
        );
    }
    out.push(Statement::any(query(
        "INSERT INTO accounts (id, unionid, phone_enc, phone_hash, phone_appid, phone_openid, created_at, updated_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $7 \
         WHERE NOT EXISTS (SELECT 1 FROM identities WHERE appid = $5 AND openid = $6) \
         AND NOT EXISTS (SELECT 1 FROM accounts WHERE phone_hash = $4) \
         AND ($2 IS NULL OR NOT EXISTS (SELECT 1 FROM accounts WHERE unionid = $2))",
        vec![
            text(login.new_account.as_str()),
            Arg::OptText(login.unionid.clone()),
            bytes(&login.phone.enc),
            bytes(&login.phone.hash),
            text(&login.appid),
            text(&login.openid),
            Arg::Int(now),
        ],
    )));
    out.push(Statement::any(query(
        "INSERT INTO identities (account_id, appid, openid, created_at, updated_at) \
         SELECT $1, $2, $3, $4, $4 WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $1)",
        vec![
            text(login.new_account.as_str()),
            text(&login.appid),
            text(&login.openid),
            Arg::Int(now),
        ],
    )));
    let sql = match dialect {
        Dialect::Postgres => {
            "INSERT INTO sessions (token_hash, identity_id, created_at, expires_at) \
             SELECT $1, i.id, $2, $3 FROM identities i JOIN accounts a ON a.id = i.account_id \
             WHERE i.appid = $4 AND i.openid = $5 AND a.phone_hash = $6 AND (a.unionid = $7 OR $7 IS NULL) \
             FOR SHARE OF a"
        }
        Dialect::Sqlite => {
            "INSERT INTO sessions (token_hash, identity_id, created_at, expires_at) \
             SELECT $1, i.id, $2, $3 FROM identities i JOIN accounts a ON a.id = i.account_id \
             WHERE i.appid = $4 AND i.openid = $5 AND a.phone_hash = $6 AND (a.unionid = $7 OR $7 IS NULL)"
        }
    };
    out.push(Statement {
        query: query(
            sql,
            vec![
                bytes(&login.token_hash),
                Arg::Int(now),
                Arg::Int(login.expires_at),
                text(&login.appid),
                text(&login.openid),
                bytes(&login.phone.hash),
                Arg::OptText(login.unionid.clone()),
            ],
        ),
        expect: Expect::OneElseConflict,
    });
    out
}

// ---- rows ----

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
