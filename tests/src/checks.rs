//! The checks, each a function of the framework under test.

use std::time::Duration;

use serde_json::json;
use session_core::driver::Engine as _;
use session_core::{Clock as _, SessionId, SessionStore};

use crate::http::{Response, send_headers, send_raw};
use crate::server::{Adapter, Target, TestServer, example_config};

fn assert_no_5xx(status: u16, what: &str) {
    assert!(status < 500, "{what}: got {status}");
}

/// `GET /healthz` is 200 with and without a session.
pub async fn healthz_answers_with_and_without_a_session(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    assert_eq!(browser.get("/healthz").await.status, 200);
    browser.login("ada", json!({})).await;
    let res = browser.get("/healthz").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), json!({ "status": "ok" }));
}

/// Login: 200 with the profile, a cookie with the secure attributes, no-store.
pub async fn login_sets_a_secure_cookie_and_returns_the_profile(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    let res = browser
        .login("ada", json!({ "theme": "dark", "n": 3 }))
        .await;
    let t0 = crate::server::t0().unix_secs();
    assert_eq!(
        res.json(),
        json!({
            "username": "ada", "created_at": t0, "last_activity": t0, "authenticated_at": t0,
            "data": { "theme": "dark", "n": 3 }
        })
    );
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(
        res.cookie_attributes(),
        ["Path=/", "HttpOnly", "Secure", "SameSite=Lax"],
        "browser-session cookie"
    );
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert!(
        res.all("vary")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("cookie"))
    );
    let profile = browser.get("/session/profile").await;
    assert_eq!(profile.status, 200);
    assert_eq!(profile.json()["data"], json!({ "theme": "dark", "n": 3 }));
    assert_eq!(
        profile.set_cookie(),
        None,
        "a read within the touch interval resends nothing"
    );
}

/// With persistent cookies, Max-Age is exactly the time left.
pub async fn persistent_cookie_max_age_is_exact(target: Target) {
    let mut config = example_config();
    config.cookie.persistent = true;
    config.lifetime = Duration::from_secs(5400);
    let server = TestServer::start_with(target, config).await;
    let mut browser = server.browser();
    let res = browser.login("ada", json!({})).await;
    assert_eq!(
        res.cookie_attributes(),
        [
            "Max-Age=3600",
            "Path=/",
            "HttpOnly",
            "Secure",
            "SameSite=Lax"
        ]
    );
    server.advance(3000);
    let res = browser.get("/session/profile").await;
    assert_eq!(res.status, 200);
    // Touched at T0+3000: idle expiry T0+6600, absolute T0+5400 comes first.
    assert_eq!(res.cookie_attributes()[0], "Max-Age=2400");
}

/// A visitor whose session holds nothing gets no cookie.
pub async fn an_empty_session_gets_no_cookie(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    for res in [
        browser.get("/healthz").await,
        browser.get("/session/profile").await,
        browser.get("/nowhere").await,
    ] {
        assert_eq!(res.all("set-cookie"), Vec::<&str>::new());
    }
    let bad_login = browser.post("/session/login", "{").await;
    assert_eq!(bad_login.status, 400);
    assert_eq!(bad_login.set_cookie(), None);
}

/// Every session route but login is 401 with a JSON error without a session.
pub async fn routes_without_a_session_are_401(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    for (method, path) in [
        ("GET", "/session/profile"),
        ("POST", "/session/update"),
        ("POST", "/session/logout"),
        ("POST", "/session/logout-all"),
        ("GET", "/session/sessions"),
        ("POST", "/session/sessions/end"),
    ] {
        let res = browser.request(method, path, b"{}").await;
        assert_eq!(res.status, 401, "{method} {path}");
        assert!(res.json()["error"].is_string(), "{method} {path}");
    }
}

/// Update merges the object into data; values keep their JSON types.
pub async fn update_merges_and_keeps_json_types(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    browser.login("ada", json!({ "a": 1 })).await;
    let update = json!({ "b": "two", "c": [1, 2.5], "d": { "e": null }, "f": true, "a": 10 });
    let res = browser.post("/session/update", &update.to_string()).await;
    assert_eq!(res.status, 200);
    let expected = json!({ "a": 10, "b": "two", "c": [1, 2.5], "d": { "e": null }, "f": true });
    assert_eq!(res.json()["data"], expected);
    assert_eq!(
        browser.get("/session/profile").await.json()["data"],
        expected
    );
}

/// Bad JSON, or a body that is not an object, is 400 and changes nothing.
pub async fn bad_json_is_400_and_leaves_the_session_as_it_was(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    browser.login("ada", json!({ "a": 1 })).await;
    let before = browser.get("/session/profile").await.json();
    for body in ["{", "[1,2]", "\"text\"", "42", "", "{\"a\": }"] {
        let res = browser.post("/session/update", body).await;
        assert_eq!(res.status, 400, "update body {body:?}");
        assert!(res.json()["error"].is_string());
        assert_eq!(res.set_cookie(), None);
    }
    for body in [
        "{",
        "{\"data\": {}}",
        "{\"username\": 7}",
        "{\"username\": \"\"}",
    ] {
        let res = browser.post("/session/login", body).await;
        assert_eq!(res.status, 400, "login body {body:?}");
        assert_eq!(
            res.set_cookie(),
            None,
            "a bad login must not touch the session"
        );
    }
    assert_eq!(browser.get("/session/profile").await.json(), before);
}

