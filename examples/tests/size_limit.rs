//! The session size limit under concurrency, from outside: 200 updates of
//! one session, each under the limit alone and far over it together, are
//! sent at once (every request's body held back by one byte until all are
//! in flight, so every handler loaded the same session). The stored session
//! must stay within `SESSION_MAX_BYTES`; every update is answered 200 or
//! 413, each 200's key is kept and each 413's is not. On every framework,
//! and on memory, Redis (plain and cached), SQLite, PostgreSQL and MariaDB.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use session_conformance::Browser;
use session_redis::testing::LocalRedis;
use session_sql::testing::TestDatabase;
use support::{on_each_framework, redis_stores};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: usize = 4096;
const WRITES: usize = 200;
const SECRET: &str = "size-limit test secret, comfortably over 32 bytes long";

/// Each update's value: `"kNNN"` plus this many bytes of JSON text is 286
/// bytes, so 14 fit in the limit and 200 are 14 times over it.
const VALUE_LEN: usize = 282;

fn env(store: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("SESSION_SECRET", SECRET.to_owned()),
        ("SESSION_MAX_BYTES", LIMIT.to_string()),
    ];
    env.extend_from_slice(store);
    env
}

/// An update request with its body but the last byte, sent; the stream to
/// finish it on.
async fn held_back(addr: SocketAddr, cookie: &str, key: &str) -> (TcpStream, u8) {
    let body = json!({ key: "x".repeat(VALUE_LEN - 2) }).to_string();
    let head = format!(
        "POST /session/update HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-id={cookie}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let (most, last) = body.as_bytes().split_at(body.len() - 1);
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(most).await.expect("write");
    (stream, last[0])
}

/// Sends the last byte and reads the status.
async fn release(mut stream: TcpStream, last: u8) -> u16 {
    stream.write_all(&[last]).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let head = String::from_utf8_lossy(&raw);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"))
}

/// The wave on one running app.
async fn wave(addr: SocketAddr, label: &str) {
    let mut browser = Browser::new(addr);
    browser.login("sized", json!({ "seed": 1 })).await;
    let cookie = browser.cookie.clone().expect("a session cookie");
    let mut held = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        held.push(held_back(addr, &cookie, &format!("k{i:03}")).await);
    }
    // Every request has its head and all but one byte of its body in;
    // let each handler load the session before any commits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tasks: Vec<_> = held
        .into_iter()
        .map(|(stream, last)| tokio::spawn(release(stream, last)))
        .collect();
    let mut statuses = Vec::with_capacity(WRITES);
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let profile = browser.get("/session/profile").await;
    assert_eq!(profile.status, 200, "{label}: the session must survive");
    let data = profile.json()["data"].clone();
    let data = data.as_object().expect("data object");
    let size: usize = data
        .iter()
        .map(|(k, v)| k.len() + v.to_string().len())
        .sum();
    // The username is kept apart from the values; `seed` is one of them.
    assert!(
        size <= LIMIT,
        "{label}: the stored session holds {size} bytes, over the limit of {LIMIT}"
    );
    for (i, status) in statuses.iter().enumerate() {
        let kept = data.contains_key(&format!("k{i:03}"));
        match status {
            200 => assert!(kept, "{label}: update {i} answered 200 but was not kept"),
            413 => assert!(!kept, "{label}: update {i} answered 413 but was kept"),
            other => panic!("{label}: update {i} answered {other}"),
        }
    }
    let accepted = statuses.iter().filter(|&&s| s == 200).count();
    assert!(accepted >= 1, "{label}: no update was accepted");
    assert!(
        statuses.contains(&413),
        "{label}: 200 updates of {VALUE_LEN} bytes cannot all fit in {LIMIT}"
    );
    assert_eq!(data.get("seed"), Some(&Value::from(1)), "{label}");
}

async fn each_framework(store: &[(&'static str, String)], label: &str) {
    let env = env(store);
    on_each_framework(&env, label, |addr, label| async move {
        wave(addr, &label).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_stay_within_the_limit_in_memory() {
    each_framework(&[("SESSION_STORE", "memory".into())], "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_stay_within_the_limit_on_redis() {
    if !LocalRedis::available() {
        return session_core::testing::skip("redis-server", "not on PATH");
    }
    let redis = LocalRedis::start();
    for (label, store) in redis_stores(&redis.url()) {
        each_framework(&store, &label).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_stay_within_the_limit_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("size-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("sessions.db").display());
    let store = [("SESSION_STORE", "sql".to_owned()), ("DATABASE_URL", url)];
    each_framework(&store, "sqlite").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_stay_within_the_limit_on_postgres() {
    if let Some(db) = TestDatabase::postgres("size_limit").await {
        let store = [
            ("SESSION_STORE", "sql".to_owned()),
            ("DATABASE_URL", db.url().to_owned()),
        ];
        each_framework(&store, "postgres").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_stay_within_the_limit_on_mariadb() {
    if let Some(db) = TestDatabase::mysql("size_limit").await {
        let store = [
            ("SESSION_STORE", "sql".to_owned()),
            ("DATABASE_URL", db.url().to_owned()),
        ];
        each_framework(&store, "mariadb").await;
    }
}
