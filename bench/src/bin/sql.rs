//! Part 4: sessions in SQL. session-axum on session-sql against
//! tower-sessions 0.14 on tower-sessions-sqlx-store 0.15, on PostgreSQL and
//! on SQLite: latency per read-only and per writing request (interleaved in
//! one run), round trips per request (PostgreSQL, counted by a proxy on the
//! wire), and a lost-update demonstration (N concurrent requests of one
//! visitor, each writing its own key: how many keys survive).
//!
//! The services are called in-process, as in parts 1 and 2; only the
//! stores talk to the database. PostgreSQL is the machine's own (or
//! `SESSION_TEST_POSTGRES_URL`), in a fresh database dropped at the end;
//! SQLite files live in the temporary directory. See README.md.

#[path = "../common.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{env_usize, median, quantile, shuffle, sorted};
use session_axum::{Session, SessionLayer};
use session_sql::SqlStore;
use session_sql::sqlx;
use session_sql::testing::{Proxy, TestDatabase};
use tower::ServiceExt;
use tower_sessions_014::SessionManagerLayer;
use tower_sessions_014::cookie::SameSite;
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// The session key the handlers read and write.
const KEY: &str = "n";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    Read,
    Write,
}

impl Case {
    const ALL: [Case; 2] = [Case::Read, Case::Write];
    fn path(self) -> &'static str {
        match self {
            Case::Read => "/b",
            Case::Write => "/c",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Case::Read => "read-only",
            Case::Write => "read+write",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Db {
    Postgres,
    Sqlite,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lib {
    Ours,
    Theirs,
}

impl Lib {
    fn label(self) -> &'static str {
        match self {
            Lib::Ours => "session-axum + session-sql",
            Lib::Theirs => "tower-sessions + tower-sessions-sqlx-store",
        }
    }
}

// ---------------------------------------------------------------------------
// Apps: /b reads `n`, /c reads `n` and writes n + 1, /w/{i} writes key
// `k{i}`, /keys counts the keys `k0`..`k63` present.

mod ours {
    use super::*;

    async fn read(Session(s): Session) -> &'static str {
        black_box(s.get::<u64>(KEY).unwrap());
        "ok"
    }
    async fn write(Session(s): Session) -> &'static str {
        let n = s.get::<u64>(KEY).unwrap().unwrap_or(0);
        s.insert(KEY, &(n + 1)).unwrap();
        "ok"
    }
    async fn write_key(
        axum::extract::Path(i): axum::extract::Path<u32>,
        Session(s): Session,
    ) -> &'static str {
        s.insert(&format!("k{i}"), &i).unwrap();
        "ok"
    }
    async fn keys(Session(s): Session) -> String {
        (0..64)
            .filter(|i| s.get::<u32>(&format!("k{i}")).unwrap().is_some())
            .count()
            .to_string()
    }

    pub(crate) fn app(store: SqlStore) -> Router {
        let mut config = session_axum::SessionConfig::default();
        config.cookie.name = "id".to_owned();
        let layer = SessionLayer::with_store(store, config).unwrap();
        Router::new()
            .route("/b", get(read))
            .route("/c", get(write))
            .route("/w/{i}", get(write_key))
            .route("/keys", get(keys))
            .layer(layer)
    }
}

mod theirs {
    use super::*;
    use tower_sessions_014::{SessionStore, session_store::ExpiredDeletion};

    async fn read(s: tower_sessions_014::Session) -> &'static str {
        black_box(s.get::<u64>(KEY).await.unwrap());
        "ok"
    }
    async fn write(s: tower_sessions_014::Session) -> &'static str {
        let n = s.get::<u64>(KEY).await.unwrap().unwrap_or(0);
        s.insert(KEY, n + 1).await.unwrap();
        "ok"
    }
    async fn write_key(
        axum::extract::Path(i): axum::extract::Path<u32>,
        s: tower_sessions_014::Session,
    ) -> &'static str {
        s.insert(&format!("k{i}"), i).await.unwrap();
        "ok"
    }
    async fn keys(s: tower_sessions_014::Session) -> String {
        let mut n = 0;
        for i in 0..64 {
            if s.get::<u32>(&format!("k{i}")).await.unwrap().is_some() {
                n += 1;
            }
        }
        n.to_string()
    }

    /// Its documented set-up, with part 1's cookie settings.
    pub(crate) fn app<S: SessionStore + ExpiredDeletion + Clone>(store: S) -> Router {
        let layer = SessionManagerLayer::new(store)
            .with_name("id")
            .with_secure(true)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/");
        Router::new()
            .route("/b", get(read))
            .route("/c", get(write))
            .route("/w/{i}", get(write_key))
            .route("/keys", get(keys))
            .layer(layer)
    }
}

