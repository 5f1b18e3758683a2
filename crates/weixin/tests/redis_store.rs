//! The Redis token store: several clients (as several instances would) against one simulator and one Redis.
//! With WXLOGIN_TEST_REDIS set (to a URL, or `1` for redis://127.0.0.1:6379/) these tests must run; unset, they
//! skip with a message when Redis is not there.
#![cfg(feature = "redis")]

mod common;

use common::Sim;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weixin::{AccessToken, AppId, CachedToken, Client, RedisTokenStore, TokenStore};

const DEFAULT_URL: &str = "redis://127.0.0.1:6379/";

async fn redis_url() -> Option<String> {
    let wanted = std::env::var("WXLOGIN_TEST_REDIS").ok();
    let url = match wanted.as_deref() {
        Some("1") | Some("") | None => DEFAULT_URL.to_owned(),
        Some(url) => url.to_owned(),
    };
    let probe = RedisTokenStore::new(&url, Duration::from_secs(1)).unwrap();
    match probe.ping().await {
        Ok(()) => Some(url),
        Err(e) if wanted.is_some() => {
            panic!("WXLOGIN_TEST_REDIS is set but Redis at {url} is unreachable: {e}")
        }
        Err(e) => {
            eprintln!(
                "skipping Redis token store tests: {e} (set WXLOGIN_TEST_REDIS to require them)"
            );
            None
        }
    }
}

fn store(url: &str, prefix: &str) -> Arc<RedisTokenStore> {
    Arc::new(
        RedisTokenStore::new(url, Duration::from_secs(1))
            .unwrap()
            .with_prefix(prefix),
    )
}

fn prefix() -> String {
    format!("wxlogin-test-{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

fn cached(token: &str) -> CachedToken {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    CachedToken {
        token: AccessToken::new(token),
        fresh_until: now + 100,
        expires_at: now + 200,
    }
}

#[tokio::test]
async fn a_stale_instance_cannot_drop_a_fresh_token() {
    let Some(url) = redis_url().await else { return };
    let p = prefix();
    let (a, b) = (store(&url, &p), store(&url, &p));
    let app = AppId::parse("wx0123456789abcdef").unwrap();
    a.put(&app, &cached("old")).await.unwrap();
    assert_eq!(
        b.get(&app).await.unwrap().unwrap().token,
        AccessToken::new("old")
    );
    b.put(&app, &cached("new")).await.unwrap();
    assert!(
        !a.invalidate(&app, &AccessToken::new("old")).await.unwrap(),
        "old token: nothing dropped"
    );
    assert_eq!(
        a.get(&app).await.unwrap().unwrap().token,
        AccessToken::new("new")
    );
    assert!(a.invalidate(&app, &AccessToken::new("new")).await.unwrap());
    assert!(b.get(&app).await.unwrap().is_none());
}

#[tokio::test]
async fn the_lock_is_shared_leased_and_released_only_by_its_holder() {
    let Some(url) = redis_url().await else { return };
    let p = prefix();
    let (a, b) = (store(&url, &p), store(&url, &p));
    let app = AppId::parse("wx0123456789abcdef").unwrap();
    let held = a
        .try_lock(&app, Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    assert!(
        b.try_lock(&app, Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    b.unlock(
        &app,
        &weixin::RefreshLock {
            holder: "not me".into(),
        },
    )
    .await
    .unwrap();
    assert!(
        b.try_lock(&app, Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let taken = b
        .try_lock(&app, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    a.unlock(&app, &held).await.unwrap(); // a's lease ran out: this must not release b's lock
    assert!(
        a.try_lock(&app, Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    b.unlock(&app, &taken).await.unwrap();
    assert!(
        a.try_lock(&app, Duration::from_secs(5))
            .await
            .unwrap()
            .is_some()
    );
}

fn clients(s: &Sim, url: &str, n: usize) -> Vec<Client> {
    let p = prefix();
    (0..n)
        .map(|_| Client::with_token_store(s.config(), store(url, &p)).unwrap())
        .collect()
}

#[tokio::test]
async fn three_instances_on_a_cold_cache_fetch_one_token() {
    let Some(url) = redis_url().await else { return };
    let s = Sim::start().await;
    let instances = clients(&s, &url, 3);
    let users: Vec<_> = (0..90).map(|i| s.user(&format!("136{:08}", i))).collect();
    let tasks = users.iter().enumerate().map(|(i, u)| {
        let (client, code) = (instances[i % 3].clone(), s.phone_code(&u.openid));
        tokio::spawn(async move { client.get_phone_number(&code, None).await })
    });
    for r in futures::future::join_all(tasks).await {
        r.unwrap().unwrap();
    }
    assert_eq!(s.tokens_issued(), 1);
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_across_instances() {
    let Some(url) = redis_url().await else { return };
    let s = Sim::start().await;
    let instances = clients(&s, &url, 3);
    for c in &instances {
        c.access_token().await.unwrap();
    }
    assert_eq!(s.tokens_issued(), 1);
    s.sim().revoke_tokens(None);
    let users: Vec<_> = (0..60).map(|i| s.user(&format!("135{:08}", i))).collect();
    let tasks = users.iter().enumerate().map(|(i, u)| {
        let (client, code) = (instances[i % 3].clone(), s.phone_code(&u.openid));
        tokio::spawn(async move { client.get_phone_number(&code, None).await })
    });
    for r in futures::future::join_all(tasks).await {
        r.unwrap().unwrap();
    }
    assert_eq!(
        s.tokens_issued(),
        2,
        "exactly one refresh for the whole cluster"
    );
}

#[tokio::test]
async fn a_crashed_lock_holder_blocks_the_others_for_one_lease_at_most() {
    let Some(url) = redis_url().await else { return };
    let s = Sim::start().await;
    let p = prefix();
    let app = AppId::parse(s.app.appid.clone()).unwrap();
    // The "crashed" instance took the lock and will never put a token nor unlock.
    let crashed = store(&url, &p);
    let lease = Duration::from_millis(800);
    crashed.try_lock(&app, lease).await.unwrap().unwrap();
    let mut config = s.config();
    config.lock_lease = lease;
    let survivor = Client::with_token_store(config, store(&url, &p)).unwrap();
    let started = Instant::now();
    survivor.access_token().await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(600),
        "it waited for the lease: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(2500),
        "and not much longer: {waited:?}"
    );
    assert_eq!(s.tokens_issued(), 1);
}

#[tokio::test]
async fn with_redis_down_each_instance_falls_back_to_its_own_cache() {
    let s = Sim::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = Arc::new(
        RedisTokenStore::new(
            &format!("redis://127.0.0.1:{port}/"),
            Duration::from_millis(200),
        )
        .unwrap(),
    );
    assert!(down.ping().await.is_err());
    let client = Client::with_token_store(s.config(), down).unwrap();
    let user = s.user("13400134000");
    client
        .get_phone_number(&s.phone_code(&user.openid), None)
        .await
        .unwrap();
    client
        .get_phone_number(&s.phone_code(&user.openid), None)
        .await
        .unwrap();
    assert_eq!(s.tokens_issued(), 1, "the fallback still caches");
}
