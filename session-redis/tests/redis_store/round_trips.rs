//! Round trips per operation, counted with MONITOR (which tells the
//! client's commands from those a script runs): one each on one server, and
//! as the crate docs say on a Cluster.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use redis::Value;
use session_core::testing::{record_at, update_at};
use session_core::{SessionId, SessionStore, Timestamp, WriteOutcome};
use session_redis::RedisStore;

use session_redis::testing::{admin, own_cluster, own_server};

/// Every line MONITOR reports, in order, on each of some servers.
pub(crate) struct Monitor {
    nodes: Vec<(String, Arc<Mutex<Vec<String>>>)>,
    next_mark: usize,
}

impl Monitor {
    pub(crate) async fn start(urls: Vec<String>) -> Self {
        let mut nodes = Vec::new();
        for url in urls {
            let client = redis::Client::open(url.as_str()).unwrap();
            let monitor = client.get_async_monitor().await.unwrap();
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&lines);
            tokio::spawn(async move {
                let mut stream = monitor.into_on_message::<Value>();
                while let Some(line) = stream.next().await {
                    let line = match line {
                        Value::SimpleString(text) => text,
                        Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                        other => format!("{other:?}"),
                    };
                    sink.lock().unwrap().push(line);
                }
            });
            nodes.push((url, lines));
        }
        Self {
            nodes,
            next_mark: 0,
        }
    }

    /// Runs `op` between two markers and returns its result, the commands
    /// the client sent (round trips), and all commands the servers ran
    /// (scripts' included, from `INFO commandstats`).
    pub(crate) async fn count<T>(&mut self, op: impl Future<Output = T>) -> (T, usize, u64) {
        self.next_mark += 1;
        let (begin, end) = (
            format!("mark-begin-{}", self.next_mark),
            format!("mark-end-{}", self.next_mark),
        );
        let mut admins: Vec<_> = self.nodes.iter().map(|(url, _)| admin(url)).collect();
        for admin in &mut admins {
            let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(admin).unwrap();
            let _: String = redis::cmd("ECHO").arg(&begin).query(admin).unwrap();
        }
        let out = op.await;
        let mut all_commands = 0;
        for admin in &mut admins {
            let _: String = redis::cmd("ECHO").arg(&end).query(admin).unwrap();
            let stats: String = redis::cmd("INFO").arg("commandstats").query(admin).unwrap();
            all_commands += commands_run(&stats);
        }
        let (begin, end) = (format!("\"{begin}\""), format!("\"{end}\""));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut client_commands = 0;
        for (_, lines) in &self.nodes {
            client_commands += loop {
                {
                    let lines = lines.lock().unwrap();
                    let start = lines.iter().position(|l| l.contains(&begin));
                    let stop = lines.iter().position(|l| l.contains(&end));
                    if let (Some(start), Some(stop)) = (start, stop) {
                        break lines[start + 1..stop]
                            .iter()
                            .filter(|line| !line.contains(" lua] "))
                            // The cache's PINGs (its staleness proof), not an operation's.
                            .filter(|line| !line.contains("\"PING\""))
                            .count();
                    }
                }
                assert!(Instant::now() < deadline, "MONITOR lost a marker");
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
        }
        (out, client_commands, all_commands)
    }
}

/// The commands counted in `INFO commandstats`, but for the test's own.
fn commands_run(stats: &str) -> u64 {
    stats
        .lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .filter(|line| {
            !["echo:", "info:", "config|", "monitor:", "ping:"]
                .iter()
                .any(|skip| line.starts_with(skip))
        })
        .filter_map(|line| {
            let calls = line.split("calls=").nth(1)?.split(',').next()?;
            calls.parse::<u64>().ok()
        })
        .sum()
}

/// Connects, and loads each script into every server once.
pub(crate) async fn warm_up(store: &RedisStore, now: Timestamp) {
    for _ in 0..3 {
        let (a, b) = (SessionId::generate(), SessionId::generate());
        store
            .create(&a, &record_at(now, Some("warm"), &[]))
            .await
            .unwrap();
        store.load(&a, now).await.unwrap();
        store
            .update(&a, update_at(now, &[("k", "1")], &[]))
            .await
            .unwrap();
        store
            .renew(&a, &b, &update_at(now, &[], &[]))
            .await
            .unwrap();
        store.user_sessions("warm", now).await.unwrap();
        store.delete(&b).await.unwrap();
        store
            .create(&a, &record_at(now, Some("warm"), &[]))
            .await
            .unwrap();
        assert_eq!(store.delete_user("warm").await.unwrap(), 1);
    }
}

