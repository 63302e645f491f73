//! The example binaries as separate processes sharing one PostgreSQL (or
//! MariaDB) database and one secret: they create the tables together at start, a
//! session made on one is read, updated and ended on the others; the round
//! trips each request costs, counted on the wire; and an outage answered
//! with 503 and recovered from without a restart. The database is the
//! test's own (see `session_sql::testing`); without the server the tests
//! skip, saying why.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use session_conformance::Browser;
use session_sql::testing::{Proxy, ProxyMode, TestDatabase};
use support::{App, a_session_moves_between, bins, start_all};

const SECRET: &str = "multi-process SQL test secret, comfortably over 32 bytes";

/// An example on `database_url`.
fn start_on(bin: &str, database_url: &str) -> App {
    App::start(bin, &env(database_url))
}

fn env(database_url: &str) -> [(&'static str, &str); 4] {
    [
        ("SESSION_STORE", "sql"),
        ("DATABASE_URL", database_url),
        ("SESSION_SECRET", SECRET),
        ("SESSION_SECURE", "true"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_between_processes_sharing_postgres() {
    if let Some(db) = TestDatabase::postgres("multi_process").await {
        a_session_moves_between_processes(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_between_processes_sharing_mariadb() {
    if let Some(db) = TestDatabase::mysql("multi_process").await {
        a_session_moves_between_processes(&db).await;
    }
}

async fn a_session_moves_between_processes(db: &TestDatabase) {
    // All three at once, so that they migrate the new database together.
    let apps = start_all(&env(db.url())).await;
    a_session_moves_between(&apps, 32).await;
}

/// Round trips to PostgreSQL per request, counted by a proxy between the
/// app and the server; then the proxy cuts the server off (503 within the
/// store's timeout) and lets it back (the same process serves again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_per_request_and_an_outage_on_postgres() {
    let Some(db) = TestDatabase::postgres("multi_process_rt").await else {
        return;
    };
    let proxy = Proxy::start(db.server_addr().unwrap()).await.unwrap();
    let app = start_on(bins()[0], &db.url_via(&proxy));
    app.wait_ready().await;
    let mut browser = Browser::new(app.addr);
    browser.login("ada", json!({})).await;
    // Statements are prepared once per connection: warm each kind.
    for _ in 0..2 {
        browser.post("/session/update", r#"{"warm": 1}"#).await;
        browser.get("/session/profile").await;
    }
    let measure =
        async |label: &str, browser: &mut Browser, method: &str, path: &str, body: &str| {
            proxy.reset_round_trips();
            let res = browser.request(method, path, body.as_bytes()).await;
            assert!(res.status < 500, "{label}: {}", res.status);
            let trips = proxy.round_trips();
            println!("{label}: {trips} round trip(s) to PostgreSQL");
            trips
        };
    assert_eq!(
        measure(
            "read-only request (profile)",
            &mut browser,
            "GET",
            "/session/profile",
            ""
        )
        .await,
        1
    );
    assert_eq!(
        measure(
            "writing request (update)",
            &mut browser,
            "POST",
            "/session/update",
            r#"{"k": 1}"#
        )
        .await,
        2
    );
    let mut anonymous = Browser::new(app.addr);
    assert_eq!(
        measure(
            "request without a cookie",
            &mut anonymous,
            "GET",
            "/healthz",
            ""
        )
        .await,
        0
    );

    proxy.set_mode(ProxyMode::Hang);
    let started = Instant::now();
    let res = browser.get("/session/profile").await;
    assert_eq!(res.status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "503 took {:?}",
        started.elapsed()
    );
    proxy.set_mode(ProxyMode::Down);
    assert_eq!(browser.get("/session/profile").await.status, 503);
    proxy.set_mode(ProxyMode::Forward);
    let mut recovered = false;
    for _ in 0..100 {
        let res = browser.get("/session/profile").await;
        if res.status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "the app did not come back");
    assert_eq!(
        browser.get("/session/profile").await.json()["data"],
        json!({ "warm": 1, "k": 1 }),
        "the outage lost committed data"
    );
}

/// Each example started while its database is unreachable (a proxy that
/// cuts every connection): it starts and keeps running, answers 503, and
/// once the database answers it makes the tables and logs in, without a
/// restart.
async fn apps_start_while_the_database_is_down(db: &TestDatabase) {
    apps_start_while_the_database_is(db, ProxyMode::Down).await;
}

/// As [`apps_start_while_the_database_is_down`], with a database that
/// accepts connections and never answers (hung): the apps still start
/// (within the 2 s they give the tables at start), answer 503 within the
/// store's timeout, and recover.
async fn apps_start_while_the_database_hangs(db: &TestDatabase) {
    apps_start_while_the_database_is(db, ProxyMode::Hang).await;
}

async fn apps_start_while_the_database_is(db: &TestDatabase, mode: ProxyMode) {
    let proxy = Proxy::start(db.server_addr().unwrap()).await.unwrap();
    proxy.set_mode(mode);
    let url = db.url_via(&proxy);
    let mut apps: Vec<App> = bins().iter().map(|bin| start_on(bin, &url)).collect();
    for app in &apps {
        app.wait_ready().await;
    }
    for app in &mut apps {
        assert!(
            app.child.try_wait().unwrap().is_none(),
            "an app exited while its database was down"
        );
        let mut browser = Browser::new(app.addr);
        let res = browser
            .post("/session/login", r#"{"username": "early"}"#)
            .await;
        assert_eq!(res.status, 503, "login while the database is down");
    }
    proxy.set_mode(ProxyMode::Forward);
    let started = Instant::now();
    for app in &apps {
        let mut browser = Browser::new(app.addr);
        let mut status = 0;
        for _ in 0..100 {
            status = browser
                .post("/session/login", r#"{"username": "late"}"#)
                .await
                .status;
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status, 200, "the app did not come back");
        assert_eq!(browser.get("/session/profile").await.status, 200);
    }
    println!(
        "{:?}: the apps served {:?} after the database came back",
        db.kind(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_start_while_postgres_is_down() {
    if let Some(db) = TestDatabase::postgres("down_at_start").await {
        apps_start_while_the_database_is_down(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_start_while_postgres_hangs() {
    if let Some(db) = TestDatabase::postgres("hung_at_start").await {
        apps_start_while_the_database_hangs(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_start_while_mariadb_hangs() {
    if let Some(db) = TestDatabase::mysql("hung_at_start").await {
        apps_start_while_the_database_hangs(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_start_while_mariadb_is_down() {
    if let Some(db) = TestDatabase::mysql("down_at_start").await {
        apps_start_while_the_database_is_down(&db).await;
    }
}

/// The proxy cuts every connection of the app's pool while the database
/// stays up: no request gets a 503.
async fn a_reset_costs_no_request(db: &TestDatabase) {
    let proxy = Proxy::start(db.server_addr().unwrap()).await.unwrap();
    let app = start_on(bins()[0], &db.url_via(&proxy));
    app.wait_ready().await;
    let mut browser = Browser::new(app.addr);
    browser.login("reset", json!({})).await;
    let mut lost = 0;
    for round in 0..10 {
        proxy.reset_connections();
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Writes first on odd rounds, reads first on even ones.
        let body = format!(r#"{{"round": {round}}}"#);
        let statuses = if round % 2 == 1 {
            let update = browser.post("/session/update", &body).await.status;
            [update, browser.get("/session/profile").await.status]
        } else {
            let profile = browser.get("/session/profile").await.status;
            [browser.post("/session/update", &body).await.status, profile]
        };
        lost += statuses.iter().filter(|status| **status != 200).count();
    }
    println!(
        "{:?}: {lost} of 20 requests failed over 10 resets",
        db.kind()
    );
    assert_eq!(lost, 0);
    assert_eq!(
        browser.get("/session/profile").await.json()["data"],
        json!({ "round": 9 })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_costs_no_request_on_postgres() {
    if let Some(db) = TestDatabase::postgres("reset_app").await {
        a_reset_costs_no_request(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_costs_no_request_on_mariadb() {
    if let Some(db) = TestDatabase::mysql("reset_app").await {
        a_reset_costs_no_request(&db).await;
    }
}
