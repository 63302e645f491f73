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

/// The store-wide index on one server: sessions Redis has expired by their
/// TTL are neither counted nor listed, a page drops their entries, a renew
/// moves the entry, and `delete_all` leaves no index key behind.
#[tokio::test(flavor = "multi_thread")]
async fn the_operator_index_follows_redis_expiry_and_renewals() {
    use session_core::testing::{record_at, update_at};
    use session_core::{SessionId, WriteOutcome};

    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let prefix = unique_prefix("operator");
    let store = RedisStore::new(redis.url())
        .unwrap()
        .with_prefix(prefix.clone())
        .without_cache();
    let now = Timestamp::from(std::time::SystemTime::now());
    // Expires in 50 ms by Redis's clock.
    let mut short = record_at(now, Some("ada"), &[]);
    short.expires_at = now.saturating_add(std::time::Duration::from_millis(50));
    let short_id = SessionId::generate();
    assert_eq!(
        store.create(&short_id, &short).await.unwrap(),
        WriteOutcome::Written
    );
    let long_id = SessionId::generate();
    store
        .create(&long_id, &record_at(now, Some("ada"), &[]))
        .await
        .unwrap();
    assert_eq!(store.count(now).await.unwrap(), 2);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let later = Timestamp::from(std::time::SystemTime::now());
    assert_eq!(store.count(later).await.unwrap(), 1);
    let mut admin = session_redis::testing::admin(&redis.url());
    let card = |admin: &mut redis::Connection| -> usize {
        redis::cmd("ZCARD")
            .arg(format!("{prefix}all:ids"))
            .query(admin)
            .unwrap()
    };
    assert_eq!(card(&mut admin), 2, "the stale entry is still there");
    let page = store.list(later, None, 10).await.unwrap();
    assert_eq!(
        page.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![long_id]
    );
    assert_eq!(
        card(&mut admin),
        1,
        "a page drops the stale entries it meets"
    );

    // A renew moves the entry to the new id.
    let renewed = SessionId::generate();
    assert_eq!(
        store
            .renew(&long_id, &renewed, &update_at(later, &[], &[]))
            .await
            .unwrap(),
        WriteOutcome::Written
    );
    let page = store.list(later, None, 10).await.unwrap();
    assert_eq!(
        page.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![renewed]
    );
    assert_eq!(store.delete_all().await.unwrap(), 1);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut admin)
        .unwrap();
    assert!(keys.is_empty(), "keys left behind: {keys:?}");
}
