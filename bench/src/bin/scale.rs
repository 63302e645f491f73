//! Part 3: scale.
//!
//! - `MemoryStore` with 1,000,000 live sessions, created through the
//!   `SessionStore` trait: bytes per session (process RSS), load and update
//!   time per operation with one thread and with two threads contending,
//!   and `sweep` over all of them.
//! - session-axum on session-redis under load: requests per second with 32
//!   concurrent keep-alive HTTP/1.1 clients over loopback, against the bare
//!   handler in the same run, with session-redis's client-side cache on
//!   and off (tower-sessions on its Redis store alongside).
//!
//! `SCALE_PART=memory` or `SCALE_PART=redis` runs one of the two. See
//! README.md for the other variables.

#[path = "../common.rs"]
mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use common::{env_usize, median, next_rand, quantile, shuffle, sorted};
use session_core::{
    ExpiryOverrides, MemoryStore, Metadata, Record, SessionId, SessionStore, Timestamp, Update,
    WriteOutcome,
};

fn main() {
    let part = std::env::var("SCALE_PART").unwrap_or_default();
    let mut out = String::new();
    if part.is_empty() || part == "memory" {
        memory(&mut out);
    }
    if part.is_empty() || part == "redis" {
        redis_throughput(&mut out);
    }
    print!("{out}");
}

// ---------------------------------------------------------------------------
// MemoryStore at 1M sessions

/// Drives a future that is ready at once (`MemoryStore`'s are).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::hint::spin_loop();
    }
}

/// This process's resident set, in bytes (`VmRSS` of /proc/self/status).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

const HOUR: Duration = Duration::from_secs(3600);

/// The small record of session `i`: two short values and a user. Even
/// sessions expire in 1 h, odd ones in 2 h (for the half-expired sweep).
fn record(i: usize, now: Timestamp) -> Record {
    let n = i.to_string();
    let data = [("theme", "\"dark\""), ("n", n.as_str())]
        .into_iter()
        .collect();
    Record {
        meta: Metadata {
            created_at: now,
            last_activity: now,
            user: Some(Arc::from(format!("user{i}"))),
            authenticated_at: Some(now),
            expiry: ExpiryOverrides::default(),
        },
        expires_at: expiry(i, now),
        data,
    }
}

fn expiry(i: usize, now: Timestamp) -> Timestamp {
    now.saturating_add(if i.is_multiple_of(2) { HOUR } else { 2 * HOUR })
}

/// `SessionStore::update` takes the changes by reference (`&Update`) or by
/// value (`Update`), depending on the session-core version: this picks
/// what the signature asks for. By value, each operation clones the
/// prepared `Update` (as the engine builds one per request); the report
/// gives the clone's own cost.
trait UpdateArg<'a> {
    fn from_prepared(update: &'a Update) -> Self;
}

static BY_VALUE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl<'a> UpdateArg<'a> for &'a Update {
    fn from_prepared(update: &'a Update) -> Self {
        update
    }
}

impl<'a> UpdateArg<'a> for Update {
    fn from_prepared(update: &'a Update) -> Self {
        BY_VALUE.store(true, std::sync::atomic::Ordering::Relaxed);
        update.clone()
    }
}

fn arg<'a, T: UpdateArg<'a>>(update: &'a Update) -> T {
    T::from_prepared(update)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Load,
    Update,
}

/// `ops` random loads or updates on existing sessions from one thread;
/// the time they took.
fn hammer(
    store: &MemoryStore,
    ids: &[SessionId],
    updates: &[Update; 2],
    op: Op,
    ops: usize,
    seed: u64,
    now: Timestamp,
) -> Duration {
    let mut rng = seed | 1;
    let start = Instant::now();
    for _ in 0..ops {
        let i = (next_rand(&mut rng) % ids.len() as u64) as usize;
        match op {
            Op::Load => {
                let r = block_on(store.load(&ids[i], now)).unwrap();
                assert!(r.is_some());
                std::hint::black_box(r);
            }
            Op::Update => {
                let w = block_on(store.update(&ids[i], arg(&updates[i % 2]))).unwrap();
                assert_eq!(w, WriteOutcome::Written);
            }
        }
    }
    start.elapsed()
}

