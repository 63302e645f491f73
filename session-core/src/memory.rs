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
/// - **Bound**: at most [`max_sessions`](Self::with_max_sessions) sessions
///   (default 1,000,000). When full, the expired sessions of the shard the
///   new one falls in (a sixteenth of the store) are swept first, at most
///   once a second per shard; if it is still full, a new session is refused
///   with [`Error::StoreFull`]
///   (adapters answer 503), and existing sessions are never evicted, so a
///   flood of new visitors cannot log out the users already signed in.
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
            .finish()
    }
}

impl MemoryStore {
    /// An empty store holding at most 1,000,000 sessions.
    pub fn new() -> Self {
        Self::with_max_sessions(1_000_000)
    }

    /// An empty store holding at most `max` sessions.
    pub fn with_max_sessions(max: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Shard::default()).collect(),
                users: Mutex::default(),
                len: AtomicUsize::new(0),
                max_sessions: max,
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

    /// Drops every session expired at `now`; returns how many. Schedule it
    /// (say, once a minute): it visits every shard, one at a time.
    pub fn sweep(&self, now: Timestamp) -> usize {
        (0..SHARDS).map(|shard| self.sweep_shard(shard, now)).sum()
    }

    /// Drops the expired sessions of one shard.
    fn sweep_shard(&self, shard: usize, now: Timestamp) -> usize {
        let mut dropped = Vec::new();
        self.inner.shards[shard].write().retain(|id, r| {
            let live = r.expires_at > now;
            if !live {
                dropped.push((*id, r.meta.user.clone()));
            }
            live
        });
        if dropped.is_empty() {
            return 0;
        }
        self.inner.len.fetch_sub(dropped.len(), Ordering::Relaxed);
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
    fn make_room(&self, id: &SessionId, now: Timestamp) -> Result<(), Error> {
        if self.len() < self.inner.max_sessions {
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
        if self.len() < self.inner.max_sessions {
            Ok(())
        } else {
            Err(Error::StoreFull)
        }
    }

    fn create_now(&self, id: &SessionId, record: &Record) -> Result<WriteOutcome, Error> {
        self.make_room(id, record.meta.last_activity)?;
        {
            let mut shard = self.shard(id).write();
            if shard.contains_key(id) {
                return Ok(WriteOutcome::IdTaken);
            }
            shard.insert(*id, record.clone());
        }
        self.inner.len.fetch_add(1, Ordering::Relaxed);
        if let Some(user) = &record.meta.user {
            self.index(user, *id);
        }
        Ok(WriteOutcome::Written)
    }

    fn update_now(&self, id: &SessionId, update: Update) -> WriteOutcome {
        let mut shard = self.shard(id).write();
        let Some(record) = shard.get_mut(id) else {
            return WriteOutcome::Missing;
        };
        if record.expires_at <= update.last_activity {
            let record = shard.remove(id);
            drop(shard);
            self.forget(id, record);
            return WriteOutcome::Missing;
        }
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
        WriteOutcome::Written
    }

    fn renew_now(&self, old_id: &SessionId, new_id: &SessionId, update: &Update) -> WriteOutcome {
        if self.shard(new_id).read().contains_key(new_id) {
            return WriteOutcome::IdTaken;
        }
        // Take the record out: from here the old id is dead.
        let Some(mut record) = self.shard(old_id).write().remove(old_id) else {
            return WriteOutcome::Missing;
        };
        if record.expires_at <= update.last_activity {
            self.forget(old_id, Some(record));
            return WriteOutcome::Missing;
        }
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
                return WriteOutcome::IdTaken;
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
        WriteOutcome::Written
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
        ready(Ok(self.update_now(id, update)))
    }

    fn renew(
        &self,
        old_id: &SessionId,
        new_id: &SessionId,
        update: &Update,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        ready(Ok(self.renew_now(old_id, new_id, update)))
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
}
