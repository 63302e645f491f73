//! `MemoryStore`: sessions in this process's memory.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::{Future, ready};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock, RwLockWriteGuard};

use crate::data::Data;
use crate::error::Error;
use crate::id::SessionId;
use crate::limit::UserLimit;
use crate::record::{ExpiryOverrides, Metadata, Record, Update};
use crate::store::{SessionStore, WriteOutcome};
use crate::time::Timestamp;

/// The fewest shards a store has, so requests rarely wait on each other.
const MIN_SHARDS: usize = 16;
/// The most sessions one shard holds when the store is full: 7/8 of 2^16,
/// the most a hash table of 2^16 slots takes before it doubles. A store
/// gets as many shards as its bound needs at this fill, so a full store's
/// tables are nearly full instead of just doubled (half empty), which at a
/// million sessions is the difference between about 260 and 370 bytes each.
const SESSIONS_PER_FULL_SHARD: usize = 57_344;
/// The most shards a store has, whatever its bound.
const MAX_SHARDS: usize = 4_096;
/// A full store sweeps expired sessions at most this often (milliseconds).
const FULL_SWEEP_EVERY_MS: u64 = 1_000;
/// The default bound on bytes: 1 GiB.
const DEFAULT_MAX_BYTES: usize = 1 << 30;

/// Hashes a session id by its first eight bytes: ids are uniformly random,
/// and only ids this process generated are ever inserted, so no caller can
/// choose keys that collide.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

/// A session as the store keeps it: a [`Record`]'s fields, packed into 72
/// bytes (a `Record` takes 112), since a million of them sit in the maps.
struct Slot {
    created_at: Timestamp,
    last_activity: Timestamp,
    expires_at: Timestamp,
    /// When the user logged in; [`NEVER`] for none (an `Option` would take
    /// 8 bytes more, and no login happens at the end of time).
    authenticated_at: Timestamp,
    user: Option<Arc<str>>,
    data: Data,
    /// Per-session settings, boxed: almost every session has none.
    expiry: Option<Box<ExpiryOverrides>>,
}

/// A [`Slot`]'s `authenticated_at` when there is none.
const NEVER: Timestamp = Timestamp::from_unix_millis(u64::MAX);

impl Slot {
    fn new(record: Record) -> Self {
        let Record {
            meta,
            expires_at,
            data,
        } = record;
        Self {
            created_at: meta.created_at,
            last_activity: meta.last_activity,
            expires_at,
            authenticated_at: meta.authenticated_at.unwrap_or(NEVER),
            user: meta.user,
            data,
            expiry: (!meta.expiry.is_empty()).then(|| Box::new(meta.expiry)),
        }
    }

    /// The record, sharing the values and the user name (no copy).
    fn record(&self) -> Record {
        Record {
            meta: Metadata {
                created_at: self.created_at,
                last_activity: self.last_activity,
                user: self.user.clone(),
                authenticated_at: Some(self.authenticated_at).filter(|at| *at != NEVER),
                expiry: self.expiry.as_deref().copied().unwrap_or_default(),
            },
            expires_at: self.expires_at,
            data: self.data.clone(),
        }
    }

    /// The bytes this session counts for: its keys, values and user name,
    /// plus [`MemoryStore::PER_SESSION_OVERHEAD`].
    fn bytes(&self) -> usize {
        MemoryStore::PER_SESSION_OVERHEAD
            + self.user.as_deref().map_or(0, str::len)
            + self.data.bytes()
    }

    /// How many bytes applying `update` adds to (or, negative, takes from)
    /// this session.
    fn delta(&self, update: &Update) -> isize {
        let signed = |n: usize| isize::try_from(n).unwrap_or(isize::MAX);
        let entry = |k: &str| self.data.get(k).map_or(0, |v| k.len() + v.len());
        let mut delta: isize = 0;
        if update.cleared {
            delta -= signed(self.data.bytes());
        } else {
            for key in &update.removed {
                delta -= signed(entry(key));
            }
        }
        for (key, value) in &update.set {
            let old = if update.cleared { 0 } else { entry(key) };
            delta += signed(key.len() + value.len()) - signed(old);
        }
        if let Some(user) = &update.user {
            delta += signed(user.as_deref().map_or(0, str::len))
                - signed(self.user.as_deref().map_or(0, str::len));
        }
        delta
    }

    /// Applies `update` in place; returns the user before it, if the update
    /// changed the user.
    fn apply(&mut self, update: Update) -> Option<Option<Arc<str>>> {
        let old_user = update.user.as_ref().map(|_| self.user.clone());
        let mut record = self.record();
        update.apply(&mut record);
        *self = Self::new(record);
        old_user
    }
}

