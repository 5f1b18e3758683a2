//! The login core driven directly, on an injected clock: ticket, access-token and session expiry are tested by
//! moving the clock, not by sleeping. WeChat is the simulator on a loopback port.

use std::sync::Arc;
use std::time::Duration;

use wxlogin::access::Access;
use wxlogin::access::jwt::TokenPolicy;
use wxlogin::access::keys::SigningKeys;
use wxlogin::api::error::ApiError;
use wxlogin::config::{PhoneBinding, PhoneConflict};
use wxlogin::logins::LoggedIn;
use wxlogin::logins::apps::{App, Apps, QrTarget};
use wxlogin::logins::clock::Clock;
use wxlogin::logins::clock::ManualClock;
use wxlogin::logins::link::LinkPolicy;
use wxlogin::logins::{Logins, Policy, Silent, TICKET_TTL};
use wxlogin::phone_crypto::PhoneCipher;
use wxlogin::ratelimit::{RateLimitConfig, RateLimiter};
use wxlogin::tokens::{Bearer, RefreshToken};
use wxsim::{AppCredentials, NewUser, SimConfig};

/// How long a session lives without a refresh (`refresh_token_ttl`), and at most (`refresh_absolute_ttl`).
const SESSION_TTL: Duration = Duration::from_secs(3600);
const ABSOLUTE_TTL: Duration = Duration::from_secs(3 * 3600);
const ACCESS_TTL: Duration = Duration::from_secs(900);

struct Core {
    logins: Logins,
    clock: Arc<ManualClock>,
    wechat: wxsim::RunningSim,
}

async fn core() -> Core {
    let creds = AppCredentials::generate();
    let wechat = wxsim::spawn(SimConfig::with_apps(vec![creds.clone()]))
        .await
        .unwrap();
    let appid = weixin::AppId::parse(creds.appid).unwrap();
    let config = weixin::Config::new(appid.clone(), weixin::AppSecret::new(creds.secret))
        .with_base_url(wechat.base_url.clone());
    let app = App {
        appid,
        name: None,
        wechat: weixin::Client::new(config).unwrap(),
        qr: QrTarget::default(),
        push: None,
    };
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let cipher = PhoneCipher::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
    let store = wxlogin::store::open("sqlite::memory:").await.unwrap();
    let keys = SigningKeys::open(store.clone(), cipher.clone(), ACCESS_TTL, clock.now())
        .await
        .unwrap();
    let policy = TokenPolicy {
        issuer: "http://wxlogin.test".into(),
        audiences: vec!["wxlogin".into()],
        access_ttl: ACCESS_TTL,
        openid_claim: false,
        unionid_claim: false,
    };
    let logins = Logins {
        apps: Apps::new(vec![app]),
        store,
        access: Access::new(Arc::new(keys), policy),
        live: moka::sync::Cache::new(100),
        limiter: RateLimiter::new(&RateLimitConfig::off(), None, cipher.rate_limit_key()).unwrap(),
        cipher,
        clock: clock.clone(),
        policy: Policy {
            binding: PhoneBinding::Verify,
            refresh_ttl: SESSION_TTL,
            refresh_absolute_ttl: ABSOLUTE_TTL,
            forward_phone: false,
            link: LinkPolicy {
                link_by_phone: true,
                phone_conflict: PhoneConflict::Move,
            },
            wechat_deadline: Duration::from_secs(5),
            ticket_lease: Duration::from_secs(35),
            phone_failures_per_ticket: Some(5),
            qr_wait_max: Duration::from_secs(25),
        },
        waiters: Default::default(),
    };
    Core {
        logins,
        clock,
        wechat,
    }
}

impl Core {
    fn app(&self) -> &Arc<App> {
        self.logins.apps.iter().next().unwrap()
    }

    fn user(&self, phone: &str) -> String {
        let user = NewUser {
            phone_number: phone.into(),
            ..NewUser::default()
        };
        self.wechat.sim.create_user(user).unwrap().openid
    }

    /// The account behind an access token, as `/api/v1/me` sees it.
    async fn me(&self, access_token: &str) -> Result<wxlogin::logins::Me, ApiError> {
        let bearer = Bearer::parse(access_token).expect("a JWT's shape");
        let auth = self.logins.authenticate(&bearer, || Ok(self.app())).await?;
        self.logins.me(auth).await
    }

    /// A new person logged in with the ticket and phone step.
    async fn logged_in(&self, phone: &str) -> (String, LoggedIn) {
        let openid = self.user(phone);
        let ticket = self.ticket(&openid).await;
        let code = self.phone_code(&openid);
        let logged_in = self
            .logins
            .phone_with_ticket(self.app(), &ticket, &code)
            .await
            .unwrap();
        (openid, logged_in)
    }

