//! `MemoryStore`: sessions in this process's memory.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::{Future, ready};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::error::Error;
use crate::id::SessionId;
use crate::record::{Record, Update};
use crate::store::{SessionStore, WriteOutcome};
use crate::time::Timestamp;

const SHARDS: usize = 16;
/// The default bound on bytes: 1 GiB.
const DEFAULT_MAX_BYTES: usize = 1 << 30;
/// A full store sweeps expired sessions at most this often (milliseconds).
const FULL_SWEEP_EVERY_MS: u64 = 1_000;

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

type Shard = RwLock<HashMap<SessionId, Record, BuildHasherDefault<IdHasher>>>;

/// Sessions in this process's memory: the embedded default store.
///
/// It meets the whole [`SessionStore`] contract. Reads share the record's
/// values instead of copying them; locks are held for one map operation.
///
/// - **Expiry**: an expired session is dropped when a request meets it;
///   [`sweep`](Self::sweep) drops all of them, for callers to schedule (say,
///   once a minute).
/// - **Bound**: at most [`max_sessions`](Self::with_limits) sessions
///   (default 1,000,000) and at most [`max_bytes`](Self::with_limits) bytes
///   (default 1 GiB). A session counts for the bytes of its keys, values and
///   user name plus [`PER_SESSION_OVERHEAD`](MemoryStore::PER_SESSION_OVERHEAD); together with
///   [`max_session_bytes`](crate::SessionConfig::max_session_bytes), which
///   bounds each session, this bounds the memory a flood of visitors can
///   take.
/// - **When full**: the expired sessions of the shard the new one falls in
///   (a sixteenth of the store) are swept first, at most once a second per
///   shard; if it is still full, a new session is refused with
///   [`Error::StoreFull`] (adapters answer 503), and so is a write that
///   would grow an existing session past the byte bound. Existing sessions
///   are never evicted, so a flood of new visitors cannot log out the users
///   already signed in; writes that keep or shrink a session always pass.
///   Visitors whose sessions hold nothing never take a place.
///
/// Clones share the same sessions.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Shard]>,
    users: Mutex<HashMap<Arc<str>, HashSet<SessionId>>>,
    len: AtomicUsize,
    max_sessions: usize,
    /// Bytes counted for the sessions held (see [`record_bytes`]).
    bytes: AtomicUsize,
    max_bytes: usize,
    /// When each shard was last swept because the store was full.
    last_full_sweep: Box<[AtomicU64]>,
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
    /// name: roughly its place in the map and its value map's bookkeeping.
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
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Shard::default()).collect(),
                users: Mutex::default(),
                len: AtomicUsize::new(0),
                max_sessions,
                bytes: AtomicUsize::new(0),
                max_bytes,
                last_full_sweep: (0..SHARDS).map(|_| AtomicU64::new(0)).collect(),
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

    /// Drops every session expired at `now`; returns how many. Schedule it
    /// (say, once a minute): it visits every shard, one at a time.
    pub fn sweep(&self, now: Timestamp) -> usize {
        (0..SHARDS).map(|shard| self.sweep_shard(shard, now)).sum()
    }

    /// Drops the expired sessions of one shard.
    fn sweep_shard(&self, shard: usize, now: Timestamp) -> usize {
        let mut dropped = Vec::new();
        let mut bytes = 0;
        self.inner.shards[shard].write().retain(|id, r| {
            let live = r.expires_at > now;
            if !live {
                bytes += record_bytes(r);
                dropped.push((*id, r.meta.user.clone()));
            }
            live
        });
        if dropped.is_empty() {
            return 0;
        }
        self.inner.len.fetch_sub(dropped.len(), Ordering::Relaxed);
        self.inner.bytes.fetch_sub(bytes, Ordering::Relaxed);
        let mut users = self.inner.users.lock();
        for (id, user) in &dropped {
            if let Some(user) = user {
                unindex(&mut users, user, id);
            }
        }
        dropped.len()
    }

    fn shard_index(id: &SessionId) -> usize {
        usize::from(id.as_bytes()[15]) % SHARDS
    }

    fn shard(&self, id: &SessionId) -> &Shard {
        &self.inner.shards[Self::shard_index(id)]
    }

    fn load_now(&self, id: &SessionId, now: Timestamp) -> Option<Record> {
        {
            let shard = self.shard(id).read();
            let record = shard.get(id)?;
            if record.expires_at > now {
                return Some(record.clone());
            }
        }
        // Expired: drop it while we are here.
        let mut shard = self.shard(id).write();
        if shard.get(id).is_some_and(|r| r.expires_at <= now) {
            let record = shard.remove(id);
            drop(shard);
            self.forget(id, record);
        }
        None
    }

    /// Bookkeeping after `record` left the map.
    fn forget(&self, id: &SessionId, record: Option<Record>) {
        if let Some(record) = record {
            self.inner.len.fetch_sub(1, Ordering::Relaxed);
            self.inner
                .bytes
                .fetch_sub(record_bytes(&record), Ordering::Relaxed);
            if let Some(user) = &record.meta.user {
                unindex(&mut self.inner.users.lock(), user, id);
            }
        }
    }

    fn index(&self, user: &Arc<str>, id: SessionId) {
        self.inner
            .users
            .lock()
            .entry(Arc::clone(user))
            .or_default()
            .insert(id);
    }

    /// When the store is full, sweeps the shard `id` falls in (at most once
    /// a second per shard, so a flood cannot make every request sweep), and
    /// refuses if that made no room. The pause stays bounded: one shard is a
    /// sixteenth of the store.
    fn make_room(&self, id: &SessionId, now: Timestamp, bytes: usize) -> Result<(), Error> {
        let fits = || self.len() < self.inner.max_sessions && self.bytes_fit(bytes);
        if fits() {
            return Ok(());
        }
        let shard = Self::shard_index(id);
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
        let bytes = record_bytes(record);
        self.make_room(id, record.meta.last_activity, bytes)?;
        {
            let mut shard = self.shard(id).write();
            if shard.contains_key(id) {
                return Ok(WriteOutcome::IdTaken);
            }
            shard.insert(*id, record.clone());
        }
        self.inner.len.fetch_add(1, Ordering::Relaxed);
        self.inner.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(user) = &record.meta.user {
            self.index(user, *id);
        }
        Ok(WriteOutcome::Written)
    }

    fn update_now(&self, id: &SessionId, update: Update) -> Result<WriteOutcome, Error> {
        let mut shard = self.shard(id).write();
        let Some(record) = shard.get_mut(id) else {
            return Ok(WriteOutcome::Missing);
        };
        if record.expires_at <= update.last_activity {
            let record = shard.remove(id);
            drop(shard);
            self.forget(id, record);
            return Ok(WriteOutcome::Missing);
        }
        let delta = update_delta(record, &update);
        if delta > 0 && !self.bytes_fit(delta.unsigned_abs()) {
            return Err(Error::StoreFull);
        }
        self.add_bytes(delta);
        let old_user = update.user.as_ref().and(record.meta.user.clone());
        let new_user = update.user.clone();
        update.apply(record);
        drop(shard);
        if let Some(new_user) = &new_user {
            let mut users = self.inner.users.lock();
            if let Some(old) = &old_user {
                unindex(&mut users, old, id);
            }
            if let Some(new) = new_user {
                users.entry(Arc::clone(new)).or_default().insert(*id);
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
        if self.shard(new_id).read().contains_key(new_id) {
            return Ok(WriteOutcome::IdTaken);
        }
        let mut old_shard = self.shard(old_id).write();
        let Some(record) = old_shard.get(old_id) else {
            return Ok(WriteOutcome::Missing);
        };
        let delta = update_delta(record, update);
        if record.expires_at > update.last_activity
            && delta > 0
            && !self.bytes_fit(delta.unsigned_abs())
        {
            return Err(Error::StoreFull);
        }
        // Take the record out: from here the old id is dead.
        let Some(mut record) = old_shard.remove(old_id) else {
            return Ok(WriteOutcome::Missing);
        };
        drop(old_shard);
        if record.expires_at <= update.last_activity {
            self.forget(old_id, Some(record));
            return Ok(WriteOutcome::Missing);
        }
        self.add_bytes(delta);
        let old_user = record.meta.user.clone();
        update.apply_to(&mut record);
        let new_user = record.meta.user.clone();
        {
            let mut shard = self.shard(new_id).write();
            if shard.contains_key(new_id) {
                // Lost a race for the new id: put the session back under its old id
                // (the update is idempotent, so the retry may apply it again).
                drop(shard);
                self.shard(old_id).write().insert(*old_id, record);
                return Ok(WriteOutcome::IdTaken);
            }
            shard.insert(*new_id, record);
        }
        let mut users = self.inner.users.lock();
        if let Some(old) = &old_user {
            unindex(&mut users, old, old_id);
        }
        if let Some(new) = new_user {
            users.entry(new).or_default().insert(*new_id);
        }
        Ok(WriteOutcome::Written)
    }

    fn delete_now(&self, id: &SessionId) -> bool {
        let record = self.shard(id).write().remove(id);
        let existed = record.is_some();
        self.forget(id, record);
        existed
    }

    fn user_ids(&self, user: &str) -> Vec<SessionId> {
        self.inner
            .users
            .lock()
            .get(user)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// The bytes a session counts for: its keys, values and user name, plus
/// [`PER_SESSION_OVERHEAD`].
fn record_bytes(record: &Record) -> usize {
    MemoryStore::PER_SESSION_OVERHEAD
        + record.meta.user.as_deref().map_or(0, str::len)
        + record
            .data
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

/// How many bytes applying `update` adds to (or, negative, takes from)
/// `record`.
fn update_delta(record: &Record, update: &Update) -> isize {
    let entry = |k: &str| record.data.get(k).map_or(0, |v| k.len() + v.len());
    let mut delta: isize = 0;
    let grow = |n: usize| isize::try_from(n).unwrap_or(isize::MAX);
    if update.cleared {
        delta -= grow(
            record_bytes(record)
                - MemoryStore::PER_SESSION_OVERHEAD
                - record.meta.user.as_deref().map_or(0, str::len),
        );
    } else {
        for key in &update.removed {
            delta -= grow(entry(key));
        }
    }
    for (key, value) in &update.set {
        let old = if update.cleared { 0 } else { entry(key) };
        delta += grow(key.len() + value.len()) - grow(old);
    }
    if let Some(user) = &update.user {
        delta += grow(user.as_deref().map_or(0, str::len))
            - grow(record.meta.user.as_deref().map_or(0, str::len));
    }
    delta
}

fn unindex(users: &mut HashMap<Arc<str>, HashSet<SessionId>>, user: &str, id: &SessionId) {
    if let Some(ids) = users.get_mut(user) {
        ids.remove(id);
        if ids.is_empty() {
            users.remove(user);
        }
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

    fn update(
        &self,
        id: &SessionId,
        update: Update,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        ready(self.update_now(id, update))
    }

    fn renew(
        &self,
        old_id: &SessionId,
        new_id: &SessionId,
        update: &Update,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        ready(self.renew_now(old_id, new_id, update))
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

    /// Every operation is done before its future is returned.
    fn is_immediate(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::{block_on, record_at, store_contract};

    #[test]
    fn meets_the_store_contract() {
        block_on(store_contract(&MemoryStore::new()));
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
            store.inner.users.lock().is_empty(),
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
        assert_eq!(store.inner.users.lock().len(), 1);
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
}
