//! The example binaries as separate processes sharing one PostgreSQL (or
//! MariaDB) database and one secret: they create the tables together at start, a
//! session made on one is read, updated and ended on the others; the round
//! trips each request costs, counted on the wire; and an outage answered
//! with 503 and recovered from without a restart. The database is the
//! test's own (see `session_sql::testing`); without the server the tests
//! skip, saying why.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use session_conformance::Browser;
use session_sql::testing::{Proxy, ProxyMode, TestDatabase};

const SECRET: &str = "multi-process SQL test secret, comfortably over 32 bytes";

/// An example binary running as its own process, killed on drop.
struct App {
    child: Child,
    addr: SocketAddr,
}

impl App {
    fn start(bin: &str, database_url: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(bin)
            .env("ADDR", addr.to_string())
            .env("SESSION_STORE", "sql")
            .env("DATABASE_URL", database_url)
            .env("SESSION_SECRET", SECRET)
            .env("SESSION_SECURE", "true")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        Self { child, addr }
    }

    async fn wait_ready(&self) {
        for _ in 0..1000 {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("example on {} did not start", self.addr);
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bins() -> [&'static str; 3] {
    [
        env!("CARGO_BIN_EXE_axum"),
        env!("CARGO_BIN_EXE_actix"),
        env!("CARGO_BIN_EXE_hyper"),
    ]
}

/// All three at once, so that they migrate the new database together.
async fn start_all(database_url: &str) -> Vec<App> {
    let apps: Vec<App> = bins()
        .iter()
        .map(|bin| App::start(bin, database_url))
        .collect();
    for app in &apps {
        app.wait_ready().await;
    }
    apps
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
    let apps = start_all(db.url()).await;
    let [axum, actix, hyper] = [apps[0].addr, apps[1].addr, apps[2].addr];

    let mut on_axum = Browser::new(axum);
    on_axum.login("ada", json!({ "from": "axum" })).await;
    let mut on_actix = on_axum.at(actix);
    let res = on_actix
        .post("/session/update", r#"{"via": "actix"}"#)
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.json()["data"],
        json!({ "from": "axum", "via": "actix" })
    );
    let mut on_hyper = on_actix.at(hyper);
    let profile = on_hyper.get("/session/profile").await;
    assert_eq!(profile.status, 200);
    assert_eq!(profile.json()["username"], json!("ada"));

    // Logout-all on hyper ends the sessions made on the other processes.
    let mut second_device = Browser::new(actix);
    second_device.login("ada", json!({})).await;
    let mut bob = Browser::new(axum);
    bob.login("bob", json!({})).await;
    let ended = on_hyper.post("/session/logout-all", "").await;
    assert_eq!(ended.json(), json!({ "ended": 2 }));
    assert_eq!(on_axum.get("/session/profile").await.status, 401);
    assert_eq!(second_device.get("/session/profile").await.status, 401);
    assert_eq!(bob.at(hyper).get("/session/profile").await.status, 200);

    // Thirty-two concurrent writes spread over the three processes all land.
    let mut carol = Browser::new(hyper);
    carol.login("carol", json!({})).await;
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let mut b = carol.at(apps[i % 3].addr);
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
    let data = carol.get("/session/profile").await.json()["data"].clone();
    assert_eq!(data.as_object().unwrap().len(), 32, "lost writes: {data}");
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
    let app = App::start(env!("CARGO_BIN_EXE_axum"), &db.url_via(&proxy));
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