/// Login always issues a new id, and the old one is dead.
pub async fn login_issues_a_new_id_and_kills_the_old_one(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    browser.login("ada", json!({ "secret": 1 })).await;
    let first = browser.cookie.clone().unwrap();
    browser.login("ada", json!({})).await;
    let second = browser.cookie.clone().unwrap();
    assert_ne!(first, second);
    let mut old = browser.clone();
    old.cookie = Some(first);
    assert_eq!(
        old.get("/session/profile").await.status,
        401,
        "the old id still works"
    );
    assert_eq!(
        browser.get("/session/profile").await.json()["data"],
        json!({}),
        "login starts afresh"
    );
}

/// Logout ends the session server-side; the removal cookie matches.
pub async fn logout_kills_the_id_and_sends_a_matching_removal_cookie(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    browser.login("ada", json!({})).await;
    let stolen = browser.clone();
    let res = browser.post("/session/logout", "").await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.cookie_attributes(),
        [
            "Max-Age=0",
            "Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "Path=/",
            "HttpOnly",
            "Secure",
            "SameSite=Lax"
        ]
    );
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(browser.cookie, None);
    // A copy of the cookie taken before logout is dead on the server too.
    let mut stolen = stolen;
    assert_eq!(stolen.get("/session/profile").await.status, 401);
}

/// Logout-all ends every session of that user and no other.
pub async fn logout_all_ends_exactly_that_users_sessions(target: Target) {
    let server = TestServer::start(target).await;
    let mut ada: Vec<_> = (0..3).map(|_| server.browser()).collect();
    for b in &mut ada {
        b.login("ada", json!({})).await;
    }
    let mut bob = server.browser();
    bob.login("bob", json!({})).await;
    let res = ada[0].post("/session/logout-all", "").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), json!({ "ended": 3 }));
    for b in &mut ada[1..] {
        assert_eq!(b.get("/session/profile").await.status, 401);
    }
    assert_eq!(bob.get("/session/profile").await.status, 200);
}

/// Forged ids (unsigned, wrongly signed, well-formed but unknown) are never
/// adopted: they get 401, and a login with one gets a different id.
pub async fn forged_ids_are_never_adopted(target: Target) {
    let server = TestServer::start(target).await;
    let forged = SessionId::generate().to_string();
    let mut signed_elsewhere = example_config();
    signed_elsewhere.cookie.signing_keys =
        session_core::SigningKeys::new(["another secret of well over thirty-two bytes"]);
    let elsewhere = TestServer::start_with(target, signed_elsewhere).await;
    let mut other = elsewhere.browser();
    other.login("mallory", json!({})).await;
    for cookie in [forged.clone(), other.cookie.clone().unwrap()] {
        let mut browser = server.browser();
        browser.cookie = Some(cookie.clone());
        assert_eq!(browser.get("/session/profile").await.status, 401);
        browser.cookie = Some(cookie.clone());
        browser.login("ada", json!({})).await;
        assert_ne!(
            browser.cookie.as_deref(),
            Some(cookie.as_str()),
            "a forged id was adopted"
        );
    }
}

/// The idle timeout ends a session at exactly last activity + idle.
pub async fn idle_timeout_is_exact(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    browser.login("ada", json!({})).await;
    server.advance(3599);
    assert_eq!(
        browser.get("/session/profile").await.status,
        200,
        "ended before the idle timeout"
    );
    // That request refreshed the idle timeout: 3599 s more is still alive.
    server.advance(3599);
    assert_eq!(browser.get("/session/profile").await.status, 200);
    server.advance(3600);
    let res = browser.get("/session/profile").await;
    assert_eq!(res.status, 401, "alive after the idle timeout");
    assert!(
        res.set_cookie().is_some_and(|c| c.contains("Max-Age=0")),
        "the stale cookie is removed"
    );
}

/// However active, a session ends at its absolute lifetime.
pub async fn absolute_lifetime_ends_an_active_session(target: Target) {
    let mut config = example_config();
    config.lifetime = Duration::from_secs(4 * 3600);
    let server = TestServer::start_with(target, config).await;
    let mut browser = server.browser();
    browser.login("ada", json!({})).await;
    for _ in 0..7 {
        server.advance(1800);
        assert_eq!(browser.get("/session/profile").await.status, 200);
    }
    server.advance(1800);
    assert_eq!(
        browser.get("/session/profile").await.status,
        401,
        "alive past its lifetime"
    );
}

