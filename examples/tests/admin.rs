//! The operator's routes from outside, on every framework, on memory and
//! Redis: without `SESSION_ADMIN_TOKEN` every `/admin/` path is 404; a
//! missing or wrong token is 401; the count, the pages (`limit=2`, each
//! session once), ending one user's sessions and ending all of them; and
//! no admin answer ever sets a cookie.

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;

use serde_json::{Value, json};
use session_conformance::Browser;
use session_conformance::http::{Response, send_headers};
use session_redis::testing::LocalRedis;
use support::{App, bins, on_each_framework, redis_stores};

const SECRET: &str = "admin test secret, comfortably over 32 bytes long";
const TOKEN: &str = "operator-token-0123456789";

/// An admin request with these extra header lines; checks it set no cookie.
async fn admin(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let res = send_headers(addr, method, path, headers, body).await;
    assert!(
        res.set_cookie().is_none(),
        "{method} {path} set a cookie: {:?}",
        res.set_cookie()
    );
    res
}

const BEARER: (&str, &str) = ("Authorization", "Bearer operator-token-0123456789");
const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn list(addr: SocketAddr, query: &str) -> Value {
    let res = admin(
        addr,
        "GET",
        &format!("/admin/sessions{query}"),
        &[BEARER],
        "",
    )
    .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    res.json()
}

