//! `wxlogin users show|delete`, `wxlogin sessions revoke` and `wxlogin audit`: what an operator needs to answer a
//! person's request (PIPL) or an incident without SQL. They read the same settings as `serve` (the database, the
//! data key) and find a person by account id, openid or phone (through the keyed lookup hash: phones are never
//! stored in clear). Deletions go through the same code as `DELETE /api/v1/me`, with their audit events.

use crate::cli::Failure;
use crate::config::{ServeArgs, Settings};
use crate::logins::clock::{Clock, SystemClock};
use crate::logins::privacy::{Records, Requester};
use crate::phone_crypto::PhoneCipher;
use crate::store::{AccountId, AccountRecord, AuditRecord, Store};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::sync::Arc;

/// Who a command is about: exactly one of these.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false, id = "who")]
pub struct Who {
    /// The account id (`acc_…`, the `accountId` clients see).
    #[arg(long, group = "who")]
    pub account: Option<String>,
    /// A WeChat openid (of any app; `--appid` narrows it).
    #[arg(long, group = "who")]
    pub openid: Option<String>,
    /// The phone number as WeChat gave it (`13800138000`; `+86` is dropped), found by its keyed hash.
    #[arg(long, group = "who")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct Target {
    #[command(flatten)]
    pub who: Who,
    /// With `--openid`: the app it is of (needed to find audit events of an identity already deleted).
    #[arg(long, requires = "openid")]
    pub appid: Option<String>,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub settings: ServeArgs,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// An account: its identities, sessions and audit events (the phone masked).
    Show(Target),
    /// Deletes an account and everything of it, as `DELETE /api/v1/me` does (audited as the operator's).
    Delete {
        #[command(flatten)]
        target: Target,
        /// Confirms the deletion (it cannot be undone).
        #[arg(long)]
        yes: bool,
    },
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// Ends every session of an account at once: its access and refresh tokens stop working.
    Revoke(Target),
}

/// What the commands work on.
struct Admin {
    store: Arc<dyn Store>,
    cipher: PhoneCipher,
    /// The apps an openid may be of, for audit events of deleted identities.
    appids: Vec<String>,
}

impl Admin {
    async fn open(args: &ServeArgs) -> Result<Self, Failure> {
        let settings = Settings::resolve(args.clone(), |k| std::env::var(k).ok())?;
        let (store, cipher) = crate::app::open_data(&settings).await?;
        let mut appids: Vec<String> = settings
            .apps
            .iter()
            .map(|a| a.appid.as_str().to_owned())
            .collect();
        if appids.is_empty() {
            // Sandbox mode: its apps are in the data dir.
            appids = crate::sandbox::appids(&settings.data_dir.join("sandbox-app.json"));
        }
        Ok(Self {
            store,
            cipher,
            appids,
        })
    }

