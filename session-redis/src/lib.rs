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
//! commit it.
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
//! The connection opens on first use and, on one server
//! (`redis::aio::ConnectionManager`), reconnects by itself: once Redis is
//! back, the same store works again. A Cluster connection rediscovers its
//! nodes the same way. Sessions survive an outage if Redis persists them
//! (RDB or AOF); with persistence off, a restarted Redis has none and
//! visitors get fresh sessions.

mod cache;
mod cluster;
mod connection;
mod layout;
mod pool;
mod scripts;
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
