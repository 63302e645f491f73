//! Concurrent requests of one visitor, each changing its own key.

use std::sync::Arc;
use std::time::SystemTime;

use session_core::testing::{record_at, update_at};
use session_core::{SessionId, SessionStore, Timestamp, WriteOutcome};
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
