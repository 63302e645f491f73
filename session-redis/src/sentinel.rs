//! Finding the master through Redis Sentinel, and noticing when it moves.
//!
//! The pool asks [`Master::client`] for the server to open a connection
//! to. With a fixed address that is always the same client; with Sentinel
//! it is the master Sentinel names (checked with `ROLE` by the `redis`
//! crate), remembered until the pool forgets it: after a connection is
//! lost, a connect fails, or a write meets `READONLY` (the server was
//! demoted). [`Master::moved`] asks Sentinel, on a connection of its own,
//! which address it announces now, so that the pool can leave a master
//! that was demoted while its connections stayed open.

use std::fmt;
use std::sync::Mutex;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{Client, ConnectionAddr, ConnectionInfo, RedisConnectionInfo, RedisResult};

/// A master found through Sentinel: where the Sentinels are, the master's
/// name, and how to talk to the master (credentials, database, protocol).
#[derive(Clone)]
pub(crate) struct SentinelTarget {
    pub(crate) sentinels: Vec<ConnectionInfo>,
    pub(crate) name: String,
    pub(crate) redis: RedisConnectionInfo,
}

/// Where the pool connects.
pub(crate) enum Master {
    /// Always this server.
    Fixed(Client),
    /// The master Sentinel names.
    Sentinel(Box<Found>),
}

pub(crate) struct Found {
    target: SentinelTarget,
    /// Built on first use (building cannot fail on addresses already
    /// parsed, but the `redis` crate says it may).
    sentinel: tokio::sync::Mutex<Option<Sentinel>>,
    current: Mutex<Option<Client>>,
    /// The connection [`Master::moved`] asks on: which Sentinel, and it.
    watch: tokio::sync::Mutex<Option<(usize, MultiplexedConnection)>>,
}

impl fmt::Debug for Master {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Addresses may carry a password: only the shape.
        match self {
            Self::Fixed(_) => f.write_str("Fixed"),
            Self::Sentinel(found) => f
                .debug_struct("Sentinel")
                .field("sentinels", &found.target.sentinels.len())
                .field("known", &lock(&found.current).is_some())
                .finish(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Master {
    pub(crate) fn sentinel(target: SentinelTarget) -> Self {
        Self::Sentinel(Box::new(Found {
            target,
            sentinel: tokio::sync::Mutex::new(None),
            current: Mutex::new(None),
            watch: tokio::sync::Mutex::new(None),
        }))
    }

    pub(crate) fn is_sentinel(&self) -> bool {
        matches!(self, Self::Sentinel(_))
    }

    /// The server to connect to: with Sentinel, the master it named last,
    /// or (none known) the one it names now.
    pub(crate) async fn client(&self) -> RedisResult<Client> {
        let found = match self {
            Self::Fixed(client) => return Ok(client.clone()),
            Self::Sentinel(found) => found,
        };
        if let Some(client) = lock(&found.current).clone() {
            return Ok(client);
        }
        // One question at a time; those who waited take its answer.
        let mut sentinel = found.sentinel.lock().await;
        if let Some(client) = lock(&found.current).clone() {
            return Ok(client);
        }
        let node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(found.target.redis.clone());
        let sentinel = match &mut *sentinel {
            Some(sentinel) => sentinel,
            empty => empty.insert(Sentinel::build(found.target.sentinels.clone())?),
        };
        let client = sentinel
            .async_master_for(&found.target.name, Some(&node))
            .await?;
        *lock(&found.current) = Some(client.clone());
        Ok(client)
    }

    /// The master may have moved: ask Sentinel again next time.
    pub(crate) fn forget(&self) {
        if let Self::Sentinel(found) = self {
            *lock(&found.current) = None;
        }
    }

    /// Whether Sentinel now announces another master than the one the
    /// pool connects to (then forgotten, so the next connect asks again).
    /// `false` when none is known yet, and with a fixed address.
    pub(crate) async fn moved(&self) -> RedisResult<bool> {
        let Self::Sentinel(found) = self else {
            return Ok(false);
        };
        let Some(known) = lock(&found.current)
            .as_ref()
            .map(|c| c.get_connection_info().addr().clone())
        else {
            return Ok(false);
        };
        let (host, port) = found.announced().await?;
        let same = match &known {
            ConnectionAddr::Tcp(h, p)
            | ConnectionAddr::TcpTls {
                host: h, port: p, ..
            } => *h == host && *p == port,
            _ => true,
        };
        if !same {
            self.forget();
        }
        Ok(!same)
    }

    /// The address of a server this pool connected to, to compare with
    /// the master's.
    pub(crate) fn address(client: &Client) -> ConnectionAddr {
        client.get_connection_info().addr().clone()
    }
}

impl Found {
    /// `SENTINEL GET-MASTER-ADDR-BY-NAME`, asked of the Sentinels in turn,
    /// starting with the one that answered last.
    async fn announced(&self) -> RedisResult<(String, u16)> {
        let mut watch = self.watch.lock().await;
        let sentinels = &self.target.sentinels;
        let first = watch.as_ref().map_or(0, |(i, _)| *i);
        let mut last_err = None;
        for step in 0..sentinels.len() {
            let index = (first + step) % sentinels.len();
            let mut conn = match watch.take() {
                Some((i, conn)) if i == index => conn,
                _ => match Client::open(sentinels[index].clone()) {
                    Ok(client) => match client.get_multiplexed_async_connection().await {
                        Ok(conn) => conn,
                        Err(err) => {
                            last_err = Some(err);
                            continue;
                        }
                    },
                    Err(err) => {
                        last_err = Some(err);
                        continue;
                    }
                },
            };
            let reply: RedisResult<Option<(String, u16)>> = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&self.target.name)
                .query_async(&mut conn)
                .await;
            match reply {
                Ok(Some(address)) => {
                    *watch = Some((index, conn));
                    return Ok(address);
                }
                Ok(None) => {
                    *watch = Some((index, conn));
                    last_err = Some(redis::RedisError::from((
                        redis::ErrorKind::MasterNameNotFoundBySentinel,
                        "Sentinel does not know the master's name",
                    )));
                }
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.unwrap_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::EmptySentinelList, "no Sentinel"))
        }))
    }
}
