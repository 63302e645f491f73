//! The client-side cache against real Redis servers: the store contract
//! with the cache on, its round trips (0 for a cached read, 1 for a write),
//! coherence between two stores (two Redis clients, as two processes
//! are), and a flush when the connection is lost.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use session_core::testing::{record_at, store_contract, update_at};
use session_core::{Error, Record, SessionId, SessionStore, Timestamp, WriteOutcome};
use session_redis::{CacheConfig, RedisStore};

use crate::round_trips::{Monitor, warm_up};
use session_redis::testing::{TestRedis, admin, own_cluster, own_server, unique_prefix};

fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

fn cached(url: &str, prefix: &str) -> RedisStore {
    RedisStore::new(url)
        .unwrap()
        .with_prefix(prefix)
        .with_cache(CacheConfig::default())
        .unwrap()
}

fn value<'r>(record: &'r Option<Record>, key: &str) -> Option<&'r str> {
    record.as_ref()?.data.get(key)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_store_meets_the_store_contract() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let store = cached(&redis.url(), &unique_prefix("cache-contract"));
    assert!(store.is_cached());
    store.ping().await.unwrap();
    store_contract(&store).await;
    let stats = store.cache_stats().unwrap();
    println!("{stats:?}");
    assert!(stats.hits > 0, "the contract's loads never hit: {stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_read_costs_no_round_trip_and_a_write_one() {
    let Some(server) = own_server("cache round trips") else {
        return;
    };
    let store = cached(&server.url(), "session:");
    let now = now();
    store.ping().await.unwrap(); // opens every connection of the pool
    warm_up(&store, now).await;
    let mut monitor = Monitor::start(vec![server.url()]).await;
    let id = SessionId::generate();
    let record = record_at(now, Some("ann"), &[("n", "0")]);
    let (created, trips, _) = monitor.count(store.create(&id, &record)).await;
    assert_eq!(created.unwrap(), WriteOutcome::Written);
    assert_eq!(trips, 1, "create");

    // The create is cached: reads cost nothing, however many.
    let (loaded, trips, all) = monitor
        .count(async {
            let mut last = None;
            for _ in 0..100 {
                last = store.load(&id, now).await.unwrap();
            }
            last
        })
        .await;
    assert_eq!(loaded, Some(record));
    println!("100 cached reads: {trips} round trips, {all} commands run");
    assert_eq!((trips, all), (0, 0), "cached reads");

    // A writing request: load (from memory) and commit (one script).
    for i in 1..=20 {
        let n = i.to_string();
        let ((loaded, written), trips, all) = monitor
            .count(async {
                let loaded = store.load(&id, now).await.unwrap();
                let written = store
                    .update(&id, update_at(now, &[("n", &n)], &[]))
                    .await
                    .unwrap();
                (loaded, written)
            })
            .await;
        assert_eq!(value(&loaded, "n"), Some((i - 1).to_string().as_str()));
        assert_eq!(written, WriteOutcome::Written);
        if i == 1 {
            println!("writing request: {trips} round trip, {all} commands run by it");
        }
        assert_eq!(trips, 1, "writing request {i}");
    }
    // What this process wrote is what it reads, still from memory, and
    // what Redis holds.
    let (loaded, trips, _) = monitor.count(store.load(&id, now)).await;
    let loaded = loaded.unwrap();
    assert_eq!(trips, 0);
    let fresh = RedisStore::new(server.url()).unwrap();
    assert_eq!(loaded, fresh.load(&id, now).await.unwrap());
    assert_eq!(value(&loaded, "n"), Some("20"));
    println!("{:?}", store.cache_stats().unwrap());
}

