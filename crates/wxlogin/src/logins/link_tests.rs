//! The linking rules on hand-made candidates: what each situation writes.

use super::*;

const APP_A: &str = "wx000000000000000a";
const APP_B: &str = "wx000000000000000b";

fn phone(number: &str, appid: &str, openid: &str) -> StoredPhone {
    StoredPhone {
        enc: format!("sealed {number}").into_bytes(),
        hash: format!("hash {number}").into_bytes(),
        appid: appid.into(),
        openid: openid.into(),
    }
}

fn account(created_at: i64, unionid: Option<&str>, phone: Option<StoredPhone>) -> AccountRecord {
    AccountRecord {
        id: AccountId::generate(),
        unionid: unionid.map(Into::into),
        phone,
        created_at,
        updated_at: created_at,
    }
}

fn candidate(account: &AccountRecord, holds: bool, in_app: bool) -> Candidate {
    Candidate {
        account: account.clone(),
        holds_identity: holds,
        has_app_identity: in_app || holds,
    }
}

fn seen<'a>(
    appid: &'a str,
    openid: &'a str,
    unionid: Option<&'a str>,
    phone: Option<StoredPhone>,
) -> Seen<'a> {
    Seen {
        appid,
        openid,
        unionid,
        phone,
        subject: b"subject".to_vec(),
    }
}

const MOVE: LinkPolicy = LinkPolicy {
    link_by_phone: true,
    phone_conflict: PhoneConflict::Move,
};

fn kinds(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match s {
            Step::Audit(a) => format!("Audit({})", <&str>::from(a.event)),
            other => format!("{other:?}")
                .split([' ', '{'])
                .next()
                .unwrap_or_default()
                .to_owned(),
        })
        .collect()
}

#[test]
fn a_stranger_with_a_phone_gets_a_new_account_and_without_one_is_asked_for_it() {
    let p = phone("13800138000", APP_A, "o1");
    let linked = decide(
        &[],
        seen(APP_A, "o1", Some("u1"), Some(p.clone())),
        MOVE,
        10,
    )
    .unwrap();
    assert_eq!(
        kinds(&linked.steps),
        ["CreateAccount", "CreateIdentity", "Audit(account_created)"]
    );
    assert_eq!(linked.account.phone, Some(p.clone()));
    assert!(
        matches!(&linked.steps[0], Step::CreateAccount { phone: Some(held), .. } if *held == p)
    );
    assert_eq!(linked.account.unionid.as_deref(), Some("u1"));
    assert_eq!(
        decide(&[], seen(APP_A, "o1", Some("u1"), None), MOVE, 10).unwrap_err(),
        Refusal::Unknown
    );
}

#[test]
fn a_known_identity_with_its_own_phone_writes_nothing_but_its_session() {
    let p = phone("13800138000", APP_A, "o1");
    let mine = account(1, Some("u1"), Some(p.clone()));
    let linked = decide(
        &[candidate(&mine, true, true)],
        seen(APP_A, "o1", Some("u1"), Some(p)),
        MOVE,
        10,
    )
    .unwrap();
    assert!(linked.steps.is_empty(), "{:?}", linked.steps);
    assert_eq!(linked.account.id, mine.id);
}

#[test]
fn the_same_unionid_in_another_app_joins_the_account_without_a_phone_code() {
    let theirs = account(1, Some("u1"), Some(phone("13800138000", APP_A, "oA")));
    let linked = decide(
        &[candidate(&theirs, false, false)],
        seen(APP_B, "oB", Some("u1"), None),
        MOVE,
        10,
    )
    .unwrap();
    assert_eq!(linked.account.id, theirs.id);
    assert_eq!(
        kinds(&linked.steps),
        ["CreateIdentity", "Audit(identity_linked)"]
    );
}

