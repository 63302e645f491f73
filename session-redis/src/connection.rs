//! The connection to a single node or a Cluster, opened on first use, and
//! every call to it bounded by the store's timeout.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, ConnectionInfo, RedisError, RedisResult, ScriptInvocation, Value};
use session_core::Error;
use tokio::sync::OnceCell;

/// Where to connect.
#[derive(Clone)]
pub(crate) enum Target {
    /// One server (or a primary behind a proxy or failover address).
    Single(Client),
    /// A Redis Cluster, given by some of its nodes.
    Cluster(Vec<ConnectionInfo>),
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A lazily opened connection whose calls time out.
pub(crate) struct Connection {
    target: Target,
    timeout: Duration,
    conn: OnceCell<Conn>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Connection details may carry a password: show only the shape.
        f.debug_struct("Connection")
            .field("cluster", &self.is_cluster())
            .field("timeout", &self.timeout)
            .field("connected", &self.conn.initialized())
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

/// How long a failed connection waits at most before trying again.
const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(500);

impl Connection {
    pub(crate) fn new(target: Target, timeout: Duration) -> Self {
        Self {
            target,
            timeout,
            conn: OnceCell::new(),
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// Runs one call to Redis within the timeout.
    async fn timed<T>(&self, call: impl Future<Output = RedisResult<T>>) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(redis_error(err)),
            Err(_) => Err(Error::store(TimedOut(self.timeout))),
        }
    }

    /// The connection, opened now if it is not yet.
    async fn conn(&self) -> Result<Conn, Error> {
        self.conn
            .get_or_try_init(|| async {
                match &self.target {
                    Target::Single(client) => {
                        // The manager connects on its first command and
                        // reconnects by itself after a failure.
                        let config = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(self.timeout))
                            .set_response_timeout(Some(self.timeout))
                            .set_number_of_retries(3)
                            .set_min_delay(Duration::from_millis(50))
                            .set_max_delay(MAX_RECONNECT_DELAY);
                        ConnectionManager::new_lazy_with_config(client.clone(), config)
                            .map(Conn::Single)
                            .map_err(redis_error)
                    }
                    Target::Cluster(nodes) => {
                        let client = ClusterClient::builder(nodes.iter().cloned())
                            .connection_timeout(self.timeout)
                            .response_timeout(self.timeout)
                            .build()
                            .map_err(redis_error)?;
                        self.timed(client.get_async_connection())
                            .await
                            .map(Conn::Cluster)
                    }
                }
            })
            .await
            .cloned()
    }

    /// Runs a script (`EVALSHA`, loading it first if the server lacks it).
    pub(crate) async fn invoke(&self, script: &ScriptInvocation<'_>) -> Result<Value, Error> {
        match self.conn().await? {
            Conn::Single(mut conn) => self.timed(script.invoke_async(&mut conn)).await,
            Conn::Cluster(mut conn) => self.timed(script.invoke_async(&mut conn)).await,
        }
    }

    /// Runs one command.
    pub(crate) async fn query(&self, cmd: &Cmd) -> Result<Value, Error> {
        match self.conn().await? {
            Conn::Single(mut conn) => self.timed(cmd.query_async(&mut conn)).await,
            Conn::Cluster(mut conn) => self.timed(cmd.query_async(&mut conn)).await,
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