/// Polls `store` every 5 ms until `seen` holds; the time it took.
async fn seen_within(
    store: &RedisStore,
    id: &SessionId,
    limit: Duration,
    seen: impl Fn(&Option<Record>) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let record = store.load(id, now()).await.unwrap();
        if seen(&record) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "not seen within {limit:?}: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn summary(delays: &mut [Duration]) -> String {
    delays.sort();
    format!(
        "min {:?}, median {:?}, max {:?} over {}",
        delays[0],
        delays[delays.len() / 2],
        delays[delays.len() - 1],
        delays.len()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_or_logout_through_one_store_reaches_the_other_within_100_ms() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    const LIMIT: Duration = Duration::from_millis(100);
    let prefix = unique_prefix("coherence");
    // Two stores: two sets of connections, as two processes would have.
    let (one, other) = (cached(&redis.url(), &prefix), cached(&redis.url(), &prefix));
    let now = now();
    let (mut updates, mut logouts) = (Vec::new(), Vec::new());
    for round in 0..10 {
        let id = SessionId::generate();
        let user = format!("user-{}", SessionId::generate());
        let record = record_at(now, Some(&user), &[("n", "0")]);
        assert_eq!(
            one.create(&id, &record).await.unwrap(),
            WriteOutcome::Written
        );
        // The other reads it (cached now), and writes it itself (its own
        // write keeps it cached, and tracked).
        assert!(other.load(&id, now).await.unwrap().is_some());
        other
            .update(&id, update_at(now, &[("mine", "1")], &[]))
            .await
            .unwrap();
        let hits = other.cache_stats().unwrap().hits;
        assert_eq!(
            value(&other.load(&id, now).await.unwrap(), "mine"),
            Some("1")
        );
        assert_eq!(other.cache_stats().unwrap().hits, hits + 1, "not cached");

        // Updates through one, seen by the other.
        for i in 1..=3 {
            let n = i.to_string();
            one.update(&id, update_at(now, &[("n", &n)], &[]))
                .await
                .unwrap();
            updates
                .push(seen_within(&other, &id, LIMIT, |r| value(r, "n") == Some(n.as_str())).await);
            // Both changes kept: the script merged them.
            assert_eq!(
                value(&other.load(&id, now).await.unwrap(), "mine"),
                Some("1")
            );
        }
        // Logout through one (a delete, or every session of the user).
        if round % 2 == 0 {
            assert!(one.delete(&id).await.unwrap());
        } else {
            assert_eq!(one.delete_user(&user).await.unwrap(), 1);
        }
        logouts.push(seen_within(&other, &id, LIMIT, Option::is_none).await);
        // No resurrection: the other's write is refused by the script.
        assert_eq!(
            other
                .update(&id, update_at(now, &[("late", "1")], &[]))
                .await
                .unwrap(),
            WriteOutcome::Missing
        );
        assert_eq!(other.load(&id, now).await.unwrap(), None);
        assert_eq!(one.load(&id, now).await.unwrap(), None);
    }
    println!("update seen by the other store: {}", summary(&mut updates));
    println!("logout seen by the other store: {}", summary(&mut logouts));
    println!("{:?}", other.cache_stats().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn renewing_through_one_store_ends_the_old_id_in_the_other() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let prefix = unique_prefix("coherence-renew");
    let (one, other) = (cached(&redis.url(), &prefix), cached(&redis.url(), &prefix));
    let now = now();
    let (old, new) = (SessionId::generate(), SessionId::generate());
    one.create(&old, &record_at(now, None, &[("a", "1")]))
        .await
        .unwrap();
    assert!(other.load(&old, now).await.unwrap().is_some());
    assert_eq!(
        one.renew(&old, &new, &update_at(now, &[], &[]))
            .await
            .unwrap(),
        WriteOutcome::Written
    );
    let delay = seen_within(&other, &old, Duration::from_millis(100), Option::is_none).await;
    println!("renew seen by the other store after {delay:?}");
    assert_eq!(value(&other.load(&new, now).await.unwrap(), "a"), Some("1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn writers_on_two_cached_stores_lose_nothing() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let prefix = unique_prefix("cache-writers");
    let stores = Arc::new([cached(&redis.url(), &prefix), cached(&redis.url(), &prefix)]);
    let now = now();
    let id = SessionId::generate();
    stores[0]
        .create(&id, &record_at(now, None, &[("start", "0")]))
        .await
        .unwrap();
    // Both have it cached before the writes start.
    for store in stores.iter() {
        assert!(store.load(&id, now).await.unwrap().is_some());
    }
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let stores = Arc::clone(&stores);
            tokio::spawn(async move {
                let store = &stores[i % 2];
                // A request: load (maybe from memory), then commit.
                store.load(&id, now).await.unwrap().expect("session gone");
                let key = format!("k{i}");
                store
                    .update(&id, update_at(now, &[(key.as_str(), "1")], &[]))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), WriteOutcome::Written);
    }
    // Each store, from memory or not, sees all 17 keys soon.
    for store in stores.iter() {
        seen_within(store, &id, Duration::from_millis(100), |r| {
            r.as_ref().is_some_and(|r| r.data.len() == 17)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_connection_drops_the_whole_cache() {
    let Some(mut server) = own_server("cache flush") else {
        return;
    };
    let store = cached(&server.url(), "session:").with_connections(2);
    let now = now();
    let ids: Vec<SessionId> = (0..8).map(|_| SessionId::generate()).collect();
    for id in &ids {
        store
            .create(id, &record_at(now, None, &[("v", "1")]))
            .await
            .unwrap();
        store.load(id, now).await.unwrap();
    }
    assert_eq!(store.cache_stats().unwrap().entries, 8);
    // Kill our connections (not the admin's): every entry goes, since an
    // invalidation may be lost with them.
    let mut admin = admin(&server.url());
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query(&mut admin)
        .unwrap();
    assert!(killed >= 1);
    let deadline = Instant::now() + Duration::from_secs(2);
    while store.cache_stats().unwrap().entries > 0 {
        assert!(Instant::now() < deadline, "cache not dropped");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(store.cache_stats().unwrap().flushes >= 1);
    // A change made meanwhile is read from Redis.
    let _: () = redis::cmd("HSET")
        .arg(format!("session:{{{}}}", ids[0]))
        .arg("d:v")
        .arg("2")
        .query(&mut admin)
        .unwrap();
    let record = store.load(&ids[0], now).await.unwrap();
    assert_eq!(value(&record, "v"), Some("2"));

    // A restarted (empty) server: the cache is dropped with the old
    // connections; nothing comes back from memory.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match store.load(&ids[1], now).await {
            Ok(None) => break,
            Err(Error::Store(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("after a restart: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_is_refused_on_a_cluster() {
    let store = RedisStore::cluster(["redis://127.0.0.1:1"]).unwrap();
    let err = store.with_cache(CacheConfig::default()).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    println!("{err}");
    // And a real one says the same (nothing is connected to refuse it).
    let Some(cluster) = own_cluster("cache on cluster") else {
        return;
    };
    let store = RedisStore::cluster(cluster.urls()).unwrap();
    assert!(matches!(
        store.with_cache(CacheConfig::default()),
        Err(Error::Config(_))
    ));
}

/// The environment that makes [`two_process_child`] the other process.
const CHILD_VAR: &str = "SESSION_REDIS_COHERENCE_CHILD";

fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// The other process of [`a_change_and_a_logout_reach_another_process`]
/// (ignored: it only runs when that test starts it). It caches the
/// session, says `ready`, then polls every 5 ms and prints when (Unix µs)
/// it saw each change.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "the child process of a_change_and_a_logout_reach_another_process"]
async fn two_process_child() {
    let Ok(spec) = std::env::var(CHILD_VAR) else {
        return;
    };
    let mut parts = spec.split(' ');
    let (url, prefix, id) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        SessionId::parse(parts.next().unwrap().as_bytes()).unwrap(),
    );
    let store = cached(url, prefix);
    let limit = Duration::from_secs(5);
    assert!(store.load(&id, now()).await.unwrap().is_some());
    println!("ready");
    for round in 1..=5 {
        let n = round.to_string();
        seen_within(&store, &id, limit, |r| value(r, "n") == Some(n.as_str())).await;
        println!("seen update {round} at {}", unix_micros());
    }
    seen_within(&store, &id, limit, Option::is_none).await;
    println!("seen logout at {}", unix_micros());
    let stats = store.cache_stats().unwrap();
    println!("child cache: {} hits, {} misses", stats.hits, stats.misses);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_and_a_logout_reach_another_process() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let prefix = unique_prefix("two-process");
    let store = cached(&redis.url(), &prefix);
    let id = SessionId::generate();
    store
        .create(&id, &record_at(now(), Some("ann"), &[("n", "0")]))
        .await
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["cache::two_process_child", "--exact", "--ignored"])
        .args(["--nocapture", "--test-threads", "1"])
        .env(CHILD_VAR, format!("{} {prefix} {id}", redis.url()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, received) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let expect = |prefix: &str| loop {
        let line = received
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("the child never said {prefix:?}"));
        // libtest may print the test's name on the same line first.
        if let Some(at) = line.find(prefix) {
            return line[at + prefix.len()..].to_owned();
        }
    };
    expect("ready");
    let mut delays = Vec::new();
    for round in 1..=5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let n = round.to_string();
        store
            .update(&id, update_at(now(), &[("n", &n)], &[]))
            .await
            .unwrap();
        let written = unix_micros();
        let seen: u128 = expect(&format!("seen update {round} at ")).parse().unwrap();
        delays.push(Duration::from_micros(
            seen.saturating_sub(written).try_into().unwrap(),
        ));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(store.delete(&id).await.unwrap());
    let written = unix_micros();
    let seen: u128 = expect("seen logout at ").parse().unwrap();
    let logout = Duration::from_micros(seen.saturating_sub(written).try_into().unwrap());
    println!("{}", expect("child cache: "));
    assert!(child.wait().unwrap().success(), "the child failed");
    println!(
        "another process saw the updates after: {}",
        summary(&mut delays)
    );
    println!("another process saw the logout after {logout:?}");
    let limit = Duration::from_millis(100);
    assert!(delays.iter().all(|d| *d < limit) && logout < limit);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_dropped_in_flight_leaves_no_stale_entry() {
    use futures_util::FutureExt;

    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let prefix = unique_prefix("cache-cancel");
    let store = cached(&redis.url(), &prefix);
    let plain = RedisStore::new(redis.url())
        .unwrap()
        .with_prefix(&prefix)
        .without_cache();
    let now = now();
    for round in 0..20 {
        let id = SessionId::generate();
        store
            .create(&id, &record_at(now, None, &[("n", "0")]))
            .await
            .unwrap();
        assert!(store.load(&id, now).await.unwrap().is_some());
        // Polled once (the command may be on its way) and dropped; if one
        // finished in that poll, it finished.
        let n = round.to_string();
        let polled = store
            .update(&id, update_at(now, &[("n", &n)], &[]))
            .now_or_never();
        if round % 2 == 0 {
            let deleted = store.delete(&id).now_or_never();
            println!(
                "update {:?}, delete {:?}",
                polled.is_some(),
                deleted.is_some()
            );
        }
        // Whatever Redis applied, the cache says the same.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            store.load(&id, now).await.unwrap(),
            plain.load(&id, now).await.unwrap()
        );
    }
}

/// The cache is on by default on one server, and can be turned off.
#[tokio::test(flavor = "multi_thread")]
async fn the_cache_is_on_by_default_and_can_be_turned_off() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let store = RedisStore::new(redis.url()).unwrap();
    assert!(store.is_cached());
    assert_eq!(
        store.cache_stats().unwrap().entries,
        0,
        "a new store's cache is empty"
    );
    assert!(!store.without_cache().is_cached());
}