fn memory(out: &mut String) {
    let count = env_usize("SCALE_SESSIONS", 1_000_000).max(2);
    let ops = env_usize("SCALE_OPS", 1_000_000).max(1);
    let reps = env_usize("SCALE_REPS", 5).max(1);
    let now = Timestamp::from(SystemTime::now());
    eprintln!("memory: {count} sessions, {reps} reps of {ops} operations per thread...");

    let ids: Vec<SessionId> = (0..count).map(|_| SessionId::generate()).collect();
    let store = MemoryStore::with_max_sessions(count);
    let rss_before = rss_bytes();
    let started = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        let outcome = block_on(store.create(id, &record(i, now))).unwrap();
        assert_eq!(outcome, WriteOutcome::Written);
    }
    let create_time = started.elapsed();
    let rss_after = rss_bytes();
    assert_eq!(store.len(), count);
    let per_session = (rss_after - rss_before) as f64 / count as f64;

    // The updates: one short value changed, times refreshed, each session's
    // expiry kept on its parity.
    let update = |i: usize| Update {
        set: vec![("n".to_owned(), "43".to_owned())],
        last_activity: now,
        expires_at: expiry(i, now),
        ..Update::default()
    };
    let updates = [update(0), update(1)];

    // One thread and two threads, loads and updates, interleaved per rep.
    let mut single: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut double: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut double_total: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut order = vec![
        (Op::Load, 1),
        (Op::Load, 2),
        (Op::Update, 1),
        (Op::Update, 2),
    ];
    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    let started = Instant::now();
    for rep in 0..reps + 1 {
        shuffle(&mut order, &mut rng);
        for &(op, threads) in &order {
            let name = if op == Op::Load { "load" } else { "update" };
            let seed = next_rand(&mut rng);
            if threads == 1 {
                let took = hammer(&store, &ids, &updates, op, ops, seed, now);
                if rep > 0 {
                    single
                        .entry(name)
                        .or_default()
                        .push(took.as_nanos() as f64 / ops as f64);
                }
            } else {
                let barrier = Barrier::new(2);
                let (a, b, wall) = std::thread::scope(|s| {
                    let run = |seed: u64| {
                        let (store, ids, updates, barrier) = (&store, &ids, &updates, &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            hammer(store, ids, updates, op, ops, seed, now)
                        })
                    };
                    let start = Instant::now();
                    let a = run(seed);
                    let b = run(seed ^ 0xDEAD_BEEF);
                    let (a, b) = (a.join().unwrap(), b.join().unwrap());
                    (a, b, start.elapsed())
                });
                if rep > 0 {
                    let v = double.entry(name).or_default();
                    v.push(a.as_nanos() as f64 / ops as f64);
                    v.push(b.as_nanos() as f64 / ops as f64);
                    double_total
                        .entry(name)
                        .or_default()
                        .push(2.0 * ops as f64 / wall.as_secs_f64());
                }
            }
        }
    }
    let ops_time = started.elapsed();

    // What cloning an `Update` costs (part of each update if the store takes
    // it by value).
    let start = Instant::now();
    for i in 0..ops {
        std::hint::black_box(std::hint::black_box(&updates[i % 2]).clone());
    }
    let clone_ns = start.elapsed().as_nanos() as f64 / ops as f64;
    let by_value = BY_VALUE.load(std::sync::atomic::Ordering::Relaxed);

    // Sweeps: nothing expired (three times), then half expired (once).
    let mut sweep_none = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let dropped = store.sweep(now);
        sweep_none.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(dropped, 0);
    }
    let start = Instant::now();
    let dropped = store.sweep(now.saturating_add(HOUR + HOUR / 2));
    let sweep_half = start.elapsed().as_secs_f64() * 1e3;
    assert_eq!(dropped, count.div_ceil(2));
    assert_eq!(store.len(), count / 2);

    let _ = writeln!(out, "## MemoryStore at scale\n");
    let _ = writeln!(
        out,
        "Run: SCALE_SESSIONS={count} SCALE_OPS={ops} SCALE_REPS={reps} (+1 warm-up); operations took {:.1} s.\n",
        ops_time.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "Records: 2 values (`theme` = `\"dark\"`, `n` = a number), a user (`user<i>`, one per session, so the user index holds {count} users), no expiry overrides; created through `SessionStore::create`.\n"
    );
    let _ = writeln!(out, "| measure | value |");
    let _ = writeln!(out, "|---|---:|");
    let _ = writeln!(
        out,
        "| RSS before / after creating | {:.1} MiB / {:.1} MiB |",
        rss_before as f64 / 1048576.0,
        rss_after as f64 / 1048576.0
    );
    let _ = writeln!(
        out,
        "| bytes per session (RSS delta / count) | {per_session:.0} |"
    );
    let _ = writeln!(
        out,
        "| create, 1 thread (while filling) | {:.0} ns/op |",
        create_time.as_nanos() as f64 / count as f64
    );
    for name in ["load", "update"] {
        let s = sorted(single[name].clone());
        let d = sorted(double[name].clone());
        let t = sorted(double_total[name].clone());
        let _ = writeln!(
            out,
            "| {name}, 1 thread | {:.0} ns/op (reps {:.0}–{:.0}); {:.2} M ops/s |",
            quantile(&s, 0.5),
            s[0],
            s[s.len() - 1],
            1e3 / quantile(&s, 0.5)
        );
        let _ = writeln!(
            out,
            "| {name}, 2 threads contending | {:.0} ns/op per thread (threads×reps {:.0}–{:.0}); {:.2} M ops/s together |",
            quantile(&d, 0.5),
            d[0],
            d[d.len() - 1],
            quantile(&t, 0.5) / 1e6
        );
    }
    let _ = writeln!(
        out,
        "| cloning the `Update` alone (1 thread) | {clone_ns:.0} ns ({}) |",
        if by_value {
            "this session-core takes `update` by value: included in the update rows"
        } else {
            "this session-core takes `&Update`: not part of the update rows"
        }
    );
    let _ = writeln!(
        out,
        "| `sweep(now)`, {count} live, none expired | {:.1} ms (runs: {}) |",
        median(&sweep_none),
        sweep_none
            .iter()
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "| `sweep`, half of {count} expired ({dropped} dropped) | {sweep_half:.1} ms |"
    );
    let _ = writeln!(out);
    drop(store);
}

