//! Starting an example app on a loopback port, in-process.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use session_core::{DynStore, ManualClock, MemoryStore, SessionConfig, SessionManager, Timestamp};
use session_examples::Settings;
use session_examples::serve::Limits;
use session_redis::RedisStore;
use session_redis::testing::{LocalCluster, LocalRedis, TestRedis, unique_prefix};
use session_sql::SqlStore;
use session_sql::testing::{Kind as SqlKind, TestDatabase};

/// A framework adapter under test: anything that can serve the example
/// app's contract (the routes and rules in the repository README) with a
/// given engine. The suite runs every check through this trait, so a new
/// adapter (another framework, or a user's own server) joins it by
/// implementing `start` and naming itself in `conformance_suite!`.
pub trait Adapter: fmt::Debug + Send + Sync + 'static {
    /// Serves the example app with `manager` on a fresh loopback port until
    /// `stop` completes (or is dropped), and returns the address. Called
    /// from within a tokio runtime.
    fn start(
        &self,
        manager: SessionManager<DynStore>,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) -> SocketAddr;
}

/// The adapters of this repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framework {
    /// session-axum.
    Axum,
    /// session-actix.
    Actix,
    /// session-hyper.
    Hyper,
}

impl Adapter for Framework {
    fn start(
        &self,
        manager: SessionManager<DynStore>,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) -> SocketAddr {
        match self {
            Self::Axum | Self::Hyper => {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let (limits, until) = (Limits::default(), async {
                    let _ = stop.await;
                });
                if *self == Self::Axum {
                    tokio::spawn(session_examples::axum_app::serve(
                        listener, manager, None, limits, until,
                    ));
                } else {
                    tokio::spawn(session_examples::hyper_app::serve(
                        listener, manager, None, limits, until,
                    ));
                }
                addr
            }
            Self::Actix => {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                std::thread::spawn(move || {
                    actix_web::rt::System::new().block_on(async move {
                        let server = session_examples::actix_app::server(
                            listener,
                            manager,
                            None,
                            1,
                            Limits::default(),
                        )
                        .unwrap();
                        let handle = server.handle();
                        actix_web::rt::spawn(async move {
                            let _ = stop.await;
                            handle.stop(false).await;
                        });
                        let _ = server.await;
                    });
                });
                addr
            }
        }
    }
}

/// The stores under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `MemoryStore`.
    Memory,
    /// `MemoryStore` behind [`Deferred`](session_core::testing::Deferred):
    /// every store call is pending once, so the engine and the adapters take
    /// the path of stores that do IO, without a server.
    Deferred,
    /// `RedisStore` on a `redis-server` of the test's own.
    Redis,
    /// `RedisStore` on a Redis Cluster of three primaries, one for the whole
    /// test binary ([`LocalCluster::shared`]: starting one takes about two
    /// seconds), each test under a key prefix of its own.
    RedisCluster,
    /// `SqlStore` on a SQLite file of the test's own.
    Sqlite,
    /// `SqlStore` on a PostgreSQL database of the test's own.
    Postgres,
    /// `SqlStore` on a MySQL/MariaDB database of the test's own.
    MySql,
}

/// What one run of a check targets: an adapter on a store.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The adapter.
    pub framework: &'static dyn Adapter,
    /// The store.
    pub backend: Backend,
}

impl Target {
    /// `framework` on the memory store.
    pub const fn memory(framework: &'static dyn Adapter) -> Self {
        Self {
            framework,
            backend: Backend::Memory,
        }
    }

    /// `framework` on Redis.
    pub const fn redis(framework: &'static dyn Adapter) -> Self {
        Self {
            framework,
            backend: Backend::Redis,
        }
    }

    /// `framework` on a store of `backend`.
    pub const fn on(framework: &'static dyn Adapter, backend: Backend) -> Self {
        Self { framework, backend }
    }
}

impl Backend {
    /// Whether this machine can run tests on the backend. When it cannot,
    /// this says so in one line and returns `false` (the test then passes
    /// without running), or, with `SESSION_TEST_STRICT=1`, fails the test.
    pub fn available(self) -> bool {
        match self {
            Self::Memory | Self::Deferred => true,
            Self::Redis => {
                let here = LocalRedis::available() || std::env::var_os("REDIS_URL").is_some();
                if !here {
                    session_core::testing::skip(
                        "redis-server",
                        "not on PATH and REDIS_URL is unset (apt-get install redis-server)",
                    );
                }
                here
            }
            Self::RedisCluster => session_redis::testing::cluster_available("Redis Cluster"),
            Self::Sqlite => true,
            Self::Postgres | Self::MySql => {
                let (kind, what) = self.sql_kind();
                match session_sql::testing::server_available(kind) {
                    Ok(()) => true,
                    Err(why) => {
                        session_core::testing::skip(what, &why);
                        false
                    }
                }
            }
        }
    }

    /// The test database kind of a SQL backend, and its server's name.
    fn sql_kind(self) -> (SqlKind, &'static str) {
        match self {
            Self::Postgres => (SqlKind::Postgres, "PostgreSQL"),
            Self::MySql => (SqlKind::MySql, "MySQL/MariaDB"),
            _ => (SqlKind::Sqlite, "SQLite"),
        }
    }
}

