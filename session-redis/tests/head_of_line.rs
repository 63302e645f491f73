//! Head-of-line blocking: while 40 clients read a session of the maximum
//! size (256 KiB), an unrelated visitor's loads stay fast (p99 under
//! 50 ms on loopback), with the cache off and on.
//!
//! A test binary of its own, so that cargo runs it alone: the other tests
//! running beside it would measure the CPU they take, not the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use session_core::testing::record_at;
use session_core::{SessionId, SessionStore, Timestamp};
use session_redis::{CacheConfig, RedisStore};

use session_redis::testing::{TestRedis, unique_prefix};

const READERS: usize = 40;
const MAX_SESSION: usize = 256 * 1024;
const LIMIT: Duration = Duration::from_millis(50);

/// A session whose values (keys plus JSON text) take `MAX_SESSION` bytes:
/// 64 values of 4 KiB.
fn big_values() -> Vec<(String, String)> {
    let per = MAX_SESSION / 64;
    (0..64)
        .map(|i| {
            let key = format!("v{i:02}");
            let text = format!("\"{}\"", "x".repeat(per - key.len() - 2));
            (key, text)
        })
        .collect()
}

/// The bystander's load latencies (sorted) while `READERS` tasks read the
/// big session back to back; and how many big reads they made.
async fn bystander_under_load(store: RedisStore) -> (Vec<Duration>, u64) {
    let now = Timestamp::from(SystemTime::now());
    let (big, small) = (SessionId::generate(), SessionId::generate());
    let values = big_values();
    let pairs: Vec<(&str, &str)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pairs.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>(),
        MAX_SESSION
    );
    store
        .create(&big, &record_at(now, None, &pairs))
        .await
        .unwrap();
    store
        .create(&small, &record_at(now, None, &[("theme", "\"dark\"")]))
        .await
        .unwrap();
    store.ping().await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (store, stop, reads) = (store.clone(), Arc::clone(&stop), Arc::clone(&reads));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let record = store.load(&big, now).await.unwrap().unwrap();
                    assert_eq!(record.data.len(), 64);
                    reads.fetch_add(1, Ordering::Relaxed);
                    // A request does IO between loads; a cached load does
                    // none, so let the others run.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    // Let the readers fill the pipes first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::new();
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let started = Instant::now();
        let record = store.load(&small, now).await.unwrap();
        latencies.push(started.elapsed());
        assert!(record.is_some());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    latencies.sort();
    (latencies, reads.load(Ordering::Relaxed))
}

fn report(label: &str, latencies: &[Duration], reads: u64) -> Duration {
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let p99 = at(0.99);
    println!(
        "{label}: bystander p50 {:?}, p99 {p99:?}, max {:?} over {} loads; {reads} big reads",
        at(0.5),
        latencies[latencies.len() - 1],
        latencies.len()
    );
    p99
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bystander_is_not_stuck_behind_40_readers_of_a_large_session() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let store = || {
        RedisStore::new(redis.url())
            .unwrap()
            .with_prefix(unique_prefix("head-of-line"))
    };
    // For comparison only: one connection, as before the pool.
    let (latencies, reads) = bystander_under_load(store().with_connections(1)).await;
    report("1 connection, no cache", &latencies, reads);

    let (latencies, reads) = bystander_under_load(store()).await;
    let uncached = report("default pool, no cache", &latencies, reads);
    let cached_store = store().with_cache(CacheConfig::default()).unwrap();
    let (latencies, reads) = bystander_under_load(cached_store.clone()).await;
    let cached = report("default pool, cache on", &latencies, reads);
    println!("{:?}", cached_store.cache_stats().unwrap());
    assert!(uncached < LIMIT, "p99 {uncached:?} without the cache");
    assert!(cached < LIMIT, "p99 {cached:?} with the cache");
}
