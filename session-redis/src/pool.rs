//! A small pool of multiplexed connections to one Redis server.
//!
//! Why a pool: one multiplexed connection answers in order, so a large
//! reply (a session of the maximum size) delays every reply queued behind
//! it. With several connections, and each call sent on the least busy one,
//! an unrelated request waits for at most the replies queued on its own
//! connection; and loads of sessions known to be large all take the first
//! connection ([`Route::Bulk`]), which the others then avoid while it is
//! busy.
//!
//! With the client-side cache on, each connection speaks RESP3 and has
//! `CLIENT TRACKING ON NOLOOP`: Redis remembers the keys it read and pushes
//! an `invalidate` message on the same connection when any *other* client
//! changes one. Calls on a session's key then go to the connection picked
//! by the session id, so a session is tracked by one connection of this
//! process, which also makes its writes (NOLOOP: no message for its own
//! writes). The pushes are handled in the connection's read loop, before
//! any reply behind them reaches its caller. A connection that fails or
//! closes drops the whole cache; its replacement turns tracking on before
//! it carries a command.
//!
//! Before a connection joins, it checks that the path to Redis delivers
//! invalidations at all: with tracking on (without `NOLOOP`), it reads a
//! probe key and writes it, and the write's invalidation must have arrived
//! by the write's reply. A proxy that accepts `CLIENT TRACKING` but drops
//! or misroutes the messages fails the check; that connection then never
//! proves itself, so the cache serves nothing while it is open and every
//! load reads Redis (the store works as if uncached, and says so once on
//! stderr). This is what makes the cache safe to have on by default.
//!
//! Each tracking connection also proves, every half staleness bound, that
//! its invalidations are caught up: a `PING` whose reply, behind every
//! invalidation sent before it, extends the cache's proof (see
//! `freshness.rs`). A connection joins the proof with its first reply,
//! before it carries a command, and leaves it when it is lost.
//!
//! Each connection opens on first use and is replaced after a connection
//! error, on the next call that needs it.
//!
//! Behind Sentinel ([`Master::Sentinel`]), a connection opens to the master
//! Sentinel names. The pool leaves that master (every connection, and with
//! them the cache and its proof) when a write meets `READONLY` (it was
//! demoted), when a connection to another master opens, or when Sentinel,
//! asked every [`RECHECK`], announces another; a lost connection or a
//! failed connect makes the next connect ask Sentinel again.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, PushInfo, PushKind, RedisError, Value};

use crate::cache::Cache;
use crate::sentinel::Master;

/// How often a pool behind Sentinel asks which master it announces.
pub(crate) const RECHECK: Duration = Duration::from_secs(1);

/// Which connection a call takes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Route {
    /// The connection of this hash (a session's or a user's key).
    Key(u64),
    /// The least busy connection.
    Any,
    /// The first connection: loads of sessions known to be large, so that
    /// their replies queue behind each other and not in front of small
    /// ones (least busy avoids it while they are in flight).
    Bulk,
}

#[derive(Clone)]
struct Live {
    generation: u64,
    conn: MultiplexedConnection,
    /// Whether its invalidations are known to arrive (see the module
    /// docs); only such a connection proves the cache fresh.
    delivers: bool,
    /// The server it is connected to.
    address: ConnectionAddr,
}

struct Slot {
    live: Mutex<Option<Live>>,
    connecting: tokio::sync::Mutex<()>,
    busy: AtomicUsize,
    /// The probe key of the delivery check under way on this slot, and
    /// whether its invalidation has arrived.
    probe: Mutex<Option<(Vec<u8>, bool)>>,
}

