//! The example binaries as separate processes sharing one Redis and one
//! secret: a session created on one is read, updated and ended on the
//! others, across frameworks; and the Redis commands each request costs.

mod support;

use std::time::Duration;

use serde_json::json;
use session_conformance::Browser;
use session_redis::redis;
use session_redis::testing::LocalRedis;
use support::{App, a_session_moves_between, bins, start_all};

const SECRET: &str = "multi-process test secret, comfortably over 32 bytes";

/// An example on `redis_url`, with the client-side cache on or off (set
/// either way, whatever the test's own environment says).
fn start_on(bin: &str, redis_url: &str, cache: bool) -> App {
    App::start(bin, &env(redis_url, cache))
}

fn env(redis_url: &str, cache: bool) -> [(&'static str, String); 5] {
    [
        ("SESSION_STORE", "redis".into()),
        ("REDIS_URL", redis_url.into()),
        ("SESSION_SECRET", SECRET.into()),
        ("SESSION_SECURE", "true".into()),
        ("SESSION_REDIS_CACHE", cache.to_string()),
    ]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_between_processes_and_frameworks() {
    let Some(redis) = own_redis() else {
        return;
    };
    let apps = start_all(&env(&redis.url(), false)).await;
    a_session_moves_between(&apps, 16).await;
}

/// Round trips to Redis for each kind of request, counted with `INFO
/// commandstats` on a server of our own: the commands a client sends are
/// `HGETALL` (load) and `EVALSHA` (a commit script, one round trip however
/// many commands the script runs inside Redis; those are printed too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_commands_per_request() {
    let Some(redis) = own_redis() else {
        return;
    };
    // Without the client-side cache a read costs 1 round trip and a write
    // 2; with it, a read of a cached session costs none and a write 1.
    for (cache, read, write) in [(false, 1, 2), (true, 0, 1)] {
        let app = start_on(bins()[0], &redis.url(), cache);
        app.wait_ready().await;
        let mut admin = redis::Client::open(redis.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let mut browser = Browser::new(app.addr);
        browser.login("ada", json!({})).await;
        // Scripts are loaded on first use: warm every kind once.
        browser.post("/session/update", r#"{"warm": 1}"#).await;
        browser.get("/session/profile").await;

        let mut measure = async |label: &str,
                                 browser: &mut Browser,
                                 method: &str,
                                 path: &str,
                                 body: &str| {
            let before = commands(&mut admin);
            let res = browser.request(method, path, body.as_bytes()).await;
            assert!(res.status < 500, "{label}: {}", res.status);
            let after = commands(&mut admin);
            let (trips, inside) = (after.0 - before.0, after.1 - before.1);
            println!(
                "cache {cache}: {label}: {trips} round trip(s), {inside} command(s) executed in Redis"
            );
            trips
        };
        let profile = ("read-only request (profile)", "GET", "/session/profile", "");
        let update = (
            "writing request (update)",
            "POST",
            "/session/update",
            r#"{"k": 1}"#,
        );
        assert_eq!(
            measure(profile.0, &mut browser, profile.1, profile.2, profile.3).await,
            read,
            "cache {cache}"
        );
        assert_eq!(
            measure(update.0, &mut browser, update.1, update.2, update.3).await,
            write,
            "cache {cache}"
        );
        let mut anonymous = Browser::new(app.addr);
        assert_eq!(
            measure(
                "request without a cookie",
                &mut anonymous,
                "GET",
                "/healthz",
                ""
            )
            .await,
            0
        );
    }
}

/// (client round trips, all commands executed) so far, leaving out the
/// `INFO` calls themselves.
fn commands(admin: &mut redis::Connection) -> (u64, u64) {
    let info: String = redis::cmd("INFO").arg("commandstats").query(admin).unwrap();
    let calls = |line: &str| {
        line.split("calls=")
            .nth(1)?
            .split(',')
            .next()?
            .parse::<u64>()
            .ok()
    };
    let mut trips = 0;
    let mut all = 0;
    for line in info
        .lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info:"))
    {
        let n = calls(line).unwrap_or(0);
        all += n;
        if line.starts_with("cmdstat_hgetall:")
            || line.starts_with("cmdstat_evalsha:")
            || line.starts_with("cmdstat_eval:")
        {
            trips += n;
        }
    }
    (trips, all)
}

/// With Redis stopped, requests that need the store get a clear 503 within
/// the store's timeout (and a body that names no detail), from every
/// framework's app alike; once a Redis is back on the same address, the
/// same app processes serve again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_503_and_the_app_recovers_without_restart() {
    let Some(mut redis) = own_redis() else {
        return;
    };
    let apps: Vec<App> = bins()
        .iter()
        .map(|bin| start_on(bin, &redis.url(), false))
        .collect();
    let mut browsers = Vec::new();
    for app in &apps {
        app.wait_ready().await;
        let mut browser = Browser::new(app.addr);
        browser.login("ada", json!({})).await;
        browsers.push(browser);
    }

    redis.kill();
    for ((browser, app), bin) in browsers.iter_mut().zip(&apps).zip(bins()) {
        let started = std::time::Instant::now();
        let res = browser.get("/session/profile").await;
        assert_eq!(res.status, 503, "{bin}");
        assert_eq!(
            res.json(),
            json!({ "error": "session store unavailable" }),
            "{bin}"
        );
        assert_eq!(res.header("cache-control"), Some("no-store"), "{bin}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{bin}: 503 took {:?}",
            started.elapsed()
        );
        assert_eq!(
            Browser::new(app.addr).get("/healthz").await.status,
            200,
            "{bin}: no cookie, no store"
        );
        let res = Browser::new(app.addr)
            .post("/session/login", r#"{"username":"bob"}"#)
            .await;
        assert_eq!(res.status, 503, "{bin}: a login needs the store");
        assert_eq!(res.header("cache-control"), Some("no-store"), "{bin}");
    }

    // A fresh Redis (no persistence): the old session is gone, service is back.
    redis.restart();
    for (browser, bin) in browsers.iter_mut().zip(bins()) {
        let mut recovered = false;
        for _ in 0..100 {
            let res = browser.get("/session/profile").await;
            if res.status == 401 {
                recovered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(recovered, "{bin}: the app did not reconnect to Redis");
        browser.login("ada", json!({ "back": true })).await;
        assert_eq!(
            browser.get("/session/profile").await.json()["data"],
            json!({ "back": true }),
            "{bin}"
        );
    }
}

/// With the client-side cache on in every process: a change and a logout
/// made through one process are seen by another within 100 ms (Redis's
/// invalidation message), polled every 5 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_a_change_and_a_logout_reach_other_processes_within_100_ms() {
    let Some(redis) = own_redis() else {
        return;
    };
    let writer = start_on(bins()[0], &redis.url(), true);
    let reader = start_on(bins()[1], &redis.url(), true);
    writer.wait_ready().await;
    reader.wait_ready().await;
    let mut on_writer = Browser::new(writer.addr);
    on_writer.login("ada", json!({ "v": 0 })).await;
    let mut on_reader = on_writer.at(reader.addr);
    // The reader caches the session.
    for _ in 0..3 {
        assert_eq!(
            on_reader.get("/session/profile").await.json()["data"]["v"],
            0
        );
    }
    let poll = async |browser: &mut Browser,
                      done: &dyn Fn(&session_conformance::Response) -> bool| {
        let start = std::time::Instant::now();
        loop {
            let res = browser.get("/session/profile").await;
            if done(&res) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_millis(100),
                "not seen within 100 ms"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    assert_eq!(
        on_writer
            .post("/session/update", r#"{"v": 1}"#)
            .await
            .status,
        200
    );
    let seen = poll(&mut on_reader, &|res| res.json()["data"]["v"] == 1).await;
    println!("update seen by the other process after {seen:?}");
    assert_eq!(on_writer.post("/session/logout", "").await.status, 200);
    let seen = poll(&mut on_reader, &|res| res.status == 401).await;
    println!("logout seen by the other process after {seen:?}");
}