/// `cookie` with the character at `at` changed to another of its alphabet.
fn tamper(cookie: &str, at: usize) -> String {
    let mut bytes = cookie.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

/// No cookie header, however hostile, gives a 5xx: a tampered, truncated,
/// forged or garbage cookie is no session (401); a real session keeps
/// working beside them.
pub async fn hostile_cookies_never_give_a_5xx(target: Target) {
    let server = TestServer::start(target).await;
    let mut real = server.browser();
    real.login("ada", json!({ "k": 1 })).await;
    let good = real.cookie.clone().unwrap();
    let many: String = (0..300).map(|i| format!("c{i}=v{i}; ")).collect();
    let cookies: Vec<Vec<u8>> = vec![
        b"__Host-id=".to_vec(),
        b"__Host-id".to_vec(),
        b";;;;".to_vec(),
        b"__Host-id=\xff\xfe\xfd".to_vec(),
        b"__Host-id=\"unterminated".to_vec(),
        format!("__Host-id={}", "A".repeat(8 * 1024)).into_bytes(),
        format!("__Host-id={}", &good[..good.len() - 3]).into_bytes(),
        format!("__Host-id={}x", good).into_bytes(),
        format!("__Host-id={}", tamper(&good, 0)).into_bytes(),
        format!("__Host-id={}", tamper(&good, good.len() - 1)).into_bytes(),
        format!("{many}id=junk").into_bytes(),
        "__Host-id=a; ".repeat(200).into_bytes(),
        format!("__Host-id={}", SessionId::generate()).into_bytes(),
    ];
    for cookie in &cookies {
        let mut head = b"GET /session/profile HTTP/1.1\r\nHost: localhost\r\nCookie: ".to_vec();
        head.extend_from_slice(cookie);
        head.extend_from_slice(b"\r\n");
        let res = send_raw(server.addr, &head, b"").await;
        let what = String::from_utf8_lossy(&cookie[..cookie.len().min(60)]);
        assert_no_5xx(res.status, &what);
        // Tampered, truncated, forged or garbage: no session, never the
        // real one's.
        assert_eq!(res.status, 401, "{what}");
        assert_eq!(res.json(), json!({ "error": "no live session" }), "{what}");
    }
    // The real cookie in double quotes is the same cookie (RFC 6265).
    let head = format!(
        "GET /session/profile HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-id=\"{good}\"\r\n"
    );
    assert_eq!(
        send_raw(server.addr, head.as_bytes(), b"").await.status,
        200
    );
    // Duplicates: junk first, the real one after, and on separate headers.
    let head = format!(
        "GET /session/profile HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-id=junk; __Host-id={good}\r\n"
    );
    assert_eq!(
        send_raw(server.addr, head.as_bytes(), b"").await.status,
        200
    );
    let head = format!(
        "GET /session/profile HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-id=junk\r\nCookie: __Host-id={good}\r\n"
    );
    assert_eq!(
        send_raw(server.addr, head.as_bytes(), b"").await.status,
        200
    );
    assert_eq!(
        real.get("/session/profile").await.json()["data"],
        json!({ "k": 1 })
    );
}

/// Sixteen concurrent requests of one session, each writing its own key:
/// every key is kept.
pub async fn concurrent_writes_of_different_keys_are_all_kept(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    browser.login("ada", json!({})).await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let mut b = browser.clone();
            tokio::spawn(async move {
                b.post(
                    "/session/update",
                    &json!({ format!("k{i}"): i }).to_string(),
                )
                .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().status, 200);
    }
    let data = browser.get("/session/profile").await.json()["data"].clone();
    let expected: serde_json::Map<_, _> = (0..16).map(|i| (format!("k{i}"), json!(i))).collect();
    assert_eq!(data, serde_json::Value::Object(expected));
}

/// Unknown routes and methods are 404 with a JSON error.
pub async fn unknown_routes_are_404_json(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    for (method, path) in [
        ("GET", "/nope"),
        ("DELETE", "/session/profile"),
        ("GET", "/session/login"),
    ] {
        let res = browser.request(method, path, b"").await;
        assert_eq!(res.status, 404, "{method} {path}");
        assert_eq!(res.json(), json!({ "error": "not found" }));
    }
}

/// A cookie issued by one adapter works on the others when they share a
/// store and a secret: login on the first, read and update on the second,
/// log out on the third.
pub async fn sessions_move_between_adapters(
    order: [&'static dyn Adapter; 3],
    backend: crate::server::Backend,
) {
    let test_store = crate::server::TestStore::new(backend).await;
    let store = test_store.store.clone();
    let clock = session_core::ManualClock::new(crate::server::t0());
    let mut servers = Vec::new();
    for fw in order {
        let manager = session_core::SessionManager::with_clock(
            store.clone(),
            example_config(),
            clock.clone(),
        )
        .unwrap();
        servers.push(TestServer::start_manager(fw, manager, clock.clone()).await);
    }
    let mut browser = servers[0].browser();
    browser
        .login("ada", json!({ "from": format!("{:?}", order[0]) }))
        .await;
    let mut second = browser.at(servers[1].addr);
    let res = second.post("/session/update", r#"{"second": true}"#).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["data"]["from"], json!(format!("{:?}", order[0])));
    let mut third = second.at(servers[2].addr);
    assert_eq!(
        third.get("/session/profile").await.json()["data"]["second"],
        json!(true)
    );
    assert_eq!(third.post("/session/logout", "").await.status, 200);
    let mut first_again = browser.at(servers[0].addr);
    assert_eq!(
        first_again.get("/session/profile").await.status,
        401,
        "logout did not reach the first adapter"
    );
}

/// A slow request that writes while logout runs cannot bring the session
/// back: its body is still uploading (the adapter has loaded the session and
/// the handler waits for the body) when the session is ended elsewhere.
pub async fn a_slow_write_during_logout_does_not_resurrect(target: Target) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    browser.login("ada", json!({ "a": 1 })).await;
    let cookie = browser.cookie.clone().unwrap();
    let body = json!({ "late": true }).to_string();

    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /session/update HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-id={cookie}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    // Let the server read the head and load the session; the body is held back.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut other = browser.clone();
    assert_eq!(other.post("/session/logout", "").await.status, 200);

    slow.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    slow.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "slow update: {text}");
    assert!(
        text.contains("Max-Age=0"),
        "the late writer must get a removal cookie: {text}"
    );

    assert_eq!(
        browser.get("/session/profile").await.status,
        401,
        "the session came back"
    );
}

/// A record the store cannot decode, planted under a live cookie's id, is
/// "no session" (401), never a 5xx; a real session keeps working beside it.
/// Redis (and Redis Cluster) only: the memory store holds typed records
/// that cannot be corrupt.
pub async fn a_corrupt_record_is_no_session(target: Target) {
    use crate::server::Backend;
    assert!(matches!(
        target.backend,
        Backend::Redis | Backend::RedisCluster
    ));
    let server = TestServer::start(target).await;
    let mut victim = server.browser();
    victim.login("ada", json!({ "a": 1 })).await;
    let mut bystander = server.browser();
    bystander.login("bob", json!({ "b": 2 })).await;
    let cookie = victim.cookie.clone().unwrap();
    let id = SessionId::parse(&cookie.as_bytes()[44..]).expect("signed cookie ends with the id");
    let store = server.store.as_ref().unwrap();
    let redis = store.redis.clone().unwrap();
    let key = format!("{}{{{id}}}", redis.prefix());
    let mut admin = store.redis_admin();
    for garbage in [
        &["SET", "x"][..],
        &["HSET", "m:exp", "soon"],
        &["HSET", "d:a", "1"],
    ] {
        let _: () = session_redis::redis::cmd("DEL")
            .arg(&key)
            .query(&mut *admin)
            .unwrap();
        let mut cmd = session_redis::redis::cmd(garbage[0]);
        cmd.arg(&key).arg(&garbage[1..]);
        let _: () = cmd.query(&mut *admin).unwrap();
        let mut again = victim.clone();
        let res = again.get("/session/profile").await;
        assert_eq!(res.status, 401, "corrupt record {garbage:?}");
        assert!(matches!(
            redis.load(&id, crate::server::t0()).await,
            Err(session_core::Error::Corrupt(_))
        ));
    }
    assert_eq!(
        bystander.get("/session/profile").await.json()["data"],
        json!({ "b": 2 })
    );
    victim.login("ada", json!({})).await;
    assert_eq!(victim.get("/session/profile").await.status, 200);
}

/// A body over the limit is 413 with a JSON error on every framework, and
/// the session is left as it was.
pub async fn an_oversized_body_is_413_json(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    browser.login("ada", json!({ "a": 1 })).await;
    let huge = format!("{{\"big\": \"{}\"}}", "x".repeat(100 * 1024));
    for path in ["/session/update", "/session/login"] {
        let res = browser.post(path, &huge).await;
        assert_eq!(res.status, 413, "{path}");
        assert_eq!(res.json(), json!({ "error": "body too large" }), "{path}");
        assert_eq!(res.set_cookie(), None, "{path}");
    }
    assert_eq!(
        browser.get("/session/profile").await.json()["data"],
        json!({ "a": 1 })
    );
}

/// Every `POST` must be JSON: anything else is 415 with a JSON error, sets
/// no cookie and changes no session, whether the visitor has one or not (a
/// page on another site can post forms, not JSON: login CSRF).
pub async fn posts_that_are_not_json_are_415_and_change_nothing(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    browser.login("ada", json!({ "a": 1 })).await;
    let before = browser.get("/session/profile").await.json();
    let forged = r#"{"username":"mallory","data":{"a":2}}"#;
    let kinds = [
        None,
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=xyz"),
        Some("application/jsonp"),
        Some("text/json"),
    ];
    for path in [
        "/session/login",
        "/session/update",
        "/session/logout",
        "/session/logout-all",
        "/session/sessions/end",
    ] {
        for kind in kinds {
            let res = browser
                .request_as("POST", path, kind, forged.as_bytes())
                .await;
            assert_eq!(res.status, 415, "{path} as {kind:?}");
            assert_eq!(res.header("content-type"), Some("application/json"));
            assert!(res.json()["error"].is_string(), "{path} as {kind:?}");
            assert_eq!(res.set_cookie(), None, "{path} as {kind:?}");
        }
    }
    let after = browser.get("/session/profile").await;
    assert_eq!(after.status, 200, "the session survived");
    assert_eq!(after.json(), before);
    // A visitor with no session is not logged in by a form either.
    let mut stranger = server.browser();
    let res = stranger
        .request_as(
            "POST",
            "/session/login",
            Some("text/plain"),
            forged.as_bytes(),
        )
        .await;
    assert_eq!(res.status, 415);
    assert_eq!(res.set_cookie(), None);
    // Parameters and letter case do not matter.
    for kind in ["application/json; charset=utf-8", "Application/JSON"] {
        let res = stranger
            .request_as(
                "POST",
                "/session/login",
                Some(kind),
                br#"{"username":"bob"}"#,
            )
            .await;
        assert_eq!(res.status, 200, "{kind}");
    }
}

/// A write that would take a session over `max_session_bytes` is 413 with
/// a JSON error and changes nothing; a login over it creates no session;
/// replacing a value with a smaller one is always allowed.
pub async fn writes_over_the_size_limit_are_413_and_change_nothing(target: Target) {
    let mut config = example_config();
    config.max_session_bytes = 2048;
    let server = TestServer::start_with(target, config).await;
    let mut browser = server.browser();
    let body = json!({ "username": "ada", "data": { "big": "x".repeat(3000) } }).to_string();
    let res = browser.post("/session/login", &body).await;
    assert_eq!(res.status, 413);
    assert!(res.json()["error"].as_str().unwrap().contains("2048"));
    assert_eq!(
        res.set_cookie(),
        None,
        "a login over the limit creates no session"
    );
    assert_eq!(browser.get("/session/profile").await.status, 401);

    browser.login("ada", json!({ "a": 1 })).await;
    // "a" + "1" + "big" + the JSON string of 1500 bytes: 1507 bytes.
    let big = json!({ "big": "x".repeat(1500) }).to_string();
    assert_eq!(browser.post("/session/update", &big).await.status, 200);
    let before = browser.get("/session/profile").await.json();
    // Two keys at once, the second over the limit: neither is stored.
    let over = json!({ "small": 1, "more": "y".repeat(600) }).to_string();
    let res = browser.post("/session/update", &over).await;
    assert_eq!(res.status, 413);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.set_cookie(), None);
    assert_eq!(browser.get("/session/profile").await.json(), before);
    // Smaller values always fit; then there is room again.
    let res = browser.post("/session/update", r#"{"big": "y"}"#).await;
    assert_eq!(res.status, 200);
    let res = browser.post("/session/update", &over).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["data"]["small"], json!(1));
}

