//! The operator's view at scale: the cost of counting the live sessions
//! and of one page of the list, with many sessions stored, on the memory
//! store, on Redis (one server this program starts) and on PostgreSQL (a
//! database of its own on the machine's server, if there is one).
//!
//! `cargo run --release --manifest-path bench/Cargo.toml --bin operator`;
//! `OPERATOR_SESSIONS` (default 1,000,000) sessions on memory and Redis,
//! `OPERATOR_SQL_SESSIONS` (default 100,000) on PostgreSQL, whose inserts
//! go one statement each through the store.

#[path = "../common.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::{env_usize, quantile, sorted};
use session_core::testing::record_at;
use session_core::{MemoryStore, SessionId, SessionStore, Timestamp};
use session_redis::RedisStore;
use session_redis::testing::LocalRedis;

const PAGE: usize = 100;
const TIMES: usize = 20;

/// Fills `store` with `n` sessions (one in ten with a user), `inflight`
/// writes at a time; returns an id from the middle of the id order.
async fn fill<S: SessionStore>(store: &Arc<S>, n: usize, inflight: usize) -> SessionId {
    let now = Timestamp::from(SystemTime::now());
    let mut ids: Vec<SessionId> = (0..n).map(|_| SessionId::generate()).collect();
    let mut done = 0;
    while done < n {
        let batch = &ids[done..(done + inflight).min(n)];
        let writes = batch.iter().enumerate().map(|(i, id)| {
            let user = format!("user{}", (done + i) / 10);
            let record = record_at(now, ((done + i) % 10 == 0).then_some(user.as_str()), &[("n", "1")]);
            let store = Arc::clone(store);
            let id = *id;
            async move { store.create(&id, &record).await.map(drop) }
        });
        for result in futures_join(writes.collect()).await {
            result.expect("create");
        }
        done += batch.len();
    }
    ids.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    ids[n / 2]
}

async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    session_core::testing::join_all(futures).await
}

/// Median and p90 of `TIMES` runs of `call`, in µs.
async fn time<F, Fut>(mut call: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(TIMES);
    for _ in 0..TIMES {
        let t = Instant::now();
        call().await;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let s = sorted(samples);
    (quantile(&s, 0.5), quantile(&s, 0.9))
}

async fn measure<S: SessionStore>(label: &str, store: Arc<S>, n: usize, inflight: usize) {
    let started = Instant::now();
    let middle = fill(&store, n, inflight).await;
    let filled = started.elapsed();
    let now = Timestamp::from(SystemTime::now());
    let counted = store.count(now).await.expect("count");
    assert!(counted >= n, "{label}: counted {counted} of {n}");
    let (count_med, count_p90) = time(|| {
        let store = Arc::clone(&store);
        async move {
            store.count(now).await.unwrap();
        }
    })
    .await;
    let (first_med, first_p90) = time(|| {
        let store = Arc::clone(&store);
        async move {
            assert_eq!(store.list(now, None, PAGE).await.unwrap().len(), PAGE);
        }
    })
    .await;
    let (mid_med, mid_p90) = time(|| {
        let store = Arc::clone(&store);
        async move {
            assert_eq!(
                store.list(now, Some(&middle), PAGE).await.unwrap().len(),
                PAGE
            );
        }
    })
    .await;
    println!(
        "| {label} | {n} | {count_med:.0} / {count_p90:.0} | {first_med:.0} / {first_p90:.0} | {mid_med:.0} / {mid_p90:.0} | {:.1} s |",
        filled.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env_usize("OPERATOR_SESSIONS", 1_000_000);
    let n_sql = env_usize("OPERATOR_SQL_SESSIONS", 100_000);
    println!(
        "Each cell: median / p90 of {TIMES} calls, µs; a page is {PAGE} sessions, the first and one from the middle of the id order.\n"
    );
    println!("| store | sessions | count | first page | page from the middle | filled in |");
    println!("|---|---:|---:|---:|---:|---:|");
    let memory = Arc::new(MemoryStore::with_limits(2 * n + 1, usize::MAX));
    measure("memory", memory, n, 10_000).await;

    let redis = LocalRedis::start();
    let store = RedisStore::new(redis.url())
        .unwrap()
        .with_timeout(Duration::from_secs(30))
        .with_prefix("operator:");
    measure("Redis (one server)", Arc::new(store), n, 512).await;
    drop(redis);

    match session_sql::testing::TestDatabase::postgres("operator_bench").await {
        Some(db) => {
            let store = db.store().await.with_timeout(Duration::from_secs(30));
            measure("PostgreSQL", Arc::new(store), n_sql, 64).await;
        }
        None => println!("| PostgreSQL | (no server) | | | | |"),
    }
}