/// The ids of one user's sessions within one shard: almost always one.
enum Ids {
    One(SessionId),
    Many(Vec<SessionId>),
}

impl Ids {
    fn add(&mut self, id: SessionId) {
        match self {
            Self::One(one) if *one == id => {}
            Self::One(one) => *self = Self::Many(vec![*one, id]),
            Self::Many(ids) if !ids.contains(&id) => ids.push(id),
            Self::Many(_) => {}
        }
    }

    /// Removes `id`; returns whether none is left.
    fn remove(&mut self, id: &SessionId) -> bool {
        match self {
            Self::One(one) => one == id,
            Self::Many(ids) => {
                ids.retain(|i| i != id);
                ids.is_empty()
            }
        }
    }

    fn to_vec(&self) -> Vec<SessionId> {
        match self {
            Self::One(id) => vec![*id],
            Self::Many(ids) => ids.clone(),
        }
    }
}

/// One part of the store: its sessions, and the index of their users,
/// under one lock, so a session and its index entry always change together.
#[derive(Default)]
struct Shard {
    sessions: HashMap<SessionId, Slot, BuildHasherDefault<IdHasher>>,
    /// User names are chosen by the application (and so, possibly, by
    /// visitors): this map keeps the standard, randomly keyed hasher.
    users: HashMap<Arc<str>, Ids>,
    /// The ids in order, for [`list`](SessionStore::list): a page costs a
    /// page, not a pass over the shard.
    order: BTreeSet<SessionId>,
    /// The sessions by expiry, so expired ones are found without a pass
    /// over the shard (for [`count`](SessionStore::count) and sweeps).
    expiring: BTreeSet<(Timestamp, SessionId)>,
}

impl Shard {
    fn index(&mut self, user: &Arc<str>, id: SessionId) {
        match self.users.get_mut(user) {
            Some(ids) => ids.add(id),
            None => {
                self.users.insert(Arc::clone(user), Ids::One(id));
            }
        }
    }

    fn unindex(&mut self, user: &str, id: &SessionId) {
        if self.users.get_mut(user).is_some_and(|ids| ids.remove(id)) {
            self.users.remove(user);
        }
    }

    fn insert(&mut self, id: SessionId, slot: Slot) {
        if let Some(user) = &slot.user {
            self.index(user, id);
        }
        self.order.insert(id);
        self.expiring.insert((slot.expires_at, id));
        self.sessions.insert(id, slot);
    }

    fn remove(&mut self, id: &SessionId) -> Option<Slot> {
        let slot = self.sessions.remove(id)?;
        if let Some(user) = &slot.user {
            self.unindex(user, id);
        }
        self.order.remove(id);
        self.expiring.remove(&(slot.expires_at, *id));
        Some(slot)
    }

    /// Moves `id`'s place in the expiry index after its expiry changed.
    fn reindex_expiry(&mut self, id: SessionId, old: Timestamp, new: Timestamp) {
        if old != new {
            self.expiring.remove(&(old, id));
            self.expiring.insert((new, id));
        }
    }

    /// The ids expired at `now`, soonest first.
    fn expired(&self, now: Timestamp) -> Vec<SessionId> {
        self.expiring
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect()
    }
}