// ---------------------------------------------------------------------------
// Redis under load: HTTP over loopback

mod http_load {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use axum::Router;
    use axum::routing::get;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;
    use session_axum::{Session, SessionLayer};
    use session_redis::RedisStore;
    use tower_sessions_014::SessionManagerLayer;
    use tower_sessions_014::cookie::SameSite;
    use tower_sessions_redis_store::RedisStore as TsRedisStore;
    use tower_sessions_redis_store::fred::prelude::Client as FredClient;

    const KEY: &str = "n";

    async fn plain() -> &'static str {
        "ok"
    }

    pub(crate) fn bare() -> Router {
        Router::new()
            .route("/b", get(plain))
            .route("/c", get(plain))
    }

    async fn ours_read(Session(s): Session) -> &'static str {
        std::hint::black_box(s.get::<u64>(KEY).unwrap());
        "ok"
    }

    async fn ours_write(Session(s): Session) -> &'static str {
        let n = s.get::<u64>(KEY).unwrap().unwrap_or(0);
        s.insert(KEY, &(n + 1)).unwrap();
        "ok"
    }

    /// session-axum on `store`, with part 1's config.
    pub(crate) fn ours(store: RedisStore) -> Router {
        let mut config = session_axum::SessionConfig::default();
        config.cookie.name = "id".to_owned();
        let layer = SessionLayer::with_store(store, config).unwrap();
        Router::new()
            .route("/b", get(ours_read))
            .route("/c", get(ours_write))
            .layer(layer)
    }

    async fn ts_read(s: tower_sessions_014::Session) -> &'static str {
        std::hint::black_box(s.get::<u64>(KEY).await.unwrap());
        "ok"
    }

    async fn ts_write(s: tower_sessions_014::Session) -> &'static str {
        let n = s.get::<u64>(KEY).await.unwrap().unwrap_or(0);
        s.insert(KEY, n + 1).await.unwrap();
        "ok"
    }

    /// tower-sessions 0.14 on its Redis store, part 2's settings.
    pub(crate) fn tower_sessions(client: FredClient) -> Router {
        let layer = SessionManagerLayer::new(TsRedisStore::new(client))
            .with_name("id")
            .with_secure(true)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/");
        Router::new()
            .route("/b", get(ts_read))
            .route("/c", get(ts_write))
            .layer(layer)
    }

    /// Serves `router` on a free loopback port; its address.
    pub(crate) async fn serve(router: Router) -> SocketAddr {
        use axum::serve::ListenerExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr
    }

    type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

    /// A keep-alive HTTP/1.1 connection.
    pub(crate) async fn connect(addr: SocketAddr) -> Sender {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sender
    }

    /// One request; its status and `Set-Cookie` (name=value).
    pub(crate) async fn request(
        sender: &mut Sender,
        path: &str,
        cookie: Option<&str>,
    ) -> (u16, Option<String>) {
        let mut b = http::Request::builder()
            .uri(path)
            .header(http::header::HOST, "127.0.0.1");
        if let Some(c) = cookie {
            b = b.header(http::header::COOKIE, c);
        }
        sender.ready().await.unwrap();
        let res = sender
            .send_request(b.body(Empty::new()).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let set_cookie = res
            .headers()
            .get(http::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap().trim().to_owned());
        res.into_body().collect().await.unwrap();
        (status, set_cookie)
    }

    /// Requests back to back on one connection until `deadline`: how many,
    /// and each one's latency (µs).
    pub(crate) async fn client(
        addr: SocketAddr,
        path: &'static str,
        cookie: String,
        deadline: Instant,
    ) -> (u64, Vec<u32>) {
        let mut sender = connect(addr).await;
        let mut n = 0;
        let mut latencies = Vec::with_capacity(1 << 16);
        while Instant::now() < deadline {
            let start = Instant::now();
            let (status, _) = request(&mut sender, path, Some(&cookie)).await;
            latencies.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
            assert_eq!(status, 200, "{path}: a request failed under load");
            n += 1;
        }
        (n, latencies)
    }

    /// `cookies.len()` clients for `time`: requests per second and the
    /// per-request latencies (µs).
    pub(crate) async fn load(
        addr: SocketAddr,
        path: &'static str,
        cookies: &[String],
        time: Duration,
    ) -> (f64, Vec<u32>) {
        let start = Instant::now();
        let deadline = start + time;
        let tasks: Vec<_> = cookies
            .iter()
            .map(|c| tokio::spawn(client(addr, path, c.clone(), deadline)))
            .collect();
        let mut total = 0;
        let mut latencies = Vec::new();
        for t in tasks {
            let (n, l) = t.await.unwrap();
            total += n;
            latencies.extend(l);
        }
        (total as f64 / start.elapsed().as_secs_f64(), latencies)
    }
}