/// With `transport = { header = "x-session" }` the id travels in that
/// header, with no cookie at all: handed out on login, accepted back,
/// refused when tampered with, and withdrawn (an empty header) on logout.
pub async fn a_header_transport_works_without_cookies(target: Target) {
    let mut config = example_config();
    config.transport = session_core::Transport::Header("X-Session".into());
    let server = TestServer::start_with(target, config).await;
    let addr = server.addr;
    let send = |method: &'static str, path: &'static str, token: Option<String>, body: String| async move {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        );
        if let Some(token) = token {
            head.push_str(&format!("X-Session: {token}\r\n"));
        }
        send_raw(addr, head.as_bytes(), body.as_bytes()).await
    };
    let login = json!({ "username": "ada", "data": {} }).to_string();
    let res = send("POST", "/session/login", None, login).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.set_cookie(), None, "no cookie with a header transport");
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let token = res
        .header("x-session")
        .expect("the id in x-session")
        .to_owned();
    assert!(!token.is_empty() && !token.contains(';'), "{token}");

    let res = send(
        "GET",
        "/session/profile",
        Some(token.clone()),
        String::new(),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["username"], "ada");
    assert!(
        res.all("vary")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("x-session"))
    );
    assert_eq!(res.header("x-session"), None, "nothing to hand out again");

    let mut tampered = token.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let res = send("GET", "/session/profile", Some(tampered), String::new()).await;
    assert_eq!(res.status, 401);
    assert_eq!(
        res.header("x-session"),
        Some(""),
        "the client is told to drop it"
    );

    let res = send(
        "POST",
        "/session/logout",
        Some(token.clone()),
        String::new(),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("x-session"), Some(""));
    let res = send("GET", "/session/profile", Some(token), String::new()).await;
    assert_eq!(res.status, 401);
}

