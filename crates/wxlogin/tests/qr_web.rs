//! Scan login as the web page sees it: a waiting poll is woken by the scan and by the confirm themselves (timed
//! over many cycles, so a service that re-read the row on an interval would fail), the real binary's CORS answers
//! for a listed and an unlisted origin, and docs/scan-login.md's script is the one the e2e runs.

mod common;

use common::qr::{create, phone, phone_call, spawn_poll, until_waiting};
use common::{sandbox_args, spawn_with, temp_dir};
use std::time::{Duration, Instant};
use wxlogin::config::{RateLimitSwitch, ServeArgs};

/// The middle of `delays` (the upper one of an even count).
fn median(delays: &[Duration]) -> Duration {
    let mut sorted = delays.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_poll_is_answered_within_milliseconds_of_the_scan_and_of_the_confirm() {
    // Rate limits off: the cycles create more logins than a minute's per-IP burst allows on a slow machine.
    let app = spawn_with(ServeArgs {
        rate_limits: Some(RateLimitSwitch::Off),
        ..sandbox_args(&temp_dir("qrwake"))
    })
    .await;
    let phone = phone(&app, "13800138071").await;
    const CYCLES: usize = 10;
    let (mut scans, mut confirms) = (Vec::new(), Vec::new());
    for _ in 0..CYCLES {
        let created = create(&app).await;
        let id = created["id"].as_str().unwrap();
        let poll_token = created["pollToken"].as_str().unwrap();
        // Each change is made only once the poll is held (the gauge counts it), so the answer can only come from
        // the change reaching the waiting poll: not from the poll's first read, nor from its 25 s wait ending.
        for (action, status, delays) in [
            ("scan", "scanned", &mut scans),
            ("confirm", "confirmed", &mut confirms),
        ] {
            let waiting = spawn_poll(&app, id, poll_token);
            until_waiting(&app, 1.0).await;
            let (code, body) = phone_call(&app, id, action, Some(&phone.token)).await;
            assert_eq!(code, 200, "{action}: {body}");
            let changed_at = Instant::now();
            let (answer, answered_at) = waiting.await.unwrap();
            assert_eq!(answer["data"]["status"], status, "{answer}");
            delays.push(answered_at.saturating_duration_since(changed_at));
        }
    }
    eprintln!("poll answered after the scan's answer: {scans:?}");
    eprintln!("poll answered after the confirm's answer: {confirms:?}");
    // A service that re-read the row every P instead of being woken would answer a uniformly random 0..P after the
    // change, a median of P/2: under 50 ms over 10 cycles needs P under ~100 ms (ten database reads a second per
    // waiting poll), and 500 times less than the 25 s wait, the one timer a long poll has. The max allows for a
    // debug build on a loaded 2-core machine (the confirm's answer mints the web's session), still far below any
    // interval worth the name.
    for (what, delays) in [("scan", &scans), ("confirm", &confirms)] {
        let (median, max) = (median(delays), *delays.iter().max().unwrap());
        assert!(
            median < Duration::from_millis(50),
            "{what}: median {median:?} ({delays:?})"
        );
        assert!(
            max < Duration::from_secs(1),
            "{what}: max {max:?} ({delays:?})"
        );
    }
}
