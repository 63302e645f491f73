//! A [`SessionStore`](session_core::SessionStore) on Redis or a Redis
//! Cluster, for when more than one server process (or machine) serves the
//! same sessions.
//!
//! [`RedisStore`] meets the whole store contract of `session-core`: each
//! operation is atomic, concurrent requests that change different keys both
//! keep their change, and a session that was deleted or has expired is
//! never brought back by a late write.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use session_core::{SessionConfig, SessionManager};
//! use session_redis::RedisStore;
//!
//! # async fn run() -> Result<(), session_core::Error> {
//! let store = RedisStore::new("redis://127.0.0.1:6379")?
//!     .with_prefix("myapp:session:")
//!     .with_timeout(Duration::from_secs(1));
//! store.ping().await?; // optional: fail at start-up if Redis is away
//! let sessions = SessionManager::new(store, SessionConfig::default())?;
//! # drop(sessions);
//! // For a Cluster, name some of its nodes:
//! let cluster = RedisStore::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])?;
//! # drop(cluster);
//! # Ok(()) }
//! ```
//!
//! Requires Redis 6.2 or later (or a server that speaks its commands and
//! Lua scripting), and runs on Tokio (as axum, actix-web and hyper do):
//! its futures must be polled inside a Tokio runtime.
//!
//! # Several app servers on one Redis
//!
//! Every process that serves the same sessions needs the same four things:
//! the Redis (or Cluster) address, the key prefix, the cookie settings with
//! the same signing secrets ([`SigningKeys`](session_core::SigningKeys);
//! rotate them on every process together), and clocks kept in sync (NTP).
//! Then a visitor's requests may land on any process, in any framework: the
//! example apps show it with `SESSION_STORE=redis` and one `SESSION_SECRET`
//! (`examples/tests/multi_process.rs` runs the axum, actix and hyper
//! binaries side by side on one Redis). Different apps that must not see
//! each other's sessions use different prefixes.
//!
//! # Key layout
//!
//! With the default prefix `session:`:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `session:{<id>}` | hash | one session |
//! | `session:user:{<user>}` | sorted set | the user's session ids, scored by their expiry |
//! | `session:all:exp` | sorted set | one server only: every session id, scored by its expiry (the operator's `count`: one `ZCOUNT`) |
//! | `session:all:ids` | sorted set | one server only: every session id, scored 0 (the operator's `list`: a page is one `ZRANGEBYLEX` from the cursor, in the byte order of the ids' text) |
//!
//! `<id>` is the 22-character text of the
//! [`SessionId`](session_core::SessionId) the store is given
//! (the engine may hand stores a hash of the cookie's id). The braces are
//! Cluster hash tags: each session, and each user's index, is a single key
//! in a slot of its own choosing. A session hash has these fields:
//!
//! | field | value |
//! | --- | --- |
//! | `m:created`, `m:last`, `m:exp` | creation, last activity and expiry, Unix milliseconds |
//! | `m:user` | the user, absent when there is none |
//! | `m:idle`, `m:life` | per-session idle timeout and lifetime, milliseconds, absent if not overridden |
//! | `m:pers` | per-session persistent cookie, `1` or `0`, absent if not overridden |
//! | `d:<key>` | one value, as the JSON text the session holds (never re-encoded) |
//!
//! A key holding anything else (another type, a missing or non-numeric
//! time, a field outside the layout, text that is not UTF-8) is read as
//! [`Error::Corrupt`](session_core::Error::Corrupt), which the engine treats
//! as no session. Nothing in this crate panics on what it reads.
//!
//! # Expiry and TTLs
//!
//! Whether a session is live is decided by its `m:exp` against the `now`
//! the engine passes in: [`load`](session_core::SessionStore::load) returns
//! nothing once `m:exp <= now`, and writes refuse a session whose `m:exp`
//! is not after the write's last activity. Redis TTLs are garbage
//! collection only: every write sets the session key's expiry
//! (`PEXPIREAT`) to `m:exp`, so ended sessions leave Redis by themselves;
//! an index entry is dropped once its score has passed by the Redis
//! server's clock, and the index key expires with its last session. Keep
//! the clocks of Redis and the application servers in sync (NTP): a Redis
//! clock far ahead would drop sessions early.
//!
//! # Round trips
//!
//! On one server every operation is one round trip: a single `HGETALL` for
//! [`load`](session_core::SessionStore::load), and one Lua script
//! (`EVALSHA`) for each of the others, which also keeps the user index.
//! Scripts are loaded into a server the first time it lacks one (`NOSCRIPT`,
//! then `SCRIPT LOAD` and a retry: three round trips, once per server
//! start). So a request costs one round trip to load its session and one to
//! commit it; with the [client-side cache](#client-side-cache), a read-only
//! request on a cached session costs none and a writing request one.
//!
//! # Connections
//!
//! On one server the store keeps a small pool of multiplexed connections
//! ([`RedisStore::with_connections`], [`RedisStore::DEFAULT_CONNECTIONS`]),
//! each opened on first use and replaced after it fails. A multiplexed
//! connection answers in order, so one large reply delays every reply
//! queued behind it on that connection: calls go to the least busy
//! connection, and loads of sessions that were large (64 KiB or more) when
//! last loaded all take the first one, which the others then avoid. While
//! 40 clients read a 256 KiB session back to back, another visitor's load
//! took (p99, debug build, this crate's `head_of_line` test) 31-45 ms on
//! one connection, 12-19 ms on the pool, and 0.03-5.5 ms with the cache on
//! (the large session then comes from memory).
//!
//! # Cluster
//!
//! A Cluster script may only touch keys of one slot, and a session, its
//! user's index, and (for a renew) the new id's session are in different
//! slots. Each step is still one atomic script on one key, but some
//! operations take more than one step (measured by this crate's tests):
//!
//! | operation | round trips on Cluster |
//! | --- | --- |
//! | `load` | 1 |
//! | `create`, `update`, `delete` of a session without a user | 1 |
//! | the same with a user | 2 (one more on the user's index) |
//! | `update` that changes the user | 3 (add to the new index, write, leave the old one) |
//! | `renew` | 4 with a user (take out, index, create, leave the old entry), 2 without |
//! | `user_sessions`, `delete_user` | 1 on the index, then 1 per session of that user, sent concurrently (`delete_user` adds 1 to clean the index) |
//!
//! `renew` takes the old session out in one atomic script (read and
//! delete), writes it under the new id only if that id is unused, and puts
//! the old one back if the new id is taken or the write fails. The old id
//! is dead from the first step on. The price: for the moment between the
//! steps the session is under neither id (a concurrent request of that
//! visitor sees no session), and if Redis fails during both the write and
//! the putting back, the session is lost and its user must log in again.
//! If the new session's write succeeded but its answer was lost (a
//! timeout), the old session is put back too; the renew then fails, so the
//! new id never reaches the visitor, and its copy just expires.
//!
//! The index is written before a session joins it and cleaned after the
//! session leaves, and it is only a hint: listing and ending a user's
//! sessions check each session's own expiry and user. A failure between the
//! steps leaves at worst a stale entry, which is harmless and goes when its
//! score passes. One gap remains: if the index command after an update
//! fails, the update returns [`Error::Store`](session_core::Error::Store)
//! and the index entry may expire before the session, until the session's
//! next successful update; and a `delete_user` that runs between a renew's
//! steps may miss the renewed session.
//!
//! On one server none of this applies: each operation, index included, is
//! one atomic script.
//!
//! The operator's calls ([`count`](session_core::SessionStore::count),
//! [`list`](session_core::SessionStore::list),
//! [`delete_all`](session_core::SessionStore::delete_all)) are not
//! supported on Cluster: they answer [`Error::Store`](session_core::Error::Store)
//! ("not supported on Redis Cluster"). On one server the scripts keep the
//! store-wide index in the same atomic step as each write; every write that
//! adds an entry drops up to 100 entries of sessions Redis has expired, and
//! a page drops those it meets, so a page costs the page plus the stale
//! entries in its way. `delete_all` ends sessions in batches of 500 (one
//! script each), with their user index entries. Sessions written by an
//! older version of this crate join the index at their next update.
//!
//! The client-side cache is refused on Cluster
//! ([`RedisStore::with_cache`] returns
//! [`Error::Config`](session_core::Error::Config)). Tracking works per node,
//! but a Cluster connection opens, closes and moves node connections by
//! itself (on failover, resharding, `MOVED`) without telling the store, and
//! the cache must drop everything whenever a tracking connection goes; nor
//! does the Cluster connection let the store pin a session to one
//! connection, which keeps the cache coherent with its own writes. Rather
//! than a cache that may miss an invalidation, none.
//!
//! # Sentinel and failover
//!
//! [`RedisStore::sentinel`] finds the master through Redis Sentinel
//! ([`sentinel_with`](RedisStore::sentinel_with) adds the master's
//! credentials or database) and follows a failover without a restart:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use session_redis::RedisStore;
//!
//! # fn run() -> Result<(), session_core::Error> {
//! let sentinels = ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379", "redis://10.0.0.3:26379"];
//! let store = RedisStore::sentinel(sentinels, "mymaster")?
//!     // Acknowledge a write once a replica has it (at most 1 s more).
//!     .with_replicated_writes(1, Duration::from_secs(1))?;
//! # drop(store);
//! # Ok(()) }
//! ```
//!
//! - A connection opens to the master Sentinel names (the `redis` crate checks
//!   it with `ROLE`). When a connection is lost or a connect fails, the next
//!   connect asks Sentinel again; a write answered `READONLY` (the server was
//!   demoted) gives up every connection at once; and every second the store
//!   asks a Sentinel which master it announces (one command on a kept
//!   connection), leaving the old one if it changed, so a master demoted while
//!   its connections stayed open is left within about a second.
//! - During the switch, calls fail with [`Error::Store`](session_core::Error::Store) (503), never a panic:
//!   from the crash until Sentinel has promoted a replica (its
//!   `down-after-milliseconds` plus the election, 2.2-2.4 s with 1000 ms in
//!   the tests), the dead master refuses connections and Sentinel names no
//!   other. The first write after the promotion succeeds: writes resumed
//!   0-0.05 s after Sentinel named the new master in the tests.
//! - With the cache on, every connection of the old master is gone, and the
//!   cache with it; it serves again only after a connection to the new
//!   master has turned tracking on and answered its first `PING`, as after
//!   any lost connection (the staleness proof starts over).
//!
//! Replication is asynchronous: a write the master acknowledged may not have
//! reached a replica when the master dies, and is then lost.
//! [`with_replicated_writes(replicas, timeout)`](RedisStore::with_replicated_writes) closes that gap: each write's
//! script is followed, on the same connection and in the same round trip, by
//! `WAIT replicas timeout`, and the write is acknowledged only if that many
//! replicas confirm. If fewer do in time, the call fails with [`Error::Store`](session_core::Error::Store)
//! (503): the write **was applied on the master** (later reads may see it)
//! but may not be on any replica, so the client was not told it succeeded.
//! With `replicas >= 1` behind Sentinel, a failover loses no acknowledged
//! write: Sentinel promotes the replica with the most data, which has every
//! write at least one replica confirmed. Leave it off (0) where a write lost
//! in a crash costs little; with it, every write waits a round trip from the
//! master to its replicas, calls queued behind a `WAIT` on its connection
//! wait too, and writes stop (503) while fewer replicas than asked are up, so
//! run at least `replicas + 1` replicas to survive losing one. Not supported
//! on Cluster.
//!
//! Measured by `examples/tests/sentinel_failover.rs` (a master, two replicas,
//! three Sentinels with quorum 2 and `down-after-milliseconds 1000`; the
//! master killed with SIGKILL while a client writes a new key per request
//! every 10 ms): on axum, actix and hyper, Sentinel named the new master
//! 2.2-2.4 s after the kill and the apps answered 200 again within 0.05 s of
//! that, with only 200 or 503 in between; with `SESSION_REDIS_WAIT=1` no
//! acknowledged write was lost. Without it none was lost either in these runs
//! (replication on loopback is quick), but nothing guarantees it.
//!
//! # Outages
//!
//! Every call to Redis is bounded by [`RedisStore::with_timeout`] (2 seconds
//! by default), which is also the `redis` crate's connection and response
//! timeout. A Redis that is down, refuses, or hangs gives
//! [`Error::Store`](session_core::Error::Store) with the cause as its
//! source, never a panic and never a hung request; the adapters answer it
//! with the configured status (503 by default). A timed-out write may or
//! may not have been applied, but each script is atomic, so never half.
//! The timeout is per call: on a Cluster, an operation of several steps
//! may take up to that many timeouts.
//!
//! The connections open on first use and, on one server, a connection that
//! failed is replaced by the next call that needs it: once Redis is back,
//! the same store works again. A Cluster connection rediscovers its nodes
//! the same way. Sessions survive an outage if Redis persists them (RDB or
//! AOF); with persistence off, a restarted Redis has none and visitors get
//! fresh sessions.
//!
//! With the cache on, a lost or refused connection drops the whole cache at
//! once (an invalidation may have been lost with it), and so does a
//! restarted or flushed Redis. A stalled one (a network partition, a hung
//! proxy or Redis: connections open, nothing comes back) stops cached reads
//! within the [staleness bound](#the-staleness-bound) (100 ms by default):
//! loads then go to Redis and fail with the timeout like every other call,
//! and the connection is given up, with the cache, when its `PING` has not
//! come back within the timeout.
//!
//! # Client-side cache
//!
//! On one server the store keeps the sessions this process has read in
//! memory (on by default; [`RedisStore::with_cache`] sets its limits,
//! [`RedisStore::without_cache`] turns it off), within a number of
//! sessions and of bytes ([`CacheConfig`]), and Redis tells the store when
//! any other client changes or deletes one (server-assisted client-side
//! caching: RESP3 `CLIENT TRACKING`).
//!
//! ```no_run
//! use session_redis::{CacheConfig, RedisStore};
//!
//! # fn run() -> Result<(), session_core::Error> {
//! let store = RedisStore::new("redis://127.0.0.1:6379")?
//!     .with_cache(CacheConfig::default().with_max_bytes(256 << 20))?;
//! # drop(store);
//! # Ok(()) }
//! ```
//!
//! What it guarantees (each tested in this crate's `tests/redis_store/`):
//!
//! - **A read-only request on a cached session costs 0 round trips**: the
//!   load is answered from memory, after checking the session's
//!   `expires_at` against `now`, as every load does.
//! - **A writing request costs 1**: the load is served from memory and the
//!   commit is the same one script as without the cache. Afterwards the
//!   cache holds the session as written, so the next request costs nothing.
//! - **Coherence**: a change or logout (delete, `delete_user`, renew) made
//!   through any process is seen by every other process as soon as Redis's
//!   invalidation message reaches it, and never later than the staleness
//!   bound. In the tests, a second process
//!   (polling every 5 ms) saw updates after 1.7-6 ms and a logout after
//!   1.4-2.8 ms, over several runs, and two stores in one process saw every change, delete,
//!   `delete_user` and renew on their first or second poll: far within
//!   100 ms, the 5 ms polls included. This process's own writes update or
//!   drop its entry at once.
//! - **No resurrection, no lost write**: the cache never decides a write.
//!   Writes are the same scripts, which check the session is still live and
//!   apply only what changed to what Redis holds, so a write from a stale
//!   cached copy is refused (the session ended) or merged, never a copy.
//! - **Uncertain writes are forgotten**: a write that fails, times out, or
//!   whose request is cancelled after its command was sent may or may not
//!   have been applied, so the sessions it touched leave the cache.
//! - **A hard staleness bound** ([`CacheConfig::with_staleness_bound`],
//!   default 100 ms): the cache serves only while it has proof, younger
//!   than the bound, that Redis's invalidations reach it and are caught up.
//!   A session changed or ended through another process is never served
//!   from this cache later than the bound after that write was
//!   acknowledged, whatever happens to the network (see
//!   [below](#the-staleness-bound)).
//! - **Whole drops**: a connection lost (or replaced), a restarted Redis, or
//!   `FLUSHALL` drops everything cached; so does a connection whose `PING`
//!   is not answered within the timeout.
//!
//! How it stays coherent: each pooled connection speaks RESP3 and runs
//! `CLIENT TRACKING ON NOLOOP`, so Redis remembers which keys it read and
//! pushes an `invalidate` message on that same connection when another
//! client changes one. A session's calls all go to one connection, picked
//! by its id, so the push for a change that happened before this process's
//! next reply arrives before that reply; pushes are applied inside the
//! connection's read loop. An entry is only ever installed over a marker
//! set before its command was sent, and every push, flush or write of this
//! process removes the marker, so a reply that raced with any of them is
//! not cached. `NOLOOP` spares this process the messages about its own
//! writes, which it applies to its entry itself; the write scripts end
//! with a read of the key (one `EXISTS`) so that Redis tracks it again.
//!
//! ## The staleness bound
//!
//! Invalidations that stop flowing make no noise: a process whose
//! connections stall (a partition, a hung proxy) would keep serving what it
//! cached, logged-out sessions included. So every tracking connection sends
//! a `PING` as soon as tracking is on and then every half bound. Redis
//! writes a connection's invalidations before any later reply on it, and
//! the store applies them in the read loop before the reply reaches the
//! `PING`'s sender: the answer to a `PING` sent at *t* proves every change
//! acknowledged before *t* has reached the cache, which may then serve
//! until *t* + bound (the send time counts, not the arrival, so a slow
//! answer proves less). A cached read checks that deadline: one clock read
//! and one atomic load. The cache serves only before the earliest deadline
//! of the open connections, so one connection without fresh proof sends
//! every load to Redis:
//!
//! - **stalled** (nothing comes back): cached sessions stop being served
//!   at most one bound after the last answered `PING` was sent (98-100 ms
//!   in this crate's `staleness` tests); loads then wait for Redis and fail
//!   with the timeout ([`Error::Store`](session_core::Error::Store), never
//!   the stale session), and the connection is given up and the cache
//!   dropped once its `PING` is a timeout late;
//! - **reset or refused**: the cache is dropped when the connection's end
//!   is seen (the next load after the cut, 5-6 ms later in the tests,
//!   went to Redis), and loads read Redis until a new connection is open,
//!   has turned tracking on, and has answered a `PING`.
//!
//! What remains: between another process's write being acknowledged and
//! its invalidation reaching this process (well under a millisecond on one
//! network), a load here may still return the old session; beyond the
//! bound, never. A load that found its session cached without proof reads
//! Redis (counted in [`CacheStats::unproven`]), and its reply is cached
//! again, to be served once proof returns. The price: two `PING`s per bound
//! on each open connection (80 a second with the default 4 connections and
//! 100 ms); and the round trip to Redis must stay under half the bound, or
//! proof lapses between `PING`s and those loads go to Redis.
//!
//! Why not the `redis` crate's own cache (`cache-aio`): it caches raw
//! replies, so every hit would decode the whole session again (a copy of
//! every value); it bounds entries but not bytes; its tracking has no
//! `NOLOOP` and cannot apply a script's effect, so every commit would
//! invalidate the entry and a writing request would cost 2 round trips;
//! each miss also sends a `PTTL`; and each connection of a pool would keep
//! its own cache.
//!
//! **On by default, with a delivery check.** The cache is only as coherent
//! as the path to Redis delivers tracking messages: a proxy in between
//! (twemproxy, Envoy's Redis proxy, some managed front ends) may accept
//! `CLIENT TRACKING` and never deliver an invalidation while still
//! answering `PING`, which the staleness bound alone cannot tell apart from
//! a quiet stream. So each connection checks, when it opens, that the path
//! delivers: with tracking on (its own writes included) it reads a probe
//! key, writes it, and sends a `PING`; the write's invalidation must have
//! arrived by the `PING`'s reply. A connection that fails the check never
//! proves the cache fresh, so nothing is served from the cache while it is
//! open (every load reads Redis, and the store says so once on stderr).
//! What the check cannot see is a path that delivers some messages and
//! drops others; for such a path, for Redis older than 6.0 (no RESP3), or
//! to save the memory (each process's cache, and Redis's tracking table:
//! one entry per key a connection reads; past `tracking-table-max-keys`
//! Redis invalidates to make room), use [`RedisStore::without_cache`].
//! On Cluster the cache is off (see "Cluster").

#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache;
mod cluster;
mod connection;
mod freshness;
mod layout;
mod pool;
mod scripts;
mod sentinel;
mod store;

#[cfg(feature = "testing")]
pub mod testing;

pub use cache::{CacheConfig, CacheStats};
pub use store::RedisStore;

/// Decodes a session hash as `HGETALL` returns it (field, value pairs):
/// `Ok(None)` for no fields, [`Error::Corrupt`](session_core::Error::Corrupt) for anything that breaks the
/// layout. For tools that read the store directly, and for fuzzing.
pub fn decode_session_hash(
    fields: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Option<session_core::Record>, session_core::Error> {
    layout::decode_record(fields)
}

/// The hash fields a record is stored as (the inverse of
/// [`decode_session_hash`]).
pub fn encode_session_hash(record: &session_core::Record) -> Vec<(String, String)> {
    layout::record_fields(record)
}

/// The `redis` crate this store is built on, for [`RedisStore::from_client`]
/// and its address types.
pub use redis;
