//! The cache's staleness bound against real failures of the network: a
//! store whose Redis traffic goes through a [`Proxy`] that stalls (keeps
//! the connections, forwards nothing), resets (cuts them) or refuses (stops
//! listening). Whatever the failure, the store stops serving its cached
//! sessions within the bound (100 ms) and reads Redis until its tracking
//! connections prove themselves again.

use std::time::{Duration, Instant, SystemTime};

use session_core::testing::record_at;
use session_core::{Error, Record, SessionId, SessionStore, Timestamp, WriteOutcome};
use session_redis::testing::{LocalRedis, Proxy, ProxyMode, admin, own_server, unique_prefix};
use session_redis::{CacheConfig, CacheStats, RedisStore};

const BOUND: Duration = CacheConfig::DEFAULT_STALENESS_BOUND;
/// Scheduling slack on a shared machine, on top of the bound.
const MARGIN: Duration = Duration::from_millis(50);
/// The timeout of the store behind the proxy: a load that goes to a
/// stalled Redis fails after this.
const TIMEOUT: Duration = Duration::from_millis(300);

fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

fn stats(store: &RedisStore) -> CacheStats {
    store.cache_stats().unwrap()
}

/// A server, a proxy in front of it, and a cached store through the proxy
/// (one connection, so that one proxy connection carries its tracking).
async fn behind_proxy(test: &str) -> Option<(LocalRedis, Proxy, RedisStore, String)> {
    let server = own_server(test)?;
    let proxy = Proxy::start(server.port()).await.unwrap();
    let prefix = unique_prefix(test);
    let store = RedisStore::new(proxy.url())
        .unwrap()
        .with_prefix(&prefix)
        .with_timeout(TIMEOUT)
        .with_connections(1)
        .with_cache(CacheConfig::default())
        .unwrap();
    Some((server, proxy, store, prefix))
}

/// Creates a session through `store` and loads it until it is served from
/// the cache.
async fn cached_session(store: &RedisStore) -> (SessionId, Record) {
    let id = SessionId::generate();
    let record = record_at(now(), Some("ann"), &[("v", "1")]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );
    assert!(served_from_cache(store, &id).await, "not cached");
    (id, record)
}

/// Whether a load of `id` was answered from memory.
async fn served_from_cache(store: &RedisStore, id: &SessionId) -> bool {
    let hits = stats(store).hits;
    let loaded = store.load(id, now()).await;
    let hit = stats(store).hits > hits;
    assert!(!hit || matches!(loaded, Ok(Some(_))));
    hit
}