pub(crate) struct Pool {
    master: Master,
    /// Whether the Sentinel recheck runs (started on first use).
    watching: std::sync::atomic::AtomicBool,
    timeout: Duration,
    cache: Option<Arc<Cache>>,
    slots: Box<[Slot]>,
    generations: AtomicU64,
    /// Whether a failed delivery check has been reported.
    warned: AtomicBool,
    me: Weak<Pool>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = self
            .slots
            .iter()
            .filter(|s| lock(&s.live).is_some())
            .count();
        f.debug_struct("Pool")
            .field("connections", &self.slots.len())
            .field("open", &open)
            .field("tracking", &self.cache.is_some())
            .field("master", &self.master)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether an error means the connection is gone (as opposed to a command
/// that Redis refused).
fn connection_lost(err: &RedisError) -> bool {
    err.is_unrecoverable_error() || err.is_connection_dropped() || err.is_io_error()
}

/// Whether Redis refused a write because it is a replica now.
fn demoted(err: &RedisError) -> bool {
    err.code() == Some("READONLY")
}

impl Pool {
    /// `size` connections to `master`; with `cache`, each one tracks the
    /// keys it reads and feeds invalidations to the cache (the client must
    /// then speak RESP3).
    pub(crate) fn new(
        master: Master,
        size: usize,
        timeout: Duration,
        cache: Option<Arc<Cache>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            master,
            watching: std::sync::atomic::AtomicBool::new(false),
            timeout,
            cache,
            slots: (0..size.max(1))
                .map(|_| Slot {
                    live: Mutex::new(None),
                    connecting: tokio::sync::Mutex::new(()),
                    busy: AtomicUsize::new(0),
                    probe: Mutex::new(None),
                })
                .collect(),
            generations: AtomicU64::new(0),
            warned: AtomicBool::new(false),
            me: me.clone(),
        })
    }

    pub(crate) fn size(&self) -> usize {
        self.slots.len()
    }

