//! The per-user session limit from outside: 12 logins of one user sent at
//! once to an app with `SESSION_MAX_PER_USER=2`, with each policy, on every
//! framework, on memory and Redis (plain and cached). At most 2 of the
//! sessions stay live; with `refuse` exactly 10 logins get 409 with a JSON
//! error, with `end-oldest` all get 200.

mod support;

use std::net::SocketAddr;

use serde_json::json;
use session_conformance::Browser;
use session_redis::testing::LocalRedis;
use support::{App, bins, redis_stores};

const SECRET: &str = "user-limit test secret, comfortably over 32 bytes long";
const LOGINS: usize = 12;

async fn wave(addr: SocketAddr, policy: &str, label: &str) {
    // A user of its own: apps on one Redis share the sessions.
    let user = format!("racer {label}");
    let logins: Vec<_> = (0..LOGINS)
        .map(|_| {
            let user = user.clone();
            tokio::spawn(async move {
                let mut browser = Browser::new(addr);
                let body = json!({ "username": user }).to_string();
                let res = browser.post("/session/login", &body).await;
                (res, browser)
            })
        })
        .collect();
    let mut browsers = Vec::new();
    let mut refused = 0;
    for login in logins {
        let (res, browser) = login.await.unwrap();
        match res.status {
            200 => browsers.push(browser),
            409 => {
                assert!(res.json()["error"].is_string(), "{label}: 409 body");
                assert!(res.set_cookie().is_none_or(|c| c.contains("Max-Age=0")));
                refused += 1;
            }
            other => panic!("{label}: a login answered {other}"),
        }
    }
    let mut live = 0;
    for browser in &mut browsers {
        if browser.get("/session/profile").await.status == 200 {
            live += 1;
        }
    }
    assert_eq!(live, 2, "{label}: live sessions of one user");
    match policy {
        "refuse" => assert_eq!(refused, LOGINS - 2, "{label}"),
        _ => assert_eq!(refused, 0, "{label}"),
    }
}

async fn each_framework(store: &[(&'static str, String)], label: &str) {
    for policy in ["end-oldest", "refuse"] {
        let mut env = vec![
            ("SESSION_SECRET", SECRET.to_owned()),
            ("SESSION_MAX_PER_USER", "2".to_owned()),
            ("SESSION_MAX_PER_USER_POLICY", policy.to_owned()),
        ];
        env.extend_from_slice(store);
        for bin in bins() {
            let app = App::start(bin, &env);
            app.wait_ready().await;
            let name = bin.rsplit('/').next().unwrap_or(bin);
            wave(app.addr, policy, &format!("{label} {policy} on {name}")).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_concurrent_logins_leave_at_most_two_in_memory() {
    each_framework(&[("SESSION_STORE", "memory".into())], "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_concurrent_logins_leave_at_most_two_on_redis() {
    if !LocalRedis::available() {
        return session_core::testing::skip("redis-server", "not on PATH");
    }
    let redis = LocalRedis::start();
    for (label, store) in redis_stores(&redis.url()) {
        each_framework(&store, &label).await;
    }
}

#[test]
fn invalid_limits_stop_the_app_with_the_variable_named() {
    for (name, value, accepts) in [
        ("SESSION_MAX_PER_USER", "0", "greater than 0"),
        ("SESSION_MAX_PER_USER", "two", "greater than 0"),
        (
            "SESSION_MAX_PER_USER_POLICY",
            "oldest",
            "end-oldest or refuse",
        ),
    ] {
        let bin = bins()[0];
        let out = std::process::Command::new(bin)
            .env("ADDR", "127.0.0.1:0")
            .env(name, value)
            .output()
            .expect("run the app");
        assert!(!out.status.success(), "{name}={value} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(name) && stderr.contains(accepts),
            "{name}={value}: {stderr}"
        );
    }
}
