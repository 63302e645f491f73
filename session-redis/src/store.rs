//! `RedisStore`: its constructors, settings, and the single-node form of
//! each store operation (one script, one round trip).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Client, IntoConnectionInfo, ProtocolVersion, Script, Value};
use session_core::{
    Error, LimitPolicy, Record, SessionId, SessionStore, Timestamp, Update, UserLimit, WriteOutcome,
};

use crate::cache::{Cache, CacheConfig, CacheStats, Lookup, Pending};
use crate::connection::{Connection, Replicated, Target};
use crate::layout::{
    self, decode_record, duration_text, flag, hash_pairs, record_fields, redis_millis, session_key,
    unexpected, user_key,
};
use crate::pool::Route;
use crate::scripts::{self, CORRUPT, MISSING, TAKEN, TOO_LARGE, USER_LIMIT, WRITTEN};
use crate::sentinel::SentinelTarget;

/// A [`SessionStore`] on Redis: one server, or a Redis Cluster.
///
/// Build it with [`new`](Self::new) (or [`from_client`](Self::from_client))
/// for one server, [`sentinel`](Self::sentinel) for a master found through
/// Redis Sentinel (followed across failovers), or [`cluster`](Self::cluster)
/// for a Cluster; adjust it
/// with [`with_prefix`](Self::with_prefix) and
/// [`with_timeout`](Self::with_timeout). Building connects nothing: the
/// connection opens on the first operation (so a service can start while
/// Redis is down), and on one server it reconnects by itself after a
/// failure. [`ping`](Self::ping) checks the connection now.
///
/// On one server, [`with_cache`](Self::with_cache) keeps the sessions this
/// process reads in memory, kept coherent by Redis (see the crate docs,
/// "Client-side cache"), and [`with_connections`](Self::with_connections)
/// sets how many connections the store spreads its calls over.
/// [`with_replicated_writes`](Self::with_replicated_writes) acknowledges a
/// write only once replicas have it (`WAIT`).
///
/// Clones share the connections and the cache. See the [crate docs](crate)
/// for the key layout, the round trips per operation, and what an outage
/// does.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) conn: Arc<Connection>,
    pub(crate) prefix: Arc<str>,
    settings: Settings,
    large: Arc<LargeSessions>,
}

/// Sessions whose values took at least [`LargeSessions::SIZE`] bytes when
/// last loaded: their loads take the pool's bulk connection (without the
/// cache; with it, each session has its own connection anyway).
#[derive(Debug, Default)]
struct LargeSessions(std::sync::Mutex<std::collections::HashSet<SessionId>>);

impl LargeSessions {
    const SIZE: usize = 64 * 1024;
    const MAX: usize = 4096;

    fn route(&self, id: &SessionId) -> Route {
        let set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if set.contains(id) {
            Route::Bulk
        } else {
            Route::Any
        }
    }

    fn note(&self, id: &SessionId, record: Option<&Record>) {
        let size = record.map_or(0, |r| r.data.iter().map(|(k, v)| k.len() + v.len()).sum());
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if size < Self::SIZE {
            set.remove(id);
            return;
        }
        if set.len() >= Self::MAX {
            set.clear(); // a hint only
        }
        set.insert(*id);
    }
}

/// What the connection is built from; every setter rebuilds it.
#[derive(Clone, Copy, Debug)]
struct Settings {
    timeout: Duration,
    connections: usize,
    cache: Option<CacheConfig>,
    replicated: Option<Replicated>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("connection", &self.conn)
            .finish()
    }
}

impl RedisStore {
    /// The key prefix unless [`with_prefix`](Self::with_prefix) sets
    /// another.
    pub const DEFAULT_PREFIX: &'static str = "session:";

    /// The time one call to Redis may take unless
    /// [`with_timeout`](Self::with_timeout) sets another.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    /// The connections to one server unless
    /// [`with_connections`](Self::with_connections) sets another number.
    pub const DEFAULT_CONNECTIONS: usize = 4;

    /// A store on one Redis server, such as `"redis://127.0.0.1:6379"`
    /// (`rediss://` for TLS if the `redis` crate is built with it, and
    /// `redis://user:password@host/db` for credentials and a database),
    /// with the client-side cache on ([`CacheConfig::default`]; see
    /// [`with_cache`](Self::with_cache) and
    /// [`without_cache`](Self::without_cache)).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the address cannot be parsed. Nothing is
    /// connected yet.
    pub fn new(address: impl IntoConnectionInfo) -> Result<Self, Error> {
        let client = Client::open(address).map_err(|e| config_error("address", &e))?;
        Ok(Self::from_client(client))
    }

