//! The client-side cache: the sessions this process has read, kept
//! coherent by Redis's tracking messages (see the crate docs, "Client-side
//! cache").
//!
//! This file holds no IO: the store tells the cache what it sends and what
//! comes back, and the connections tell it what Redis invalidated. The one
//! rule that keeps it coherent: **an entry is only ever installed over a
//! marker placed before the command that read (or wrote) it was sent**.
//! Every invalidation, every flush and every write of this process removes
//! the marker, so a reply that raced with any of them is never cached.
//!
//! Eviction is second-chance (CLOCK): a hit marks its entry, and the
//! eviction hand skips (and unmarks) marked entries once.
//!
//! The cache serves only while its [`Freshness`] says the invalidation
//! streams proved themselves within the staleness bound; the instants come
//! from the caller.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use session_core::{Record, SessionId, Timestamp, Update};

use crate::freshness::Freshness;

/// The limits of a [`RedisStore`](crate::RedisStore)'s client-side cache,
/// for [`RedisStore::with_cache`](crate::RedisStore::with_cache): how much
/// it keeps, and how stale it may ever be.
///
/// **The staleness bound** ([`with_staleness_bound`](Self::with_staleness_bound),
/// default [100 ms](Self::DEFAULT_STALENESS_BOUND)) is hard: the store
/// serves from its cache only while it has proof, younger than the bound,
/// that Redis's invalidation messages reach it and are caught up. Every
/// tracking connection sends a `PING` every half bound; since Redis sends
/// a connection's invalidations before any later reply on it, the answer to
/// a `PING` sent at *t* proves that every change acknowledged before *t*
/// has been applied to the cache, and the cache may serve until *t* +
/// bound. Without a fresh answer from every connection (one stalls, a
/// connection was just opened), loads go to Redis:
///
/// - **stalled** (connections open, nothing comes back: a partition, a hung
///   Redis or proxy): cached sessions stop being served at most one bound
///   after the last `PING` that was answered was sent; loads then wait for
///   Redis and fail with the store's timeout, and the connection is given
///   up (the cache dropped) when its `PING` has not come back within it;
/// - **reset or refused** (a connection ends, or cannot be opened): the
///   whole cache is dropped at once, and loads read Redis until a new
///   connection is open, tracking again, and has answered a `PING`.
///
/// What remains: between another process's write being acknowledged and
/// its invalidation reaching this process (well under a millisecond on one
/// network), a load may still return the old session; later than the
/// bound after the acknowledgement, never.
///
/// ```
/// use std::time::Duration;
/// use session_redis::CacheConfig;
///
/// let config = CacheConfig::default()
///     .with_max_entries(50_000)
///     .with_max_bytes(128 << 20)
///     .with_staleness_bound(Duration::from_millis(50));
/// assert_eq!(config.max_entries(), 50_000);
/// assert_eq!(config.staleness_bound(), Duration::from_millis(50));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    max_entries: usize,
    max_bytes: usize,
    staleness_bound: Duration,
}

impl CacheConfig {
    /// Sessions kept unless [`with_max_entries`](Self::with_max_entries)
    /// says otherwise.
    pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
    /// Bytes kept unless [`with_max_bytes`](Self::with_max_bytes) says
    /// otherwise: 64 MiB.
    pub const DEFAULT_MAX_BYTES: usize = 64 << 20;
    /// How stale a served session may be unless
    /// [`with_staleness_bound`](Self::with_staleness_bound) says otherwise:
    /// 100 ms.
    pub const DEFAULT_STALENESS_BOUND: Duration = Duration::from_millis(100);
    /// The smallest staleness bound: 2 ms (a `PING` every millisecond on
    /// each connection).
    pub const MIN_STALENESS_BOUND: Duration = Duration::from_millis(2);