    fn pick(&self, route: Route) -> usize {
        match route {
            Route::Key(hash) => (hash % self.slots.len() as u64) as usize,
            Route::Any => self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, slot)| slot.busy.load(Ordering::Relaxed))
                .map_or(0, |(i, _)| i),
            Route::Bulk => 0,
        }
    }

    /// Runs `call` on the routed connection (opening it if need be). The
    /// caller bounds the whole with its timeout.
    pub(crate) async fn run<T, F, Fut>(&self, route: Route, call: F) -> Result<T, RedisError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let index = self.pick(route);
        let slot = &self.slots[index];
        slot.busy.fetch_add(1, Ordering::Relaxed);
        let _done = Done(&slot.busy);
        let live = self.live(index).await?;
        let result = call(live.conn).await;
        if let Err(err) = &result {
            self.failed(index, live.generation, err);
        }
        result
    }

    /// After an error on connection `index`: a lost connection is
    /// replaced; a master that became a replica is left altogether.
    fn failed(&self, index: usize, generation: u64, err: &RedisError) {
        if connection_lost(err) {
            self.lost(index, generation);
            self.master.forget();
        } else if demoted(err) && self.master.is_sentinel() {
            self.master.forget();
            self.leave(None);
        }
    }

    /// Gives up every connection that is not to `keep` (`None`: all).
    fn leave(&self, keep: Option<&ConnectionAddr>) {
        for (index, slot) in self.slots.iter().enumerate() {
            let stale = lock(&slot.live)
                .as_ref()
                .filter(|live| keep != Some(&live.address))
                .map(|live| live.generation);
            if let Some(generation) = stale {
                self.lost(index, generation);
            }
        }
    }

    /// Runs `call` on every connection (opening them), concurrently.
    pub(crate) async fn run_all<F, Fut>(&self, call: F) -> Result<(), RedisError>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<(), RedisError>>,
    {
        let calls = (0..self.slots.len()).map(|index| {
            let call = &call;
            async move {
                let live = self.live(index).await?;
                let result = call(live.conn).await;
                if let Err(err) = &result {
                    self.failed(index, live.generation, err);
                }
                result
            }
        });
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .collect()
    }

    async fn live(&self, index: usize) -> Result<Live, RedisError> {
        let slot = &self.slots[index];
        if let Some(live) = lock(&slot.live).clone() {
            return Ok(live);
        }
        let _one_at_a_time = slot.connecting.lock().await;
        if let Some(live) = lock(&slot.live).clone() {
            return Ok(live);
        }
        let live = match self.connect(index).await {
            Ok(live) => live,
            Err(err) => {
                self.master.forget();
                return Err(err);
            }
        };
        *lock(&slot.live) = Some(live.clone());
        if self.master.is_sentinel() {
            // A master that moved: none of the others may stay on the old.
            self.leave(Some(&live.address));
            if !self.watching.swap(true, Ordering::Relaxed) {
                tokio::spawn(recheck(self.me.clone()));
            }
        }
        if self.cache.is_some() && live.delivers {
            // Once published: it stops when the slot holds another.
            let conn = live.conn.clone();
            tokio::spawn(prove(self.me.clone(), index, live.generation, conn));
        }
        Ok(live)
    }

    async fn connect(&self, index: usize) -> Result<Live, RedisError> {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        // Our caller's timeout bounds the whole call; the connection's own
        // timeout only bounds the connect.
        let mut config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(None);
        if self.cache.is_some() {
            let pool = self.me.clone();
            config = config.set_push_sender(move |push: PushInfo| {
                if let Some(pool) = pool.upgrade() {
                    pool.on_push(index, generation, push);
                }
                Ok::<(), Infallible>(())
            });
        }
        let client = self.master.client().await?;
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut delivers = false;
        if let Some(cache) = &self.cache {
            delivers = self
                .delivers_invalidations(index, generation, cache, &mut conn)
                .await?;
            redis::cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .arg("NOLOOP")
                .query_async::<()>(&mut conn)
                .await?;
            // Entries tracked by the connection this one replaces may have
            // missed invalidations (it was dropped when it failed; this
            // also covers a failure nobody noticed).
            if generation > self.slots.len() as u64 {
                cache.clear();
            }
            cache.proof().opened(index, generation);
            if delivers {
                // Its first proof, a round trip after tracking is on, before
                // it carries a command (then the pinger keeps it).
                let sent = Instant::now();
                redis::cmd("PING").query_async::<Value>(&mut conn).await?;
                cache.proof().proved(index, generation, sent);
            }
        }
        Ok(Live {
            generation,
            conn,
            delivers,
            address: Master::address(&client),
        })
    }

    /// The delivery check of the module docs, on a new connection: tracking
    /// on (own writes included), a probe key read and then written; its
    /// invalidation must have been handled by the time the reply to a
    /// `PING` sent after it arrives (pushes are handled in the read loop,
    /// in order). Leaves
    /// tracking off and the probe key deleted.
    async fn delivers_invalidations(
        &self,
        index: usize,
        generation: u64,
        cache: &Cache,
        conn: &mut MultiplexedConnection,
    ) -> Result<bool, RedisError> {
        let probe = format!(
            "{}tracking-probe:{}:{index}:{generation}",
            cache.prefix(),
            std::process::id()
        )
        .into_bytes();
        *lock(&self.slots[index].probe) = Some((probe.clone(), false));
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .query_async::<()>(conn)
            .await?;
        redis::cmd("GET")
            .arg(&probe)
            .query_async::<Value>(conn)
            .await?;
        redis::cmd("SET")
            .arg(&probe)
            .arg(1)
            .arg("PX")
            .arg(10_000)
            .query_async::<Value>(conn)
            .await?;
        // Redis sends the invalidation of a key the connection wrote itself
        // after that command's reply: a `PING` behind it makes sure.
        redis::cmd("PING").query_async::<Value>(conn).await?;
        let delivered = lock(&self.slots[index].probe)
            .take()
            .is_some_and(|(_, seen)| seen);
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("OFF")
            .query_async::<()>(conn)
            .await?;
        redis::cmd("DEL")
            .arg(&probe)
            .query_async::<Value>(conn)
            .await?;
        if !delivered && !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!(
                "session-redis: Redis accepted CLIENT TRACKING but did not deliver \
                 an invalidation for a key this connection wrote (a proxy in between?); \
                 the client-side cache serves nothing while such a connection is open"
            );
        }
        Ok(delivered)
    }

    /// The connection of `generation` in `index` is gone: forget it (the
    /// next call opens another), and with it everything it tracked.
    fn lost(&self, index: usize, generation: u64) {
        let mut live = lock(&self.slots[index].live);
        if live.as_ref().is_some_and(|l| l.generation == generation) {
            *live = None;
        }
        drop(live);
        if let Some(cache) = &self.cache {
            cache.proof().closed(index, generation);
            cache.clear();
        }
    }

    /// Notes the invalidation of a delivery check's probe key.
    fn saw_probe(&self, index: usize, key: &[u8]) {
        if let Some((probe, seen)) = lock(&self.slots[index].probe).as_mut()
            && probe.as_slice() == key
        {
            *seen = true;
        }
    }

    /// A push message, in the read loop of connection `index`.
    fn on_push(&self, index: usize, generation: u64, push: PushInfo) {
        let Some(cache) = &self.cache else { return };
        match push.kind {
            PushKind::Invalidate => match push.data.first() {
                Some(Value::Array(keys)) => {
                    for key in keys {
                        if let Value::BulkString(key) = key {
                            self.saw_probe(index, key);
                            cache.invalidate_key(key);
                        } else {
                            cache.clear();
                        }
                    }
                }
                // Nil: FLUSHALL or FLUSHDB (or a message we do not know).
                _ => cache.clear(),
            },
            PushKind::Disconnection => self.lost(index, generation),
            _ => {}
        }
    }
}