    fn records(&self) -> Records<'_> {
        Records {
            store: self.store.as_ref(),
            cipher: &self.cipher,
            clock: &SystemClock,
        }
    }

    /// The account `target` names, or a failure that says nobody matched.
    async fn find(&self, target: &Target) -> Result<AccountRecord, Failure> {
        let who = &target.who;
        let found = if let Some(id) = &who.account {
            let id = AccountId::parse(id.trim()).ok_or_else(|| {
                usage(format!(
                    "--account {id:?} is not an account id (acc_ and 24 hex digits)"
                ))
            })?;
            self.store.account(&id).await.map_err(Failure::other)?
        } else if let Some(openid) = &who.openid {
            let mut found = self
                .store
                .identities_by_openid(openid.trim())
                .await
                .map_err(Failure::other)?;
            found.retain(|s| target.appid.as_ref().is_none_or(|a| &s.identity.appid == a));
            match found.len() {
                0 | 1 => found.pop().map(|s| s.account),
                _ => {
                    return Err(usage(
                        "this openid is in several apps: say which with --appid".into(),
                    ));
                }
            }
        } else if let Some(phone) = &who.phone {
            let phone = phone.trim();
            let phone = phone.strip_prefix("+86").unwrap_or(phone);
            self.store
                .account_by_phone(&self.cipher.lookup_hash(phone))
                .await
                .map_err(Failure::other)?
        } else {
            unreachable!("clap requires one of --account, --openid, --phone")
        };
        found.ok_or_else(|| Failure {
            message: "no account matches".into(),
            exit_code: 3,
        })
    }

    /// The account as an operator sees it: phone masked, no token, no hash.
    async fn describe(&self, account: &AccountRecord) -> Result<Value, Failure> {
        let identities = self
            .store
            .identities(&account.id)
            .await
            .map_err(Failure::other)?;
        let sessions = self
            .store
            .sessions_of(&account.id)
            .await
            .map_err(Failure::other)?;
        let audit = self
            .store
            .audit(&account.id)
            .await
            .map_err(Failure::other)?;
        let phone = match &account.phone {
            Some(stored) => {
                let row = crate::phone_crypto::row_id(&stored.appid, &stored.openid);
                let clear = self
                    .cipher
                    .open(&row, &stored.enc)
                    .map_err(Failure::other)?;
                json!({ "masked": weixin::mask_phone(&clear), "verifiedBy": { "appid": stored.appid, "openid": stored.openid } })
            }
            None => Value::Null,
        };
        let now = SystemClock.now();
        Ok(json!({
            "accountId": account.id,
            "unionid": account.unionid,
            "phone": phone,
            "createdAt": account.created_at,
            "updatedAt": account.updated_at,
            "identities": identities.iter().map(|i| json!({
                "appid": i.appid, "openid": i.openid, "createdAt": i.created_at,
            })).collect::<Vec<_>>(),
            "sessions": sessions.iter().map(|s| json!({
                "appid": s.appid, "openid": s.openid, "createdAt": s.created_at,
                "expiresAt": s.expires_at, "live": s.expires_at > now,
            })).collect::<Vec<_>>(),
            "audit": audit.iter().map(audit_json).collect::<Vec<_>>(),
        }))
    }
}

fn audit_json(record: &AuditRecord) -> Value {
    json!({
        "at": record.at,
        "event": <&'static str>::from(record.event),
        "accountId": record.account_id,
        "otherAccount": record.other_account,
        "appid": record.appid,
        "reason": record.reason,
    })
}

fn usage(message: String) -> Failure {
    Failure {
        message,
        exit_code: 2,
    }
}

fn print(json_out: bool, value: &Value, text: impl FnOnce(&Value) -> String) {
    if json_out {
        println!("{value}");
    } else {
        print!("{}", text(value));
    }
}