    /// The most sessions the cache keeps (at least 1).
    pub fn with_max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries.max(1);
        self
    }

    /// The most bytes the cached sessions may take, estimated as their keys
    /// and values plus a fixed overhead per session and per value. A
    /// session larger than this is never cached.
    pub fn with_max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The staleness bound (at least
    /// [`MIN_STALENESS_BOUND`](Self::MIN_STALENESS_BOUND)): a cached session
    /// is served only while every tracking connection answered a `PING`
    /// sent less than this long ago, and never later than this after
    /// another process's change to it was acknowledged. Each tracking
    /// connection sends a `PING` every half bound; one that cannot answer
    /// within about half the bound (a slow network, a busy Redis) leaves
    /// loads going to Redis. See the [type docs](Self).
    pub fn with_staleness_bound(mut self, bound: Duration) -> Self {
        self.staleness_bound = bound.max(Self::MIN_STALENESS_BOUND);
        self
    }

    /// The most sessions the cache keeps.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// The most bytes the cached sessions may take.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The staleness bound.
    pub fn staleness_bound(&self) -> Duration {
        self.staleness_bound
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            staleness_bound: Self::DEFAULT_STALENESS_BOUND,
        }
    }
}

/// What the cache has done since the store was built, from
/// [`RedisStore::cache_stats`](crate::RedisStore::cache_stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Loads answered from memory, with no round trip.
    pub hits: u64,
    /// Loads that went to Redis (the unproven ones included).
    pub misses: u64,
    /// Loads that found their session cached but went to Redis because
    /// the cache had no proof within the staleness bound that its
    /// invalidations are caught up (see [`CacheConfig`]).
    pub unproven: u64,
    /// Entries removed because Redis said another client changed or
    /// deleted their key.
    pub invalidations: u64,
    /// Times the whole cache was dropped (a connection lost or replaced,
    /// or Redis flushed its keys).
    pub flushes: u64,
    /// Entries removed to stay within the limits.
    pub evictions: u64,
    /// Sessions cached now.
    pub entries: usize,
    /// Their estimated size in bytes.
    pub bytes: usize,
}

/// Fixed overhead counted per cached session and per value.
const ENTRY_OVERHEAD: usize = 200;
const VALUE_OVERHEAD: usize = 64;

/// The estimated bytes a cached record takes.
fn record_bytes(record: &Record) -> usize {
    let user = record.meta.user.as_deref().map_or(0, str::len);
    record
        .data
        .iter()
        .fold(ENTRY_OVERHEAD + user, |sum, (k, v)| {
            sum + k.len() + v.len() + VALUE_OVERHEAD
        })
}

/// A duration as Redis stores it: whole milliseconds, saturating.
fn whole_millis(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The record exactly as a load from Redis would decode it (expiry
/// overrides are stored in whole milliseconds).
fn as_stored(mut record: Record) -> Record {
    let expiry = &mut record.meta.expiry;
    expiry.idle = expiry.idle.map(whole_millis);
    expiry.lifetime = expiry.lifetime.map(whole_millis);
    record
}

/// A marker placed before a command was sent (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

/// Abandons a ticket when dropped before [`Pending::done`]: a request
/// cancelled while its load or create was in flight leaves nothing behind.
pub(crate) struct Pending<'a> {
    cache: &'a Cache,
    id: SessionId,
    ticket: Option<Ticket>,
}

impl<'a> Pending<'a> {
    pub(crate) fn new(cache: &'a Cache, id: &SessionId, ticket: Ticket) -> Self {
        Self {
            cache,
            id: *id,
            ticket: Some(ticket),
        }
    }

    /// The ticket, now handled by the caller.
    pub(crate) fn done(mut self) -> Ticket {
        self.ticket.take().unwrap_or(Ticket(0))
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.cache.abandon(&self.id, ticket);
        }
    }
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// A live cached record.
    Hit(Record),
    /// Not cached: load it, then [`Cache::fill`] with this ticket.
    Miss(Ticket),
}

enum Slot {
    /// A command that may install this session is in flight.
    Pending(Ticket),
    Ready(Entry),
}

struct Entry {
    record: Record,
    /// Changes on every write of this process.
    version: Ticket,
    bytes: usize,
    referenced: bool,
}

