//! Rows of a large deployment, for bench scenario (g): N accounts that each logged in once through one mini program
//! and hold K sessions, written as PostgreSQL `COPY … FROM STDIN` text files (bench/harness/scale.py loads them
//! into SQLite or PostgreSQL).
//!
//! ```sh
//! WXLOGIN_DATA_KEY=<base64 32 bytes> cargo run --release -p wxlogin --example seed_accounts -- \
//!     --appid wx0123456789abcdef --accounts 1000000 --sessions-per-account 3 --expired-share 0.333 --out DIR
//! ```
//!
//! Every row is shaped as the login path writes it (`store/writes.rs`): the phone sealed with the data key to the
//! identity that verified it and its keyed lookup hash, the identity, the `account_created` audit row with the
//! identity's keyed subject hash, and sessions with a token hash, a refresh hash and an absolute end. The phone
//! numbers start with `12`, which no mainland mobile number (and so no simulator user) does, so the benchmark's
//! own logins never meet a seeded phone. Identity ids are 1..=N, in the files (sessions name them): the loader
//! moves the sequence past them. It prints what it wrote as JSON (rows per table, expired sessions).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rand::Rng;
use wxlogin::phone_crypto::{PhoneCipher, row_id};

#[derive(Parser)]
struct Args {
    /// The mini program the accounts logged in through.
    #[arg(long)]
    appid: String,
    #[arg(long)]
    accounts: u64,
    #[arg(long, default_value_t = 3)]
    sessions_per_account: u64,
    /// The share of sessions that expired (between 1 hour and 10 days ago): what the purge finds.
    #[arg(long, default_value_t = 0.0)]
    expired_share: f64,
    /// "Now" as Unix seconds (default: the clock).
    #[arg(long)]
    now: Option<i64>,
    /// Where accounts.tsv, identities.tsv, audit_log.tsv and sessions.tsv go.
    #[arg(long)]
    out: PathBuf,
}

const DAY: i64 = 86_400;

fn main() -> ExitCode {
    let args = Args::parse();
    match seed(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seed_accounts: {e}");
            ExitCode::FAILURE
        }
    }
}

fn seed(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let key = std::env::var("WXLOGIN_DATA_KEY").map_err(|_| "WXLOGIN_DATA_KEY is not set")?;
    let cipher = PhoneCipher::from_base64(&key)?;
    let now = args.now.unwrap_or_else(|| {
        std::time::UNIX_EPOCH
            .elapsed()
            .map_or(0, |d| d.as_secs() as i64)
    });
    std::fs::create_dir_all(&args.out)?;
    let open = |name: &str| -> std::io::Result<BufWriter<File>> {
        Ok(BufWriter::with_capacity(
            1 << 20,
            File::create(args.out.join(name))?,
        ))
    };
    let (mut accounts, mut identities) = (open("accounts.tsv")?, open("identities.tsv")?);
    let (mut audit, mut sessions) = (open("audit_log.tsv")?, open("sessions.tsv")?);
    let mut rng = rand::rng();
    let mut expired = 0u64;
    let appid = args.appid.as_str();
    for n in 1..=args.accounts {
        // Accounts signed up over the past year, in order (as `AccountId::generate` names them: the creation's
        // milliseconds, then 48 random bits), so the id indexes fill as a real deployment's do.
        let created = now - 365 * DAY + (n as i64 * 365 * DAY) / args.accounts.max(1) as i64;
        let account = format!(
            "acc_{:012x}{}",
            (created * 1000) as u64 & 0xffff_ffff_ffff,
            hex::encode(rng.random::<[u8; 6]>())
        );
        let openid = wechat_id(&mut rng);
        let unionid = wechat_id(&mut rng);
        // `12` + 9 digits: n is below 10^9 for any size this seeds.
        let phone = format!("12{n:09}");
        let sealed = cipher.seal(&row_id(appid, &openid), &phone);
        writeln!(
            accounts,
            "{account}\t{unionid}\t{}\t{}\t{appid}\t{openid}\t{created}\t{created}",
            bytea(&sealed),
            bytea(&cipher.lookup_hash(&phone)),
        )?;
        writeln!(
            identities,
            "{n}\t{account}\t{appid}\t{openid}\t{created}\t{created}"
        )?;
        writeln!(
            audit,
            "{created}\taccount_created\t{account}\t\\N\t{appid}\t{}\tlogin",
            bytea(&cipher.subject_hash(appid, &openid)),
        )?;
        for _ in 0..args.sessions_per_account {
            let (started, expires) = if rng.random_bool(args.expired_share.clamp(0.0, 1.0)) {
                expired += 1;
                let expires = now - rng.random_range(3_600..10 * DAY);
                (expires - 30 * DAY, expires)
            } else {
                let started = now - rng.random_range(0..30 * DAY);
                (started, started + 30 * DAY)
            };
            writeln!(
                sessions,
                "{}\t{n}\t{started}\t{expires}\t{}\t{}",
                bytea(&rng.random::<[u8; 32]>()),
                bytea(&rng.random::<[u8; 32]>()),
                started + 90 * DAY,
            )?;
        }
    }
    for mut file in [accounts, identities, audit, sessions] {
        file.flush()?;
    }
    println!(
        "{{\"accounts\":{n},\"identities\":{n},\"audit_log\":{n},\"sessions\":{s},\"expired_sessions\":{expired},\"now\":{now}}}",
        n = args.accounts,
        s = args.accounts * args.sessions_per_account,
    );
    Ok(())
}

/// `o` + 27 URL-safe characters, the shape of WeChat's openids and unionids.
fn wechat_id(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = String::with_capacity(28);
    id.push('o');
    id.extend((0..27).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])));
    id
}

/// A bytea in COPY's text format: `\x` and hex digits, the backslash escaped.
fn bytea(bytes: &[u8]) -> String {
    format!("\\\\x{}", hex::encode(bytes))
}