/// The whole walk on one app, whose store holds no session yet.
async fn walk(addr: SocketAddr, label: &str) {
    // 401 without the token, with a wrong one, or another scheme; on every
    // admin path.
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong-token-0123456789")],
        vec![("Authorization", "Basic operator-token-0123456789")],
        vec![BEARER, BEARER],
    ] {
        for (method, path) in [
            ("GET", "/admin/sessions"),
            ("POST", "/admin/sessions/end-all"),
            ("GET", "/admin/nothing"),
        ] {
            let mut headers = headers.clone();
            headers.push(JSON);
            let res = admin(addr, method, path, &headers, "{}").await;
            assert_eq!(res.status, 401, "{label}: {method} {path} {headers:?}");
            assert!(res.json()["error"].is_string());
        }
    }
    assert_eq!(
        admin(addr, "GET", "/admin/nothing", &[BEARER], "")
            .await
            .status,
        404,
        "{label}"
    );
    // Bad limits.
    for query in ["?limit=0", "?limit=1001", "?limit=two", "?after=x"] {
        let res = admin(
            addr,
            "GET",
            &format!("/admin/sessions{query}"),
            &[BEARER],
            "",
        )
        .await;
        assert_eq!(res.status, 400, "{label}: {query}");
        assert!(res.json()["error"].is_string());
    }
    // POSTs must be JSON.
    let res = admin(addr, "POST", "/admin/sessions/end-all", &[BEARER], "").await;
    assert_eq!(res.status, 415, "{label}");

    // Start from an empty store (apps on one Redis share it).
    let res = admin(addr, "POST", "/admin/sessions/end-all", &[BEARER, JSON], "").await;
    assert_eq!(res.status, 200, "{label}");
    assert_eq!(list(addr, "").await["count"], json!(0), "{label}");

    let mut ada = Browser::new(addr);
    ada.login("ada", json!({ "secret": "never shown" })).await;
    let mut ada2 = Browser::new(addr);
    ada2.login("ada", json!({})).await;
    let mut bob = Browser::new(addr);
    bob.login("bob", json!({})).await;

    let all = list(addr, "").await;
    assert_eq!(all["count"], json!(3), "{label}: {all}");
    assert_eq!(all["next"], Value::Null, "{label}");
    let sessions = all["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    for s in sessions {
        for field in ["created_at", "last_activity", "expires_at"] {
            assert!(s[field].is_u64(), "{label}: {s}");
        }
        assert!(s["handle"].is_string());
        assert!(s["username"] == json!("ada") || s["username"] == json!("bob"));
    }
    assert!(!all.to_string().contains("never shown"), "values shown");
    for cookie in [&ada.cookie, &bob.cookie] {
        let cookie = cookie.as_deref().unwrap();
        assert!(!all.to_string().contains(cookie), "{label}: an id shown");
    }

    // Pages of two: every session once.
    let mut seen = HashSet::new();
    let mut query = "?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = list(addr, &query).await;
        pages += 1;
        let sessions = page["sessions"].as_array().unwrap();
        assert!(sessions.len() <= 2);
        for s in sessions {
            assert!(
                seen.insert(s["handle"].as_str().unwrap().to_owned()),
                "{label}: listed twice"
            );
        }
        match page["next"].as_str() {
            Some(next) => query = format!("?limit=2&after={next}"),
            None => break,
        }
        assert!(pages < 10, "{label}: paging never ends");
    }
    assert_eq!(seen.len(), 3, "{label}: pages of two");

    // An admin request that carries a visitor's cookie leaves it alone.
    let cookie = format!("__Host-id={}", ada.cookie.as_deref().unwrap());
    let res = admin(
        addr,
        "GET",
        "/admin/sessions",
        &[BEARER, ("Cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(res.status, 200);
    // And one with a cookie that names no session gets no removal cookie.
    let res = admin(
        addr,
        "GET",
        "/admin/sessions",
        &[BEARER, ("Cookie", "__Host-id=forged")],
        "",
    )
    .await;
    assert_eq!(res.status, 200);

    // End one user's sessions.
    let res = admin(
        addr,
        "POST",
        "/admin/sessions/end",
        &[BEARER, JSON],
        r#"{"username": "ada"}"#,
    )
    .await;
    assert_eq!(res.status, 200, "{label}");
    assert_eq!(res.json(), json!({ "ended": 2 }), "{label}");
    assert_eq!(ada.get("/session/profile").await.status, 401, "{label}");
    assert_eq!(ada2.get("/session/profile").await.status, 401, "{label}");
    assert_eq!(bob.get("/session/profile").await.status, 200, "{label}");
    assert_eq!(list(addr, "").await["count"], json!(1), "{label}");
    let res = admin(
        addr,
        "POST",
        "/admin/sessions/end",
        &[BEARER, JSON],
        r#"{"name": "ada"}"#,
    )
    .await;
    assert_eq!(res.status, 400, "{label}");

    // End them all.
    let mut carol = Browser::new(addr);
    carol.login("carol", json!({})).await;
    let res = admin(addr, "POST", "/admin/sessions/end-all", &[BEARER, JSON], "").await;
    assert_eq!(res.status, 200, "{label}");
    assert_eq!(res.json(), json!({ "ended": 2 }), "{label}");
    assert_eq!(bob.get("/session/profile").await.status, 401, "{label}");
    assert_eq!(carol.get("/session/profile").await.status, 401, "{label}");
    let empty = list(addr, "").await;
    assert_eq!(
        empty,
        json!({ "count": 0, "sessions": [], "next": null }),
        "{label}"
    );
}

async fn each_framework(store: &[(&'static str, String)], label: &str) {
    let mut env = vec![
        ("SESSION_SECRET", SECRET.to_owned()),
        ("SESSION_ADMIN_TOKEN", TOKEN.to_owned()),
    ];
    env.extend_from_slice(store);
    on_each_framework(&env, label, |addr, label| async move {
        walk(addr, &label).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_routes_in_memory() {
    each_framework(&[("SESSION_STORE", "memory".into())], "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_routes_on_redis() {
    if !LocalRedis::available() {
        return session_core::testing::skip("redis-server", "not on PATH");
    }
    let redis = LocalRedis::start();
    for (label, store) in redis_stores(&redis.url()) {
        each_framework(&store, &label).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_every_admin_path_is_404() {
    let env = [("SESSION_SECRET", SECRET), ("SESSION_STORE", "memory")];
    for bin in bins() {
        let app = App::start(bin, &env);
        app.wait_ready().await;
        for (method, path, headers) in [
            ("GET", "/admin/sessions", vec![BEARER]),
            ("GET", "/admin/sessions", vec![]),
            ("POST", "/admin/sessions/end", vec![BEARER, JSON]),
            ("POST", "/admin/sessions/end-all", vec![BEARER]),
            ("POST", "/admin/sessions/end-all", vec![]),
            ("GET", "/admin", vec![]),
        ] {
            let res = admin(app.addr, method, path, &headers, "{}").await;
            assert_eq!(res.status, 404, "{bin}: {method} {path}");
            assert_eq!(res.json(), json!({ "error": "not found" }), "{bin}");
        }
    }
}

#[test]
fn a_short_token_stops_the_app_with_the_variable_named() {
    let out = std::process::Command::new(bins()[0])
        .env("ADDR", "127.0.0.1:0")
        .env("SESSION_ADMIN_TOKEN", "short")
        .output()
        .expect("run the app");
    assert!(!out.status.success(), "a short token started");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SESSION_ADMIN_TOKEN"), "{stderr}");
}