    fn login_code(&self, openid: &str) -> weixin::LoginCode {
        weixin::LoginCode::parse(self.wechat.sim.login_code(openid).unwrap().code).unwrap()
    }

    fn phone_code(&self, openid: &str) -> weixin::PhoneCode {
        weixin::PhoneCode::parse(self.wechat.sim.phone_code(openid).unwrap().code).unwrap()
    }

    async fn ticket(&self, openid: &str) -> wxlogin::tokens::Ticket {
        match self
            .logins
            .silent(self.app(), &self.login_code(openid))
            .await
            .unwrap()
        {
            Silent::PhoneRequired { ticket, .. } => ticket,
            Silent::LoggedIn(_) => panic!("a stranger is logged in"),
        }
    }
}

#[tokio::test]
async fn a_ticket_expires_with_the_clock_and_costs_no_phone_code() {
    let core = core().await;
    let openid = core.user("13800138100");
    let ticket = core.ticket(&openid).await;
    core.clock.advance(TICKET_TTL.as_secs() as i64);
    let code = core.phone_code(&openid);
    let late = core
        .logins
        .phone_with_ticket(core.app(), &ticket, &code)
        .await;
    assert_eq!(late.err(), Some(ApiError::TicketInvalid));
    // Refused before WeChat was asked: the same phone code still works with a fresh ticket.
    let ticket = core.ticket(&openid).await;
    let logged_in = core
        .logins
        .phone_with_ticket(core.app(), &ticket, &code)
        .await
        .unwrap();
    assert_eq!(logged_in.phone, "13800138100");
}

#[tokio::test]
async fn an_access_token_expires_with_the_clock_and_a_refresh_brings_a_new_one() {
    let core = core().await;
    let (_, logged_in) = core.logged_in("13800138101").await;
    assert_eq!(logged_in.expires_in, ACCESS_TTL);
    assert_eq!(logged_in.refresh_expires_in, SESSION_TTL);
    core.clock.advance(ACCESS_TTL.as_secs() as i64 - 1);
    let me = core.me(&logged_in.access_token).await.unwrap();
    assert_eq!(me.session.account.id, logged_in.account_id);
    assert_eq!(me.phone.as_deref(), Some("13800138101"));
    core.clock.advance(1);
    assert_eq!(
        core.me(&logged_in.access_token).await.err(),
        Some(ApiError::Unauthorized)
    );
    let refreshed = core.logins.refresh(&logged_in.refresh_token).await.unwrap();
    assert_eq!(refreshed.logged_in_as.account.id, logged_in.account_id);
    assert_ne!(refreshed.refresh_token, logged_in.refresh_token);
    let me = core.me(&refreshed.access_token).await.unwrap();
    assert_eq!(me.session.account.id, logged_in.account_id);
}

#[tokio::test]
async fn a_session_ends_when_unused_for_its_lifetime_then_the_user_logs_in_silently() {
    let core = core().await;
    let (openid, logged_in) = core.logged_in("13800138102").await;
    core.clock.advance(SESSION_TTL.as_secs() as i64);
    assert_eq!(
        core.logins.refresh(&logged_in.refresh_token).await.err(),
        Some(ApiError::RefreshInvalid)
    );
    // The returning user logs in silently again, on the same account.
    match core
        .logins
        .silent(core.app(), &core.login_code(&openid))
        .await
        .unwrap()
    {
        Silent::LoggedIn(again) => assert_eq!(again.account_id, logged_in.account_id),
        Silent::PhoneRequired { .. } => panic!("a known user is asked for the phone again"),
    }
}

#[tokio::test]
async fn refreshes_slide_a_session_up_to_its_absolute_end() {
    let core = core().await;
    let (_, logged_in) = core.logged_in("13800138103").await;
    let mut refresh: RefreshToken = logged_in.refresh_token;
    // Used every half hour, the session outlives its sliding lifetime …
    let step = SESSION_TTL.as_secs() as i64 / 2;
    let steps = ABSOLUTE_TTL.as_secs() as i64 / step;
    for _ in 1..steps {
        core.clock.advance(step);
        refresh = core.logins.refresh(&refresh).await.unwrap().refresh_token;
    }
    // … but not its absolute end.
    core.clock.advance(step);
    assert_eq!(
        core.logins.refresh(&refresh).await.err(),
        Some(ApiError::RefreshInvalid)
    );
}