/// Sessions in this process's memory: the embedded default store.
///
/// It meets the whole [`SessionStore`] contract. Reads share the record's
/// values and user name instead of copying them; locks are held for one
/// shard's operation, and a session and its user-index entry live in the
/// same shard, so they always change together.
///
/// - **Expiry**: an expired session is dropped when a request meets it;
///   [`sweep`](Self::sweep) drops all of them, for callers to schedule (say,
///   once a minute).
/// - **Bound**: at most [`max_sessions`](Self::with_limits) sessions
///   (default 1,000,000) and at most [`max_bytes`](Self::with_limits) bytes
///   (default 1 GiB). A session counts for the bytes of its keys, values and
///   user name plus [`PER_SESSION_OVERHEAD`](Self::PER_SESSION_OVERHEAD);
///   together with
///   [`max_session_bytes`](crate::SessionConfig::max_session_bytes), which
///   bounds each session, this bounds the memory a flood of visitors can
///   take.
/// - **When full**: the expired sessions of the shard the new one falls in
///   (at most about 57,000 sessions) are swept first, at most once a second per
///   shard; if it is still full, a new session is refused with
///   [`Error::StoreFull`] (adapters answer 503), and so is a write that
///   would grow an existing session past the byte bound. Existing sessions
///   are never evicted, so a flood of new visitors cannot log out the users
///   already signed in; writes that keep or shrink a session always pass.
///   Visitors whose sessions hold nothing never take a place.
/// - **Memory**: a small session (a user and two short values) takes about
///   250 to 350 bytes in all, depending on how full the hash tables are
///   (see BENCHMARKS.md, measured before the operator's indexes), plus the
///   operator's indexes: each shard keeps its ids in order and by expiry
///   (two B-trees, an estimated 60 to 70 bytes a session, not yet
///   measured), so that [`count`](SessionStore::count) and
///   [`list`](SessionStore::list) never pass over every session and
///   [`sweep`](Self::sweep) costs what it drops. An update that moves the
///   expiry moves the session's place in the expiry index (O(log n) under
///   the shard's lock).
/// - **Operator's calls**: `count` subtracts each shard's expired sessions
///   (found in the expiry index) from its size and changes nothing; a
///   `list` page takes up to its limit from each shard's ordered ids and
///   keeps the first of them all (it costs the limit times the shards, 16
///   for most stores); `delete_all` empties the shards one by one.
///
/// Clones share the same sessions.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[RwLock<Shard>]>,
    len: AtomicUsize,
    max_sessions: usize,
    /// Bytes counted for the sessions held (see [`Slot::bytes`]).
    bytes: AtomicUsize,
    max_bytes: usize,
    /// When each shard was last swept because the store was full.
    last_full_sweep: Box<[AtomicU64]>,
    /// Held by every write that checks a per-user limit (a user's sessions
    /// spread over all shards), so that two logins of one user count each
    /// other. Writes without a limit never take it.
    limited_writes: Mutex<()>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .field("max_sessions", &self.inner.max_sessions)
            .field("bytes", &self.bytes())
            .field("max_bytes", &self.inner.max_bytes)
            .finish()
    }
}

impl MemoryStore {
    /// What one session is counted for besides its keys, values and user
    /// name: roughly its place in the maps and its values' bookkeeping.
    pub const PER_SESSION_OVERHEAD: usize = 160;

    /// An empty store holding at most 1,000,000 sessions and 1 GiB.
    pub fn new() -> Self {
        Self::with_limits(1_000_000, DEFAULT_MAX_BYTES)
    }

    /// An empty store holding at most `max` sessions (and 1 GiB).
    pub fn with_max_sessions(max: usize) -> Self {
        Self::with_limits(max, DEFAULT_MAX_BYTES)
    }

    /// An empty store holding at most `max_sessions` sessions and
    /// `max_bytes` bytes, counted as the type's docs say.
    pub fn with_limits(max_sessions: usize, max_bytes: usize) -> Self {
        let shards = max_sessions
            .div_ceil(SESSIONS_PER_FULL_SHARD)
            .clamp(MIN_SHARDS, MAX_SHARDS);
        Self {
            inner: Arc::new(Inner {
                shards: (0..shards).map(|_| RwLock::default()).collect(),
                len: AtomicUsize::new(0),
                max_sessions,
                bytes: AtomicUsize::new(0),
                max_bytes,
                last_full_sweep: (0..shards).map(|_| AtomicU64::new(0)).collect(),
                limited_writes: Mutex::new(()),
            }),
        }
    }

