//! Accounts across apps, from outside: the real `wxlogin sim` with two apps under one Open Platform account and one
//! unbound app, and the real `wxlogin serve` in production mode with all three in `[[apps]]`.

mod common;

use common::product::{A, B, C, Product, ok, refused};
use serde_json::{Value, json};

#[tokio::test]
async fn one_person_in_two_apps_is_one_account_with_two_identities() {
    let product = Product::start("").await;
    let in_a = product.user(A, "13800138000").await;
    let first = product.get_phone(A, &in_a, None).await;
    let first = ok(&first);
    let account = first["accountId"].clone();
    assert!(account.as_str().unwrap().starts_with("acc_"));
    assert_eq!(first["appid"], A);

    // The same person's WeChat user in B: same unionid, so a silent login lands on the same account at once, with
    // no phone code spent.
    let in_b = product.user(B, "13800138000").await;
    assert_ne!(in_a, in_b);
    let second = product.silent(B, &in_b).await;
    let second = ok(&second);
    assert_eq!(second["status"], "ok");
    assert_eq!(second["accountId"], account);
    assert_eq!(second["phone"], "13800138000");

    let me = product.me(B, &second["token"]).await;
    let me = ok(&me);
    assert_eq!(me["accountId"], account);
    assert_eq!(me["openid"], in_b.as_str());
    let mut identities: Vec<(String, String)> = me["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["appid"].as_str().unwrap().into(),
                i["openid"].as_str().unwrap().into(),
            )
        })
        .collect();
    identities.sort();
    assert_eq!(
        identities,
        vec![(A.into(), in_a.clone()), (B.into(), in_b.clone())]
    );
    assert_eq!(product.count("SELECT COUNT(*) FROM accounts").await, 1);
    assert_eq!(
        product
            .count("SELECT COUNT(*) FROM audit_log WHERE event = 'identity_linked' AND reason = 'unionid'")
            .await,
        1
    );
    // A session is its app's: B's token is refused as A's.
    refused(&product.me(A, &second["token"]).await, 401, "unauthorized");
}

#[tokio::test]
async fn without_a_unionid_the_same_phone_links_when_link_by_phone() {
    let product = Product::start("link_by_phone = true").await;
    let in_a = product.user(A, "13800138001").await;
    let account = ok(&product.get_phone(A, &in_a, None).await)["accountId"].clone();
    let in_c = product.user(C, "13800138001").await;
    let first = product.silent(C, &in_c).await;
    let first = ok(&first);
    assert_eq!(
        first["status"], "phone_required",
        "C answers no unionid: unknown until the phone"
    );
    let linked = product.phone_step(C, &in_c, &first["ticket"], None).await;
    assert_eq!(ok(&linked)["accountId"], account);
    assert_eq!(product.count("SELECT COUNT(*) FROM accounts").await, 1);
    assert_eq!(product.count("SELECT COUNT(*) FROM identities").await, 2);
}

#[tokio::test]
async fn without_a_unionid_and_without_link_by_phone_it_is_a_separate_account_that_takes_the_phone()
{
    let product = Product::start("link_by_phone = false").await;
    let in_a = product.user(A, "13800138002").await;
    let first = product.get_phone(A, &in_a, None).await;
    let (account_a, token_a) = (ok(&first)["accountId"].clone(), ok(&first)["token"].clone());
    let in_c = product.user(C, "13800138002").await;
    let ticket = ok(&product.silent(C, &in_c).await)["ticket"].clone();
    let separate = product.phone_step(C, &in_c, &ticket, None).await;
    assert_ne!(ok(&separate)["accountId"], account_a);
    assert_eq!(product.count("SELECT COUNT(*) FROM accounts").await, 2);
    // One phone, one account: the A account lost it (default phone_conflict = "move"), and its session with it.
    refused(&product.me(A, &token_a).await, 401, "unauthorized");
}

#[tokio::test]
async fn the_app_is_named_or_refused_and_a_code_of_another_app_writes_nothing() {
    let product = Product::start("").await;
    let in_a = product.user(A, "13800138003").await;
    let login = product.login_code(&in_a).await;
    refused(
        &product
            .post("/api/v1/login", json!({ "loginCode": login }))
            .await,
        400,
        "app_required",
    );
    refused(
        &product
            .post(
                "/api/v1/login",
                json!({ "loginCode": login, "appid": "wx0000000000000000" }),
            )
            .await,
        400,
        "app_unknown",
    );
    // A's login code sent as B: WeChat refuses it, nothing is written.
    let as_b = product
        .post("/api/v1/login", json!({ "loginCode": login, "appid": B }))
        .await;
    refused(&as_b, 400, "login_code_invalid");
    let phone = product.phone_code(&in_a, None).await;
    let login = product.login_code(&in_a).await;
    let as_b = product
        .post(
            "/api/getPhone",
            json!({ "loginCode": login, "phoneCode": phone, "appid": B }),
        )
        .await;
    refused(&as_b, 400, "login_code_invalid");
    for table in [
        "accounts",
        "identities",
        "sessions",
        "login_tickets",
        "audit_log",
    ] {
        assert_eq!(
            product
                .count(&format!("SELECT COUNT(*) FROM {table}"))
                .await,
            0,
            "{table}"
        );
    }
    // WeChat's Referer names the app too.
    let login = product.login_code(&in_a).await;
    let referer = format!("https://servicewechat.com/{A}/7/page-frame.html");
    let answer = product
        .call(
            format!("{}/api/v1/login", product.base),
            Some(json!({ "loginCode": login })),
            &[("referer", &referer)],
        )
        .await;
    assert_eq!(ok(&answer)["status"], "phone_required");
}