/// With the cache on, hits send nothing, so nothing else would notice a
/// connection whose invalidations stopped coming (a partition, a dropped
/// NAT entry, a hung proxy or Redis). Every half staleness bound, a `PING`
/// goes out on the connection; its reply, which Redis sends after every
/// invalidation it owed the connection before the `PING`, proves the cache
/// caught up to the moment it was sent, and extends the proof to then plus
/// the bound. Without replies the proof lapses by itself; a `PING` not
/// answered within the store's timeout gives the connection up (dropping
/// the cache). Ends with the connection or the pool.
async fn prove(pool: Weak<Pool>, index: usize, generation: u64, mut conn: MultiplexedConnection) {
    let Some((timeout, every)) = pool
        .upgrade()
        .and_then(|pool| Some((pool.timeout, pool.cache.as_ref()?.proof().bound() / 2)))
    else {
        return;
    };
    let mut sent = Instant::now(); // about when `connect` sent its `PING`
    loop {
        tokio::time::sleep_until((sent + every).into()).await;
        let current = pool.upgrade().is_some_and(|pool| {
            let live = lock(&pool.slots[index].live);
            live.as_ref().is_some_and(|l| l.generation == generation)
        });
        if !current {
            return;
        }
        // Read before the `PING` is written: the proof may only start
        // earlier than the truth, never later.
        sent = Instant::now();
        let ping = redis::cmd("PING");
        let answered = tokio::time::timeout(timeout, ping.query_async::<Value>(&mut conn)).await;
        let Some(pool) = pool.upgrade() else { return };
        if !matches!(answered, Ok(Ok(_))) {
            pool.lost(index, generation);
            return;
        }
        if let Some(cache) = &pool.cache {
            cache.proof().proved(index, generation, sent);
        }
    }
}

/// Behind Sentinel: every [`RECHECK`], asks which master Sentinel
/// announces, and leaves the one the pool is on if it is another (a
/// master demoted while its connections stayed open answers reads as a
/// replica, and writes with `READONLY`). Ends with the pool.
async fn recheck(pool: Weak<Pool>) {
    loop {
        tokio::time::sleep(RECHECK).await;
        let Some(pool) = pool.upgrade() else { return };
        let asked = tokio::time::timeout(pool.timeout, pool.master.moved()).await;
        if let Ok(Ok(true)) = asked {
            pool.leave(None);
        }
    }
}

/// Decrements a busy count when a call ends (or is dropped).
struct Done<'a>(&'a AtomicUsize);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