fn redis_throughput(out: &mut String) {
    use session_redis::testing::LocalRedis;
    use tower_sessions_redis_store::fred::prelude::{ClientLike, Config};

    let clients = env_usize("SCALE_CLIENTS", 32).max(1);
    let secs = env_usize("SCALE_SECS", 3).max(1);
    let rounds = env_usize("SCALE_ROUNDS", 5).max(1);
    let workers = env_usize("SCALE_WORKERS", 2).max(1);
    let time = Duration::from_secs(secs as u64);
    let server = LocalRedis::start();
    let url = server.url();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    eprintln!(
        "redis throughput: {clients} clients, {rounds} rounds of {secs} s per configuration..."
    );
    let started = Instant::now();
    let (rows, samples) = runtime.block_on(async {
        let store = session_redis::RedisStore::new(url.clone())
            .unwrap()
            .with_prefix("bench:load:")
            .without_cache();
        store.ping().await.unwrap();
        // The default configuration: the cache is on.
        let cached_store = session_redis::RedisStore::new(url.clone())
            .unwrap()
            .with_prefix("bench:load-cache:");
        cached_store.ping().await.unwrap();
        let fred = tower_sessions_redis_store::fred::prelude::Client::new(
            Config::from_url(&url).unwrap(),
            None,
            None,
            None,
        );
        fred.init().await.unwrap();
        let bare = http_load::serve(http_load::bare()).await;
        let ours = http_load::serve(http_load::ours(store)).await;
        let ts = http_load::serve(http_load::tower_sessions(fred)).await;
        let cached = http_load::serve(http_load::ours(cached_store)).await;

        // One session per client and app.
        let mut cookies: Vec<Vec<String>> = Vec::new();
        for addr in [bare, ours, ts, cached] {
            let mut sender = http_load::connect(addr).await;
            let mut list = Vec::new();
            for _ in 0..clients {
                let (status, set) = http_load::request(&mut sender, "/c", None).await;
                assert_eq!(status, 200);
                list.push(set.unwrap_or_else(|| format!("id={}", SessionId::generate())));
            }
            cookies.push(list);
        }
        assert!(cookies[1][0].starts_with("__Host-id="), "{}", cookies[1][0]);
        assert!(cookies[2][0].starts_with("id="), "{}", cookies[2][0]);

        let rows: Vec<(&str, &'static str, std::net::SocketAddr, usize)> = vec![
            ("axum (bare handler)", "/b", bare, 0),
            (
                "axum + session-axum (session-redis, no cache): (b) cookie, read",
                "/b",
                ours,
                1,
            ),
            (
                "axum + session-axum (session-redis, no cache): (c) cookie, read+write",
                "/c",
                ours,
                1,
            ),
            (
                "axum + session-axum (session-redis, default: client-side cache): (b) cookie, read",
                "/b",
                cached,
                3,
            ),
            (
                "axum + session-axum (session-redis, default: client-side cache): (c) cookie, read+write",
                "/c",
                cached,
                3,
            ),
            (
                "axum + tower-sessions 0.14 (redis-store): (b) cookie, read",
                "/b",
                ts,
                2,
            ),
            (
                "axum + tower-sessions 0.14 (redis-store): (c) cookie, read+write",
                "/c",
                ts,
                2,
            ),
        ];
        // Warm-up: every row once for a second.
        for &(_, path, addr, app) in &rows {
            http_load::load(addr, path, &cookies[app], Duration::from_secs(1)).await;
        }
        let mut samples: Vec<(Vec<f64>, Vec<u32>)> =
            rows.iter().map(|_| Default::default()).collect();
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..rounds {
            shuffle(&mut order, &mut rng);
            for &r in &order {
                let (_, path, addr, app) = rows[r];
                let (rps, lat) = http_load::load(addr, path, &cookies[app], time).await;
                samples[r].0.push(rps);
                samples[r].1.extend(lat);
            }
        }
        (rows.iter().map(|r| r.0).collect::<Vec<_>>(), samples)
    });
    let elapsed = started.elapsed();
    drop(runtime);
    drop(server);

    let _ = writeln!(out, "## Redis store under load\n");
    let _ = writeln!(
        out,
        "Run: SCALE_CLIENTS={clients} SCALE_SECS={secs} SCALE_ROUNDS={rounds} SCALE_WORKERS={workers}; rows interleaved in shuffled order each round; {:.1} s in all.\n",
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| row | req/s (median of rounds; min–max) | ratio to bare (per round: median, min–max) | latency p50 / p99 µs |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for (r, label) in rows.iter().enumerate() {
        let (rps, lat) = &samples[r];
        let s = sorted(rps.clone());
        let ratios = sorted(rps.iter().zip(&samples[0].0).map(|(a, b)| a / b).collect());
        let mut lat = lat.clone();
        lat.sort_unstable();
        let pct = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
        let ratio = if r == 0 {
            "1".to_owned()
        } else {
            format!(
                "{:.3} ({:.3}–{:.3})",
                quantile(&ratios, 0.5),
                ratios[0],
                ratios[ratios.len() - 1]
            )
        };
        let _ = writeln!(
            out,
            "| {label} | {:.0} ({:.0}–{:.0}) | {ratio} | {} / {} |",
            quantile(&s, 0.5),
            s[0],
            s[s.len() - 1],
            pct(0.5),
            pct(0.99)
        );
    }
    let _ = writeln!(out);
}
