//! The connection to a single node or a Cluster, opened on first use, and
//! every call to it bounded by the store's timeout.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, ConnectionInfo, RedisError, RedisResult, Value};
use session_core::Error;
use tokio::sync::OnceCell;

use crate::cache::Cache;
use crate::pool::{Pool, Route};
use crate::scripts::Call;
use crate::sentinel::{Master, SentinelTarget};

/// Where to connect.
#[derive(Clone)]
pub(crate) enum Target {
    /// One server (or a primary behind a proxy or failover address).
    Single(Client),
    /// The master that Sentinel names, followed across failovers.
    Sentinel(SentinelTarget),
    /// A Redis Cluster, given by some of its nodes.
    Cluster(Vec<ConnectionInfo>),
}

enum Conn {
    Single(Arc<Pool>),
    Cluster(OnceCell<ClusterConnection>),
}

/// How many replicas must acknowledge each write, and how long the write
/// waits for them (`WAIT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Replicated {
    pub(crate) replicas: usize,
    pub(crate) timeout: Duration,
}

/// The connections of a store, whose calls time out.
pub(crate) struct Connection {
    target: Target,
    timeout: Duration,
    conn: Conn,
    cache: Option<Arc<Cache>>,
    replicated: Option<Replicated>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Connection details may carry a password: show only the shape.
        let mut out = f.debug_struct("Connection");
        out.field("cluster", &self.is_cluster())
            .field("timeout", &self.timeout);
        match &self.conn {
            Conn::Single(pool) => out.field("pool", pool),
            Conn::Cluster(conn) => out.field("connected", &conn.initialized()),
        };
        out.field("cache", &self.cache)
            .field("replicated", &self.replicated)
            .finish()
    }
}

/// A call to Redis took longer than the store's timeout.
#[derive(Debug)]
struct TimedOut(Duration);

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redis did not answer within {:?}", self.0)
    }
}

impl std::error::Error for TimedOut {}

/// Fewer replicas than asked acknowledged a write within the wait.
#[derive(Debug)]
struct NotReplicated {
    wanted: usize,
    acknowledged: usize,
    waited: Duration,
}

impl fmt::Display for NotReplicated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the write was applied on the Redis master but only {} of the {} replicas asked for \
             acknowledged it within {:?} (WAIT): it may be lost if the master fails now",
            self.acknowledged, self.wanted, self.waited
        )
    }
}

impl std::error::Error for NotReplicated {}

