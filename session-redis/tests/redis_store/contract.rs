//! The shared `SessionStore` contract, on one server and on a Cluster.

use session_core::testing::store_contract;
use session_core::{SessionStore, Timestamp};
use session_redis::RedisStore;

use session_redis::testing::{TestRedis, own_cluster, unique_prefix};

#[tokio::test(flavor = "multi_thread")]
async fn single_node_meets_the_store_contract() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    // Uncached (cache.rs runs the contract on a cached store).
    let store = RedisStore::new(redis.url())
        .unwrap()
        .with_prefix(unique_prefix("contract"))
        .without_cache();
    assert!(!store.is_cluster());
    store.ping().await.unwrap();
    store_contract(&store).await;
    // The operator's calls are there (so the contract checked them).
    let now = Timestamp::from(std::time::SystemTime::now());
    assert_eq!(store.count(now).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_meets_the_store_contract() {
    let Some(cluster) = own_cluster("cluster contract") else {
        return;
    };
    let store = RedisStore::cluster(cluster.urls())
        .unwrap()
        .with_prefix(unique_prefix("contract"));
    assert!(store.is_cluster());
    store.ping().await.unwrap();
    store_contract(&store).await;
    // The operator's calls are not (the contract skipped them).
    let now = Timestamp::from(std::time::SystemTime::now());
    match store.count(now).await {
        Err(session_core::Error::Store(cause)) => {
            assert!(cause.to_string().contains("not supported"), "{cause}");
        }
        other => panic!("count on Cluster: {other:?}"),
    }
    assert!(store.list(now, None, 10).await.is_err());
    assert!(store.delete_all().await.is_err());
    // The default prefix works too.
    store_contract(&RedisStore::cluster(cluster.urls()).unwrap()).await;
}