/// A store for one test, and the Redis server behind it (if any), which
/// lives as long as the store is used.
#[derive(Debug)]
pub struct TestStore {
    /// The store.
    pub store: DynStore,
    /// The Redis store, when the backend is Redis or Redis Cluster (for
    /// planting records).
    pub redis: Option<RedisStore>,
    /// The server, stopped on drop, when the backend is Redis.
    pub server: Option<TestRedis>,
    /// The shared Cluster, when the backend is Redis Cluster.
    pub cluster: Option<&'static LocalCluster>,
    /// The SQL store and its database (dropped with it), when the backend
    /// is SQL.
    pub sql: Option<(SqlStore, TestDatabase)>,
}

impl TestStore {
    /// A fresh store of `backend`.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Memory => Self::of(DynStore::new(MemoryStore::new())),
            Backend::Deferred => Self::of(DynStore::new(session_core::testing::Deferred(
                MemoryStore::new(),
            ))),
            Backend::Redis => {
                let server = TestRedis::get();
                let store = Self::on_redis(RedisStore::new(server.url())).await;
                Self {
                    server: Some(server),
                    ..store
                }
            }
            Backend::RedisCluster => {
                let cluster = LocalCluster::shared();
                let store = Self::on_redis(RedisStore::cluster(cluster.urls())).await;
                Self {
                    cluster: Some(cluster),
                    ..store
                }
            }
            Backend::Sqlite | Backend::Postgres | Backend::MySql => {
                let (kind, _) = backend.sql_kind();
                let db = TestDatabase::new(kind, "conformance")
                    .await
                    .expect("database server available");
                let sql = db.store().await;
                Self {
                    sql: Some((sql.clone(), db)),
                    ..Self::of(DynStore::new(sql))
                }
            }
        }
    }

    /// `store` alone.
    fn of(store: DynStore) -> Self {
        Self {
            store,
            redis: None,
            server: None,
            cluster: None,
            sql: None,
        }
    }

    /// A Redis store under a key prefix no other test uses, once it answers.
    async fn on_redis(redis: Result<RedisStore, session_core::Error>) -> Self {
        let redis = redis
            .expect("redis url")
            .with_prefix(unique_prefix("conformance"));
        redis.ping().await.expect("redis answers");
        Self {
            redis: Some(redis.clone()),
            ..Self::of(DynStore::new(redis))
        }
    }

    /// A plain (blocking) connection to the Redis server or Cluster behind
    /// the store, for planting and inspecting records. Panics if the
    /// backend is not Redis.
    pub fn redis_admin(&self) -> Box<dyn session_redis::redis::ConnectionLike> {
        match (&self.server, self.cluster) {
            (Some(server), _) => Box::new(session_redis::testing::admin(&server.url())),
            (None, Some(cluster)) => Box::new(cluster.admin()),
            (None, None) => panic!("not a Redis backend"),
        }
    }
}

/// A signing secret shared by the servers of one test.
pub const SECRET: &str = "conformance-suite secret, well over thirty-two bytes";

/// The instant test clocks start at: now, in whole seconds, fixed for the
/// whole run. Real time matters to Redis, whose TTLs run on its own clock:
/// every virtual instant must lie ahead of it.
pub fn t0() -> Timestamp {
    static T0: std::sync::OnceLock<Timestamp> = std::sync::OnceLock::new();
    *T0.get_or_init(|| {
        Timestamp::from_unix_secs(Timestamp::from(std::time::SystemTime::now()).unix_secs())
    })
}

/// An example app serving on a loopback port.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The engine's clock.
    pub clock: ManualClock,
    /// The engine.
    pub manager: SessionManager<DynStore>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The store's resources (a Redis server), kept alive with the server.
    pub store: Option<TestStore>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The example's configuration as the binaries build it, with the test secret.
pub fn example_config() -> SessionConfig {
    Settings {
        addr: ([127, 0, 0, 1], 0).into(),
        store: "memory".into(),
        redis_url: String::new(),
        database_url: String::new(),
        secret: SECRET.into(),
        idle_secs: 3600,
        ttl_secs: 604_800,
        secure: true,
        max_bytes: session_core::DEFAULT_MAX_SESSION_BYTES,
        redis_cache: false,
        transport: session_core::Transport::Cookie,
        store_error_status: 503,
        cookie_name: None,
        partitioned: false,
        clear_site_data: Vec::new(),
        redis_failover: Default::default(),
        max_per_user: None,
        admin_token: None,
    }
    .config()
}

impl TestServer {
    /// The example app on the target's adapter and a fresh store of its
    /// backend, with the example's configuration and a manual clock at [`t0`].
    pub async fn start(target: Target) -> Self {
        Self::start_with(target, example_config()).await
    }

    /// As [`start`](Self::start), with a given configuration.
    pub async fn start_with(target: Target, config: SessionConfig) -> Self {
        let store = TestStore::new(target.backend).await;
        let clock = ManualClock::new(t0());
        let manager = SessionManager::with_clock(store.store.clone(), config, clock.clone())
            .expect("valid config");
        let mut server = Self::start_manager(target.framework, manager, clock).await;
        server.store = Some(store);
        server
    }

    /// The example app on `framework` with this engine.
    pub async fn start_manager(
        framework: &dyn Adapter,
        manager: SessionManager<DynStore>,
        clock: ManualClock,
    ) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let addr = framework.start(manager.clone(), stopped);
        wait_until_listening(addr).await;
        Self {
            addr,
            clock,
            manager,
            stop: Some(stop),
            store: None,
        }
    }

    /// A browser that talks to this server.
    pub fn browser(&self) -> crate::Browser {
        crate::Browser::new(self.addr)
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }
}

async fn wait_until_listening(addr: SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("server on {addr} did not start");
}