/// A header transport the suite tries, with the request header that
/// carries the id and how a token is written in it.
type HeaderCase = (session_core::Transport, &'static str, fn(&str) -> String);

/// The header transports the suite tries: the id in `X-Session` both ways,
/// and `Authorization: Bearer` in with `X-Session` out.
fn header_transports() -> [HeaderCase; 2] {
    use session_core::Transport;
    [
        (Transport::Header("X-Session".into()), "x-session", |t| {
            t.to_owned()
        }),
        (
            Transport::Bearer("X-Session".into()),
            "authorization",
            |t| format!("Bearer {t}"),
        ),
    ]
}

/// Logs in over a header transport; the token handed out in `X-Session`.
async fn header_login(addr: std::net::SocketAddr, data: serde_json::Value) -> String {
    let login = json!({ "username": "ada", "data": data }).to_string();
    let json = [("Content-Type", "application/json")];
    let res = send_headers(addr, "POST", "/session/login", &json, &login).await;
    assert_eq!(res.status, 200);
    res.header("x-session")
        .expect("the id in x-session")
        .to_owned()
}

fn assert_no_store_once(res: &Response, what: &str) {
    assert_eq!(res.all("cache-control"), ["no-store"], "{what}");
}

/// Over a header transport, every answer that depends on the id is
/// `Cache-Control: no-store`: those that hand it out or withdraw it, and
/// those that only read the session (a profile, an update that keeps the
/// id), which `Vary` names the id header for.
pub async fn header_transport_answers_that_use_the_session_are_no_store(target: Target) {
    for (transport, id_header, written) in header_transports() {
        let mut config = example_config();
        config.transport = transport.clone();
        let server = TestServer::start_with(target, config).await;
        let addr = server.addr;
        let token = header_login(addr, json!({ "a": 1 })).await;
        let with_id = |extra: Option<(&'static str, &'static str)>| {
            let mut headers = vec![(id_header, written(&token))];
            headers.extend(extra.map(|(n, v)| (n, v.to_owned())));
            headers
        };
        let send = |method: &'static str, path: &'static str, body: &'static str| {
            let headers =
                with_id((method == "POST").then_some(("Content-Type", "application/json")));
            async move {
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                send_headers(addr, method, path, &headers, body).await
            }
        };
        let what = |route: &str| format!("{transport:?} {route}");

        let res = send("GET", "/session/profile", "").await;
        assert_eq!(res.status, 200, "{}", what("profile"));
        assert_eq!(res.json()["data"], json!({ "a": 1 }));
        assert_eq!(
            res.header("x-session"),
            None,
            "the id is not handed out again"
        );
        assert!(
            res.all("vary")
                .iter()
                .any(|v| v.eq_ignore_ascii_case(id_header)),
            "{}",
            what("profile")
        );
        assert_no_store_once(&res, &what("profile"));

        let res = send("POST", "/session/update", r#"{"b": 2}"#).await;
        assert_eq!(res.status, 200, "{}", what("update"));
        assert_eq!(res.header("x-session"), None, "same id after an update");
        assert_no_store_once(&res, &what("update"));

        let res = send("POST", "/session/logout", "").await;
        assert_eq!(res.status, 200, "{}", what("logout"));
        assert_eq!(res.header("x-session"), Some(""));
        assert_no_store_once(&res, &what("logout"));
    }
}

/// Over a header transport, an id header sent twice (with the same id or
/// another, valid or not), a list in one header, or with `Bearer` two
/// `Authorization` headers, is refused: 401 with a JSON error, before the
/// handler and the store. Nothing changes: an update, a logout and a login
/// sent so are not done, and no id is handed out or withdrawn.
pub async fn duplicate_id_headers_are_401_and_change_nothing(target: Target) {
    for (transport, id_header, written) in header_transports() {
        let mut config = example_config();
        config.transport = transport.clone();
        let server = TestServer::start_with(target, config).await;
        let addr = server.addr;
        let token = header_login(addr, json!({ "a": 1 })).await;
        let other = header_login(addr, json!({ "other": true })).await;
        let mut cases = vec![
            vec![written(&token), written(&token)],
            vec![written(&token), written(&other)],
            vec![written("garbage"), written(&token)],
            vec![written(&token), String::new()],
            vec![written(&format!("{token}, {token}"))],
            vec![written(&format!("{token},{other}"))],
        ];
        if id_header == "authorization" {
            cases.push(vec!["Basic dXNlcjpwdw==".into(), written(&token)]);
            cases.push(vec![format!("Bearer {token}, Bearer {other}")]);
        }
        let requests: [(&str, &str, String); 4] = [
            ("POST", "/session/update", r#"{"a": 2}"#.into()),
            ("POST", "/session/logout", String::new()),
            (
                "POST",
                "/session/login",
                json!({ "username": "mallory", "data": { "a": 3 } }).to_string(),
            ),
            ("GET", "/session/profile", String::new()),
        ];
        for values in &cases {
            for (method, path, body) in &requests {
                let mut headers: Vec<(&str, &str)> =
                    values.iter().map(|v| (id_header, v.as_str())).collect();
                if *method == "POST" {
                    headers.push(("Content-Type", "application/json"));
                }
                let res = send_headers(addr, method, path, &headers, body).await;
                let what = format!("{transport:?} {path} with {values:?}");
                assert_eq!(res.status, 401, "{what}");
                assert_eq!(
                    res.header("content-type"),
                    Some("application/json"),
                    "{what}"
                );
                assert!(res.json()["error"].is_string(), "{what}");
                assert_no_store_once(&res, &what);
                assert_eq!(
                    res.header("x-session"),
                    None,
                    "{what}: no id handed out or withdrawn"
                );
                assert_eq!(res.set_cookie(), None, "{what}");
            }
        }
        // Both sessions are as they were.
        for (token, data) in [
            (&token, json!({ "a": 1 })),
            (&other, json!({ "other": true })),
        ] {
            let headers = [(id_header, written(token))];
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let res = send_headers(addr, "GET", "/session/profile", &headers, "").await;
            assert_eq!(res.status, 200, "{transport:?}: the session survived");
            assert_eq!(res.json()["username"], "ada");
            assert_eq!(res.json()["data"], data, "{transport:?}");
        }
    }
}

/// A `POST` with two `Content-Type` lines is 415, whatever they say (JSON
/// then `text/plain`, or JSON twice), and changes nothing.
pub async fn duplicate_content_types_are_415_and_change_nothing(target: Target) {
    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    browser.login("ada", json!({ "a": 1 })).await;
    let before = browser.get("/session/profile").await.json();
    let forged = r#"{"username":"mallory","data":{"a":2}}"#;
    let pairs: [&[&str]; 3] = [
        &["application/json", "text/plain"],
        &["text/plain", "application/json"],
        &["application/json", "application/json"],
    ];
    for path in [
        "/session/login",
        "/session/update",
        "/session/logout",
        "/session/logout-all",
    ] {
        for pair in pairs {
            let res = browser
                .request_with("POST", path, pair, forged.as_bytes())
                .await;
            assert_eq!(res.status, 415, "{path} as {pair:?}");
            assert_eq!(res.header("content-type"), Some("application/json"));
            assert!(res.json()["error"].is_string(), "{path} as {pair:?}");
            assert_eq!(res.set_cookie(), None, "{path} as {pair:?}");
        }
    }
    let after = browser.get("/session/profile").await;
    assert_eq!(after.status, 200, "the session survived");
    assert_eq!(after.json(), before);
    let mut stranger = server.browser();
    let res = stranger
        .request_with("POST", "/session/login", pairs[0], forged.as_bytes())
        .await;
    assert_eq!(res.status, 415);
    assert_eq!(res.set_cookie(), None);
}

/// The session id inside a signed cookie value (the signature is the
/// first 44 characters).
fn cookie_id(cookie: &str) -> SessionId {
    SessionId::parse(&cookie.as_bytes()[44..]).expect("signed cookie ends with the id")
}

/// `POST /session/sessions/end` with a handle.
async fn end(browser: &mut crate::Browser, handle: &str) -> Response {
    let body = json!({ "handle": handle }).to_string();
    browser.post("/session/sessions/end", &body).await
}

/// `GET /session/sessions` lists this user's live sessions by handle (this
/// one marked), and `POST /session/sessions/end` ends one of them: another
/// device gets 401 from then on; another user's handle, an unknown one or
/// an ended one is 404; ending this very session removes its cookie.
pub async fn devices_are_listed_and_ended_by_handle(target: Target) {
    let server = TestServer::start(target).await;
    let t0 = crate::server::t0().unix_secs();
    let mut laptop = server.browser();
    laptop.login("ada", json!({})).await;
    server.advance(10);
    let mut phone = server.browser();
    phone.login("ada", json!({})).await;
    let mut bob = server.browser();
    bob.login("bob", json!({})).await;
    server.advance(5);

    let res = laptop.get("/session/sessions").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("application/json"));
    let listed = res.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let handle = |i: usize| listed[i]["handle"].as_str().unwrap().to_owned();
    let (phone_handle, laptop_handle) = (handle(0), handle(1));
    assert_eq!(
        listed[0],
        json!({
            "handle": phone_handle, "current": false, "created_at": t0 + 10,
            "last_activity": t0 + 10, "expires_at": t0 + 10 + 3600, "persistent": false
        }),
        "most recently active first"
    );
    assert_eq!(
        listed[1],
        json!({
            "handle": laptop_handle, "current": true, "created_at": t0,
            "last_activity": t0, "expires_at": t0 + 3600, "persistent": false
        })
    );
    // Handles are neither cookies nor ids, and the same from every device.
    for cookie in [&laptop.cookie, &phone.cookie] {
        let cookie = cookie.as_deref().unwrap();
        let id = cookie_id(cookie).to_string();
        for handle in [&phone_handle, &laptop_handle] {
            assert!(!cookie.contains(handle.as_str()) && *handle != id);
        }
    }
    let from_phone = phone.get("/session/sessions").await.json();
    let mut seen: Vec<(String, bool)> = from_phone["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let handle = s["handle"].as_str().unwrap().to_owned();
            (handle, s["current"].as_bool().unwrap())
        })
        .collect();
    seen.sort();
    let mut expected = vec![(phone_handle.clone(), true), (laptop_handle.clone(), false)];
    expected.sort();
    assert_eq!(seen, expected);

    // Bob cannot end ada's phone, nor can anyone name a session that is
    // not theirs.
    let res = end(&mut bob, &phone_handle).await;
    assert_eq!(res.status, 404);
    assert!(res.json()["error"].is_string());
    assert_eq!(res.set_cookie(), None);
    for unknown in ["AAAAAAAAAAAAAAAAAAAAAA", "not a handle", ""] {
        let res = end(&mut laptop, unknown).await;
        assert_eq!(res.status, 404, "{unknown:?}");
        assert!(res.json()["error"].is_string());
    }
    for bad in ["{", "[1]", r#"{"handle": 7}"#, "{}"] {
        let res = laptop.post("/session/sessions/end", bad).await;
        assert_eq!(res.status, 400, "{bad}");
        assert!(res.json()["error"].is_string());
    }
    assert_eq!(phone.get("/session/profile").await.status, 200);
    assert_eq!(bob.get("/session/profile").await.status, 200);

    // The laptop signs the phone out.
    let res = end(&mut laptop, &phone_handle).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), json!({ "ended": 1 }));
    assert_eq!(res.set_cookie(), None, "the laptop keeps its session");
    assert_eq!(phone.get("/session/profile").await.status, 401);
    assert_eq!(end(&mut laptop, &phone_handle).await.status, 404);
    let left = laptop.get("/session/sessions").await.json();
    assert_eq!(left["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(left["sessions"][0]["handle"], json!(laptop_handle));

    // Then itself: its own cookie goes with it.
    let res = end(&mut laptop, &laptop_handle).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), json!({ "ended": 1 }));
    assert!(
        res.set_cookie().is_some_and(|c| c.contains("Max-Age=0")),
        "{:?}",
        res.set_cookie()
    );
    assert_eq!(laptop.cookie, None);
    assert_eq!(laptop.get("/session/sessions").await.status, 401);
    assert_eq!(bob.get("/session/profile").await.status, 200);
}