#[tokio::test]
async fn a_reused_refresh_token_ends_the_session_for_every_token_of_it() {
    let core = core().await;
    let (_, logged_in) = core.logged_in("13800138104").await;
    let first = logged_in.refresh_token;
    let refreshed = core.logins.refresh(&first).await.unwrap();
    assert_eq!(
        core.logins.refresh(&first).await.err(),
        Some(ApiError::RefreshReused)
    );
    assert_eq!(
        core.logins.refresh(&refreshed.refresh_token).await.err(),
        Some(ApiError::RefreshInvalid)
    );
    // The access tokens of the session stop opening our routes at once, not when they expire.
    assert_eq!(
        core.me(&refreshed.access_token).await.err(),
        Some(ApiError::Unauthorized)
    );
    assert_eq!(
        core.me(&logged_in.access_token).await.err(),
        Some(ApiError::Unauthorized)
    );
}

// ---- scan to log in, on the service's clock ----

mod scan_login {
    use super::*;
    use wxlogin::logins::qr::{Decision, QR_TTL, QrState};
    use wxlogin::store::WebClient;

    fn web() -> WebClient {
        WebClient {
            ip: "203.0.113.7".into(),
            user_agent: Some("Mozilla/5.0 Firefox/133.0".into()),
            origin: None,
        }
    }

    async fn scanner(core: &Core, phone: &str) -> wxlogin::logins::Authenticated {
        let (_, logged_in) = core.logged_in(phone).await;
        let bearer = Bearer::parse(&logged_in.access_token).unwrap();
        core.logins
            .authenticate(&bearer, || Ok(core.app()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_code_expires_120_seconds_after_creation_on_the_service_clock() {
        let core = core().await;
        let phone = scanner(&core, "13800138051").await;
        let created = core.logins.qr_create(core.app(), web()).await.unwrap();
        assert_eq!(created.expires_in, QR_TTL);
        let (id, token) = (&created.id, &created.poll_token);
        core.clock.advance(QR_TTL.as_secs() as i64 - 1);
        // One second left: it can still be scanned.
        let scanned = core.logins.qr_scan(&phone, id).await.unwrap();
        assert_eq!(scanned.expires_in, Duration::from_secs(1));
        assert_eq!(scanned.web, web());
        core.clock.advance(1);
        // 120 s: the poll says `expired` (without waiting), and nothing can be decided.
        let state = core
            .logins
            .qr_poll(id, token, Duration::from_secs(25))
            .await
            .unwrap();
        assert!(matches!(state, QrState::Expired));
        // And again later: `expired` is final, not a moment's answer.
        core.clock.advance(60);
        let state = core.logins.qr_poll(id, token, Duration::ZERO).await;
        assert!(matches!(state.unwrap(), QrState::Expired));
        let mut refusals = Vec::new();
        for decision in [Decision::Confirm, Decision::Deny] {
            refusals.push(
                core.logins
                    .qr_decide(&phone, id, decision)
                    .await
                    .unwrap_err(),
            );
        }
        refusals.push(core.logins.qr_scan(&phone, id).await.err().unwrap());
        for refused in refusals {
            assert_eq!(refused, ApiError::QrLoginExpired);
            // What the phone receives: 409 like the other states a scan login cannot leave (design.md's failure
            // statuses have no 410), in the error envelope of docs/errors.md.
            let (status, body) = rendered(refused).await;
            assert_eq!(status, 409, "{body}");
            assert_eq!(body["code"], 2013, "{body}");
            assert_eq!(body["error"], "qr_login_expired", "{body}");
            assert!(!body["msg"].as_str().unwrap().is_empty(), "{body}");
        }
    }

    /// The HTTP answer the api layer makes of `error` (its `IntoResponse`): the status and the JSON body.
    async fn rendered(error: ApiError) -> (u16, serde_json::Value) {
        use axum::response::IntoResponse;
        let response = error.into_response();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_confirm_at_the_last_second_is_collected_within_the_grace_only() {
        let core = core().await;
        let phone = scanner(&core, "13800138052").await;
        let late = core.logins.qr_create(core.app(), web()).await.unwrap();
        let lost = core.logins.qr_create(core.app(), web()).await.unwrap();
        for created in [&late, &lost] {
            core.logins.qr_scan(&phone, &created.id).await.unwrap();
            core.logins
                .qr_decide(&phone, &created.id, Decision::Confirm)
                .await
                .unwrap();
        }
        // The web's poll comes 29 s after the code expired: it still logs the web in.
        core.clock.advance(QR_TTL.as_secs() as i64 + 29);
        let state = core
            .logins
            .qr_poll(&late.id, &late.poll_token, Duration::ZERO)
            .await;
        let QrState::Confirmed(Some(login)) = state.unwrap() else {
            panic!("the tokens within the grace")
        };
        assert_eq!(login.account_id, phone.session.account.id);
        // 30 s past expiry, uncollected tokens are gone for good.
        core.clock.advance(1);
        let state = core
            .logins
            .qr_poll(&lost.id, &lost.poll_token, Duration::ZERO)
            .await;
        assert!(matches!(state.unwrap(), QrState::Expired));
    }
}
