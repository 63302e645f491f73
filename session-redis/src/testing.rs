//! Real Redis servers for tests (feature `testing`), shared by this crate's
//! tests and the workspace's conformance suite: our own `redis-server` processes on
//! free loopback ports (no persistence, a temporary directory, killed on
//! drop), or the server at `REDIS_URL` when `redis-server` is not installed.
//! A shared server is never flushed: every test uses fresh ids and its own
//! key prefix. A [`Proxy`] in front of a server plays a stalled, reset or
//! refused network.
//!
//! When neither is there, the `try_` constructors, [`own_server`] and
//! [`own_cluster`] call [`session_core::testing::skip`] and return `None`,
//! so the test can return: the run passes, saying what it skipped (or,
//! with `SESSION_TEST_STRICT=1`, fails); [`cluster_available`] says so and
//! returns `false`. [`TestRedis::get`], [`LocalRedis::start`],
//! [`LocalCluster::start`] and [`LocalCluster::shared`] panic instead,
//! telling how to install Redis.
//!
//! ```no_run
//! # async fn test() {
//! use session_redis::testing::TestRedis;
//!
//! let Some(redis) = TestRedis::try_get() else {
//!     return; // skipped, and said so
//! };
//! let store = session_redis::RedisStore::new(redis.url()).unwrap();
//! # drop(store);
//! # }
//! ```

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use session_core::SessionId;

mod proxy;

pub use proxy::{Proxy, ProxyMode};

const INSTALL: &str = "these tests need a real Redis: install it (`apt-get install redis-server`, \
     or `brew install redis`) so that `redis-server` and `redis-cli` are on PATH, \
     or set REDIS_URL to a Redis they may write to (it is never flushed)";

/// Whether `program` is on PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// A key prefix no other test (or run) uses.
pub fn unique_prefix(tag: &str) -> String {
    format!("session-redis-test:{tag}:{}:", SessionId::generate())
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("no free loopback port")
}

fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "session-redis-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("cannot create a temporary directory");
    dir
}

/// One `redis-server` process of ours.
#[derive(Debug)]
pub struct LocalRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    /// A Sentinel's configuration file, for a `redis-server --sentinel`.
    sentinel: Option<String>,
}

impl LocalRedis {
    /// Whether this machine can run our own servers.
    pub fn available() -> bool {
        on_path("redis-server")
    }

    /// Starts a server on a free port, or panics telling how to install
    /// Redis.
    pub fn start() -> Self {
        Self::start_with(Vec::new())
    }

    /// Starts a server on a free port, or, when `redis-server` is not on
    /// PATH, skips ([`session_core::testing::skip`]) and returns `None`.
    /// Panics if `redis-server` is there but does not start.
    pub fn try_start() -> Option<Self> {
        if !Self::available() {
            session_core::testing::skip("redis-server", "not on PATH");
            return None;
        }
        Some(Self::start())
    }