struct State {
    slots: HashMap<SessionId, Slot>,
    /// Ready ids in the order the eviction hand visits them (may hold ids
    /// that have left since; they are skipped).
    hand: VecDeque<SessionId>,
    entries: usize,
    bytes: usize,
    next: u64,
}

impl State {
    fn ticket(&mut self) -> Ticket {
        self.next += 1;
        Ticket(self.next)
    }

    fn remove(&mut self, id: &SessionId) -> bool {
        match self.slots.remove(id) {
            Some(Slot::Ready(entry)) => {
                self.entries -= 1;
                self.bytes -= entry.bytes;
                true
            }
            Some(Slot::Pending(_)) | None => false,
        }
    }

    fn install(&mut self, id: SessionId, record: Record, limits: &CacheConfig) -> usize {
        self.remove(&id);
        let bytes = record_bytes(&record);
        if bytes > limits.max_bytes {
            return 0;
        }
        let version = self.ticket();
        self.slots.insert(
            id,
            Slot::Ready(Entry {
                record,
                version,
                bytes,
                referenced: false,
            }),
        );
        self.entries += 1;
        self.bytes += bytes;
        self.hand.push_back(id);
        self.evict(limits)
    }

    /// Evicts until within the limits; returns how many went.
    fn evict(&mut self, limits: &CacheConfig) -> usize {
        let mut evicted = 0;
        while self.entries > limits.max_entries || self.bytes > limits.max_bytes {
            let Some(id) = self.hand.pop_front() else {
                break;
            };
            match self.slots.get_mut(&id) {
                Some(Slot::Ready(entry)) if entry.referenced => {
                    entry.referenced = false;
                    self.hand.push_back(id);
                }
                Some(Slot::Ready(_)) => {
                    self.remove(&id);
                    evicted += 1;
                }
                _ => {}
            }
        }
        // Ids that left through other doors pile up in the hand: rebuild
        // it when they outnumber the entries.
        if self.hand.len() > 2 * self.entries + 64 {
            let slots = &self.slots;
            self.hand
                .retain(|id| matches!(slots.get(id), Some(Slot::Ready(_))));
            let mut seen = std::collections::HashSet::with_capacity(self.entries);
            self.hand.retain(|id| seen.insert(*id));
        }
        evicted
    }
}