#[test]
fn the_same_phone_in_another_app_links_only_when_the_policy_says_so() {
    let p = phone("13800138000", APP_A, "oA");
    let theirs = account(1, None, Some(p.clone()));
    let verified = phone("13800138000", APP_B, "oB");
    let linked = decide(
        &[candidate(&theirs, false, false)],
        seen(APP_B, "oB", None, Some(verified.clone())),
        MOVE,
        10,
    )
    .unwrap();
    assert_eq!(linked.account.id, theirs.id);
    assert_eq!(
        kinds(&linked.steps),
        ["CreateIdentity", "Audit(identity_linked)"]
    );

    // Not linked: a separate account, and the phone (one account per phone) moves to it.
    let separate = LinkPolicy {
        link_by_phone: false,
        ..MOVE
    };
    let linked = decide(
        &[candidate(&theirs, false, false)],
        seen(APP_B, "oB", None, Some(verified)),
        separate,
        10,
    )
    .unwrap();
    assert_ne!(linked.account.id, theirs.id);
    assert_eq!(
        kinds(&linked.steps),
        [
            "CreateAccount",
            "CreateIdentity",
            "Audit(account_created)",
            "TakePhone",
            "Audit(phone_moved)",
            "SetPhone"
        ]
    );
}

#[test]
fn a_phone_of_another_user_of_the_same_app_moves_or_is_denied() {
    let p = phone("13800138000", APP_A, "o1");
    let first = account(1, None, Some(p.clone()));
    let verified = phone("13800138000", APP_A, "o2");
    let candidates = [candidate(&first, false, true)];
    let linked = decide(
        &candidates,
        seen(APP_A, "o2", None, Some(verified.clone())),
        MOVE,
        10,
    )
    .unwrap();
    assert_ne!(
        linked.account.id, first.id,
        "never linked by phone within one app"
    );
    assert!(
        linked
            .steps
            .iter()
            .any(|s| matches!(s, Step::TakePhone { from, .. } if *from == first.id))
    );
    let deny = LinkPolicy {
        phone_conflict: PhoneConflict::Deny,
        ..MOVE
    };
    assert_eq!(
        decide(
            &candidates,
            seen(APP_A, "o2", None, Some(verified)),
            deny,
            10
        )
        .unwrap_err(),
        Refusal::PhoneInUse
    );
}

#[test]
fn a_unionid_that_appears_later_is_stored_or_merges_into_the_older_account() {
    let mine = account(5, None, Some(phone("13800138001", APP_A, "oA")));
    let linked = decide(
        &[candidate(&mine, true, true)],
        seen(APP_A, "oA", Some("u9"), None),
        MOVE,
        10,
    )
    .unwrap();
    assert_eq!(kinds(&linked.steps), ["SetUnionid"]);

    // Another (older) account has the unionid: this one merges into it; the older keeps its id and its phone.
    let older = account(1, Some("u9"), Some(phone("13800138002", APP_B, "oB")));
    let linked = decide(
        &[
            candidate(&mine, true, true),
            candidate(&older, false, false),
        ],
        seen(APP_A, "oA", Some("u9"), None),
        MOVE,
        10,
    )
    .unwrap();
    assert_eq!(linked.account.id, older.id);
    assert_eq!(kinds(&linked.steps), ["Merge", "Audit(accounts_merged)"]);
    assert!(
        matches!(&linked.steps[0], Step::Merge { from, into } if *from == mine.id && *into == older.id)
    );

    // The older account has no phone: it takes the merged one's.
    let older = account(1, Some("u9"), None);
    let linked = decide(
        &[
            candidate(&mine, true, true),
            candidate(&older, false, false),
        ],
        seen(APP_A, "oA", Some("u9"), None),
        MOVE,
        10,
    )
    .unwrap();
    assert_eq!(
        kinds(&linked.steps),
        ["Merge", "SetPhone", "Audit(accounts_merged)"]
    );
    assert_eq!(linked.account.phone, mine.phone);
}

/// The premise of the core's shortcuts (`Logins::quick` and `Logins::returning`): in these shapes the rules write
/// nothing but the session, so skipping the read changes nothing.
#[test]
fn the_shapes_the_core_writes_without_the_rules_need_no_steps() {
    let held = phone("13800138000", APP_A, "o1");
    let mine = account(1, Some("u1"), Some(held.clone()));
    for unionid in [Some("u1"), None] {
        for verified in [Some(held.clone()), None] {
            let linked = decide(
                &[candidate(&mine, true, true)],
                seen(APP_A, "o1", unionid, verified),
                MOVE,
                10,
            )
            .unwrap();
            assert!(linked.steps.is_empty(), "{unionid:?}: {:?}", linked.steps);
        }
    }
}