    /// How many sessions are held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Relaxed)
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes counted for the sessions held (see the type's docs).
    pub fn bytes(&self) -> usize {
        self.inner.bytes.load(Ordering::Relaxed)
    }

    /// Whether `extra` more bytes fit under the byte bound.
    fn bytes_fit(&self, extra: usize) -> bool {
        self.bytes().saturating_add(extra) <= self.inner.max_bytes
    }

    fn add_bytes(&self, delta: isize) {
        if delta >= 0 {
            self.inner
                .bytes
                .fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
        } else {
            self.inner
                .bytes
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Bookkeeping for sessions that left the store.
    fn forget(&self, count: usize, bytes: usize) {
        self.inner.len.fetch_sub(count, Ordering::Relaxed);
        self.inner.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Drops every session expired at `now`; returns how many. Schedule it
    /// (say, once a minute): it visits every shard, one at a time, and
    /// finds the expired sessions through an index ordered by expiry (its
    /// cost grows with the sessions it drops).
    pub fn sweep(&self, now: Timestamp) -> usize {
        (0..self.inner.shards.len())
            .map(|shard| self.sweep_shard(shard, now))
            .sum()
    }

    /// Drops the expired sessions of one shard.
    fn sweep_shard(&self, shard: usize, now: Timestamp) -> usize {
        let mut shard = self.inner.shards[shard].write();
        let expired = shard.expired(now);
        let bytes: usize = expired
            .iter()
            .filter_map(|id| shard.remove(id))
            .map(|slot| slot.bytes())
            .sum();
        drop(shard);
        self.forget(expired.len(), bytes);
        expired.len()
    }

    /// The shard of `id`: ids are uniformly random, so two of their bytes
    /// spread sessions evenly over any number of shards.
    fn shard_index(&self, id: &SessionId) -> usize {
        let bytes = id.as_bytes();
        usize::from(u16::from_le_bytes([bytes[14], bytes[15]])) % self.inner.shards.len()
    }

    fn shard(&self, id: &SessionId) -> &RwLock<Shard> {
        &self.inner.shards[self.shard_index(id)]
    }

    fn load_now(&self, id: &SessionId, now: Timestamp) -> Option<Record> {
        {
            let shard = self.shard(id).read();
            let slot = shard.sessions.get(id)?;
            if slot.expires_at > now {
                return Some(slot.record());
            }
        }
        // Expired: drop it while we are here.
        let shard = self.shard(id).write();
        if shard.sessions.get(id).is_some_and(|s| s.expires_at <= now) {
            self.remove_in(shard, id);
        }
        None
    }

    /// Removes `id` from the shard held by `shard`, lets the lock go, then
    /// does the bookkeeping. Returns whether it was there.
    fn remove_in(&self, mut shard: RwLockWriteGuard<'_, Shard>, id: &SessionId) -> bool {
        let Some(slot) = shard.remove(id) else {
            return false;
        };
        drop(shard);
        self.forget(1, slot.bytes());
        true
    }

    /// When the store is full, sweeps the shard `id` falls in (at most once
    /// a second per shard, so a flood cannot make every request sweep), and
    /// refuses if that made no room. The pause stays bounded: one shard is a
    /// small part of the store.
    fn make_room(&self, id: &SessionId, now: Timestamp, bytes: usize) -> Result<(), Error> {
        let fits = || self.len() < self.inner.max_sessions && self.bytes_fit(bytes);
        if fits() {
            return Ok(());
        }
        let shard = self.shard_index(id);
        let last_sweep = &self.inner.last_full_sweep[shard];
        let last = last_sweep.load(Ordering::Relaxed);
        if now.unix_millis() >= last.saturating_add(FULL_SWEEP_EVERY_MS)
            && last_sweep
                .compare_exchange(
                    last,
                    now.unix_millis(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.sweep_shard(shard, now);
        }
        if fits() {
            Ok(())
        } else {
            Err(Error::StoreFull)
        }
    }

    fn create_now(&self, id: &SessionId, record: &Record) -> Result<WriteOutcome, Error> {
        let slot = Slot::new(record.clone());
        let bytes = slot.bytes();
        self.make_room(id, record.meta.last_activity, bytes)?;
        {
            let mut shard = self.shard(id).write();
            if shard.sessions.contains_key(id) {
                return Ok(WriteOutcome::IdTaken);
            }
            shard.insert(*id, slot);
        }
        self.inner.len.fetch_add(1, Ordering::Relaxed);
        self.inner.bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(WriteOutcome::Written)
    }

    /// The live sessions of `user` at `now` but those in `except`, least
    /// recently used first.
    fn others_of(
        &self,
        user: &str,
        now: Timestamp,
        except: &[SessionId],
    ) -> Vec<(Timestamp, SessionId)> {
        let mut others = Vec::new();
        for shard in self.inner.shards.iter() {
            let shard = shard.read();
            let Some(ids) = shard.users.get(user) else {
                continue;
            };
            for id in ids.to_vec() {
                if let Some(slot) = shard.sessions.get(&id)
                    && slot.expires_at > now
                    && !except.contains(&id)
                {
                    others.push((slot.last_activity, id));
                }
            }
        }
        others.sort_unstable();
        others
    }

    /// Runs `write` for a session of `user` within `limit`, under the
    /// store's lock for limited writes: refused if the user's other live
    /// sessions fill the limit and the policy refuses; else written, then
    /// the least recently used of the others ended to make room.
    fn within_limit(
        &self,
        user: &str,
        limit: UserLimit,
        now: Timestamp,
        except: &[SessionId],
        write: impl FnOnce() -> Result<WriteOutcome, Error>,
    ) -> Result<WriteOutcome, Error> {
        let _limited = self.inner.limited_writes.lock();
        let others = self.others_of(user, now, except);
        let Some(to_end) = limit.to_end(others.len()) else {
            return Ok(WriteOutcome::UserLimitReached);
        };
        let outcome = write()?;
        if outcome != WriteOutcome::Written || to_end == 0 {
            return Ok(outcome);
        }
        let ended = others[..to_end]
            .iter()
            .filter(|(_, id)| self.delete_now(id))
            .count();
        Ok(WriteOutcome::WrittenEndingOldest { ended })
    }

    fn create_limited_now(
        &self,
        id: &SessionId,
        record: &Record,
        limit: UserLimit,
    ) -> Result<WriteOutcome, Error> {
        let Some(user) = &record.meta.user else {
            return self.create_now(id, record);
        };
        let now = record.meta.last_activity;
        self.within_limit(user, limit, now, &[*id], || self.create_now(id, record))
    }

    fn update_limited_now(&self, id: &SessionId, update: Update) -> Result<WriteOutcome, Error> {
        let Some((user, limit)) = update.limited_user() else {
            return self.update_now(id, update);
        };
        let user = Arc::clone(user);
        let now = update.last_activity;
        self.within_limit(&user, limit, now, &[*id], || self.update_now(id, update))
    }

    fn renew_limited_now(
        &self,
        old_id: &SessionId,
        new_id: &SessionId,
        update: &Update,
    ) -> Result<WriteOutcome, Error> {
        if update.max_per_user.is_none() {
            return self.renew_now(old_id, new_id, update);
        }
        let Some((user, limit)) = update.limited_user() else {
            // A renew moves a session between shards: the lock keeps a
            // limited write from counting the user's sessions meanwhile.
            let _limited = self.inner.limited_writes.lock();
            return self.renew_now(old_id, new_id, update);
        };
        let now = update.last_activity;
        self.within_limit(user, limit, now, &[*old_id, *new_id], || {
            self.renew_now(old_id, new_id, update)
        })
    }

    fn update_now(&self, id: &SessionId, update: Update) -> Result<WriteOutcome, Error> {
        let mut shard = self.shard(id).write();
        let Some(slot) = shard.sessions.get_mut(id) else {
            return Ok(WriteOutcome::Missing);
        };
        if slot.expires_at <= update.last_activity {
            self.remove_in(shard, id);
            return Ok(WriteOutcome::Missing);
        }
        // The size limit, checked on the session as held now, under the
        // shard's lock: concurrent updates are merged one by one.
        if let Err(size) = update.admits(&slot.data) {
            return Ok(WriteOutcome::TooLarge { size });
        }
        let delta = slot.delta(&update);
        if delta > 0 && !self.bytes_fit(delta.unsigned_abs()) {
            return Err(Error::StoreFull);
        }
        self.add_bytes(delta);
        let old_expiry = slot.expires_at;
        let changed_user = slot.apply(update);
        let new_expiry = slot.expires_at;
        let new_user = changed_user.as_ref().map(|_| slot.user.clone());
        shard.reindex_expiry(*id, old_expiry, new_expiry);
        if let (Some(old_user), Some(new_user)) = (changed_user, new_user) {
            if let Some(old) = &old_user {
                shard.unindex(old, id);
            }
            if let Some(new) = &new_user {
                shard.index(new, *id);
            }
        }
        Ok(WriteOutcome::Written)
    }

    fn renew_now(
        &self,
        old_id: &SessionId,
        new_id: &SessionId,
        update: &Update,
    ) -> Result<WriteOutcome, Error> {
        if self.shard(new_id).read().sessions.contains_key(new_id) {
            return Ok(WriteOutcome::IdTaken);
        }
        let mut old_shard = self.shard(old_id).write();
        let Some(slot) = old_shard.sessions.get(old_id) else {
            return Ok(WriteOutcome::Missing);
        };
        if slot.expires_at <= update.last_activity {
            self.remove_in(old_shard, old_id);
            return Ok(WriteOutcome::Missing);
        }
        if let Err(size) = update.admits(&slot.data) {
            return Ok(WriteOutcome::TooLarge { size });
        }
        let delta = slot.delta(update);
        if delta > 0 && !self.bytes_fit(delta.unsigned_abs()) {
            return Err(Error::StoreFull);
        }
        // Take the session out: from here the old id is dead.
        let Some(mut slot) = old_shard.remove(old_id) else {
            return Ok(WriteOutcome::Missing);
        };
        drop(old_shard);
        let before = slot.bytes();
        slot.apply(update.clone());
        let signed = |n: usize| isize::try_from(n).unwrap_or(isize::MAX);
        self.add_bytes(signed(slot.bytes()) - signed(before));
        let mut new_shard = self.shard(new_id).write();
        if new_shard.sessions.contains_key(new_id) {
            // Lost a race for the new id: the session goes back under its old
            // id (the update is idempotent, so the retry may apply it again).
            drop(new_shard);
            self.shard(old_id).write().insert(*old_id, slot);
            return Ok(WriteOutcome::IdTaken);
        }
        new_shard.insert(*new_id, slot);
        Ok(WriteOutcome::Written)
    }

    fn delete_now(&self, id: &SessionId) -> bool {
        self.remove_in(self.shard(id).write(), id)
    }

    /// The ids of `user`'s sessions, shard by shard.
    fn user_ids(&self, user: &str) -> Vec<SessionId> {
        let mut ids = Vec::new();
        for shard in self.inner.shards.iter() {
            if let Some(found) = shard.read().users.get(user) {
                ids.extend(found.to_vec());
            }
        }
        ids
    }
}

impl SessionStore for MemoryStore {
    fn load(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Record>, Error>> + Send {
        ready(Ok(self.load_now(id, now)))
    }

    fn create(
        &self,
        id: &SessionId,
        record: &Record,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        ready(self.create_now(id, record))
    }

    fn create_limited(
        &self,
        id: &SessionId,
        record: &Record,
        limit: UserLimit,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        ready(self.create_limited_now(id, record, limit))
    }

    fn update(
        &self,
        id: &SessionId,
        update: Update,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        ready(self.update_limited_now(id, update))
    }

    fn renew(
        &self,
        old_id: &SessionId,
        new_id: &SessionId,
        update: &Update,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        ready(self.renew_limited_now(old_id, new_id, update))
    }

    fn delete(&self, id: &SessionId) -> impl Future<Output = Result<bool, Error>> + Send {
        ready(Ok(self.delete_now(id)))
    }

    fn user_sessions(
        &self,
        user: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<SessionId>, Error>> + Send {
        let mut ids = self.user_ids(user);
        ids.retain(|id| self.load_now(id, now).is_some());
        ready(Ok(ids))
    }

    fn delete_user(&self, user: &str) -> impl Future<Output = Result<usize, Error>> + Send {
        let ended = self
            .user_ids(user)
            .iter()
            .filter(|id| self.delete_now(id))
            .count();
        ready(Ok(ended))
    }

    /// Adds up the shards' sizes less their expired sessions, found through
    /// the expiry index: the cost grows with the shards and the expired
    /// sessions not yet swept, not with the sessions held. Changes nothing.
    fn count(&self, now: Timestamp) -> impl Future<Output = Result<usize, Error>> + Send {
        let live = self
            .inner
            .shards
            .iter()
            .map(|shard| {
                let shard = shard.read();
                let expired = shard
                    .expiring
                    .iter()
                    .take_while(|(at, _)| *at <= now)
                    .count();
                shard.sessions.len() - expired
            })
            .sum();
        ready(Ok(live))
    }

    /// Takes up to `limit` live sessions after `after` from each shard's
    /// ordered ids, and keeps the first `limit` of them all: a page costs
    /// about `limit` times the number of shards (16 for most stores).
    fn list(
        &self,
        now: Timestamp,
        after: Option<&SessionId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(SessionId, Record)>, Error>> + Send {
        let start = after.map_or(Bound::Unbounded, |id| Bound::Excluded(*id));
        let mut page = Vec::new();
        for shard in self.inner.shards.iter() {
            let shard = shard.read();
            page.extend(
                shard
                    .order
                    .range((start, Bound::Unbounded))
                    .filter_map(|id| {
                        let slot = shard.sessions.get(id)?;
                        (slot.expires_at > now).then(|| (*id, slot.record()))
                    })
                    .take(limit),
            );
        }
        page.sort_unstable_by_key(|(id, _)| *id);
        page.truncate(limit);
        ready(Ok(page))
    }

    fn delete_all(&self) -> impl Future<Output = Result<usize, Error>> + Send {
        let mut ended = 0;
        for shard in self.inner.shards.iter() {
            let taken = std::mem::take(&mut *shard.write());
            let bytes = taken.sessions.values().map(Slot::bytes).sum();
            self.forget(taken.sessions.len(), bytes);
            ended += taken.sessions.len();
        }
        ready(Ok(ended))
    }

    /// Every operation is done before its future is returned.
    fn is_immediate(&self) -> bool {
        true
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::{block_on, record_at};

    /// The store contract again on a deferred memory store (pending once
    /// per call, as stores that do IO are).
    mod deferred_contract {
        use super::MemoryStore;
        use crate::testing::Deferred;

        async fn store() -> Option<Deferred<MemoryStore>> {
            Some(Deferred(MemoryStore::new()))
        }

        crate::store_contract_tests!(block_on, store);
    }

    /// The store contract, a test per point.
    mod contract {
        use super::MemoryStore;

        async fn store() -> Option<MemoryStore> {
            Some(MemoryStore::new())
        }

        crate::store_contract_tests!(block_on, store);
    }

    #[test]
    fn racing_updates_stay_within_the_size_limit() {
        let store = MemoryStore::new();
        let now = Timestamp::from_unix_secs(1_000);
        let written = block_on(crate::testing::racing_updates_stay_within_the_limit(
            &store, now, 200, 4096,
        ));
        // 5 bytes of seed, then 5 + 514 per key: 7 fit.
        assert_eq!(written, 7);
    }

    #[test]
    fn updates_racing_on_threads_stay_within_the_size_limit() {
        const LIMIT: usize = 4096;
        let store = MemoryStore::new();
        let now = Timestamp::from_unix_secs(1_000);
        let id = SessionId::generate();
        block_on(store.create(&id, &record_at(now, None, &[]))).unwrap();
        let barrier = std::sync::Barrier::new(200);
        let value = format!("\"{}\"", "v".repeat(300));
        let outcomes: Vec<WriteOutcome> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..200)
                .map(|i| {
                    let (store, barrier, value) = (&store, &barrier, &value);
                    scope.spawn(move || {
                        let mut update =
                            crate::testing::update_at(now, &[(&format!("k{i:03}"), value)], &[]);
                        update.max_bytes = LIMIT;
                        barrier.wait();
                        block_on(store.update(&id, update)).unwrap()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let record = block_on(store.load(&id, now)).unwrap().unwrap();
        let written = outcomes
            .iter()
            .filter(|o| **o == WriteOutcome::Written)
            .count();
        // 4 + 302 bytes per key: 13 fit in 4096, whichever 13 come first.
        assert_eq!(written, 13);
        assert_eq!(record.data.len(), 13);
        assert!(record.data.bytes() <= LIMIT);
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, WriteOutcome::Written | WriteOutcome::TooLarge { .. }))
        );
    }

    #[test]
    fn racing_logins_stay_within_the_user_limit() {
        let now = Timestamp::from_unix_secs(1_000);
        for policy in [crate::LimitPolicy::EndOldest, crate::LimitPolicy::Refuse] {
            let store = MemoryStore::new();
            block_on(crate::testing::racing_logins_stay_within_the_user_limit(
                &store, now, 12, 2, policy,
            ));
        }
    }

    #[test]
    fn logins_racing_on_threads_stay_within_the_user_limit() {
        let now = Timestamp::from_unix_secs(1_000);
        for limit in [crate::UserLimit::end_oldest(2), crate::UserLimit::refuse(2)] {
            let store = MemoryStore::new();
            let barrier = std::sync::Barrier::new(12);
            let outcomes: Vec<WriteOutcome> = std::thread::scope(|scope| {
                let threads: Vec<_> = (0..12u64)
                    .map(|i| {
                        let (store, barrier) = (&store, &barrier);
                        scope.spawn(move || {
                            let at = now.saturating_add(Duration::from_millis(i));
                            let record = record_at(at, Some("racer"), &[]);
                            barrier.wait();
                            block_on(store.create_limited(&SessionId::generate(), &record, limit))
                                .unwrap()
                        })
                    })
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).collect()
            });
            let live = block_on(store.user_sessions("racer", now)).unwrap();
            assert_eq!(live.len(), 2, "{limit:?}");
            assert_eq!(store.len(), 2, "{limit:?}");
            let written = outcomes.iter().filter(|o| o.is_written()).count();
            let expected = match limit.policy {
                crate::LimitPolicy::EndOldest => 12,
                crate::LimitPolicy::Refuse => 2,
            };
            assert_eq!(written, expected, "{limit:?}");
        }
    }

    #[test]
    fn meeting_an_expired_session_drops_it() {
        let store = MemoryStore::new();
        let now = Timestamp::from_unix_secs(1_000);
        let id = SessionId::generate();
        block_on(store.create(&id, &record_at(now, Some("u"), &[]))).unwrap();
        assert_eq!(store.len(), 1);
        assert!(
            block_on(store.load(&id, now.saturating_add(Duration::from_secs(3600))))
                .unwrap()
                .is_none()
        );
        assert_eq!(store.len(), 0);
        assert!(
            store.inner.shards.iter().all(|s| s.read().users.is_empty()),
            "index entry outlived its session"
        );
    }

    #[test]
    fn sweep_drops_exactly_the_expired_sessions() {
        let store = MemoryStore::new();
        let t0 = Timestamp::from_unix_secs(1_000);
        let t1 = t0.saturating_add(Duration::from_secs(600));
        for (at, user) in [(t0, "a"), (t0, "b"), (t1, "c")] {
            block_on(store.create(&SessionId::generate(), &record_at(at, Some(user), &[])))
                .unwrap();
        }
        assert_eq!(store.sweep(t0.saturating_add(Duration::from_secs(3599))), 0);
        assert_eq!(store.sweep(t0.saturating_add(Duration::from_secs(3600))), 2);
        assert_eq!(store.len(), 1);
        let users: usize = store
            .inner
            .shards
            .iter()
            .map(|s| s.read().users.len())
            .sum();
        assert_eq!(users, 1);
    }

    #[test]
    fn a_full_store_refuses_new_sessions_and_keeps_the_old_ones() {
        let store = MemoryStore::with_max_sessions(2);
        let now = Timestamp::from_unix_secs(1_000);
        // Ids that fall in one shard, so the full store's sweep finds them.
        let in_shard =
            |n: u8| SessionId::from_bytes([n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
        let ids: Vec<_> = (1..3).map(in_shard).collect();
        for id in &ids {
            block_on(store.create(id, &record_at(now, None, &[]))).unwrap();
        }
        let err = block_on(store.create(&in_shard(3), &record_at(now, None, &[])));
        assert!(matches!(err, Err(Error::StoreFull)));
        for id in &ids {
            assert!(block_on(store.load(id, now)).unwrap().is_some());
        }
        // Once the old sessions have expired, a full store sweeps and makes room.
        let later = now.saturating_add(Duration::from_secs(3600));
        let fresh = in_shard(4);
        assert_eq!(
            block_on(store.create(&fresh, &record_at(later, None, &[]))).unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn the_byte_bound_refuses_growth_and_allows_shrinking() {
        let now = Timestamp::from_unix_secs(1_000);
        let overhead = MemoryStore::PER_SESSION_OVERHEAD;
        // Room for two sessions of 100 bytes of values each (user "u": 1 byte).
        let store = MemoryStore::with_limits(100, 2 * (overhead + 101));
        let value = "x".repeat(99);
        let a = SessionId::generate();
        let record = record_at(now, Some("u"), &[("k", &value)]);
        block_on(store.create(&a, &record)).unwrap();
        assert_eq!(store.bytes(), overhead + 1 + 1 + 99);
        let b = SessionId::generate();
        block_on(store.create(&b, &record)).unwrap();
        assert_eq!(store.bytes(), 2 * (overhead + 101));
        // Full in bytes: no third session, and no growth of an existing one.
        let c = SessionId::generate();
        assert!(matches!(
            block_on(store.create(&c, &record_at(now, None, &[("k", "1")]))),
            Err(Error::StoreFull)
        ));
        let grow = crate::testing::update_at(now, &[("more", "1")], &[]);
        assert!(matches!(
            block_on(store.update(&a, grow)),
            Err(Error::StoreFull)
        ));
        assert_eq!(
            block_on(store.load(&a, now)).unwrap().unwrap(),
            record,
            "a refused write changed nothing"
        );
        // Shrinking always passes, and frees room.
        let shrink = crate::testing::update_at(now, &[("k", "1")], &[]);
        assert_eq!(
            block_on(store.update(&a, shrink)).unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(store.bytes(), 2 * overhead + 101 + 1 + 1 + 1);
        let renew = crate::testing::update_at(now, &[], &["k"]);
        let a2 = SessionId::generate();
        assert_eq!(
            block_on(store.renew(&a, &a2, &renew)).unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(store.bytes(), 2 * overhead + 101 + 1);
        // Deleting and sweeping give every byte back.
        assert!(block_on(store.delete(&b)).unwrap());
        assert_eq!(store.bytes(), overhead + 1);
        assert_eq!(
            store.sweep(now.saturating_add(Duration::from_secs(7200))),
            1
        );
        assert_eq!(store.bytes(), 0);
    }

    #[test]
    fn a_store_gets_the_shards_its_bound_fills_well() {
        assert_eq!(MemoryStore::with_max_sessions(1_000).inner.shards.len(), 16);
        // A million sessions in 18 shards of at most 57,344: each shard's
        // table is 85% full when the store is, not half empty.
        assert_eq!(MemoryStore::new().inner.shards.len(), 18);
        assert_eq!(
            MemoryStore::with_max_sessions(usize::MAX)
                .inner
                .shards
                .len(),
            4_096
        );
    }
}