/// A handle presented as a session id (in the cookie, signed or not, and
/// as a store key) names no session.
pub async fn a_handle_is_never_a_session_id(target: Target) {
    let server = TestServer::start(target).await;
    let mut ada = server.browser();
    ada.login("ada", json!({ "secret": 1 })).await;
    let listed = ada.get("/session/sessions").await.json();
    let handle = listed["sessions"][0]["handle"].as_str().unwrap().to_owned();
    // As the cookie, raw (no valid signature) and with a valid one: a
    // process that signs nothing, sharing the store.
    let mut unsigned = example_config();
    unsigned.cookie.signing_keys = session_core::SigningKeys::new(Vec::<String>::new());
    let manager = session_core::SessionManager::with_clock(
        server.manager.store().clone(),
        unsigned,
        server.clock.clone(),
    )
    .expect("valid config");
    let open = TestServer::start_manager(target.framework, manager, server.clock.clone()).await;
    for addr in [server.addr, open.addr] {
        let mut thief = crate::Browser::new(addr);
        for path in ["/session/profile", "/session/sessions"] {
            thief.cookie = Some(handle.clone());
            let res = thief.get(path).await;
            assert_eq!(res.status, 401, "{path}: a handle was taken for an id");
        }
        thief.cookie = Some(handle.clone());
        let res = thief.post("/session/update", r#"{"stolen": true}"#).await;
        assert_eq!(res.status, 401);
    }
    // Nor is it a key the store holds a session under.
    let as_id = SessionId::parse(handle.as_bytes()).expect("22 base64url characters");
    let now = server.clock.now();
    let store = server.manager.store();
    assert!(store.load(&as_id, now).await.unwrap().is_none());
    let key = server.manager.store_key(&as_id);
    assert!(store.load(&key, now).await.unwrap().is_none());
    // The session it names is untouched.
    let profile = ada.get("/session/profile").await.json();
    assert_eq!(profile["data"], json!({ "secret": 1 }));
}

/// The profile's `authenticated_at` is the login's instant, kept by later
/// requests (reads, updates, touches), and moved only by a new login.
pub async fn authenticated_at_is_set_by_login_and_kept(target: Target) {
    let server = TestServer::start(target).await;
    let t0 = crate::server::t0().unix_secs();
    let mut browser = server.browser();
    let res = browser.login("ada", json!({})).await;
    assert_eq!(res.json()["authenticated_at"], json!(t0));
    server.advance(100);
    let res = browser.post("/session/update", r#"{"a": 1}"#).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["authenticated_at"], json!(t0));
    server.advance(200);
    let profile = browser.get("/session/profile").await.json();
    assert_eq!(profile["last_activity"], json!(t0 + 100));
    assert_eq!(profile["authenticated_at"], json!(t0), "after a touch");
    let profile = browser.get("/session/profile").await.json();
    assert_eq!(profile["last_activity"], json!(t0 + 300));
    assert_eq!(profile["authenticated_at"], json!(t0));
    // A new login is a new login time.
    server.advance(50);
    let res = browser.login("ada", json!({})).await;
    assert_eq!(res.json()["authenticated_at"], json!(t0 + 350));
    assert_eq!(
        browser.get("/session/profile").await.json()["authenticated_at"],
        json!(t0 + 350)
    );
}

/// With `clear_site_data` configured, `Clear-Site-Data` comes once, with
/// the directives quoted, on logout and logout-all, and on no other answer;
/// without it, never.
pub async fn clear_site_data_comes_only_with_answers_that_end_the_session(target: Target) {
    let mut config = example_config();
    config.clear_site_data = vec![
        session_core::ClearSiteData::Storage,
        session_core::ClearSiteData::Cache,
        session_core::ClearSiteData::Cookies,
    ];
    let server = TestServer::start_with(target, config).await;
    let expected = [r#""cache", "cookies", "storage""#];
    let none: [&str; 0] = [];
    let mut browser = server.browser();
    let res = browser.login("ada", json!({})).await;
    assert_eq!(res.all("clear-site-data"), none, "login");
    let res = browser.get("/session/profile").await;
    assert_eq!(res.all("clear-site-data"), none, "profile");
    let res = browser.post("/session/update", r#"{"a": 1}"#).await;
    assert_eq!(res.all("clear-site-data"), none, "update");
    let res = browser.post("/session/logout", "").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.all("clear-site-data"), expected, "logout");
    assert!(res.cookie_attributes().contains(&"Max-Age=0".to_owned()));
    // No session to end: 401, nothing to clear.
    let res = browser.post("/session/logout", "").await;
    assert_eq!(res.status, 401);
    assert_eq!(res.all("clear-site-data"), none, "logout without a session");
    let res = browser.post("/session/logout-all", "").await;
    assert_eq!(res.status, 401);
    assert_eq!(res.all("clear-site-data"), none, "logout-all without one");

    let mut other = server.browser();
    other.login("ada", json!({})).await;
    browser.login("ada", json!({})).await;
    let res = browser.post("/session/logout-all", "").await;
    assert_eq!(res.json(), json!({ "ended": 2 }));
    assert_eq!(res.all("clear-site-data"), expected, "logout-all");
    // The other device's next answer ends nothing here: its cookie is
    // removed as a stale one, without clearing its site data.
    let res = other.get("/session/profile").await;
    assert_eq!(res.status, 401);
    assert_eq!(res.all("clear-site-data"), none, "a stale cookie");

    let server = TestServer::start(target).await;
    let mut browser = server.browser();
    browser.login("ada", json!({})).await;
    let res = browser.post("/session/logout", "").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.all("clear-site-data"), none, "not configured");
}

/// A `Partitioned` cookie is set, and removed, with `Partitioned`.
pub async fn a_partitioned_cookie_is_set_and_removed_partitioned(target: Target) {
    let mut config = example_config();
    config.cookie.partitioned = true;
    let server = TestServer::start_with(target, config).await;
    let mut browser = server.browser();
    let res = browser.login("ada", json!({})).await;
    assert_eq!(
        res.cookie_attributes(),
        [
            "Path=/",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Partitioned"
        ]
    );
    assert_eq!(browser.get("/session/profile").await.status, 200);
    let res = browser.post("/session/logout", "").await;
    assert_eq!(
        res.cookie_attributes(),
        [
            "Max-Age=0",
            "Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "Path=/",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Partitioned"
        ]
    );
}