/// An account as lines of text.
fn account_text(v: &Value) -> String {
    let mut out = format!("account   {}\n", v["accountId"].as_str().unwrap_or("-"));
    out += &format!("unionid   {}\n", v["unionid"].as_str().unwrap_or("-"));
    out += &format!(
        "phone     {}\n",
        v["phone"]["masked"].as_str().unwrap_or("-")
    );
    out += &format!("created   {}\n", v["createdAt"]);
    out += "identities\n";
    for i in v["identities"].as_array().into_iter().flatten() {
        out += &format!(
            "  {}  {}  since {}\n",
            i["appid"].as_str().unwrap_or(""),
            i["openid"].as_str().unwrap_or(""),
            i["createdAt"]
        );
    }
    let sessions = v["sessions"].as_array().map_or(0, Vec::len);
    let live = v["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["live"] == true)
        .count();
    out += &format!("sessions  {sessions} ({live} live)\n");
    out += "audit\n";
    for a in v["audit"].as_array().into_iter().flatten() {
        out += &format!(
            "  {}  {}  {}\n",
            a["at"],
            a["event"].as_str().unwrap_or(""),
            a["reason"].as_str().unwrap_or("")
        );
    }
    out
}

/// `wxlogin users show|delete`.
pub async fn users(action: UsersAction) -> Result<(), Failure> {
    match action {
        UsersAction::Show(target) => {
            let admin = Admin::open(&target.settings).await?;
            let account = admin.find(&target).await?;
            let value = admin.describe(&account).await?;
            print(target.json, &value, account_text);
        }
        UsersAction::Delete { target, yes } => {
            if !yes {
                return Err(usage(
                    "deleting an account cannot be undone: add --yes".into(),
                ));
            }
            let admin = Admin::open(&target.settings).await?;
            let account = admin.find(&target).await?;
            let described = admin.describe(&account).await?;
            admin
                .records()
                .delete_account(&account.id, Requester::Operator)
                .await
                .map_err(Failure::other)?;
            let value = json!({
                "deleted": account.id,
                "identities": described["identities"].as_array().map_or(0, Vec::len),
                "sessions": described["sessions"].as_array().map_or(0, Vec::len),
            });
            print(target.json, &value, |v| {
                format!(
                    "deleted account {} ({} identities, {} sessions)\n",
                    v["deleted"].as_str().unwrap_or(""),
                    v["identities"],
                    v["sessions"]
                )
            });
        }
    }
    Ok(())
}

/// `wxlogin sessions revoke`.
pub async fn sessions(action: SessionsAction) -> Result<(), Failure> {
    let SessionsAction::Revoke(target) = action;
    let admin = Admin::open(&target.settings).await?;
    let account = admin.find(&target).await?;
    let before = admin
        .store
        .sessions_of(&account.id)
        .await
        .map_err(Failure::other)?;
    admin
        .records()
        .end_sessions(&account.id)
        .await
        .map_err(Failure::other)?;
    let value = json!({ "account": account.id, "ended": before.len() });
    print(target.json, &value, |v| {
        format!(
            "ended {} sessions of account {}\n",
            v["ended"],
            v["account"].as_str().unwrap_or("")
        )
    });
    Ok(())
}

/// `wxlogin audit`: the account's events, and for `--openid` also those of that identity after it was deleted
/// (found by its keyed hash in each app).
pub async fn audit(target: Target) -> Result<(), Failure> {
    let admin = Admin::open(&target.settings).await?;
    let account = match (&target.who.account, admin.find(&target).await) {
        (_, Ok(account)) => Some(account.id),
        // The log outlives the account: by its id, or by the identity's keyed hash below.
        (Some(id), Err(f)) if f.exit_code == 3 => AccountId::parse(id.trim()),
        (None, Err(f)) if f.exit_code == 3 && target.who.openid.is_some() => None,
        (_, Err(f)) => return Err(f),
    };
    let mut events = match account {
        Some(id) => admin.store.audit(&id).await.map_err(Failure::other)?,
        None => Vec::new(),
    };
    if let Some(openid) = &target.who.openid {
        let appids = match &target.appid {
            Some(appid) => vec![appid.clone()],
            None => admin.appids.clone(),
        };
        let mut accounts = Vec::new();
        for appid in appids {
            let subject = admin.cipher.subject_hash(&appid, openid.trim());
            for event in admin
                .store
                .audit_by_subject(&subject)
                .await
                .map_err(Failure::other)?
            {
                if !accounts.contains(&event.account_id) {
                    accounts.push(event.account_id.clone());
                }
            }
        }
        // The whole story of every account this identity was part of (its deletion, too).
        for account in accounts {
            for event in admin.store.audit(&account).await.map_err(Failure::other)? {
                if !events.contains(&event) {
                    events.push(event);
                }
            }
        }
        events.sort_by_key(|e| e.at);
    }
    let value = json!({ "events": events.iter().map(audit_json).collect::<Vec<_>>() });
    print(target.json, &value, |v| {
        let mut out = String::new();
        for a in v["events"].as_array().into_iter().flatten() {
            out += &format!(
                "{}  {}  {}  {}  {}\n",
                a["at"],
                a["event"].as_str().unwrap_or(""),
                a["accountId"].as_str().unwrap_or(""),
                a["appid"].as_str().unwrap_or("-"),
                a["reason"].as_str().unwrap_or("-")
            );
        }
        out
    });
    Ok(())
}
