//! The statements that write a plan's steps (and a quick login), each step's SQL beside the step it writes.

use super::queries::{Arg, Dialect, Expect, Statement, bytes, query, text};
use super::{Holder, Plan, QuickLogin, Refresh, Rotation, SigningKeyRecord, Step, UnixTime};

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
            identity,
            token_hash,
            expires_at,
            require_phone,
            refresh,
        } => {
            let (sql, key) = session_sql(identity, *require_phone, dialect);
            let mut args = vec![bytes(token_hash), Arg::Int(now), Arg::Int(*expires_at)];
            args.extend(refresh_args(refresh.as_ref()));
            args.extend(key);
            out.push(one(query(sql, args)));
        }
        Step::ClaimQrLogin {
            id,
            collectable_after,
        } => out.push(Statement {
            query: super::qr::claim(id, now, *collectable_after),
            expect: Expect::OneElseQrCollected,
        }),
        Step::EndSessions { account } => super::privacy::end_sessions(account, out),
        Step::RemovePhone { account } => super::privacy::remove_phone(account, now, out),
        Step::DeleteIdentity { id } => super::privacy::delete_identity(*id, out),
        Step::DeleteAccount {
            account,
            identities,
        } => super::privacy::delete_account(account, *identities, now, out),
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

/// A session's refresh columns (`$4`, `$5`): the secret's hash and the absolute end.
fn refresh_args(refresh: Option<&Refresh>) -> [Arg; 2] {
    [
        Arg::OptBytes(refresh.map(|r| r.secret_hash.to_vec())),
        Arg::OptInt(refresh.map(|r| r.ends_at)),
    ]
}

/// A session's insert: the identity by `(appid, openid)` (`$6`, `$7`) or by id (`$6`), and with `require_phone`
/// only if its account holds a phone. PostgreSQL: FOR SHARE makes a concurrent phone move either wait for this
/// session (and then end it) or be seen by it (and then no row: the login decides again). SQLite writes one at a
/// time.
fn session_sql(
    identity: &Holder,
    require_phone: bool,
    dialect: Dialect,
) -> (&'static str, Vec<Arg>) {
    macro_rules! insert {
        ($key:literal, $tail:literal) => {
            concat!(
                "INSERT INTO sessions (token_hash, identity_id, created_at, expires_at, refresh_hash, ends_at) ",
                "SELECT $1, i.id, $2, $3, $4, $5 ",
                "FROM identities i JOIN accounts a ON a.id = i.account_id WHERE ",
                $key,
                $tail
            )
        };
    }
    macro_rules! with_phone {
        ($key:literal) => {
            match dialect {
                Dialect::Postgres => insert!($key, " AND a.phone_hash IS NOT NULL FOR SHARE OF a"),
                Dialect::Sqlite => insert!($key, " AND a.phone_hash IS NOT NULL"),
            }
        };
    }
    match (identity, require_phone) {
        (Holder::Named { appid, openid }, true) => (
            with_phone!("i.appid = $6 AND i.openid = $7"),
            vec![text(appid), text(openid)],
        ),
        (Holder::Named { appid, openid }, false) => (
            insert!("i.appid = $6 AND i.openid = $7", ""),
            vec![text(appid), text(openid)],
        ),
        (Holder::Id(id), true) => (with_phone!("i.id = $6"), vec![Arg::Int(id.0)]),
        (Holder::Id(id), false) => (insert!("i.id = $6", ""), vec![Arg::Int(id.0)]),
    }
}

