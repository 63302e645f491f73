//! The cost of acknowledged writes: a session update on a Redis master
//! with one replica, as `RedisStore::new` makes it (the default) and with
//! `with_replicated_writes(1, 1 s)` (the script and a `WAIT 1` in one round
//! trip: the write is acknowledged once the replica has it). The two
//! configurations alternate in shuffled order each rep, on a master and a
//! replica this program starts on free loopback ports. Run with
//! `cargo run --release --manifest-path bench/Cargo.toml --bin durability`
//! (`BENCH_REPS`, default 20; `BENCH_N` updates per configuration and rep,
//! default 500).

#[path = "../common.rs"]
mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{env_usize, quantile, shuffle, sorted};
use session_core::testing::{record_at, update_at};
use session_core::{SessionId, SessionStore, Timestamp, WriteOutcome};
use session_redis::RedisStore;
use session_redis::redis;
use session_redis::testing::LocalRedis;

/// Waits until the master reports its replica online.
fn wait_in_sync(master: &LocalRedis) {
    let mut admin = master.admin();
    let started = Instant::now();
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut admin)
            .expect("INFO replication");
        if info.contains("state=online") {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the replica did not come online: {info}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let reps = env_usize("BENCH_REPS", 20).max(1);
    let n = env_usize("BENCH_N", 500).max(1);
    let master = LocalRedis::start();
    let replica = LocalRedis::start_with(vec![
        "--replicaof".into(),
        "127.0.0.1".into(),
        master.port().to_string(),
    ]);
    wait_in_sync(&master);

    let plain = RedisStore::new(master.url())
        .unwrap()
        .with_prefix("durability:plain:");
    let waited = RedisStore::new(master.url())
        .unwrap()
        .with_prefix("durability:wait:")
        .with_replicated_writes(1, Duration::from_secs(1))
        .unwrap();
    let configs = [("default (no WAIT)", &plain), ("WAIT 1", &waited)];
    let now = Timestamp::from(SystemTime::now());
    let mut ids = Vec::new();
    for (_, store) in configs {
        let id = SessionId::generate();
        let record = record_at(now, Some("bench"), &[("n", "0")]);
        assert_eq!(
            store.create(&id, &record).await.unwrap(),
            WriteOutcome::Written
        );
        ids.push(id);
    }

    let mut samples: [Vec<f64>; 2] = Default::default();
    let mut order = vec![0usize, 1];
    let mut seed = 0x5eed_u64;
    let started = Instant::now();
    for rep in 0..reps + 1 {
        shuffle(&mut order, &mut seed);
        for &c in &order {
            let (_, store) = configs[c];
            for i in 0..n {
                let value = (rep * n + i).to_string();
                let update = update_at(now, &[("n", value.as_str())], &[]);
                let t = Instant::now();
                let outcome = store.update(&ids[c], update).await.unwrap();
                let took = t.elapsed();
                assert_eq!(outcome, WriteOutcome::Written);
                if rep > 0 {
                    samples[c].push(took.as_secs_f64() * 1e6);
                }
            }
        }
    }
    let version: String = {
        let mut admin = master.admin();
        let info: String = redis::cmd("INFO").arg("server").query(&mut admin).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("?")
            .trim()
            .to_owned()
    };
    println!(
        "Run: BENCH_REPS={reps} BENCH_N={n}; redis-server {version}, a master and one replica on loopback; \
         the two configurations alternate in shuffled order each rep (one warm-up rep); {:.1} s.\n",
        started.elapsed().as_secs_f64()
    );
    println!("| configuration | median µs | p90 µs | p99 µs | ratio to default (median) |");
    println!("|---|---:|---:|---:|---:|");
    let base = quantile(&sorted(samples[0].clone()), 0.5);
    for (c, (label, _)) in configs.iter().enumerate() {
        let s = sorted(samples[c].clone());
        let median = quantile(&s, 0.5);
        println!(
            "| {label} | {median:.1} | {:.1} | {:.1} | {:.2} |",
            quantile(&s, 0.9),
            quantile(&s, 0.99),
            median / base
        );
    }
    drop(replica);
}