// ---------------------------------------------------------------------------

struct Target {
    db: Db,
    lib: Lib,
    app: Router,
    cookie: String,
}

impl Target {
    fn label(&self) -> String {
        format!("{:?}: {}", self.db, self.lib.label())
    }
}

async fn call(app: &Router, path: &str, cookie: Option<&str>) -> (u16, Option<String>, String) {
    let mut req = http::Request::builder().uri(path);
    if let Some(c) = cookie {
        req = req.header(http::header::COOKIE, c);
    }
    let res = app
        .clone()
        .oneshot(req.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let cookie = res
        .headers()
        .get(http::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, cookie, String::from_utf8_lossy(&body).into_owned())
}

/// A session made by one writing request; its cookie.
async fn new_session(app: &Router) -> String {
    let (status, cookie, _) = call(app, "/c", None).await;
    assert_eq!(status, 200);
    cookie.expect("a writing request sets a cookie")
}

async fn sqlite_pool_for_them(file: &str) -> sqlx::SqlitePool {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    // The same file settings as ours: WAL, synchronous NORMAL.
    let options = SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    sqlx::SqlitePool::connect_with(options).await.unwrap()
}

/// Both libraries' apps on a database, each on its own table(s).
async fn apps(db: Db, url: &str) -> [(Lib, Router); 2] {
    let ours = SqlStore::new(url).unwrap();
    ours.migrate().await.unwrap();
    let theirs = match db {
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let store = PostgresStore::new(pool);
            store.migrate().await.unwrap();
            theirs::app(store)
        }
        Db::Sqlite => {
            let file = url.trim_start_matches("sqlite://").to_owned() + ".theirs";
            let store = SqliteStore::new(sqlite_pool_for_them(&file).await);
            store.migrate().await.unwrap();
            theirs::app(store)
        }
    };
    [(Lib::Ours, ours::app(ours)), (Lib::Theirs, theirs)]
}