/// Runs every operation once on a session with a user (and some on one
/// without), prints the counts, and returns the round trips of each.
async fn measure(store: &RedisStore, urls: Vec<String>) -> Vec<(&'static str, usize)> {
    let now = Timestamp::from(SystemTime::now());
    store.ping().await.unwrap(); // opens every connection
    warm_up(store, now).await;
    let mut monitor = Monitor::start(urls).await;
    let (id, renewed, anonymous) = (
        SessionId::generate(),
        SessionId::generate(),
        SessionId::generate(),
    );
    let record = record_at(now, Some("ann"), &[("cart", "[1,2]")]);
    let mut user_change = update_at(now, &[], &[]);
    user_change.user = Some(Some("bob".into()));
    let mut counts = Vec::new();
    macro_rules! count {
        ($name:literal, $op:expr, $check:expr) => {{
            let (out, trips, all) = monitor.count($op).await;
            let check: &dyn Fn(_) -> bool = &$check;
            assert!(check(out.unwrap()), "{} gave an unexpected result", $name);
            counts.push(($name, trips, all));
        }};
    }
    count!("create", store.create(&id, &record), |o| o
        == WriteOutcome::Written);
    count!("load", store.load(&id, now), |r: Option<_>| r.is_some());
    count!(
        "update",
        store.update(&id, update_at(now, &[("step", "2")], &["cart"])),
        |o| o == WriteOutcome::Written
    );
    count!(
        "update (user change)",
        store.update(&id, user_change.clone()),
        |o| { o == WriteOutcome::Written }
    );
    count!(
        "renew",
        store.renew(&id, &renewed, &update_at(now, &[], &[])),
        |o| o == WriteOutcome::Written
    );
    count!(
        "user_sessions (1)",
        store.user_sessions("bob", now),
        |ids: Vec<_>| { ids == [renewed] }
    );
    count!("delete_user (1)", store.delete_user("bob"), |n| n == 1);
    count!(
        "create, no user",
        store.create(&anonymous, &record_at(now, None, &[])),
        |o| o == WriteOutcome::Written
    );
    count!(
        "update, no user",
        store.update(&anonymous, update_at(now, &[("a", "1")], &[])),
        |o| o == WriteOutcome::Written
    );
    count!("delete, no user", store.delete(&anonymous), |existed| {
        existed
    });

    let topology = if store.is_cluster() {
        "Cluster"
    } else {
        "one node"
    };
    println!(
        "{:<22} {:>11} {:>28}   ({topology})",
        "operation", "round trips", "commands (scripts' included)"
    );
    for (name, trips, all) in &counts {
        println!("{name:<22} {trips:>11} {all:>28}");
    }
    counts
        .into_iter()
        .map(|(name, trips, _)| (name, trips))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_is_one_round_trip_on_one_node() {
    let Some(server) = own_server("round trips") else {
        return;
    };
    // Without the cache: what each operation costs when it goes to Redis
    // (cache.rs counts the cached ones).
    let store = RedisStore::new(server.url()).unwrap().without_cache();
    for (name, trips) in measure(&store, vec![server.url()]).await {
        assert_eq!(trips, 1, "{name} took {trips} round trips");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_round_trips_are_as_documented() {
    let Some(cluster) = own_cluster("cluster round trips") else {
        return;
    };
    let store = RedisStore::cluster(cluster.urls()).unwrap();
    let expected = [
        ("create", 2),
        ("load", 1),
        ("update", 2),
        ("update (user change)", 3),
        ("renew", 4),
        ("user_sessions (1)", 2),
        ("delete_user (1)", 3),
        ("create, no user", 1),
        ("update, no user", 1),
        ("delete, no user", 1),
    ];
    assert_eq!(measure(&store, cluster.urls()).await, expected);
}
