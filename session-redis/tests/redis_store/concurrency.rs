//! Concurrent requests of one visitor, each changing its own key.

use std::sync::Arc;
use std::time::SystemTime;

use session_core::testing::{record_at, update_at};
use session_core::{LimitPolicy, SessionId, SessionStore, Timestamp, WriteOutcome};
use session_redis::RedisStore;

use session_redis::testing::{TestRedis, own_cluster, unique_prefix};

async fn sixteen_writers_keep_sixteen_keys(store: RedisStore) {
    let store = Arc::new(store);
    let now = Timestamp::from(SystemTime::now());
    let id = SessionId::generate();
    let record = record_at(now, Some("writer"), &[("start", "0")]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let key = format!("k{i}");
                let value = i.to_string();
                let update = update_at(now, &[(key.as_str(), value.as_str())], &[]);
                store.update(&id, update.clone()).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), WriteOutcome::Written);
    }
    let loaded = store.load(&id, now).await.unwrap().expect("session gone");
    for i in 0..16 {
        assert_eq!(
            loaded.data.get(&format!("k{i}")),
            Some(i.to_string().as_str()),
            "key k{i} lost"
        );
    }
    assert_eq!(loaded.data.len(), 17);
    assert_eq!(store.user_sessions("writer", now).await.unwrap(), [id]);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_updates_on_one_node_all_land() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let store = RedisStore::new(redis.url())
        .unwrap()
        .with_prefix(unique_prefix("concurrency"));
    sixteen_writers_keep_sixteen_keys(store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_updates_on_a_cluster_all_land() {
    let Some(cluster) = own_cluster("cluster concurrency") else {
        return;
    };
    let store = RedisStore::cluster(cluster.urls())
        .unwrap()
        .with_prefix(unique_prefix("concurrency"));
    sixteen_writers_keep_sixteen_keys(store).await;
}

/// 200 updates planned from one loaded session, each under the size limit
/// alone, raced on a multi-threaded runtime: the scripts merge them one by
/// one and refuse each that would go past the limit (checked against
/// `m:size` inside the script), so the stored session never does.
async fn two_hundred_racing_updates_stay_within_the_limit(store: RedisStore) {
    let now = Timestamp::from(SystemTime::now());
    let store = Arc::new(store);
    let written = tokio::spawn(async move {
        session_core::testing::racing_updates_stay_within_the_limit(&*store, now, 200, 4096).await
    })
    .await
    .unwrap();
    // 5 bytes of seed, then 5 + 514 per key: 7 fit.
    assert_eq!(written, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_updates_on_one_node_stay_within_the_size_limit() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let store = RedisStore::new(redis.url())
        .unwrap()
        .with_prefix(unique_prefix("size-race"))
        .without_cache();
    two_hundred_racing_updates_stay_within_the_limit(store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_updates_on_a_cached_store_stay_within_the_size_limit() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let store = RedisStore::new(redis.url())
        .unwrap()
        .with_prefix(unique_prefix("size-race-cached"))
        .with_cache(session_redis::CacheConfig::default())
        .unwrap();
    two_hundred_racing_updates_stay_within_the_limit(store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_updates_on_a_cluster_stay_within_the_size_limit() {
    let Some(cluster) = own_cluster("cluster size race") else {
        return;
    };
    let store = RedisStore::cluster(cluster.urls())
        .unwrap()
        .with_prefix(unique_prefix("size-race"));
    two_hundred_racing_updates_stay_within_the_limit(store).await;
}

/// A session written before `m:size` was kept (no such field) is measured
/// once by the script, and the limit holds for it too.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_without_a_kept_size_is_measured() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let store = RedisStore::new(redis.url())
        .unwrap()
        .with_prefix(unique_prefix("size-legacy"));
    let now = Timestamp::from(SystemTime::now());
    let id = SessionId::generate();
    let big = format!("\"{}\"", "x".repeat(98));
    let record = record_at(now, None, &[("a", big.as_str())]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );
    let mut admin = session_redis::testing::admin(&redis.url());
    let keys: Vec<String> = session_redis::redis::cmd("KEYS")
        .arg(format!("*{id}*"))
        .query(&mut admin)
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let _: i64 = session_redis::redis::cmd("HDEL")
        .arg(&keys[0])
        .arg("m:size")
        .query(&mut admin)
        .unwrap();
    let mut grow = update_at(now, &[("b", big.as_str())], &[]);
    grow.max_bytes = 150;
    assert_eq!(
        store.update(&id, grow).await.unwrap(),
        WriteOutcome::TooLarge { size: 202 }
    );
    let mut fits = update_at(now, &[("b", "1")], &[]);
    fits.max_bytes = 150;
    assert_eq!(
        store.update(&id, fits).await.unwrap(),
        WriteOutcome::Written
    );
    let size: usize = session_redis::redis::cmd("HGET")
        .arg(&keys[0])
        .arg("m:size")
        .query(&mut admin)
        .unwrap();
    assert_eq!(size, 103);
}

/// 12 logins of one user with a limit of 2, raced on a multi-threaded
/// runtime, with each policy: the scripts count the user's sessions in the
/// same step as the write, so at most 2 are ever left live.
async fn twelve_racing_logins_stay_within_the_user_limit(store: RedisStore) {
    let store = Arc::new(store);
    for policy in [LimitPolicy::EndOldest, LimitPolicy::Refuse] {
        let store = Arc::clone(&store);
        let now = Timestamp::from(SystemTime::now());
        tokio::spawn(async move {
            session_core::testing::racing_logins_stay_within_the_user_limit(
                &*store, now, 12, 2, policy,
            )
            .await
        })
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_logins_on_one_node_stay_within_the_user_limit() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let store = RedisStore::new(redis.url())
        .unwrap()
        .with_prefix(unique_prefix("login-race"))
        .without_cache();
    twelve_racing_logins_stay_within_the_user_limit(store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_logins_on_a_cached_store_stay_within_the_user_limit() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let store = RedisStore::new(redis.url())
        .unwrap()
        .with_prefix(unique_prefix("login-race-cached"))
        .with_cache(session_redis::CacheConfig::default())
        .unwrap();
    twelve_racing_logins_stay_within_the_user_limit(store).await;
}