/// Loads `id` every 5 ms from `since` on while the cache serves it;
/// returns when the first load that was not served from the cache started,
/// after `since`, and what it gave. Fails if the cache serves it past
/// `limit` after `since`.
async fn first_load_not_cached(
    store: &RedisStore,
    id: &SessionId,
    since: Instant,
    limit: Duration,
) -> (Duration, Result<Option<Record>, Error>) {
    loop {
        let started = Instant::now();
        let hits = stats(store).hits;
        let loaded = store.load(id, now()).await;
        if stats(store).hits == hits {
            return (started - since, loaded);
        }
        assert!(
            started - since < limit,
            "served from the cache {:?} after the failure",
            started - since
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Loads until one succeeds (within `limit`); what it gave.
async fn until_answered(store: &RedisStore, id: &SessionId, limit: Duration) -> Option<Record> {
    let started = Instant::now();
    loop {
        match store.load(id, now()).await {
            Ok(record) => return record,
            Err(Error::Store(_)) if started.elapsed() < limit => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(err) => panic!("no answer within {limit:?}: {err:?}"),
        }
    }
}

/// Waits until the cache serves `id` again (its connection proved
/// itself), within `limit`.
async fn served_again(store: &RedisStore, id: &SessionId, limit: Duration) -> Duration {
    let started = Instant::now();
    while !served_from_cache(store, id).await {
        assert!(
            started.elapsed() < limit,
            "never served from the cache again"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_cut_off_while_another_logs_the_session_out_stops_serving_it_within_the_bound() {
    let Some((server, proxy, b, prefix)) = behind_proxy("cut-off-logout").await else {
        return;
    };
    // Process A reaches Redis directly; process B through the proxy.
    let a = RedisStore::new(server.url())
        .unwrap()
        .with_prefix(&prefix)
        .with_cache(CacheConfig::default())
        .unwrap();
    let (id, _) = cached_session(&b).await;
    assert!(a.load(&id, now()).await.unwrap().is_some());

    // B's traffic stalls; the logout through A succeeds meanwhile.
    proxy.set_mode(ProxyMode::Stall);
    let stalled = Instant::now();
    assert!(a.delete(&id).await.unwrap(), "the logout failed");
    let logged_out = Instant::now();
    println!(
        "logout through A acknowledged {:?} after the stall",
        logged_out - stalled
    );

    // B serves its cached copy at most until the bound runs out, then asks
    // Redis, which cannot answer: a store error, never the session.
    let (after, loaded) = first_load_not_cached(&b, &id, logged_out, BOUND + MARGIN).await;
    println!("B stopped serving the logged-out session {after:?} after the logout");
    assert!(after < BOUND + MARGIN, "{after:?}");
    assert!(matches!(loaded, Err(Error::Store(_))), "{loaded:?}");
    for _ in 0..3 {
        let loaded = b.load(&id, now()).await;
        assert!(matches!(loaded, Err(Error::Store(_))), "{loaded:?}");
    }
    assert!(stats(&b).unproven >= 1);

    // Forwarding again: B reads Redis (the session is gone), and never
    // brought it back.
    proxy.set_mode(ProxyMode::Forward);
    assert_eq!(until_answered(&b, &id, Duration::from_secs(5)).await, None);
    assert_eq!(b.load(&id, now()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_connection_stops_cached_reads_within_the_bound_and_proof_brings_them_back() {
    let Some((_server, proxy, store, _)) = behind_proxy("stall").await else {
        return;
    };
    let (id, record) = cached_session(&store).await;
    let flushes = stats(&store).flushes;

    proxy.set_mode(ProxyMode::Stall);
    let stalled = Instant::now();
    let (after, loaded) = first_load_not_cached(&store, &id, stalled, BOUND + MARGIN).await;
    println!("stalled: cached reads stopped {after:?} after the stall");
    assert!(matches!(loaded, Err(Error::Store(_))), "{loaded:?}");
    // Its `PING` unanswered within the timeout, the connection is given
    // up, and the cache dropped with it.
    let deadline = Instant::now() + TIMEOUT + Duration::from_secs(1);
    while stats(&store).flushes == flushes {
        assert!(Instant::now() < deadline, "the stalled connection was kept");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "stalled: cache dropped {:?} after the stall",
        stalled.elapsed()
    );
    assert_eq!(stats(&store).entries, 0);

    // Forwarding again: a new connection, tracking on, proven by a round
    // trip: the session is read from Redis, then served from memory.
    proxy.set_mode(ProxyMode::Forward);
    assert_eq!(
        until_answered(&store, &id, Duration::from_secs(5)).await,
        Some(record)
    );
    let again = served_again(&store, &id, Duration::from_secs(2)).await;
    println!("stalled: served from the cache again {again:?} after the first answer");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_connection_drops_the_cache_at_once_and_redis_is_read_until_proof_returns() {
    let Some((server, proxy, store, prefix)) = behind_proxy("reset").await else {
        return;
    };
    let (id, _) = cached_session(&store).await;
    let flushes = stats(&store).flushes;

    proxy.cut();
    let cut = Instant::now();
    // Nothing cached is served from the moment the end is seen.
    let (after, _) = first_load_not_cached(&store, &id, cut, MARGIN).await;
    println!("reset: cached reads stopped {after:?} after the cut");
    assert!(stats(&store).flushes > flushes, "cache not dropped");
    // A change made while this store was cut off (its invalidation went
    // nowhere) is what the next answer holds.
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}{{{id}}}"))
        .arg("d:v")
        .arg("2")
        .query(&mut admin(&server.url()))
        .unwrap();
    let record = until_answered(&store, &id, Duration::from_secs(2)).await;
    assert_eq!(record.unwrap().data.get("v"), Some("2"));
    let again = served_again(&store, &id, Duration::from_secs(2)).await;
    println!("reset: served from the cache again {again:?} after the first answer");
    let record = store.load(&id, now()).await.unwrap().unwrap();
    assert_eq!(record.data.get("v"), Some("2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_serves_nothing_cached_until_it_is_back_and_proven() {
    let Some((server, proxy, store, prefix)) = behind_proxy("refused").await else {
        return;
    };
    let (id, _) = cached_session(&store).await;

    proxy.set_mode(ProxyMode::Refuse);
    let refused = Instant::now();
    let (after, _) = first_load_not_cached(&store, &id, refused, MARGIN).await;
    println!("refused: cached reads stopped {after:?} after the refusal");
    assert_eq!(stats(&store).entries, 0, "cache kept");
    // Every load meanwhile fails fast (nothing listens), never cached.
    for _ in 0..5 {
        let started = Instant::now();
        let loaded = store.load(&id, now()).await;
        assert!(matches!(loaded, Err(Error::Store(_))), "{loaded:?}");
        assert!(started.elapsed() < TIMEOUT + MARGIN);
    }
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}{{{id}}}"))
        .arg("d:v")
        .arg("3")
        .query(&mut admin(&server.url()))
        .unwrap();

    proxy.set_mode(ProxyMode::Forward);
    let record = until_answered(&store, &id, Duration::from_secs(5)).await;
    assert_eq!(record.unwrap().data.get("v"), Some("3"));
    served_again(&store, &id, Duration::from_secs(2)).await;
    println!("{:?}", stats(&store));
}