/// N concurrent requests of one visitor, request i writing key `k{i}`:
/// how many of the N keys the session holds afterwards.
async fn lost_updates(app: &Router, writers: usize) -> usize {
    let cookie = new_session(app).await;
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let app = app.clone();
            let cookie = cookie.clone();
            tokio::spawn(async move { call(&app, &format!("/w/{i}"), Some(&cookie)).await.0 })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    call(app, "/keys", Some(&cookie)).await.2.parse().unwrap()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let reps = env_usize("BENCH_REPS", 20).max(1);
    let n = env_usize("BENCH_N", 200).max(1);
    let warmup = env_usize("BENCH_WARMUP", 2);
    let count_n = env_usize("BENCH_COUNT_N", 200).max(1);
    let writers = env_usize("BENCH_WRITERS", 32).clamp(1, 64);

    let pg = TestDatabase::postgres("bench").await;
    let sqlite = TestDatabase::sqlite("bench");
    let mut dbs: Vec<(Db, &TestDatabase)> = Vec::new();
    if let Some(pg) = &pg {
        dbs.push((Db::Postgres, pg));
    }
    dbs.push((Db::Sqlite, &sqlite));

    // Round trips per request (PostgreSQL), each app alone, untimed: its
    // own database connections through a counting proxy.
    let mut trips: Vec<(String, Case, f64)> = Vec::new();
    if let Some(pg) = &pg {
        eprintln!("counting round trips ({count_n} requests per row and case)...");
        let proxy = Proxy::start(pg.server_addr().unwrap()).await.unwrap();
        for (lib, app) in apps(Db::Postgres, &pg.url_via(&proxy)).await {
            let cookie = new_session(&app).await;
            for case in Case::ALL {
                for _ in 0..5 {
                    call(&app, case.path(), Some(&cookie)).await;
                }
                // Let a release-time ping of the warm-up finish.
                tokio::time::sleep(Duration::from_millis(50)).await;
                proxy.reset_round_trips();
                for _ in 0..count_n {
                    assert_eq!(call(&app, case.path(), Some(&cookie)).await.0, 200);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                let per = proxy.round_trips() as f64 / count_n as f64;
                trips.push((lib.label().to_owned(), case, per));
            }
        }
    }

    // Latency: every (target, case) once per rep, in a shuffled order.
    let mut targets = Vec::new();
    // `BENCH_LIB=ours` or `theirs`: only that library's rows (for profiling).
    let only = std::env::var("BENCH_LIB").ok();
    for (db, test_db) in &dbs {
        for (lib, app) in apps(*db, test_db.url()).await {
            if only.as_deref().is_some_and(|o| {
                !lib.label().starts_with(match o {
                    "ours" => "session-axum",
                    _ => "tower-sessions",
                })
            }) {
                continue;
            }
            let cookie = new_session(&app).await;
            targets.push(Target {
                db: *db,
                lib,
                app,
                cookie,
            });
        }
    }
    let mut samples: Vec<[Vec<f64>; 2]> = targets.iter().map(|_| [vec![], vec![]]).collect();
    let mut order: Vec<(usize, usize)> = (0..targets.len())
        .flat_map(|t| (0..2).map(move |c| (t, c)))
        .collect();
    let mut seed = 0x5eed_u64;
    eprintln!("measuring: {reps} reps (+{warmup} warm-up) of {n} requests per row and case...");
    for rep in 0..warmup + reps {
        // Request by request: each row and case sends one request in turn
        // (in an order shuffled each rep), so that all of them meet the
        // same moments of the machine (fsync latency varies with the other
        // work on the disk).
        shuffle(&mut order, &mut seed);
        for _ in 0..n {
            for &(t, c) in &order {
                let target = &targets[t];
                let case = Case::ALL[c];
                let start = Instant::now();
                let (status, _, _) = call(&target.app, case.path(), Some(&target.cookie)).await;
                let took = start.elapsed();
                assert_eq!(status, 200, "{}: {:?}", target.label(), case);
                if rep >= warmup {
                    samples[t][c].push(took.as_nanos() as f64);
                }
            }
        }
    }

    // Lost updates.
    let mut lost = Vec::new();
    for target in &targets {
        let kept = lost_updates(&target.app, writers).await;
        lost.push((target.label(), kept));
    }

    // Report.
    println!(
        "## SQL stores ({reps} reps x {n} requests per row and case, interleaved request by request)\n"
    );
    println!("| database | library | request | median µs | p99 µs | ours / theirs (median) |");
    println!("|---|---|---|---:|---:|---:|");
    for db in [Db::Postgres, Db::Sqlite] {
        for case in Case::ALL {
            let c = Case::ALL.iter().position(|x| *x == case).unwrap();
            let row = |lib: Lib| {
                targets
                    .iter()
                    .position(|t| t.db == db && t.lib == lib)
                    .map(|t| sorted(samples[t][c].clone()))
            };
            let (Some(ours), Some(theirs)) = (row(Lib::Ours), row(Lib::Theirs)) else {
                continue;
            };
            let (mo, mt) = (median(&ours), median(&theirs));
            for (lib, s, ratio) in [
                (Lib::Ours, &ours, format!("{:.2}x", mo / mt)),
                (Lib::Theirs, &theirs, String::new()),
            ] {
                println!(
                    "| {db:?} | {} | {} | {:.0} | {:.0} | {ratio} |",
                    lib.label(),
                    case.label(),
                    median(s) / 1e3,
                    quantile(s, 0.99) / 1e3,
                );
            }
        }
    }
    if !trips.is_empty() {
        println!("\n### Round trips to PostgreSQL per request ({count_n} requests each)\n");
        println!("| library | request | round trips per request |");
        println!("|---|---|---:|");
        for (lib, case, per) in &trips {
            println!("| {lib} | {} | {per:.2} |", case.label());
        }
    }
    println!(
        "\n### Lost updates: {writers} concurrent requests of one visitor, each writing its own key\n"
    );
    println!("| database: library | keys kept | lost |");
    println!("|---|---:|---:|");
    for (label, kept) in &lost {
        println!("| {label} | {kept} of {writers} | {} |", writers - kept);
    }
    // The SQLite file of theirs, beside ours.
    let theirs = format!("{}.theirs", sqlite.url().trim_start_matches("sqlite://"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{theirs}{suffix}"));
    }
}
