//! `GET /metrics` and `GET /readyz` on the example binaries, each its own
//! process: exact counts for one login, one logout and two refusals, on
//! every framework; readiness that follows a stopped Redis.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use session_conformance::{Browser, Response};
use session_redis::testing::LocalRedis;
use support::{App, bins, start_all};

const SECRET: &str = "observability test secret, comfortably over 32 bytes";

/// The value of one series (`name{labels}` exactly as rendered) in a
/// Prometheus text page; 0 when it is not there yet.
fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().unwrap())
        })
        .unwrap_or(0.0)
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let res = Browser::new(addr).get("/metrics").await;
    assert_eq!(res.status, 200);
    assert!(
        res.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        res.header("content-type")
    );
    assert_no_session(&res, "/metrics");
    String::from_utf8(res.body).unwrap()
}

fn assert_no_session(res: &Response, route: &str) {
    assert_eq!(res.set_cookie(), None, "{route} must set no cookie");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_one_logout_and_refusals_are_counted_exactly_on_every_framework() {
    let apps = start_all(&[("SESSION_SECRET", SECRET)]).await;
    for (app, bin) in apps.iter().zip(bins()) {
        let ready = Browser::new(app.addr).get("/readyz").await;
        assert_eq!(ready.status, 200, "{bin}: memory is always ready");
        assert_no_session(&ready, "/readyz");

        let before = scrape(app.addr).await;
        let mut browser = Browser::new(app.addr);
        assert_eq!(browser.login("ada", json!({ "k": 1 })).await.status, 200);
        assert_eq!(browser.post("/session/logout", "").await.status, 200);
        let not_json = Browser::new(app.addr)
            .request_as("POST", "/session/login", Some("text/plain"), b"{}")
            .await;
        assert_eq!(not_json.status, 415, "{bin}");
        let no_session = Browser::new(app.addr).get("/session/profile").await;
        assert_eq!(no_session.status, 401, "{bin}");
        // Unknown routes are not refusals.
        assert_eq!(Browser::new(app.addr).get("/nowhere").await.status, 404);
        let after = scrape(app.addr).await;

        let delta = |series: &str| value(&after, series) - value(&before, series);
        for (series, expected) in [
            ("session_created_total", 1.0),
            ("session_ended_total{reason=\"logout\"}", 1.0),
            ("session_refused_total{status=\"415\"}", 1.0),
            ("session_refused_total{status=\"401\"}", 1.0),
            ("session_refused_total{status=\"404\"}", 0.0),
            (
                "session_store_seconds_count{op=\"create\",store=\"memory\"}",
                1.0,
            ),
            (
                "session_store_seconds_count{op=\"delete\",store=\"memory\"}",
                1.0,
            ),
            ("session_size_bytes_count", 1.0),
        ] {
            assert_eq!(delta(series), expected, "{bin}: {series}\n{after}");
        }
        assert!(
            after.contains("# TYPE session_store_seconds histogram"),
            "{bin}: {after}"
        );
        assert!(
            after.contains("session_store_seconds_bucket{op=\"create\",store=\"memory\",le="),
            "{bin}: {after}"
        );
    }
}

/// A `redis-server` of this test's own, or `None` (after saying why) when
/// the machine has none.
fn own_redis() -> Option<LocalRedis> {
    if LocalRedis::available() {
        Some(LocalRedis::start())
    } else {
        session_core::testing::skip("redis-server", "not on PATH (apt-get install redis-server)");
        None
    }
}

/// `/readyz` until it answers `status`, for at most `within`.
async fn readyz_becomes(app: &App, status: u16, within: Duration) -> Response {
    let started = Instant::now();
    loop {
        let res = Browser::new(app.addr).get("/readyz").await;
        if res.status == status || started.elapsed() > within {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_redis_is_stopped_and_200_once_it_is_back() {
    let Some(redis) = own_redis() else {
        return;
    };
    let env = [
        ("SESSION_STORE", "redis".to_owned()),
        ("REDIS_URL", redis.url()),
        ("SESSION_SECRET", SECRET.to_owned()),
    ];
    let apps = start_all(&env).await;
    for (app, bin) in apps.iter().zip(bins()) {
        let res = readyz_becomes(app, 200, Duration::from_secs(5)).await;
        assert_eq!(res.status, 200, "{bin}");
        // The store label names Redis.
        let mut browser = Browser::new(app.addr);
        browser.login("ada", json!({})).await;
        let page = scrape(app.addr).await;
        assert_eq!(
            value(
                &page,
                "session_store_seconds_count{op=\"create\",store=\"redis\"}"
            ),
            1.0,
            "{bin}: {page}"
        );
    }

    redis.signal("STOP");
    for (app, bin) in apps.iter().zip(bins()) {
        let started = Instant::now();
        let res = Browser::new(app.addr).get("/readyz").await;
        assert_eq!(res.status, 503, "{bin}");
        assert!(res.json()["error"].is_string(), "{bin}");
        assert_eq!(res.header("content-type"), Some("application/json"));
        assert_no_session(&res, "/readyz");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{bin}: 503 took {:?}",
            started.elapsed()
        );
        assert_eq!(
            Browser::new(app.addr).get("/healthz").await.status,
            200,
            "{bin}: liveness never asks the store"
        );
    }

    redis.signal("CONT");
    for (app, bin) in apps.iter().zip(bins()) {
        let res = readyz_becomes(app, 200, Duration::from_secs(10)).await;
        assert_eq!(res.status, 200, "{bin}: ready again once Redis answers");
    }
}