    /// As [`start`](Self::start), with more `redis-server` arguments.
    pub fn start_with(extra: Vec<String>) -> Self {
        assert!(Self::available(), "{INSTALL}");
        let mut last_error = String::new();
        for _ in 0..5 {
            let mut server = Self {
                child: None,
                port: free_port(),
                dir: temp_dir("node"),
                extra: extra.clone(),
                sentinel: None,
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("redis-server did not start: {last_error}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut command = Command::new("redis-server");
        if let Some(conf) = &self.sentinel {
            // Sentinel rewrites its file: one of its own, written afresh.
            let path = self.dir.join("sentinel.conf");
            std::fs::write(&path, conf).map_err(|e| format!("cannot write {path:?}: {e}"))?;
            command.arg(path).arg("--sentinel");
        } else {
            command.args(["--save", "", "--appendonly", "no"]);
        }
        let mut child = command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server exited with {status}"));
            }
            if self.ping() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("redis-server did not answer within 5 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn ping(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its `redis://` URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server not running").id()
    }

    /// Sends a signal to the server (`STOP`, `CONT`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a fresh server (no data) on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("restart failed: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// A plain (blocking) connection for setting up and inspecting.
    pub fn admin(&self) -> redis::Connection {
        admin(&self.url())
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A blocking connection to `url`.
pub fn admin(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

/// A Redis for tests that only need one to write to.
#[derive(Debug)]
pub enum TestRedis {
    /// Our own server.
    Own(LocalRedis),
    /// The server at `REDIS_URL`.
    Shared(String),
}

impl TestRedis {
    /// Our own server if `redis-server` is installed, else `REDIS_URL`,
    /// else a panic telling how to install Redis.
    pub fn get() -> Self {
        if LocalRedis::available() {
            return Self::Own(LocalRedis::start());
        }
        match shared_url() {
            Some(url) => Self::Shared(url),
            None => panic!("{INSTALL}"),
        }
    }

    /// As [`get`](Self::get), but when there is neither `redis-server` nor
    /// `REDIS_URL`, skips ([`session_core::testing::skip`]) and returns
    /// `None` instead of panicking.
    pub fn try_get() -> Option<Self> {
        if LocalRedis::available() || shared_url().is_some() {
            return Some(Self::get());
        }
        session_core::testing::skip("redis-server", NEITHER);
        None
    }

    /// Its `redis://` URL.
    pub fn url(&self) -> String {
        match self {
            Self::Own(server) => server.url(),
            Self::Shared(url) => url.clone(),
        }
    }
}

const NEITHER: &str = "not on PATH and REDIS_URL unset";

/// `REDIS_URL`, if set and not empty.
fn shared_url() -> Option<String> {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// Whether tests that need their own servers should be skipped: when
/// `redis-server` (and `redis-cli`) are missing they say so
/// ([`session_core::testing::skip`]: one line, or a failure with
/// `SESSION_TEST_STRICT=1`) and pass, whether or not `REDIS_URL` is set
/// (a shared server is not enough for them).
fn skip_without(programs: &[&str], test: &str) -> bool {
    let missing: Vec<&str> = programs.iter().copied().filter(|p| !on_path(p)).collect();
    if missing.is_empty() {
        return false;
    }
    let why = if shared_url().is_some() {
        format!("not on PATH ({test} needs its own; REDIS_URL is not enough)")
    } else {
        format!("not on PATH and REDIS_URL unset ({test})")
    };
    session_core::testing::skip(&missing.join(" and "), &why);
    true
}

/// Our own server, or `None` (having said so) when `redis-server` is not
/// on PATH: for tests that must own the server (restart it, read its
/// statistics).
pub fn own_server(test: &str) -> Option<LocalRedis> {
    (!skip_without(&["redis-server"], test)).then(LocalRedis::start)
}

/// Our own master, `replicas` replicas and three Sentinels
/// ([`LocalSentinels`]), or `None` (having said so) when `redis-server` is
/// not on PATH.
pub fn own_sentinels(test: &str, replicas: usize) -> Option<LocalSentinels> {
    (!skip_without(&["redis-server"], test)).then(|| LocalSentinels::start(replicas))
}

/// Our own Cluster, or `None` (having said so) when `redis-server` or
/// `redis-cli` is not on PATH.
pub fn own_cluster(test: &str) -> Option<LocalCluster> {
    cluster_available(test).then(LocalCluster::start)
}

/// Whether [`LocalCluster::start`] and [`LocalCluster::shared`] can run
/// here: when `redis-server` or `redis-cli` is not on PATH, this says so
/// ([`session_core::testing::skip`]: one line, or a failure with
/// `SESSION_TEST_STRICT=1`) and returns `false`. `REDIS_URL` is not
/// enough: a Cluster test needs its own nodes.
pub fn cluster_available(test: &str) -> bool {
    !skip_without(CLUSTER_PROGRAMS, test)
}

const CLUSTER_PROGRAMS: &[&str] = &["redis-server", "redis-cli"];

/// A local Redis Cluster of three primaries (no replicas).
#[derive(Debug)]
pub struct LocalCluster {
    nodes: Vec<LocalRedis>,
}

impl LocalCluster {
    /// Starts three nodes, joins them, and waits until every node reports
    /// `cluster_state:ok`. Panics telling how to install Redis if it
    /// cannot.
    pub fn start() -> Self {
        let cluster = Self::unjoined();
        cluster.join();
        cluster
    }

    /// Three cluster-enabled nodes, not joined yet.
    fn unjoined() -> Self {
        assert!(CLUSTER_PROGRAMS.iter().all(|p| on_path(p)), "{INSTALL}");
        let nodes: Vec<LocalRedis> = (0..3)
            .map(|_| {
                LocalRedis::start_with(vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    "nodes.conf".into(),
                    "--cluster-port".into(),
                    free_port().to_string(),
                    "--cluster-node-timeout".into(),
                    "5000".into(),
                ])
            })
            .collect();
        Self { nodes }
    }

    /// Joins the nodes and waits until every node reports `cluster_state:ok`.
    fn join(&self) {
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("cannot run redis-cli");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        self.wait_until_ok();
    }

    fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &self.nodes {
            let mut conn = node.admin();
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut conn)
                    .unwrap_or_default();
                if info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "cluster not ok on {} ({:?}):\n{info}",
                    node.url(),
                    node.dir()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The `redis://` URLs of its nodes.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(LocalRedis::url).collect()
    }

    /// A plain (blocking) Cluster connection, which routes each command to
    /// its key's node, for setting up and inspecting.
    pub fn admin(&self) -> redis::cluster::ClusterConnection {
        redis::cluster::ClusterClient::new(self.urls())
            .and_then(|c| c.get_connection())
            .unwrap_or_else(|e| panic!("cannot connect to the cluster {:?}: {e}", self.urls()))
    }

    /// The Cluster shared by every test of this process that asks for it,
    /// started on first use (about two seconds, most of it waiting for the
    /// nodes to agree) and stopped when the process exits. Its tests keep
    /// apart by key prefix ([`unique_prefix`]), and must not stop, flush or
    /// reconfigure it. Panics as [`start`](Self::start) does.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<(LocalCluster, Child)> = OnceLock::new();
        &SHARED
            .get_or_init(|| {
                // The watchdog first: joining takes the two seconds.
                let cluster = Self::unjoined();
                let watchdog = cluster.stop_at_exit();
                cluster.join();
                (cluster, watchdog)
            })
            .0
    }

    /// A static is never dropped, so `Drop` cannot stop a shared Cluster:
    /// a watchdog (`sh`) waits for the end of its standard input, which the
    /// kernel closes when this process exits, however it exits, and then
    /// kills the nodes and removes their directories. Returns the watchdog,
    /// with that input's write end, to keep for as long as the nodes are to
    /// live.
    fn stop_at_exit(&self) -> Child {
        let pids: Vec<String> = self.nodes.iter().map(|n| n.pid().to_string()).collect();
        Command::new("sh")
            .arg("-c")
            .arg(r#"read -r _; kill -9 $1; shift; rm -rf -- "$@""#)
            .arg("sh")
            .arg(pids.join(" "))
            .args(self.nodes.iter().map(LocalRedis::dir))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run sh (to stop the shared cluster when this process exits)")
    }
}

/// A master with replicas, watched by three Sentinels (quorum 2), all
/// processes of ours on free loopback ports, for failover tests. Failure
/// detection is quick: a master that does not answer for
/// [`DOWN_AFTER`](Self::DOWN_AFTER) is failed over.
#[derive(Debug)]
pub struct LocalSentinels {
    name: String,
    servers: Vec<LocalRedis>,
    sentinels: Vec<LocalRedis>,
}

impl LocalSentinels {
    /// Sentinel's `down-after-milliseconds`: how long a master may be
    /// silent before it is thought down.
    pub const DOWN_AFTER: Duration = Duration::from_millis(1000);

    /// Starts a master and `replicas` replicas of it, waits until they are
    /// in sync, then three Sentinels, and waits until each knows the
    /// replicas and the two other Sentinels (a few seconds: Sentinels find
    /// each other by messages sent every 2 s). Panics telling how to install
    /// Redis if it cannot.
    pub fn start(replicas: usize) -> Self {
        let name = "sessions".to_owned();
        // No delay before a full sync: a replica is in sync at once, and
        // after a failover the other replicas follow the new master at once.
        let quick_sync = || vec!["--repl-diskless-sync-delay".to_owned(), "0".to_owned()];
        let master = LocalRedis::start_with(quick_sync());
        let mut servers = vec![master];
        for _ in 0..replicas {
            let mut args = quick_sync();
            args.extend(["--replicaof".into(), "127.0.0.1".into()]);
            args.push(servers[0].port().to_string());
            servers.push(LocalRedis::start_with(args));
        }
        let group = Self {
            sentinels: Vec::new(),
            name,
            servers,
        };
        group.wait_in_sync(Duration::from_secs(10));
        let conf = format!(
            "sentinel monitor {name} 127.0.0.1 {port} 2\n\
             sentinel down-after-milliseconds {name} {down}\n\
             sentinel failover-timeout {name} 4000\n\
             sentinel parallel-syncs {name} 4\n",
            name = group.name,
            port = group.servers[0].port(),
            down = Self::DOWN_AFTER.as_millis(),
        );
        let sentinels = (0..3).map(|_| LocalRedis::start_sentinel(&conf)).collect();
        let group = Self { sentinels, ..group };
        group.wait_watched(replicas, Duration::from_secs(15));
        group
    }

    /// Waits until the master has every replica online, in sync.
    fn wait_in_sync(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let replicas = self.servers.len() - 1;
        let mut conn = self.servers[0].admin();
        loop {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut conn)
                .unwrap_or_default();
            if info.matches("state=online").count() == replicas {
                return;
            }
            assert!(Instant::now() < deadline, "replicas not in sync:\n{info}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every Sentinel knows `replicas` replicas and the other
    /// Sentinels.
    fn wait_watched(&self, replicas: usize, within: Duration) {
        let deadline = Instant::now() + within;
        for sentinel in &self.sentinels {
            let mut conn = sentinel.admin();
            loop {
                let count = |what: &str, conn: &mut redis::Connection| {
                    redis::cmd("SENTINEL")
                        .arg(what)
                        .arg(&self.name)
                        .query::<Vec<redis::Value>>(conn)
                        .map_or(0, |v| v.len())
                };
                let others = count("SENTINELS", &mut conn);
                let known = count("REPLICAS", &mut conn);
                if others == self.sentinels.len() - 1 && known == replicas {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "Sentinel on {} knows {others} other Sentinels and {known} replicas",
                    sentinel.port()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The master's name, as the Sentinels monitor it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Sentinels' `redis://` URLs.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels.iter().map(LocalRedis::url).collect()
    }

    /// The Sentinels as `host:port,host:port,...`.
    pub fn sentinel_addresses(&self) -> String {
        let addresses: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        addresses.join(",")
    }

    /// A handle that asks the Sentinels which master they announce, for
    /// another thread while this group is being changed.
    pub fn watch(&self) -> SentinelWatch {
        SentinelWatch {
            urls: self.sentinel_urls(),
            name: self.name.clone(),
        }
    }

    /// The port of the master the first Sentinel that answers announces.
    pub fn announced_master(&self) -> Option<u16> {
        self.watch().announced_master()
    }

    /// The server on `port`.
    pub fn server(&mut self, port: u16) -> &mut LocalRedis {
        self.servers
            .iter_mut()
            .find(|s| s.port() == port)
            .unwrap_or_else(|| panic!("no server of this group on port {port}"))
    }

    /// Kills the master Sentinels announce now (SIGKILL, as a crash
    /// would), and returns its port.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.announced_master().expect("no Sentinel names a master");
        self.server(port).kill();
        port
    }

    /// Waits (at most `within`) until a Sentinel announces a master other
    /// than `old`, and returns its port.
    pub fn wait_for_new_master(&self, old: u16, within: Duration) -> Option<u16> {
        self.watch().wait_for_new_master(old, within)
    }
}

/// Asks the Sentinels of a [`LocalSentinels`] which master they announce.
#[derive(Clone, Debug)]
pub struct SentinelWatch {
    urls: Vec<String>,
    name: String,
}

impl SentinelWatch {
    /// The port of the master the first Sentinel that answers announces.
    pub fn announced_master(&self) -> Option<u16> {
        self.urls.iter().find_map(|url| {
            let mut conn = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
                .ok()?;
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&self.name)
                .query::<Option<(String, u16)>>(&mut conn)
                .ok()
                .flatten()
                .map(|(_, port)| port)
        })
    }

    /// Waits (at most `within`, blocking) until a Sentinel announces a
    /// master other than `old`, and returns its port.
    pub fn wait_for_new_master(&self, old: u16, within: Duration) -> Option<u16> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(port) = self.announced_master().filter(|&p| p != old) {
                return Some(port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl LocalRedis {
    /// A Sentinel on a free port with this configuration (the monitor
    /// lines; port, address and directory are added).
    fn start_sentinel(conf: &str) -> Self {
        assert!(Self::available(), "{INSTALL}");
        let mut last_error = String::new();
        for _ in 0..5 {
            let mut server = Self {
                child: None,
                port: free_port(),
                dir: temp_dir("sentinel"),
                extra: Vec::new(),
                sentinel: Some(conf.to_owned()),
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("redis-server --sentinel did not start: {last_error}");
    }
}