#[tokio::test]
async fn a_phone_verified_by_another_user_of_the_same_app_moves_and_ends_the_old_sessions() {
    let product = Product::start("phone_conflict = \"move\"").await;
    let first_user = product.user(A, "13800138004").await;
    let first = product.get_phone(A, &first_user, None).await;
    let (first_account, first_token) =
        (ok(&first)["accountId"].clone(), ok(&first)["token"].clone());
    let second_user = product.user(A, "13800138005").await;
    let second = product
        .get_phone(A, &second_user, Some("13800138004"))
        .await;
    let second = ok(&second);
    assert_ne!(second["accountId"], first_account);
    assert_eq!(second["phone"], "13800138004");
    refused(&product.me(A, &first_token).await, 401, "unauthorized");
    assert_eq!(
        product
            .count("SELECT COUNT(*) FROM audit_log WHERE event = 'phone_moved'")
            .await,
        1
    );
    // The first user is known, without a phone: the next silent login asks for one.
    assert_eq!(
        ok(&product.silent(A, &first_user).await)["status"],
        "phone_required"
    );
    // Never two accounts with one phone, whatever writes the database: the index refuses it.
    assert_eq!(
        product.count("SELECT COUNT(*) FROM (SELECT phone_hash FROM accounts WHERE phone_hash IS NOT NULL GROUP BY phone_hash HAVING COUNT(*) > 1)").await,
        0
    );
}

#[tokio::test]
async fn with_deny_a_phone_of_another_account_is_refused_and_nothing_is_written() {
    let product = Product::start("phone_conflict = \"deny\"").await;
    let first_user = product.user(A, "13800138006").await;
    let first_token = ok(&product.get_phone(A, &first_user, None).await)["token"].clone();
    let before = product.counts().await;
    let second_user = product.user(A, "13800138007").await;
    refused(
        &product
            .get_phone(A, &second_user, Some("13800138006"))
            .await,
        409,
        "phone_in_use",
    );
    let ticket = ok(&product.silent(A, &second_user).await)["ticket"].clone();
    refused(
        &product
            .phone_step(A, &second_user, &ticket, Some("13800138006"))
            .await,
        409,
        "phone_in_use",
    );
    assert_eq!(before, product.counts().await);
    assert_eq!(
        ok(&product.me(A, &first_token).await)["phone"],
        "138****8006"
    );
    // The ticket survives a refusal: the user can verify their own number with it.
    let own = product.phone_step(A, &second_user, &ticket, None).await;
    assert_eq!(ok(&own)["phone"], "13800138007");
}

#[tokio::test]
async fn a_unionid_that_appears_later_is_stored_and_merges_accounts() {
    let product = Product::start("link_by_phone = false").await;
    // The person in A (bound): an account with a unionid, verified with one number.
    let in_a = product.user(A, "13800138008").await;
    let account_a =
        ok(&product.get_phone(A, &in_a, Some("13800138009")).await)["accountId"].clone();
    // The same person in C (not bound yet): no unionid, a separate account.
    let in_c = product.user(C, "13800138008").await;
    let in_c_login = product.get_phone(C, &in_c, None).await;
    let (account_c, token_c) = (
        ok(&in_c_login)["accountId"].clone(),
        ok(&in_c_login)["token"].clone(),
    );
    assert_ne!(account_a, account_c);
    assert_eq!(ok(&product.me(C, &token_c).await)["unionid"], Value::Null);

    // C is bound to the Open Platform account: its next login brings the unionid, which A's account has.
    product.device(&format!("/apps/{C}/bind"), json!({})).await;
    let after = product.silent(C, &in_c).await;
    assert_eq!(
        ok(&after)["accountId"],
        account_a,
        "merged into the older account"
    );
    // The merged account's session still works, now as the older account.
    let me = product.me(C, &token_c).await;
    let me = ok(&me);
    assert_eq!(me["accountId"], account_a);
    assert_eq!(me["identities"].as_array().unwrap().len(), 2);
    assert!(me["unionid"].is_string());
    assert_eq!(product.count("SELECT COUNT(*) FROM accounts").await, 1);
    assert_eq!(
        product
            .count("SELECT COUNT(*) FROM audit_log WHERE event = 'accounts_merged'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_unionid_that_appears_later_is_stored_on_its_account() {
    let product = Product::start("").await;
    let in_c = product.user(C, "13800138010").await;
    let token = ok(&product.get_phone(C, &in_c, None).await)["token"].clone();
    assert_eq!(ok(&product.me(C, &token).await)["unionid"], Value::Null);
    product.device(&format!("/apps/{C}/bind"), json!({})).await;
    let again = product.silent(C, &in_c).await;
    let unionid = ok(&product.me(C, &ok(&again)["token"]).await)["unionid"].clone();
    assert!(unionid.is_string(), "{unionid}");
    // The person in B now lands on the same account by that unionid.
    let in_b = product.user(B, "13800138010").await;
    assert_eq!(
        ok(&product.silent(B, &in_b).await)["accountId"],
        ok(&again)["accountId"]
    );
}