/// The cache of one store (shared by its clones).
pub(crate) struct Cache {
    limits: CacheConfig,
    prefix: Box<str>,
    state: Mutex<State>,
    proof: Freshness,
    hits: AtomicU64,
    misses: AtomicU64,
    unproven: AtomicU64,
    invalidations: AtomicU64,
    flushes: AtomicU64,
    evictions: AtomicU64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("limits", &self.limits)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Cache {
    /// A cache for the sessions under `prefix`; the instants it is given
    /// come after `origin`.
    pub(crate) fn new(limits: CacheConfig, prefix: &str, origin: Instant) -> Self {
        Self {
            limits,
            prefix: prefix.into(),
            state: Mutex::new(State {
                slots: HashMap::new(),
                hand: VecDeque::new(),
                entries: 0,
                bytes: 0,
                next: 0,
            }),
            proof: Freshness::new(limits.staleness_bound, origin),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            unproven: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements; a panic elsewhere
        // while holding the lock cannot leave it half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key prefix of the store this cache belongs to.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The proof that the invalidation streams are caught up, which the
    /// connections keep.
    pub(crate) fn proof(&self) -> &Freshness {
        &self.proof
    }

    /// A live cached record (checked against `now` on every hit), or a
    /// ticket to fill the cache with once the record is loaded. Without
    /// proof of freshness at `at` (see [`Freshness`]) nothing is served:
    /// the entry gives way to a ticket, and the load's reply may be
    /// installed (it is as fresh as any), to be served once proof returns.
    pub(crate) fn lookup(&self, id: &SessionId, now: Timestamp, at: Instant) -> Lookup {
        let fresh = self.proof.is_fresh(at);
        let mut state = self.state();
        match state.slots.get_mut(id) {
            Some(Slot::Ready(entry)) if entry.record.expires_at > now => {
                if fresh {
                    entry.referenced = true;
                    let record = entry.record.clone();
                    drop(state);
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Lookup::Hit(record);
                }
                self.unproven.fetch_add(1, Ordering::Relaxed);
            }
            // Loaders of one session share a ticket: the first to finish
            // installs; the others find it installed and leave it.
            Some(Slot::Pending(ticket)) => {
                let ticket = *ticket;
                drop(state);
                self.misses.fetch_add(1, Ordering::Relaxed);
                return Lookup::Miss(ticket);
            }
            _ => {}
        }
        state.remove(id);
        let ticket = state.ticket();
        state.slots.insert(*id, Slot::Pending(ticket));
        drop(state);
        self.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Miss(ticket)
    }

    /// Installs what a load returned if nothing changed since its ticket
    /// was issued; forgets the ticket otherwise (or if there is no record).
    pub(crate) fn fill(&self, id: &SessionId, ticket: Ticket, record: Option<&Record>) {
        let mut state = self.state();
        if !matches!(state.slots.get(id), Some(Slot::Pending(t)) if *t == ticket) {
            return;
        }
        match record {
            Some(record) => {
                let evicted = state.install(*id, record.clone(), &self.limits);
                drop(state);
                self.evictions.fetch_add(evicted as u64, Ordering::Relaxed);
            }
            None => {
                state.slots.remove(id);
            }
        }
    }

    /// Before a write of this process: the version of the cached entry, if
    /// any, to pass to [`finish_update`](Self::finish_update).
    pub(crate) fn begin_update(&self, id: &SessionId) -> Option<Ticket> {
        match self.state().slots.get(id) {
            Some(Slot::Ready(entry)) => Some(entry.version),
            _ => None,
        }
    }

    /// After an update this process made and Redis applied: if the entry
    /// is the version the update started from, nothing else changed the
    /// session in between (Redis would have said so first), so the entry
    /// plus the update is what Redis holds now. Otherwise the entry goes.
    pub(crate) fn finish_update(&self, id: &SessionId, from: Option<Ticket>, update: Update) {
        let mut state = self.state();
        let current = match state.slots.get(id) {
            Some(Slot::Ready(entry)) => Some(entry.version),
            _ => None,
        };
        if from.is_none() || current != from {
            state.remove(id);
            state.slots.remove(id);
            return;
        }
        let Some(Slot::Ready(entry)) = state.slots.remove(id) else {
            return;
        };
        state.entries -= 1;
        state.bytes -= entry.bytes;
        let mut record = entry.record;
        update.apply(&mut record);
        let evicted = state.install(*id, as_stored(record), &self.limits);
        drop(state);
        self.evictions.fetch_add(evicted as u64, Ordering::Relaxed);
    }

    /// Before a create: a ticket for [`finish_create`](Self::finish_create).
    pub(crate) fn begin_create(&self, id: &SessionId) -> Ticket {
        let mut state = self.state();
        state.remove(id);
        let ticket = state.ticket();
        state.slots.insert(*id, Slot::Pending(ticket));
        ticket
    }

    /// After a create Redis applied: caches the record unless something
    /// touched the session since [`begin_create`](Self::begin_create).
    pub(crate) fn finish_create(&self, id: &SessionId, ticket: Ticket, record: &Record) {
        self.fill(id, ticket, Some(&as_stored(record.clone())));
    }

    /// Forgets `ticket` if its command never finished (its future was
    /// dropped, or it failed), so that no ticket stays behind.
    pub(crate) fn abandon(&self, id: &SessionId, ticket: Ticket) {
        let mut state = self.state();
        if matches!(state.slots.get(id), Some(Slot::Pending(t)) if *t == ticket) {
            state.slots.remove(id);
        }
    }

    /// Forgets a session (and any ticket for it): after a write whose
    /// result is not known, a delete, or a renew.
    pub(crate) fn remove(&self, id: &SessionId) {
        let mut state = self.state();
        state.remove(id);
        state.slots.remove(id);
    }

    /// After this process ended every session of `user`: forgets them, and
    /// every load in flight (which may have read one of them before).
    pub(crate) fn remove_user(&self, user: &str) {
        let mut state = self.state();
        let ids: Vec<SessionId> = state
            .slots
            .iter()
            .filter(|(_, slot)| match slot {
                Slot::Pending(_) => true,
                Slot::Ready(entry) => entry.record.meta.user.as_deref() == Some(user),
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            state.remove(id);
            state.slots.remove(id);
        }
    }

    /// Redis says another client changed or deleted `key`.
    pub(crate) fn invalidate_key(&self, key: &[u8]) {
        let Some(id) = key
            .strip_prefix(self.prefix.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"{"))
            .and_then(|rest| rest.strip_suffix(b"}"))
            .and_then(SessionId::parse)
        else {
            return; // a user index, or not ours
        };
        let mut state = self.state();
        let was_ready = state.remove(&id);
        state.slots.remove(&id);
        drop(state);
        if was_ready {
            self.invalidations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drops everything, tickets included.
    pub(crate) fn clear(&self) {
        let mut state = self.state();
        state.slots.clear();
        state.hand.clear();
        state.entries = 0;
        state.bytes = 0;
        drop(state);
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let state = self.state();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            unproven: self.unproven.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            entries: state.entries,
            bytes: state.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use session_core::testing::{record_at, update_at};

    use std::sync::LazyLock;

    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_millis(1_000_000);

    /// The origin of every cache's instants in these tests.
    static T0: LazyLock<Instant> = LazyLock::new(Instant::now);

    /// A cache whose one stream proved itself at `T0`.
    fn proven(cache: Cache) -> Cache {
        cache.proof().opened(0, 1);
        cache.proof().proved(0, 1, *T0);
        cache
    }

    fn cache() -> Cache {
        proven(Cache::new(CacheConfig::default(), "s:", *T0))
    }

    fn key(id: &SessionId) -> Vec<u8> {
        format!("s:{{{id}}}").into_bytes()
    }

    fn loaded(cache: &Cache, id: &SessionId, record: &Record) {
        let Lookup::Miss(ticket) = cache.lookup(id, NOW, *T0) else {
            panic!("hit before the load");
        };
        cache.fill(id, ticket, Some(record));
    }

    /// A load at `at` as the store makes it: whether it was served from
    /// the cache (the cached record, checked), or went to Redis, which
    /// answered `redis` (then installed as the store would).
    fn served(cache: &Cache, id: &SessionId, at: Instant, redis: &Record) -> bool {
        match cache.lookup(id, NOW, at) {
            Lookup::Hit(record) => {
                assert_eq!(&record, redis);
                true
            }
            Lookup::Miss(ticket) => {
                cache.fill(id, ticket, Some(redis));
                false
            }
        }
    }

    fn hit(cache: &Cache, id: &SessionId, now: Timestamp) -> Option<Record> {
        match cache.lookup(id, now, *T0) {
            Lookup::Hit(record) => Some(record),
            Lookup::Miss(_) => None,
        }
    }

    #[test]
    fn a_loaded_record_is_served_until_it_expires() {
        let cache = cache();
        let id = SessionId::generate();
        let record = record_at(NOW, Some("ann"), &[("a", "1")]);
        loaded(&cache, &id, &record);
        assert_eq!(hit(&cache, &id, NOW), Some(record.clone()));
        assert_eq!(hit(&cache, &id, record.expires_at), None, "expired");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (1, 2));
    }

    #[test]
    fn nothing_is_served_without_proof_younger_than_the_bound() {
        let bound = CacheConfig::DEFAULT_STALENESS_BOUND;
        let cache = cache(); // proven by a ping sent at T0
        let id = SessionId::generate();
        let record = record_at(NOW, Some("ann"), &[("a", "1")]);
        loaded(&cache, &id, &record);
        let just_before = *T0 + bound - Duration::from_nanos(1);
        assert!(served(&cache, &id, just_before, &record));
        // The stream stalls: no reply since the ping of T0. From T0 +
        // bound on, every load goes to Redis; its reply is installed (it
        // is as fresh as a reply can be) but not served.
        assert!(!served(&cache, &id, *T0 + bound, &record));
        assert!(!served(&cache, &id, *T0 + 10 * bound, &record));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.unproven, stats.entries), (1, 2, 1));
        // A reply to a ping sent at 150 ms: served until 250 ms.
        let sent = *T0 + bound + bound / 2;
        cache.proof().proved(0, 1, sent);
        assert!(served(&cache, &id, sent, &record));
        assert!(served(&cache, &id, sent + bound / 2, &record));
        assert!(!served(&cache, &id, sent + bound, &record));
    }

    #[test]
    fn a_broken_stream_drops_everything_and_its_replacement_proves_itself() {
        let cache = cache();
        let id = SessionId::generate();
        let record = record_at(NOW, None, &[]);
        loaded(&cache, &id, &record);
        // The pool's order on a lost connection: the stream closes, the
        // cache goes.
        cache.proof().closed(0, 1);
        cache.clear();
        assert_eq!(cache.stats().entries, 0);
        // Reconnected (tracking on), read again, but not yet pinged.
        cache.proof().opened(0, 2);
        assert!(!served(&cache, &id, *T0, &record));
        // A late reply of the old connection is no proof.
        cache.proof().proved(0, 1, *T0);
        assert!(!served(&cache, &id, *T0, &record));
        cache.proof().proved(0, 2, *T0);
        assert!(served(&cache, &id, *T0, &record));
    }

    #[test]
    fn an_invalidation_during_a_load_keeps_its_reply_out() {
        let cache = cache();
        let id = SessionId::generate();
        let Lookup::Miss(ticket) = cache.lookup(&id, NOW, *T0) else {
            panic!()
        };
        cache.invalidate_key(&key(&id));
        cache.fill(&id, ticket, Some(&record_at(NOW, None, &[])));
        assert_eq!(hit(&cache, &id, NOW), None);
    }

    #[test]
    fn a_cancelled_load_leaves_no_ticket() {
        let cache = cache();
        let id = SessionId::generate();
        let Lookup::Miss(ticket) = cache.lookup(&id, NOW, *T0) else {
            panic!()
        };
        drop(Pending::new(&cache, &id, ticket));
        assert!(cache.state().slots.is_empty());
        let Lookup::Miss(ticket) = cache.lookup(&id, NOW, *T0) else {
            panic!()
        };
        let ticket = Pending::new(&cache, &id, ticket).done();
        cache.fill(&id, ticket, Some(&record_at(NOW, None, &[])));
        assert!(hit(&cache, &id, NOW).is_some());
    }

    #[test]
    fn invalidations_and_flushes_remove_entries() {
        let cache = cache();
        let (a, b) = (SessionId::generate(), SessionId::generate());
        let record = record_at(NOW, None, &[]);
        loaded(&cache, &a, &record);
        loaded(&cache, &b, &record);
        cache.invalidate_key(b"s:user:{ann}");
        cache.invalidate_key(b"other:{x}");
        cache.invalidate_key(&key(&a));
        assert_eq!(hit(&cache, &a, NOW), None);
        assert!(hit(&cache, &b, NOW).is_some());
        let Lookup::Miss(ticket) = cache.lookup(&a, NOW, *T0) else {
            panic!()
        };
        cache.clear();
        cache.fill(&a, ticket, Some(&record));
        assert_eq!(hit(&cache, &b, NOW), None);
        let stats = cache.stats();
        assert_eq!((stats.invalidations, stats.flushes), (1, 1));
        assert_eq!((stats.entries, stats.bytes), (0, 0));
    }

    #[test]
    fn own_updates_apply_only_to_the_version_they_started_from() {
        let cache = cache();
        let id = SessionId::generate();
        loaded(&cache, &id, &record_at(NOW, None, &[("a", "1")]));
        // Two concurrent updates: the first to finish applies, the second
        // finds another version and drops the entry.
        let (first, second) = (cache.begin_update(&id), cache.begin_update(&id));
        cache.finish_update(&id, first, update_at(NOW, &[("b", "2")], &[]));
        let record = hit(&cache, &id, NOW).unwrap();
        assert_eq!(record.data.get("b"), Some("2"));
        cache.finish_update(&id, second, update_at(NOW, &[("c", "3")], &[]));
        assert_eq!(hit(&cache, &id, NOW), None);
        // An update of a session not cached caches nothing, and makes a
        // load in flight forget its reply.
        let Lookup::Miss(ticket) = cache.lookup(&id, NOW, *T0) else {
            panic!()
        };
        let from = cache.begin_update(&id);
        cache.finish_update(&id, from, update_at(NOW, &[("d", "4")], &[]));
        cache.fill(&id, ticket, Some(&record_at(NOW, None, &[])));
        assert_eq!(hit(&cache, &id, NOW), None);
    }

    #[test]
    fn creates_are_cached_as_redis_stores_them() {
        let cache = cache();
        let id = SessionId::generate();
        let mut record = record_at(NOW, Some("ann"), &[]);
        record.meta.expiry.idle = Some(Duration::from_micros(1_500_700));
        let ticket = cache.begin_create(&id);
        cache.finish_create(&id, ticket, &record);
        let cached = hit(&cache, &id, NOW).unwrap();
        assert_eq!(cached.meta.expiry.idle, Some(Duration::from_millis(1_500)));
        // Invalidated between the reply and the install: not cached.
        let ticket = cache.begin_create(&id);
        cache.invalidate_key(&key(&id));
        cache.finish_create(&id, ticket, &record);
        assert_eq!(hit(&cache, &id, NOW), None);
    }

    #[test]
    fn ending_a_users_sessions_forgets_them_and_loads_in_flight() {
        let cache = cache();
        let (ann, bob, loading) = (
            SessionId::generate(),
            SessionId::generate(),
            SessionId::generate(),
        );
        loaded(&cache, &ann, &record_at(NOW, Some("ann"), &[]));
        loaded(&cache, &bob, &record_at(NOW, Some("bob"), &[]));
        let Lookup::Miss(ticket) = cache.lookup(&loading, NOW, *T0) else {
            panic!()
        };
        cache.remove_user("ann");
        cache.fill(&loading, ticket, Some(&record_at(NOW, Some("ann"), &[])));
        assert_eq!(hit(&cache, &ann, NOW), None);
        assert_eq!(hit(&cache, &loading, NOW), None);
        assert!(hit(&cache, &bob, NOW).is_some());
    }

    #[test]
    fn the_cache_stays_within_its_entries_and_bytes() {
        let cache = proven(Cache::new(
            CacheConfig::default()
                .with_max_entries(3)
                .with_max_bytes(4 * 1024),
            "s:",
            *T0,
        ));
        let ids: Vec<SessionId> = (0..10).map(|_| SessionId::generate()).collect();
        let small = record_at(NOW, None, &[("a", "1")]);
        for id in &ids[..5] {
            loaded(&cache, id, &small);
            // The first one is read often: it keeps its place.
            assert!(hit(&cache, &ids[0], NOW).is_some());
        }
        let stats = cache.stats();
        assert_eq!(stats.entries, 3);
        assert_eq!(stats.evictions, 2);
        assert!(hit(&cache, &ids[0], NOW).is_some());
        // A big value pushes others out by bytes; one over the limit is
        // never cached.
        let big = "x".repeat(3 * 1024 + 300);
        loaded(&cache, &ids[5], &record_at(NOW, None, &[("big", &big)]));
        assert!(cache.stats().bytes <= 4 * 1024);
        assert_eq!(cache.stats().entries, 2);
        assert!(hit(&cache, &ids[5], NOW).is_some());
        let huge = "x".repeat(5 * 1024);
        loaded(&cache, &ids[6], &record_at(NOW, None, &[("big", &huge)]));
        assert_eq!(hit(&cache, &ids[6], NOW), None);
        // Churn does not grow the hand without bound.
        for _ in 0..1000 {
            let id = SessionId::generate();
            loaded(&cache, &id, &small);
            cache.remove(&id);
        }
        assert!(cache.state().hand.len() <= 2 * 3 + 64 + 1);
    }
}