impl Connection {
    /// Connections to `target` (opened on first use): on one server a pool
    /// of `pool_size`, tracking keys for `cache` if there is one; writes
    /// acknowledged only once `replicated` holds, if given.
    pub(crate) fn new(
        target: Target,
        timeout: Duration,
        pool_size: usize,
        cache: Option<Arc<Cache>>,
        replicated: Option<Replicated>,
    ) -> Self {
        let pool = |master| Conn::Single(Pool::new(master, pool_size, timeout, cache.clone()));
        let conn = match &target {
            Target::Single(client) => pool(Master::Fixed(client.clone())),
            Target::Sentinel(sentinel) => pool(Master::sentinel(sentinel.clone())),
            Target::Cluster(_) => Conn::Cluster(OnceCell::new()),
        };
        Self {
            target,
            timeout,
            conn,
            cache,
            replicated,
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn cache(&self) -> Option<&Cache> {
        self.cache.as_deref()
    }

    pub(crate) fn pool_size(&self) -> usize {
        match &self.conn {
            Conn::Single(pool) => pool.size(),
            Conn::Cluster(_) => 1,
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// Runs one call to Redis within the timeout.
    async fn timed<T>(&self, call: impl Future<Output = RedisResult<T>>) -> Result<T, Error> {
        self.timed_for(self.timeout, call).await
    }

    async fn timed_for<T>(
        &self,
        timeout: Duration,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(redis_error(err)),
            Err(_) => Err(Error::store(TimedOut(timeout))),
        }
    }

    /// The Cluster connection, opened now if it is not yet.
    async fn cluster(
        &self,
        cell: &OnceCell<ClusterConnection>,
    ) -> Result<ClusterConnection, Error> {
        let Target::Cluster(nodes) = &self.target else {
            unreachable!("a cluster cell on a single-node target")
        };
        cell.get_or_try_init(|| async {
            let client = ClusterClient::builder(nodes.iter().cloned())
                .connection_timeout(self.timeout)
                .response_timeout(self.timeout)
                .build()
                .map_err(redis_error)?;
            self.timed(client.get_async_connection()).await
        })
        .await
        .cloned()
    }

    /// Runs a script (`EVALSHA`, loading it first if the server lacks it)
    /// on the connection of `route`.
    pub(crate) async fn invoke_on(&self, route: Route, script: &Call<'_>) -> Result<Value, Error> {
        match &self.conn {
            Conn::Single(pool) => {
                self.timed(pool.run(
                    route,
                    |mut conn| async move { script.invoke(&mut conn).await },
                ))
                .await
            }
            Conn::Cluster(cell) => {
                let mut conn = self.cluster(cell).await?;
                self.timed(script.invoke(&mut conn)).await
            }
        }
    }

    /// Runs a script that writes, on the connection of `route`: with
    /// [`Replicated`], followed in the same round trip by `WAIT`, and
    /// acknowledged only if enough replicas have the write (else
    /// [`Error::Store`]: applied on the master, maybe not replicated). The
    /// call is then bounded by the timeout plus the wait.
    pub(crate) async fn write_on(&self, route: Route, script: &Call<'_>) -> Result<Value, Error> {
        let (Some(wait), Conn::Single(pool)) = (self.replicated, &self.conn) else {
            // `with_wait` refuses a Cluster.
            return self.invoke_on(route, script).await;
        };
        let (reply, acknowledged) = self
            .timed_for(
                self.timeout.saturating_add(wait.timeout),
                pool.run(route, |mut conn| async move {
                    script
                        .invoke_and_wait(&mut conn, wait.replicas, wait.timeout)
                        .await
                }),
            )
            .await?;
        if acknowledged < wait.replicas {
            return Err(Error::store(NotReplicated {
                wanted: wait.replicas,
                acknowledged,
                waited: wait.timeout,
            }));
        }
        Ok(reply)
    }

    /// A write script on the least busy connection (see
    /// [`write_on`](Self::write_on)).
    pub(crate) async fn write(&self, script: &Call<'_>) -> Result<Value, Error> {
        self.write_on(Route::Any, script).await
    }

    /// Runs one command on the connection of `route`.
    pub(crate) async fn query_on(&self, route: Route, cmd: &Cmd) -> Result<Value, Error> {
        match &self.conn {
            Conn::Single(pool) => {
                self.timed(pool.run(
                    route,
                    |mut conn| async move { cmd.query_async(&mut conn).await },
                ))
                .await
            }
            Conn::Cluster(cell) => {
                let mut conn = self.cluster(cell).await?;
                self.timed(cmd.query_async(&mut conn)).await
            }
        }
    }

    /// Runs a script on the least busy connection.
    pub(crate) async fn invoke(&self, script: &Call<'_>) -> Result<Value, Error> {
        self.invoke_on(Route::Any, script).await
    }

    /// Runs one command on the least busy connection.
    pub(crate) async fn query(&self, cmd: &Cmd) -> Result<Value, Error> {
        self.query_on(Route::Any, cmd).await
    }

    /// Opens every connection (on Cluster, to every primary) and checks
    /// that Redis answers on each.
    pub(crate) async fn ping(&self) -> Result<(), Error> {
        let ping = redis::cmd("PING");
        match &self.conn {
            Conn::Single(pool) => {
                self.timed(pool.run_all(|mut conn| {
                    let ping = &ping;
                    async move { ping.query_async::<Value>(&mut conn).await.map(drop) }
                }))
                .await
            }
            Conn::Cluster(_) => self.query(&ping).await.map(drop),
        }
    }
}

/// A key of the wrong type means a record that does not follow the layout:
/// corrupt. Every other failure is the store's.
fn redis_error(err: RedisError) -> Error {
    if err.code() == Some("WRONGTYPE") {
        Error::corrupt(err)
    } else {
        Error::store(err)
    }
}