/// [`super::Store::quick_login`]: an account and identity only if nobody has the identity, the phone or the
/// unionid (the last two are unique: the insert does nothing rather than fail); then a session only if the identity's account holds the phone (and the unionid, when WeChat sent one).
/// The session statement must change one row, else nothing is written.
/// The statements of a quick login, and which of them creates the account (one row: a new person).
pub(super) fn quick_login(
    login: &QuickLogin,
    now: UnixTime,
    dialect: Dialect,
) -> (Vec<Statement>, usize) {
    let mut out = Vec::with_capacity(5);
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
    // Counted: one row means a new account (and identity) was created.
    let account_row = out.len();
    out.push(Statement::counted(query(
        "INSERT INTO accounts (id, unionid, phone_enc, phone_hash, phone_appid, phone_openid, created_at, updated_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $7 \
         WHERE NOT EXISTS (SELECT 1 FROM identities WHERE appid = $5 AND openid = $6) \
         ON CONFLICT DO NOTHING",
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
    // The account id is new for every login: it exists only if the statement above just created it.
    out.push(Statement::any(query(
        "INSERT INTO audit_log (at, event, account_id, appid, subject, reason) \
         SELECT $1, 'account_created', $2, $3, $4, 'login' WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $2)",
        vec![
            Arg::Int(now),
            text(login.new_account.as_str()),
            text(&login.appid),
            bytes(&login.subject),
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
    let refresh = refresh_args(login.refresh.as_ref());
    let sql = match dialect {
        Dialect::Postgres => {
            "INSERT INTO sessions (token_hash, identity_id, created_at, expires_at, refresh_hash, ends_at) \
             SELECT $1, i.id, $2, $3, $8, $9 FROM identities i JOIN accounts a ON a.id = i.account_id \
             WHERE i.appid = $4 AND i.openid = $5 AND a.phone_hash = $6 AND (a.unionid = $7 OR $7 IS NULL) \
             FOR SHARE OF a"
        }
        Dialect::Sqlite => {
            "INSERT INTO sessions (token_hash, identity_id, created_at, expires_at, refresh_hash, ends_at) \
             SELECT $1, i.id, $2, $3, $8, $9 FROM identities i JOIN accounts a ON a.id = i.account_id \
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
                refresh[0].clone(),
                refresh[1].clone(),
            ],
        ),
        expect: Expect::OneElseConflict,
    });
    (out, account_row)
}

/// [`super::Store::rotate_refresh`]'s write: the next secret replaces the presented one only if the session is live
/// and still holds it (one row, else nothing is written), and the presented secret is remembered as spent until
/// the session's absolute end.
pub(super) fn rotate_refresh(rotation: &Rotation, dialect: Dialect) -> Vec<Statement> {
    // The session's app must be one of `$6`, the served appids as one text ` wx… wx… ` (an appid holds no space).
    macro_rules! rotate {
        ($position:literal) => {
            concat!(
                "UPDATE sessions SET refresh_hash = $3, ",
                "expires_at = CASE WHEN $4 < ends_at THEN $4 ELSE ends_at END ",
                "WHERE token_hash = $1 AND refresh_hash = $2 AND expires_at > $5 ",
                "AND EXISTS (SELECT 1 FROM identities i WHERE i.id = sessions.identity_id AND ",
                $position,
                "($6, ' ' || i.appid || ' ') > 0)"
            )
        };
    }
    let sql = match dialect {
        Dialect::Sqlite => rotate!("instr"),
        Dialect::Postgres => rotate!("strpos"),
    };
    let apps = format!(" {} ", rotation.apps.join(" "));
    vec![
        Statement {
            query: query(
                sql,
                vec![
                    bytes(&rotation.session),
                    bytes(&rotation.presented),
                    bytes(&rotation.next),
                    Arg::Int(rotation.expires_at),
                    Arg::Int(rotation.now),
                    Arg::Text(apps),
                ],
            ),
            expect: Expect::OneElseConflict,
        },
        // Only after the update above changed the row (it now holds the next secret).
        Statement::any(query(
            "INSERT INTO refresh_spent (secret_hash, session_id, expires_at) \
             SELECT $1, token_hash, ends_at FROM sessions WHERE token_hash = $2 AND refresh_hash = $3",
            vec![
                bytes(&rotation.presented),
                bytes(&rotation.session),
                bytes(&rotation.next),
            ],
        )),
    ]
}

/// A new signing key, unless its generation exists (counted: 0 rows means another writer was first).
pub(super) fn add_signing_key(key: &SigningKeyRecord) -> Statement {
    Statement::counted(query(
        "INSERT INTO signing_keys (generation, kid, private_key_enc, public_jwk, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        vec![
            Arg::Int(key.generation),
            text(&key.kid),
            bytes(&key.private_key_enc),
            text(&key.public_jwk),
            Arg::Int(key.created_at),
        ],
    ))
}
