//! The login core driven directly, on an injected clock: ticket and session expiry are tested by moving the
//! clock, not by sleeping. WeChat is the simulator on a loopback port.

use std::sync::Arc;
use std::time::Duration;

use wxlogin::api::error::ApiError;
use wxlogin::config::{PhoneBinding, PhoneConflict};
use wxlogin::logins::apps::{App, Apps};
use wxlogin::logins::clock::ManualClock;
use wxlogin::logins::link::LinkPolicy;
use wxlogin::logins::{Logins, Policy, Silent, TICKET_TTL};
use wxlogin::phone_crypto::PhoneCipher;
use wxlogin::ratelimit::{RateLimitConfig, RateLimiter};
use wxsim::{AppCredentials, NewUser, SimConfig};

const SESSION_TTL: Duration = Duration::from_secs(3600);

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
    };
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let cipher = PhoneCipher::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
    let logins = Logins {
        apps: Apps::new(vec![app]),
        store: wxlogin::store::open("sqlite::memory:").await.unwrap(),
        limiter: RateLimiter::new(&RateLimitConfig::off(), None, cipher.rate_limit_key()).unwrap(),
        cipher,
        clock: clock.clone(),
        policy: Policy {
            binding: PhoneBinding::Verify,
            session_ttl: SESSION_TTL,
            link: LinkPolicy {
                link_by_phone: true,
                phone_conflict: PhoneConflict::Move,
            },
            wechat_deadline: Duration::from_secs(5),
            ticket_lease: Duration::from_secs(35),
            phone_failures_per_ticket: Some(5),
        },
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
async fn a_session_ends_when_its_lifetime_has_passed() {
    let core = core().await;
    let openid = core.user("13800138101");
    let ticket = core.ticket(&openid).await;
    let code = core.phone_code(&openid);
    let logged_in = core
        .logins
        .phone_with_ticket(core.app(), &ticket, &code)
        .await
        .unwrap();
    assert_eq!(logged_in.expires_in, SESSION_TTL);
    core.clock.advance(SESSION_TTL.as_secs() as i64 - 1);
    let me = core.logins.me(core.app(), &logged_in.token).await.unwrap();
    assert_eq!(me.session.account.id, logged_in.account_id);
    assert_eq!(me.phone.as_deref(), Some("13800138101"));
    core.clock.advance(1);
    assert_eq!(
        core.logins.me(core.app(), &logged_in.token).await.err(),
        Some(ApiError::Unauthorized)
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
