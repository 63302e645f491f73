//! What the example-binary tests share: a binary run as its own process on
//! a free loopback port, and the cross-process session walk that every
//! shared store must pass. Each test binary uses a part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use session_conformance::Browser;

/// An example binary running as its own process, killed on drop.
pub(crate) struct App {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

/// A loopback address with a port nothing listens on yet.
pub(crate) fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl App {
    /// Spawns `command` with `ADDR` set to a free port and its output
    /// dropped; does not wait for it to listen.
    pub(crate) fn spawn(mut command: Command) -> Self {
        let addr = free_addr();
        let child = command
            .env("ADDR", addr.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Self { child, addr }
    }

    /// Starts `bin` with these environment variables.
    pub(crate) fn start<K: AsRef<OsStr>, V: AsRef<OsStr>>(bin: &str, env: &[(K, V)]) -> Self {
        let mut command = Command::new(bin);
        command.envs(env.iter().map(|(k, v)| (k, v)));
        Self::spawn(command)
    }

    /// Waits until the binary accepts connections (at most 10 s).
    pub(crate) async fn wait_ready(&self) {
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

/// The JSON example on each framework: axum, actix, hyper.
pub(crate) fn bins() -> [&'static str; 3] {
    [
        env!("CARGO_BIN_EXE_axum"),
        env!("CARGO_BIN_EXE_actix"),
        env!("CARGO_BIN_EXE_hyper"),
    ]
}

/// All three at once with the same environment (so that, on SQL, they
/// migrate a new database together), each ready.
pub(crate) async fn start_all<K: AsRef<OsStr>, V: AsRef<OsStr>>(env: &[(K, V)]) -> Vec<App> {
    let apps: Vec<App> = bins().iter().map(|bin| App::start(bin, env)).collect();
    for app in &apps {
        app.wait_ready().await;
    }
    apps
}

/// A session made on one process is updated on the next and read on the
/// third; logout-all on one ends the user's sessions made on the others and
/// no one else's; `writes` concurrent writes of different keys spread over
/// the three processes all land. `apps` are axum, actix and hyper.
pub(crate) async fn a_session_moves_between(apps: &[App], writes: usize) {
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

    // Concurrent writes spread over the three processes all land.
    let mut carol = Browser::new(hyper);
    carol.login("carol", json!({})).await;
    let tasks: Vec<_> = (0..writes)
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
    assert_eq!(
        data.as_object().unwrap().len(),
        writes,
        "lost writes: {data}"
    );
}

/// Each framework's binary in turn (apps on one Redis share its sessions,
/// so one at a time) with `env`, ready: `walk(address, "LABEL on NAME")`.
pub(crate) async fn on_each_framework<F, Fut>(env: &[(&str, String)], label: &str, mut walk: F)
where
    F: FnMut(SocketAddr, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for bin in bins() {
        let app = App::start(bin, env);
        app.wait_ready().await;
        let name = bin.rsplit('/').next().unwrap_or(bin);
        walk(app.addr, format!("{label} on {name}")).await;
    }
}

/// The Redis configurations the example tests run on one server: the
/// client-side cache off and on, each with its label.
pub(crate) fn redis_stores(url: &str) -> [(String, [(&'static str, String); 3]); 2] {
    [false, true].map(|cache| {
        (
            format!("redis (cache {cache})"),
            [
                ("SESSION_STORE", "redis".to_owned()),
                ("REDIS_URL", url.to_owned()),
                ("SESSION_REDIS_CACHE", cache.to_string()),
            ],
        )
    })
}