    /// A store on the server of a [`redis::Client`], with the client-side
    /// cache on, as [`new`](Self::new).
    pub fn from_client(client: Client) -> Self {
        let store = Self::with_target(Target::Single(client));
        let fallback = store.clone();
        store.with_cache(CacheConfig::default()).unwrap_or(fallback)
    }

    /// Turns the client-side cache off: every load reads Redis. For a path
    /// to Redis that may not deliver tracking messages in order (the store
    /// checks each connection's delivery when it opens, and serves nothing
    /// from the cache over one that fails, but a proxy that delivers some
    /// messages and drops others cannot be told apart), for Redis older
    /// than 6 (no RESP3), or to save the memory. Set it before the first
    /// operation.
    pub fn without_cache(mut self) -> Self {
        if self.settings.cache.take().is_some() {
            self = self.rebuild();
        }
        self
    }

    /// A store on a Redis Cluster, given the addresses of some of its
    /// nodes (the rest are discovered).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if there is no address or one cannot be parsed.
    /// Nothing is connected yet.
    pub fn cluster<I>(nodes: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: IntoConnectionInfo,
    {
        let nodes = nodes
            .into_iter()
            .map(|node| {
                node.into_connection_info()
                    .map_err(|e| config_error("cluster node address", &e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.is_empty() {
            return Err(Error::Config(
                "a Redis Cluster needs at least one node address".into(),
            ));
        }
        Ok(Self::with_target(Target::Cluster(nodes)))
    }

    /// A store on the master that Redis Sentinel names `master` (the name
    /// in the Sentinels' `sentinel monitor` line), given the addresses of
    /// some Sentinels (`"redis://10.0.0.1:26379"`). The store asks them for
    /// the master when it connects, and follows a failover without a
    /// restart: see the crate docs, "Sentinel and failover".
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if there is no Sentinel address, one cannot be
    /// parsed, or the name is empty. Nothing is connected yet.
    pub fn sentinel<I>(sentinels: I, master: &str) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: IntoConnectionInfo,
    {
        Self::sentinel_with(sentinels, master, redis::RedisConnectionInfo::default())
    }

    /// As [`sentinel`](Self::sentinel), with what the store needs to talk
    /// to the master (the Sentinels' own credentials go in their
    /// addresses): a user and password, a database.
    ///
    /// # Errors
    ///
    /// As [`sentinel`](Self::sentinel).
    pub fn sentinel_with<I>(
        sentinels: I,
        master: &str,
        settings: redis::RedisConnectionInfo,
    ) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: IntoConnectionInfo,
    {
        let sentinels = sentinels
            .into_iter()
            .map(|node| {
                node.into_connection_info()
                    .map_err(|e| config_error("Sentinel address", &e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if sentinels.is_empty() {
            return Err(Error::Config(
                "finding the Redis master through Sentinel needs at least one Sentinel address"
                    .into(),
            ));
        }
        if master.is_empty() {
            return Err(Error::Config(
                "the Redis master's name (as Sentinel monitors it) is empty".into(),
            ));
        }
        Ok(Self::with_target(Target::Sentinel(SentinelTarget {
            sentinels,
            name: master.to_owned(),
            redis: settings,
        })))
    }

    fn with_target(target: Target) -> Self {
        let settings = Settings {
            timeout: Self::DEFAULT_TIMEOUT,
            connections: Self::DEFAULT_CONNECTIONS,
            cache: None,
            replicated: None,
        };
        let prefix: Arc<str> = Arc::from(Self::DEFAULT_PREFIX);
        Self {
            conn: Arc::new(Self::connection(target, &prefix, settings)),
            prefix,
            settings,
            large: Arc::default(),
        }
    }

    fn connection(target: Target, prefix: &str, settings: Settings) -> Connection {
        let cache = settings
            .cache
            .map(|config| Arc::new(Cache::new(config, prefix, Instant::now())));
        Connection::new(
            target,
            settings.timeout,
            settings.connections,
            cache,
            settings.replicated,
        )
    }

    /// A new connection (and cache) with the current settings.
    fn rebuild(mut self) -> Self {
        let target = self.conn.target().clone();
        self.conn = Arc::new(Self::connection(target, &self.prefix, self.settings));
        self
    }

    /// Puts every key under `prefix` (default `"session:"`), so that
    /// several applications can share one Redis. It should not contain `{`
    /// or `}`, which would change how Cluster assigns keys to slots.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into());
        if self.settings.cache.is_some() {
            // The cache reads the prefix in Redis's invalidation messages.
            self = self.rebuild();
        }
        self
    }

    /// Sets the client-side cache's limits (it is on by default on a single
    /// server, with [`CacheConfig::default`]):
    /// loads of sessions this process has read are answered from memory,
    /// and Redis tells the store (RESP3 client tracking) when any other
    /// client changes or deletes one. See the crate docs, "Client-side
    /// cache", for what it guarantees and what it needs. Set it before the
    /// first operation: a store changed after use opens connections of its
    /// own.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] on a Redis Cluster, where the cache is not
    /// supported (see the crate docs, "Cluster").
    pub fn with_cache(mut self, config: CacheConfig) -> Result<Self, Error> {
        // Invalidations arrive as RESP3 push messages on the connection
        // that read the key.
        let target = match self.conn.target() {
            Target::Single(client) => {
                let info = client.get_connection_info().clone();
                let settings = info
                    .redis_settings()
                    .clone()
                    .set_protocol(ProtocolVersion::RESP3);
                let client = Client::open(info.set_redis_settings(settings))
                    .map_err(|e| config_error("address", &e))?;
                Target::Single(client)
            }
            Target::Sentinel(sentinel) => Target::Sentinel(SentinelTarget {
                redis: sentinel.redis.clone().set_protocol(ProtocolVersion::RESP3),
                ..sentinel.clone()
            }),
            Target::Cluster(_) => {
                return Err(Error::Config(
                    "the Redis client-side cache is not supported on Redis Cluster: \
                     build the store without `with_cache` (SESSION_REDIS_CACHE=false)"
                        .into(),
                ));
            }
        };
        self.settings.cache = Some(config);
        self.conn = Arc::new(Self::connection(target, &self.prefix, self.settings));
        Ok(self)
    }

    /// Acknowledges each write (`create`, `update`, `renew`, `delete`,
    /// `delete_user`) only once at least `replicas` replicas have it: the
    /// write's script is followed, on the same connection and in the same
    /// round trip, by `WAIT replicas timeout`. If fewer replicas confirm
    /// within `timeout`, the write fails with [`Error::Store`] (the
    /// adapters answer 503): it **was applied on the master**, and other
    /// requests may already see it, but it may not be on any replica, so a
    /// failover now could lose it; the client was not told it succeeded.
    /// With a master behind [`sentinel`](Self::sentinel) and `replicas` at
    /// least 1, a failover loses no write that was acknowledged (Sentinel
    /// promotes the replica with the most data); see the crate docs,
    /// "Sentinel and failover". `replicas` 0 turns it off (the default).
    ///
    /// Each write then also waits for the replicas (a round trip from the
    /// master to them, about a millisecond on one network), and calls
    /// queued behind it on its connection wait as long. The timeout of a
    /// writing call becomes the store's timeout plus `timeout`. Set it
    /// before the first operation, as [`with_timeout`](Self::with_timeout).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] on a Redis Cluster (a write there may span
    /// several nodes, each with its own replicas), or for a zero
    /// `timeout` with `replicas` above 0.
    pub fn with_replicated_writes(
        mut self,
        replicas: usize,
        timeout: Duration,
    ) -> Result<Self, Error> {
        if replicas > 0 && self.is_cluster() {
            return Err(Error::Config(
                "acknowledging writes after replication (WAIT) is not supported on Redis Cluster"
                    .into(),
            ));
        }
        if replicas > 0 && timeout.is_zero() {
            return Err(Error::Config(
                "the wait for replicas must be longer than zero".into(),
            ));
        }
        self.settings.replicated = (replicas > 0).then_some(Replicated { replicas, timeout });
        Ok(self.rebuild())
    }

    /// How many replicas must have each write before it is acknowledged,
    /// and how long a write waits for them (see
    /// [`with_replicated_writes`](Self::with_replicated_writes)); `None`
    /// when writes are acknowledged by the master alone.
    pub fn replicated_writes(&self) -> Option<(usize, Duration)> {
        self.settings
            .replicated
            .map(|wait| (wait.replicas, wait.timeout))
    }

    /// Whether the store finds its master through Redis Sentinel.
    pub fn is_sentinel(&self) -> bool {
        matches!(self.conn.target(), Target::Sentinel(_))
    }

    /// How many connections the store opens to one server (default
    /// [`DEFAULT_CONNECTIONS`](Self::DEFAULT_CONNECTIONS), at least 1).
    /// Each connection answers in order, so a large reply delays only the
    /// calls queued on its own connection; calls go to the least busy one
    /// (with the cache on, each session's calls go to one connection picked
    /// by its id, which keeps the cache coherent with this process's own
    /// writes). Ignored on Cluster, which keeps one connection per node.
    pub fn with_connections(mut self, connections: usize) -> Self {
        self.settings.connections = connections.max(1);
        self.rebuild()
    }

    /// Whether the client-side cache is on.
    pub fn is_cached(&self) -> bool {
        self.conn.cache().is_some()
    }

    /// What the client-side cache has done so far, if it is on.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.conn.cache().map(Cache::stats)
    }

    /// The number of connections to one server.
    pub fn connections(&self) -> usize {
        self.conn.pool_size()
    }

    /// Bounds every call to Redis (default 2 seconds): a call that takes
    /// longer fails with [`Error::Store`], so a hung Redis never hangs a
    /// request. It is also the `redis` crate's connection and response
    /// timeout. Set it before the first operation: a store changed after
    /// use opens a connection of its own.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self.rebuild()
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The timeout of each call to Redis.
    pub fn timeout(&self) -> Duration {
        self.conn.timeout()
    }

    /// Whether the store is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.conn.is_cluster()
    }

    /// Connects if need be and checks that Redis answers (on Cluster, every
    /// primary). For start-up and health checks.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if Redis cannot be reached in time.
    pub async fn ping(&self) -> Result<(), Error> {
        self.conn.ping().await
    }

    pub(crate) fn session_key(&self, id: &SessionId) -> String {
        session_key(&self.prefix, id)
    }

    pub(crate) fn user_key(&self, user: &str) -> String {
        user_key(&self.prefix, user)
    }

    /// The store-wide index of a single node (see `scripts.rs`): ids by
    /// expiry, and ids in order.
    fn all_keys(&self) -> (String, String) {
        (
            format!("{}all:exp", self.prefix),
            format!("{}all:ids", self.prefix),
        )
    }

    /// The operator's calls are not there on Cluster: the sessions spread
    /// over the masters' slots, and no one key could index them all.
    fn no_operator_calls_on_cluster(what: &str) -> Error {
        Error::store(format!(
            "{what} is not supported on Redis Cluster (it is on a single server)"
        ))
    }

    /// The connection of a session's calls: with the cache, always the
    /// same one (see `pool.rs`); without, the least busy.
    fn route(&self, id: &SessionId) -> Route {
        if self.conn.cache().is_none() {
            return Route::Any;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        id.hash(&mut hasher);
        Route::Key(hasher.finish())
    }

    /// `HGETALL` of a session, decoded, on `route`.
    async fn fetch(&self, id: &SessionId, route: Route) -> Result<Option<Record>, Error> {
        let reply = self
            .conn
            .query_on(route, redis::cmd("HGETALL").arg(self.session_key(id)))
            .await?;
        decode_record(hash_pairs(reply)?)
    }

    /// The [`scripts::CREATE`] call for a record (the index keys only on a
    /// single node).
    pub(crate) fn create_call<'a>(
        &self,
        id: &SessionId,
        record: &Record,
        single_node: bool,
    ) -> scripts::Call<'a> {
        let mut call = scripts::Call::new(&scripts::CREATE);
        call.key(self.session_key(id));
        if single_node {
            let (by_expiry, by_id) = self.all_keys();
            call.key(by_expiry).key(by_id);
            if let Some(user) = record.meta.user.as_deref() {
                call.key(self.user_key(user));
            }
        }
        call.arg(redis_millis(record.expires_at))
            .arg(id.to_string())
            .arg(flag(self.is_cached()));
        for (field, value) in record_fields(record) {
            call.arg(field).arg(value);
        }
        call
    }

    /// The [`scripts::CREATE_LIMITED`] call for a record with a user.
    fn create_limited_call<'a>(
        &self,
        id: &SessionId,
        record: &Record,
        user: &str,
        limit: UserLimit,
    ) -> scripts::Call<'a> {
        let mut call = scripts::Call::new(&scripts::CREATE_LIMITED);
        call.key(self.session_key(id)).key(self.user_key(user));
        call.arg(redis_millis(record.expires_at))
            .arg(id.to_string())
            .arg(flag(self.is_cached()))
            .arg(&*self.prefix)
            .arg(user)
            .arg(record.meta.last_activity.unix_millis())
            .arg(limit.max)
            .arg(flag(limit.policy == LimitPolicy::Refuse));
        for (field, value) in record_fields(record) {
            call.arg(field).arg(value);
        }
        call
    }

    /// The [`scripts::UPDATE`] or [`scripts::RENEW`] call for an update
    /// (see `scripts::APPLY_UPDATE` for the arguments).
    pub(crate) fn update_call<'a>(
        &self,
        script: &'a Script,
        keys: &[&str],
        update: &Update,
        index_here: bool,
        ids: (&SessionId, Option<&SessionId>),
    ) -> scripts::Call<'a> {
        let mut call = scripts::Call::new(script);
        for key in keys {
            call.key(*key);
        }
        call.arg(update.last_activity.unix_millis())
            .arg(update.expires_at.unix_millis())
            .arg(redis_millis(update.expires_at))
            .arg(flag(update.cleared));
        match &update.user {
            None => call.arg("0").arg(""),
            Some(None) => call.arg("1").arg(""),
            Some(Some(user)) => call.arg("2").arg(&**user),
        };
        match &update.expiry {
            None => call.arg("0").arg("").arg("").arg(""),
            Some(expiry) => call
                .arg("1")
                .arg(expiry.idle.map(duration_text).unwrap_or_default())
                .arg(expiry.lifetime.map(duration_text).unwrap_or_default())
                .arg(expiry.persistent.map(flag).unwrap_or_default()),
        };
        call.arg(flag(index_here))
            .arg(&*self.prefix)
            .arg(ids.0.to_string())
            .arg(ids.1.map(ToString::to_string).unwrap_or_default())
            .arg(flag(self.is_cached()));
        match update.max_bytes {
            usize::MAX => call.arg(""),
            limit => call.arg(limit),
        };
        match update.authenticated_at {
            None => call.arg("-"),
            Some(None) => call.arg(""),
            Some(Some(at)) => call.arg(at.unix_millis()),
        };
        match update.max_per_user {
            None => call.arg("").arg("0"),
            Some(limit) => call
                .arg(limit.max)
                .arg(flag(limit.policy == LimitPolicy::Refuse)),
        };
        call.arg(update.removed.len());
        for key in &update.removed {
            call.arg(layout::data_field(key));
        }
        for (key, value) in &update.set {
            call.arg(layout::data_field(key)).arg(value);
        }
        call.arg(layout::EXPIRES)
            .arg(update.expires_at.unix_millis());
        call
    }
}

fn config_error(what: &str, err: &redis::RedisError) -> Error {
    Error::Config(format!("invalid Redis {what}: {err}"))
}

/// A script's `{code, ...}` reply as an outcome: [`outcome`], and for
/// [`TOO_LARGE`] the size that follows the code.
pub(crate) fn write_outcome(code: i64, rest: Vec<Value>) -> Result<WriteOutcome, Error> {
    if code == WRITTEN
        && let Some(Value::Int(ended)) = rest.first()
        && *ended > 0
    {
        return Ok(WriteOutcome::WrittenEndingOldest {
            ended: usize::try_from(*ended).unwrap_or_default(),
        });
    }
    if code != TOO_LARGE {
        return outcome(code);
    }
    let size = rest.first().map(int).transpose()?.unwrap_or_default();
    Ok(WriteOutcome::TooLarge {
        size: usize::try_from(size).unwrap_or_default(),
    })
}

/// A script's status code as an outcome.
pub(crate) fn outcome(code: i64) -> Result<WriteOutcome, Error> {
    match code {
        WRITTEN => Ok(WriteOutcome::Written),
        MISSING => Ok(WriteOutcome::Missing),
        TAKEN => Ok(WriteOutcome::IdTaken),
        USER_LIMIT => Ok(WriteOutcome::UserLimitReached),
        CORRUPT => Err(Error::corrupt(
            "the session key holds no valid session hash",
        )),
        _ => Err(unexpected("an unknown status code")),
    }
}

/// An integer reply.
pub(crate) fn int(reply: &Value) -> Result<i64, Error> {
    match reply {
        Value::Int(n) => Ok(*n),
        _ => Err(unexpected("a status that is not an integer")),
    }
}

/// The items of an array reply.
pub(crate) fn items(reply: Value) -> Result<Vec<Value>, Error> {
    match reply {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        _ => Err(unexpected("a reply that is not an array")),
    }
}

/// A script's `{code, ...}` reply: the code and the rest.
pub(crate) fn status(reply: Value) -> Result<(i64, Vec<Value>), Error> {
    let mut items = items(reply)?.into_iter();
    let code = int(&items.next().ok_or_else(|| unexpected("an empty status"))?)?;
    Ok((code, items.collect()))
}

/// A user name from a reply: nil is no user.
pub(crate) fn user(reply: Option<Value>) -> Result<Option<String>, Error> {
    match reply {
        None | Some(Value::Nil) => Ok(None),
        Some(value) => String::from_utf8(layout::bytes(value)?)
            .map(Some)
            .map_err(|_| Error::corrupt("the session's user is not UTF-8")),
    }
}

/// Session ids from an array reply; members that are no id are skipped.
pub(crate) fn ids(reply: Value) -> Result<Vec<SessionId>, Error> {
    let mut ids = Vec::new();
    for member in items(reply)? {
        if let Some(id) = SessionId::parse(&layout::bytes(member)?) {
            ids.push(id);
        }
    }
    Ok(ids)
}

impl SessionStore for RedisStore {
    async fn load(&self, id: &SessionId, now: Timestamp) -> Result<Option<Record>, Error> {
        let Some(cache) = self.conn.cache() else {
            let record = self.fetch(id, self.large.route(id)).await?;
            self.large.note(id, record.as_ref());
            return Ok(record.filter(|record| record.expires_at > now));
        };
        // Served only with proof of fresh invalidations (the staleness
        // bound): the clock is read once, a vDSO call, no syscall.
        let pending = match cache.lookup(id, now, Instant::now()) {
            Lookup::Hit(record) => return Ok(Some(record)),
            Lookup::Miss(ticket) => Pending::new(cache, id, ticket),
        };
        // Dropped with this future, `pending` abandons the ticket.
        let record = self.fetch(id, self.route(id)).await?;
        let record = record.filter(|record| record.expires_at > now);
        cache.fill(id, pending.done(), record.as_ref());
        Ok(record)
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<WriteOutcome, Error> {
        if self.is_cluster() {
            return self.cluster_create(id, record).await;
        }
        let call = self.create_call(id, record, true);
        let Some(cache) = self.conn.cache() else {
            return outcome(int(&self.conn.write_on(self.route(id), &call).await?)?);
        };
        let pending = Pending::new(cache, id, cache.begin_create(id));
        let result = match self.conn.write_on(self.route(id), &call).await {
            Ok(reply) => int(&reply).and_then(outcome),
            Err(err) => Err(err),
        };
        let ticket = pending.done();
        match result {
            Ok(WriteOutcome::Written) => cache.finish_create(id, ticket, record),
            _ => cache.remove(id),
        }
        result
    }

    async fn create_limited(
        &self,
        id: &SessionId,
        record: &Record,
        limit: UserLimit,
    ) -> Result<WriteOutcome, Error> {
        let Some(user) = record.meta.user.as_deref() else {
            return self.create(id, record).await;
        };
        if self.is_cluster() {
            return self.cluster_create_limited(id, record, limit).await;
        }
        let call = self.create_limited_call(id, record, user, limit);
        // Redis tells no connection about its own writes (NOLOOP): the
        // sessions the script ended may be cached here.
        let forget = |ended: bool| {
            if let Some(cache) = self.conn.cache() {
                cache.remove(id);
                if ended {
                    cache.remove_user(user);
                }
            }
        };
        let unsure = OnDrop::new(|| forget(true));
        let reply = self.conn.invoke_on(self.route(id), &call).await;
        unsure.disarm();
        let result = reply
            .and_then(status)
            .and_then(|(code, rest)| write_outcome(code, rest));
        forget(!matches!(
            result,
            Ok(WriteOutcome::Written | WriteOutcome::UserLimitReached)
        ));
        result
    }

    async fn update(&self, id: &SessionId, update: Update) -> Result<WriteOutcome, Error> {
        if self.is_cluster() {
            let write = self.cluster_update(id, &update);
            return match update.limited_user() {
                Some((user, limit)) => {
                    let now = update.last_activity;
                    self.cluster_within_limit(user, limit, now, &[*id], write)
                        .await
                }
                None => write.await,
            };
        }
        let key = self.session_key(id);
        let call = self.update_call(&scripts::UPDATE, &[&key], &update, true, (id, None));
        let Some(cache) = self.conn.cache() else {
            let (code, rest) = status(self.conn.write_on(self.route(id), &call).await?)?;
            return write_outcome(code, rest);
        };
        let from = cache.begin_update(id);
        // A future dropped after sending may or may not have been applied.
        let unsure = OnDrop::new(|| cache.remove(id));
        let result = match self.conn.write_on(self.route(id), &call).await {
            Ok(reply) => status(reply).and_then(|(code, rest)| write_outcome(code, rest)),
            Err(err) => Err(err),
        };
        drop(call);
        unsure.disarm();
        match (result.as_ref(), update.limited_user()) {
            (Ok(WriteOutcome::Written), _) => cache.finish_update(id, from, update),
            (Ok(WriteOutcome::WrittenEndingOldest { .. }), Some((user, _))) => {
                cache.remove(id);
                cache.remove_user(user);
            }
            // Missing, or a failure that may or may not have been applied.
            _ => cache.remove(id),
        }
        result
    }

    async fn renew(
        &self,
        old_id: &SessionId,
        new_id: &SessionId,
        update: &Update,
    ) -> Result<WriteOutcome, Error> {
        let forget = |ended: bool| {
            if let Some(cache) = self.conn.cache() {
                // The new id is loaded (and tracked) on its own connection.
                cache.remove(old_id);
                cache.remove(new_id);
                if let Some((user, _)) = update.limited_user().filter(|_| ended) {
                    // Sessions the per-user limit ended (NOLOOP).
                    cache.remove_user(user);
                }
            }
        };
        let unsure = OnDrop::new(|| forget(true));
        let result = if self.is_cluster() {
            let write = self.cluster_renew(old_id, new_id, update);
            match update.limited_user() {
                Some((user, limit)) => {
                    let (now, except) = (update.last_activity, [*old_id, *new_id]);
                    self.cluster_within_limit(user, limit, now, &except, write)
                        .await
                }
                None => write.await,
            }
        } else {
            let keys = [self.session_key(old_id), self.session_key(new_id)];
            let call = self.update_call(
                &scripts::RENEW,
                &[&keys[0], &keys[1]],
                update,
                true,
                (old_id, Some(new_id)),
            );
            match self.conn.write_on(self.route(old_id), &call).await {
                Ok(reply) => status(reply).and_then(|(code, rest)| write_outcome(code, rest)),
                Err(err) => Err(err),
            }
        };
        unsure.disarm();
        forget(!matches!(
            result,
            Ok(WriteOutcome::Written | WriteOutcome::UserLimitReached)
        ));
        result
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, Error> {
        let cluster = self.is_cluster();
        let mut call = scripts::Call::new(&scripts::DELETE);
        call.key(self.session_key(id))
            .arg(flag(!cluster))
            .arg(&*self.prefix)
            .arg(id.to_string());
        let forget = || {
            if let Some(cache) = self.conn.cache() {
                cache.remove(id);
            }
        };
        let unsure = OnDrop::new(forget);
        let reply = self.conn.write_on(self.route(id), &call).await;
        unsure.disarm();
        forget();
        let (code, rest) = status(reply?)?;
        if cluster && code == 1 {
            self.cluster_unindex(rest.into_iter().next(), id).await;
        }
        Ok(code == 1)
    }

    async fn user_sessions(&self, user: &str, now: Timestamp) -> Result<Vec<SessionId>, Error> {
        let cluster = self.is_cluster();
        let mut call = scripts::Call::new(&scripts::USER_SESSIONS);
        call.key(self.user_key(user))
            .arg(now.unix_millis())
            .arg(flag(!cluster))
            .arg(&*self.prefix)
            .arg(user);
        let candidates = ids(self.conn.invoke(&call).await?)?;
        if cluster {
            return self.cluster_live_sessions(user, candidates, now).await;
        }
        Ok(candidates)
    }

    async fn delete_user(&self, user: &str) -> Result<usize, Error> {
        if self.is_cluster() {
            return self.cluster_delete_user(user).await;
        }
        let mut call = scripts::Call::new(&scripts::DELETE_USER);
        call.key(self.user_key(user)).arg(&*self.prefix).arg(user);
        let forget = || {
            if let Some(cache) = self.conn.cache() {
                // Redis tells no connection about its own writes (NOLOOP),
                // and this one may track some of these sessions.
                cache.remove_user(user);
            }
        };
        let unsure = OnDrop::new(forget);
        let reply = self.conn.write(&call).await;
        unsure.disarm();
        forget();
        let ended = int(&reply?)?;
        usize::try_from(ended).map_err(|_| unexpected("a negative count"))
    }

    /// One `ZCOUNT` of the store-wide index by expiry. Sessions written
    /// before the index existed count once they are next written.
    async fn count(&self, now: Timestamp) -> Result<usize, Error> {
        if self.is_cluster() {
            return Err(Self::no_operator_calls_on_cluster("counting sessions"));
        }
        let (by_expiry, _) = self.all_keys();
        let mut cmd = redis::cmd("ZCOUNT");
        cmd.arg(by_expiry)
            .arg(format!("({}", now.unix_millis()))
            .arg("+inf");
        let count = int(&self.conn.query(&cmd).await?)?;
        usize::try_from(count).map_err(|_| unexpected("a negative count"))
    }

    /// One script: `ZRANGEBYLEX` of the store-wide index from the cursor,
    /// and each session's hash; entries of sessions Redis has expired are
    /// dropped on the way (a page costs the page plus those).
    async fn list(
        &self,
        now: Timestamp,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<(SessionId, Record)>, Error> {
        if self.is_cluster() {
            return Err(Self::no_operator_calls_on_cluster("listing sessions"));
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut call = scripts::Call::new(&scripts::LIST);
        call.arg(&*self.prefix)
            .arg(now.unix_millis())
            .arg(after.map(ToString::to_string).unwrap_or_default())
            .arg(limit);
        let mut page = Vec::new();
        let mut items = items(self.conn.invoke(&call).await?)?.into_iter();
        while let (Some(id), Some(fields)) = (items.next(), items.next()) {
            let Some(id) = SessionId::parse(&layout::bytes(id)?) else {
                continue;
            };
            // An unreadable record is no live session.
            if let Ok(Some(record)) = hash_pairs(fields).and_then(decode_record)
                && record.expires_at > now
            {
                page.push((id, record));
            }
        }
        Ok(page)
    }

    /// Batches of 500 sessions, each one script, in order through the
    /// store-wide index; each session's user index entry goes with it.
    async fn delete_all(&self) -> Result<usize, Error> {
        if self.is_cluster() {
            return Err(Self::no_operator_calls_on_cluster("ending every session"));
        }
        let forget = || {
            if let Some(cache) = self.conn.cache() {
                // Redis tells no connection about its own writes (NOLOOP).
                cache.clear();
            }
        };
        let unsure = OnDrop::new(forget);
        let mut ended = 0;
        let mut after = String::new();
        let result = loop {
            let mut call = scripts::Call::new(&scripts::DELETE_ALL);
            call.arg(&*self.prefix).arg(&after).arg(500);
            let reply = match self.conn.write(&call).await {
                Ok(reply) => reply,
                Err(e) => break Err(e),
            };
            let (count, rest) = status(reply)?;
            ended += usize::try_from(count).map_err(|_| unexpected("a negative count"))?;
            let last = layout::bytes(rest.into_iter().next().unwrap_or(Value::Nil))?;
            if last.is_empty() {
                break Ok(ended);
            }
            after = String::from_utf8(last).map_err(|_| unexpected("an id that is not text"))?;
        };
        unsure.disarm();
        forget();
        result
    }
}

/// Runs a closure when dropped, unless disarmed: with the cache on, a write
/// whose future is dropped after its command was sent may or may not have
/// been applied, and Redis tells this process nothing about its own writes,
/// so the sessions it touched are forgotten.
struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> OnDrop<F> {
    fn new(f: F) -> Self {
        Self(Some(f))
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}
