//! Behind Sentinel, a store follows a failover without a restart: writes
//! acknowledged with replicated writes on (`WAIT 1`) all survive the
//! master's crash, the store answers again soon after Sentinel names the
//! new master, and the client-side cache drops everything and serves again
//! once its new connections have proved themselves.

use std::time::{Duration, Instant, SystemTime};

use session_core::testing::{record_at, update_at};
use session_core::{Error, SessionId, SessionStore, Timestamp, WriteOutcome};
use session_redis::testing::{own_sentinels, unique_prefix};
use session_redis::{CacheConfig, RedisStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_loses_no_acknowledged_write_and_the_cache_follows() {
    let Some(mut group) = own_sentinels("the Sentinel failover test", 2) else {
        return;
    };
    let store = RedisStore::sentinel(group.sentinel_urls(), group.name())
        .unwrap()
        .with_prefix(unique_prefix("sentinel"))
        .with_timeout(Duration::from_millis(500))
        .with_replicated_writes(1, Duration::from_millis(500))
        .unwrap()
        .with_cache(CacheConfig::default())
        .unwrap();
    assert!(store.is_sentinel());
    let id = SessionId::generate();
    let now = Timestamp::from(SystemTime::now());
    let created = store.create(&id, &record_at(now, Some("ada"), &[])).await;
    assert_eq!(created.unwrap(), WriteOutcome::Written);

    let watch = group.watch();
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut killed: Option<(Instant, u16)> = None;
    let mut failover = None;
    let mut resumed = None;
    let mut after = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0.. {
        assert!(Instant::now() < deadline, "no service 20 s after the kill");
        if acknowledged.len() == 20 && killed.is_none() {
            let old = group.kill_master();
            killed = Some((Instant::now(), old));
            let watch = watch.clone();
            failover = Some(tokio::task::spawn_blocking(move || {
                let new = watch.wait_for_new_master(old, Duration::from_secs(15));
                (Instant::now(), new)
            }));
        }
        let key = format!("k{i}");
        match store.update(&id, update_at(now, &[(&key, "1")], &[])).await {
            Ok(WriteOutcome::Written) => {
                acknowledged.push(key);
                if killed.is_some() {
                    resumed.get_or_insert_with(Instant::now);
                    after += 1;
                }
            }
            Ok(other) => panic!("write {i}: {other:?}"),
            Err(Error::Store(_)) => refused += 1,
            Err(other) => panic!("write {i}: not a store error: {other:?}"),
        }
        if after == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (killed_at, old) = killed.unwrap();
    let (named_at, new) = failover.unwrap().await.unwrap();
    let new = new.expect("Sentinel named no new master within 15 s");
    assert_ne!(new, old);
    let failover = named_at - killed_at;
    let resume = resumed.unwrap() - killed_at;
    println!(
        "master killed; Sentinel named the new one after {failover:?}; writes resumed after \
         {resume:?}; {refused} writes refused meanwhile (Error::Store)"
    );
    assert!(
        resume <= failover + Duration::from_secs(2),
        "resumed {resume:?} after the kill, Sentinel's failover took {failover:?}"
    );

    // Every acknowledged write is on the new master (a store without the
    // cache reads it there).
    let plain = RedisStore::sentinel(group.sentinel_urls(), group.name())
        .unwrap()
        .with_prefix(store.prefix());
    let record = plain.load(&id, now).await.unwrap().expect("session lost");
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|key| !record.data.contains_key(key.as_str()))
        .collect();
    println!(
        "{} writes acknowledged, {} of them lost",
        acknowledged.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");

    // The cache was dropped across the switch and serves again once the
    // new connections have answered their first `PING`.
    let stats = store.cache_stats().unwrap();
    assert!(stats.flushes > 0, "the cache was not dropped: {stats:?}");
    let cached = store.load(&id, now).await.unwrap().unwrap();
    assert_eq!(cached.data, record.data);
    let hits = store.cache_stats().unwrap().hits;
    let mut served = false;
    for _ in 0..100 {
        store.load(&id, now).await.unwrap();
        if store.cache_stats().unwrap().hits > hits {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(served, "the cache never served again after the failover");
}
