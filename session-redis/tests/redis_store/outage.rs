//! A hung or dead Redis gives `Error::Store` within the timeout, and the
//! same store works again once Redis is back.

use std::time::{Duration, Instant, SystemTime};

use session_core::testing::{record_at, update_at};
use session_core::{Error, SessionId, SessionStore, Timestamp, WriteOutcome};
use session_redis::{CacheConfig, RedisStore};

use session_redis::testing::{own_server, unique_prefix};

const TIMEOUT: Duration = Duration::from_millis(500);
const MARGIN: Duration = Duration::from_millis(500);

/// Every operation fails with `Error::Store` (its cause kept) in time.
/// Only `load` and `update` touch `live`; the rest use fresh ids and users,
/// because a stopped server still runs what it received once it resumes.
async fn every_operation_fails_in_time(store: &RedisStore, live: &SessionId, phase: &str) {
    let now = Timestamp::from(SystemTime::now());
    let record = record_at(now, Some("outage-user"), &[("a", "1")]);
    let update = update_at(now, &[("b", "2")], &[]);
    let (fresh, other) = (SessionId::generate(), SessionId::generate());
    let mut results: Vec<(&str, Duration, Result<(), Error>)> = Vec::new();
    macro_rules! time {
        ($name:literal, $op:expr) => {{
            let started = Instant::now();
            let result = $op.await.map(drop);
            results.push(($name, started.elapsed(), result));
        }};
    }
    if store.is_cached() && phase == "stopped" {
        // A hung Redis: the cached session is served only until the
        // staleness bound runs out (no `PING` comes back), then loads go to
        // Redis and time out; the connections are given up when their
        // `PING` has not come back within the timeout, and the cache goes.
        let stopped = Instant::now();
        let limit = CacheConfig::DEFAULT_STALENESS_BOUND + Duration::from_millis(50);
        let mut served = 0;
        let last_start = loop {
            let started = Instant::now();
            match store.load(live, now).await {
                Ok(Some(_)) => served += 1,
                Err(Error::Store(_)) => break started,
                other => panic!("{phase}: {other:?}"),
            }
            assert!(
                stopped.elapsed() < limit,
                "served from the cache past the bound"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        println!(
            "{phase}: {served} loads answered from the cache; a load started {:?} after the stop went to Redis",
            last_start - stopped
        );
        assert!(last_start - stopped < limit);
        while store.cache_stats().is_some_and(|stats| stats.entries > 0) {
            assert!(stopped.elapsed() < Duration::from_secs(3), "cache kept");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!("{phase}: cache dropped after {:?}", stopped.elapsed());
    }
    time!("load", store.load(live, now));
    time!("update", store.update(live, update.clone()));
    time!("create", store.create(&fresh, &record));
    time!("renew", store.renew(&fresh, &other, &update));
    time!("delete", store.delete(&other));
    time!("user_sessions", store.user_sessions("outage-user", now));
    time!("delete_user", store.delete_user("nobody"));
    for (name, elapsed, result) in results {
        println!("{phase}: {name} failed after {elapsed:?}");
        match result {
            Err(err @ Error::Store(_)) => {
                let source = std::error::Error::source(&err).expect("source kept");
                println!("  {err}: {source}");
            }
            other => panic!("{phase}: {name} gave {other:?}, not Error::Store"),
        }
        assert!(
            elapsed < TIMEOUT + MARGIN,
            "{phase}: {name} took {elapsed:?}"
        );
    }
}

/// Retries `load` until it succeeds; returns how long that took.
async fn until_back(store: &RedisStore, id: &SessionId) -> Duration {
    let started = Instant::now();
    loop {
        let now = Timestamp::from(SystemTime::now());
        match store.load(id, now).await {
            Ok(_) => return started.elapsed(),
            Err(Error::Store(_)) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("store did not come back: {err:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outages_fail_in_time_and_the_store_recovers() {
    outage(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn outages_fail_in_time_and_the_store_recovers_with_the_cache() {
    outage(true).await;
}

async fn outage(cached: bool) {
    let Some(mut server) = own_server("outage") else {
        return;
    };
    let mut store = RedisStore::new(server.url())
        .unwrap()
        .with_prefix(unique_prefix("outage"))
        .with_timeout(TIMEOUT);
    store = if cached {
        store.with_cache(CacheConfig::default()).unwrap()
    } else {
        store.without_cache()
    };
    assert_eq!(store.timeout(), TIMEOUT);
    let now = Timestamp::from(SystemTime::now());
    let id = SessionId::generate();
    let record = record_at(now, None, &[("a", "1")]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );

    // A hung server: every call times out.
    server.signal("STOP");
    every_operation_fails_in_time(&store, &id, "stopped").await;
    server.signal("CONT");
    let back = until_back(&store, &id).await;
    println!("resumed: store answered again after {back:?}");
    let now = Timestamp::from(SystemTime::now());
    assert!(
        store.load(&id, now).await.unwrap().is_some(),
        "session lost"
    );

    // A dead server: every call fails, fast; the cache is dropped as soon
    // as the connections report their end.
    server.kill();
    let deadline = Instant::now() + Duration::from_secs(1);
    while store.cache_stats().is_some_and(|stats| stats.entries > 0) {
        assert!(
            Instant::now() < deadline,
            "cache kept after the server died"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    every_operation_fails_in_time(&store, &id, "killed").await;

    // A new (empty) server on the same port: the same store reconnects.
    server.restart();
    let back = until_back(&store, &id).await;
    println!("restarted: store answered again after {back:?}");
    let now = Timestamp::from(SystemTime::now());
    assert!(
        store.load(&id, now).await.unwrap().is_none(),
        "no persistence, no session"
    );
    let fresh = SessionId::generate();
    let record = record_at(now, Some("back"), &[("a", "1")]);
    assert_eq!(
        store.create(&fresh, &record).await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(store.load(&fresh, now).await.unwrap(), Some(record));
    assert_eq!(store.user_sessions("back", now).await.unwrap(), [fresh]);
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_listening_is_a_store_error() {
    // A port nobody listens on: the first operation fails, in time.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = RedisStore::new(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .with_timeout(TIMEOUT);
    let started = Instant::now();
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert!(started.elapsed() < TIMEOUT + MARGIN);
    assert!(matches!(
        RedisStore::new("not a url"),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        RedisStore::cluster(Vec::<String>::new()),
        Err(Error::Config(_))
    ));
}
