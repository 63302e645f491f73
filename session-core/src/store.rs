//! The store contract, and a form of it chosen at run time.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Error;
use crate::id::SessionId;
use crate::limit::UserLimit;
use crate::record::{Record, Update};
use crate::time::Timestamp;

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteOutcome {
    /// The write was applied.
    Written,
    /// The session to update or renew no longer exists (deleted, or
    /// expired): nothing was written, and the session stays gone.
    Missing,
    /// The new id is in use already: nothing was written.
    IdTaken,
    /// The update would grow the session's values past its
    /// [`max_bytes`](crate::Update::max_bytes), measured on the record as
    /// the store held it at the merge: nothing was written.
    TooLarge {
        /// The bytes the values would have held.
        size: usize,
    },
    /// The write was applied, and `ended` of its user's least recently used
    /// sessions were ended to keep the user within its
    /// [`UserLimit`] ([`LimitPolicy::EndOldest`](crate::LimitPolicy::EndOldest)).
    WrittenEndingOldest {
        /// How many sessions ended.
        ended: usize,
    },
    /// The write would give its user more live sessions than its
    /// [`UserLimit`] allows ([`LimitPolicy::Refuse`](crate::LimitPolicy::Refuse)):
    /// nothing was written.
    UserLimitReached,
}

impl WriteOutcome {
    /// Whether the write was applied ([`Written`](Self::Written) or
    /// [`WrittenEndingOldest`](Self::WrittenEndingOldest)).
    pub fn is_written(&self) -> bool {
        matches!(self, Self::Written | Self::WrittenEndingOldest { .. })
    }
}

/// Where sessions live. Async, but tied to no runtime: each method returns
/// a `Send` future that any executor can drive.
///
/// # The contract
///
/// Every store holds all of these; the crate's tests and the conformance
/// suite check them against each store.
///
/// 1. [`load`](Self::load) returns `None` for a session that is missing,
///    deleted, or whose `expires_at` is at or before `now`.
/// 2. [`create`](Self::create) stores a new session only if its id is
///    unused: it never overwrites ([`WriteOutcome::IdTaken`] otherwise).
/// 3. [`update`](Self::update) (given the changes by value, so a store may
///    move them in) applies what changed (keys set, keys removed,
///    cleared, times, user, expiry settings) to the record as the store holds
///    it *now*, atomically. Two requests that change different keys both keep
///    their change.
/// 4. `update` and [`renew`](Self::renew) on a session that was deleted or has
///    expired meanwhile write nothing and return [`WriteOutcome::Missing`]: a
///    request still running when its session ends cannot bring it back.
/// 5. `renew` moves the record, with the update applied, to the new id and
///    makes the old id dead in the same atomic step; the new id must be unused.
/// 6. [`user_sessions`](Self::user_sessions) and
///    [`delete_user`](Self::delete_user) find a user's sessions through an
///    index, at a cost that grows with that user's sessions, not with all
///    sessions; index entries go when their sessions go.
/// 7. `update` and `renew` check the update's size limit where they merge
///    it, in the same atomic step
///    ([`Update::admits`](crate::Update::admits) on the record as held
///    now): an update that would grow the values past it writes nothing and
///    returns [`WriteOutcome::TooLarge`]. No number of concurrent updates can
///    take a stored session past the limit together.
/// 8. A write that gives a session a user and carries a [`UserLimit`]
///    ([`create_limited`](Self::create_limited), or an update or renew with
///    [`Update::max_per_user`](crate::Update::max_per_user)) counts that
///    user's *other* live sessions in the same atomic step as the write:
///    with [`max`](UserLimit::max) or more of them it either ends the least
///    recently used (by `last_activity`) until `max - 1` are left and
///    returns [`WriteOutcome::WrittenEndingOldest`], or writes nothing and
///    returns [`WriteOutcome::UserLimitReached`]. No number of concurrent
///    logins of one user can leave more than `max` live sessions.
/// 9. The operator's calls, where a store has them (the defaults answer
///    [`Error::Store`], "not supported by this store"):
///    [`count`](Self::count) counts the live sessions through an index (it
///    never reads every session); [`list`](Self::list) pages through the
///    live sessions in the store's order of ids (keyset pagination: a page
///    starts after the last id of the one before, so sessions created or
///    ended meanwhile never make a page repeat or skip one that stayed),
///    a page costing about a page; [`delete_all`](Self::delete_all) ends
///    every session, user index entries included.
/// 10. Errors are [`Error::Store`] for a store that is down or failing, and
///     [`Error::Corrupt`] for a record that cannot be decoded. A failed write
///     loses no data that an earlier write committed.
pub trait SessionStore: Send + Sync + 'static {
    /// The live record for `id`, if there is one at `now`.
    fn load(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Record>, Error>> + Send;

    /// Stores a new session under an unused id.
    fn create(
        &self,
        id: &SessionId,
        record: &Record,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send;

    /// As [`create`](Self::create), for a session with a user, within
    /// `limit` (point 8 of the contract). The default refuses with a store
    /// error: a store that cannot check the limit atomically must not
    /// pretend to.
    fn create_limited(
        &self,
        id: &SessionId,
        record: &Record,
        limit: UserLimit,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        let _ = (id, record, limit);
        std::future::ready(Err(Error::store(
            "this store does not enforce a per-user session limit",
        )))
    }

    /// Applies a request's changes to a live session.
    fn update(
        &self,
        id: &SessionId,
        update: Update,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send;

    /// Moves a live session to `new_id` with the changes applied; `old_id`
    /// is dead once this returns [`WriteOutcome::Written`].
    fn renew(
        &self,
        old_id: &SessionId,
        new_id: &SessionId,
        update: &Update,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send;

    /// Deletes a session. Returns whether it existed.
    fn delete(&self, id: &SessionId) -> impl Future<Output = Result<bool, Error>> + Send;

    /// The live sessions of `user` at `now`.
    fn user_sessions(
        &self,
        user: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<SessionId>, Error>> + Send;

    /// Deletes every session of `user`. Returns how many there were.
    fn delete_user(&self, user: &str) -> impl Future<Output = Result<usize, Error>> + Send;

    /// How many sessions are live at `now` (point 9 of the contract).
    fn count(&self, now: Timestamp) -> impl Future<Output = Result<usize, Error>> + Send {
        let _ = now;
        std::future::ready(Err(not_supported("counting sessions")))
    }

    /// At most `limit` live sessions at `now`, in the store's order of ids,
    /// starting after `after` (from the first when `None`): one page of the
    /// operator's list (point 9 of the contract). A page shorter than
    /// `limit` is the last.
    fn list(
        &self,
        now: Timestamp,
        after: Option<&SessionId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(SessionId, Record)>, Error>> + Send {
        let _ = (now, after, limit);
        std::future::ready(Err(not_supported("listing sessions")))
    }

    /// Ends every session, and every user's index. Returns how many
    /// sessions there were (expired ones not yet dropped may count).
    fn delete_all(&self) -> impl Future<Output = Result<usize, Error>> + Send {
        std::future::ready(Err(not_supported("ending every session")))
    }

    /// A promise that every future this store returns is ready on its first
    /// poll (it does no IO: [`MemoryStore`](crate::MemoryStore)). The engine
    /// then runs a request's store calls in place instead of through boxed
    /// futures. A store that breaks the promise has that request failed
    /// with the store error status. Default `false`.
    fn is_immediate(&self) -> bool {
        false
    }

    /// A short lowercase name of this kind of store (`memory`, `redis`,
    /// `sql`), the `store` label of the engine's metrics and traces.
    /// Default `custom`.
    fn kind(&self) -> &'static str {
        "custom"
    }
}

/// The error of an operator call a store does not have.
fn not_supported(what: &str) -> Error {
    Error::store(format!("{what} is not supported by this store"))
}

/// A boxed future, as the object-safe [`DynSessionStore`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe twin of [`SessionStore`], implemented for every store.
/// Use it through [`DynStore`] when the store is chosen at run time.
#[allow(missing_docs)]
pub trait DynSessionStore: Send + Sync + 'static {
    fn load_dyn<'a>(
        &'a self,
        id: &'a SessionId,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<Option<Record>, Error>>;
    fn create_dyn<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
    ) -> BoxFuture<'a, Result<WriteOutcome, Error>>;
    fn create_limited_dyn<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        limit: UserLimit,
    ) -> BoxFuture<'a, Result<WriteOutcome, Error>>;
    fn update_dyn<'a>(
        &'a self,
        id: &'a SessionId,
        update: Update,
    ) -> BoxFuture<'a, Result<WriteOutcome, Error>>;
    fn renew_dyn<'a>(
        &'a self,
        old_id: &'a SessionId,
        new_id: &'a SessionId,
        update: &'a Update,
    ) -> BoxFuture<'a, Result<WriteOutcome, Error>>;
    fn delete_dyn<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool, Error>>;
    fn user_sessions_dyn<'a>(
        &'a self,
        user: &'a str,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, Error>>;
    fn delete_user_dyn<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<usize, Error>>;
    fn count_dyn(&self, now: Timestamp) -> BoxFuture<'_, Result<usize, Error>>;
    fn list_dyn<'a>(
        &'a self,
        now: Timestamp,
        after: Option<&'a SessionId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(SessionId, Record)>, Error>>;
    fn delete_all_dyn(&self) -> BoxFuture<'_, Result<usize, Error>>;
    fn is_immediate_dyn(&self) -> bool;
    fn kind_dyn(&self) -> &'static str;
}

impl<S: SessionStore> DynSessionStore for S {
    fn load_dyn<'a>(
        &'a self,
        id: &'a SessionId,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<Option<Record>, Error>> {
        Box::pin(self.load(id, now))
    }
    fn create_dyn<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
    ) -> BoxFuture<'a, Result<WriteOutcome, Error>> {
        Box::pin(self.create(id, record))
    }
    fn create_limited_dyn<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        limit: UserLimit,
    ) -> BoxFuture<'a, Result<WriteOutcome, Error>> {
        Box::pin(self.create_limited(id, record, limit))
    }
    fn update_dyn<'a>(
        &'a self,
        id: &'a SessionId,
        update: Update,
    ) -> BoxFuture<'a, Result<WriteOutcome, Error>> {
        Box::pin(self.update(id, update))
    }
    fn renew_dyn<'a>(
        &'a self,
        old_id: &'a SessionId,
        new_id: &'a SessionId,
        update: &'a Update,
    ) -> BoxFuture<'a, Result<WriteOutcome, Error>> {
        Box::pin(self.renew(old_id, new_id, update))
    }
    fn delete_dyn<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(self.delete(id))
    }
    fn user_sessions_dyn<'a>(
        &'a self,
        user: &'a str,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, Error>> {
        Box::pin(self.user_sessions(user, now))
    }
    fn delete_user_dyn<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<usize, Error>> {
        Box::pin(self.delete_user(user))
    }
    fn count_dyn(&self, now: Timestamp) -> BoxFuture<'_, Result<usize, Error>> {
        Box::pin(self.count(now))
    }
    fn list_dyn<'a>(
        &'a self,
        now: Timestamp,
        after: Option<&'a SessionId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(SessionId, Record)>, Error>> {
        Box::pin(self.list(now, after, limit))
    }
    fn delete_all_dyn(&self) -> BoxFuture<'_, Result<usize, Error>> {
        Box::pin(self.delete_all())
    }
    fn is_immediate_dyn(&self) -> bool {
        self.is_immediate()
    }
    fn kind_dyn(&self) -> &'static str {
        self.kind()
    }
}

/// A store chosen at run time (for example memory or Redis from an
/// environment variable). Cheap to clone.
#[derive(Clone)]
pub struct DynStore(Arc<dyn DynSessionStore>, Option<&'static str>);

impl DynStore {
    /// Boxes a store.
    pub fn new(store: impl SessionStore) -> Self {
        Self(Arc::new(store), None)
    }

    /// Names the store's [`kind`](SessionStore::kind) (for a store that
    /// does not name itself).
    pub fn with_kind(mut self, kind: &'static str) -> Self {
        self.1 = Some(kind);
        self
    }
}

impl fmt::Debug for DynStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DynStore(..)")
    }
}

impl SessionStore for DynStore {
    async fn load(&self, id: &SessionId, now: Timestamp) -> Result<Option<Record>, Error> {
        self.0.load_dyn(id, now).await
    }
    async fn create(&self, id: &SessionId, record: &Record) -> Result<WriteOutcome, Error> {
        self.0.create_dyn(id, record).await
    }
    async fn create_limited(
        &self,
        id: &SessionId,
        record: &Record,
        limit: UserLimit,
    ) -> Result<WriteOutcome, Error> {
        self.0.create_limited_dyn(id, record, limit).await
    }
    async fn update(&self, id: &SessionId, update: Update) -> Result<WriteOutcome, Error> {
        self.0.update_dyn(id, update).await
    }
    async fn renew(
        &self,
        old_id: &SessionId,
        new_id: &SessionId,
        update: &Update,
    ) -> Result<WriteOutcome, Error> {
        self.0.renew_dyn(old_id, new_id, update).await
    }
    async fn delete(&self, id: &SessionId) -> Result<bool, Error> {
        self.0.delete_dyn(id).await
    }
    async fn user_sessions(&self, user: &str, now: Timestamp) -> Result<Vec<SessionId>, Error> {
        self.0.user_sessions_dyn(user, now).await
    }
    async fn delete_user(&self, user: &str) -> Result<usize, Error> {
        self.0.delete_user_dyn(user).await
    }
    async fn count(&self, now: Timestamp) -> Result<usize, Error> {
        self.0.count_dyn(now).await
    }
    async fn list(
        &self,
        now: Timestamp,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<(SessionId, Record)>, Error> {
        self.0.list_dyn(now, after, limit).await
    }
    async fn delete_all(&self) -> Result<usize, Error> {
        self.0.delete_all_dyn().await
    }
    fn is_immediate(&self) -> bool {
        self.0.is_immediate_dyn()
    }
    fn kind(&self) -> &'static str {
        self.1.unwrap_or_else(|| self.0.kind_dyn())
    }
}

impl<S: SessionStore> SessionStore for Arc<S> {
    fn load(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Record>, Error>> + Send {
        (**self).load(id, now)
    }
    fn create(
        &self,
        id: &SessionId,
        record: &Record,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        (**self).create(id, record)
    }
    fn create_limited(
        &self,
        id: &SessionId,
        record: &Record,
        limit: UserLimit,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        (**self).create_limited(id, record, limit)
    }
    fn update(
        &self,
        id: &SessionId,
        update: Update,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        (**self).update(id, update)
    }
    fn renew(
        &self,
        old_id: &SessionId,
        new_id: &SessionId,
        update: &Update,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        (**self).renew(old_id, new_id, update)
    }
    fn delete(&self, id: &SessionId) -> impl Future<Output = Result<bool, Error>> + Send {
        (**self).delete(id)
    }
    fn user_sessions(
        &self,
        user: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<SessionId>, Error>> + Send {
        (**self).user_sessions(user, now)
    }
    fn delete_user(&self, user: &str) -> impl Future<Output = Result<usize, Error>> + Send {
        (**self).delete_user(user)
    }
    fn count(&self, now: Timestamp) -> impl Future<Output = Result<usize, Error>> + Send {
        (**self).count(now)
    }
    fn list(
        &self,
        now: Timestamp,
        after: Option<&SessionId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(SessionId, Record)>, Error>> + Send {
        (**self).list(now, after, limit)
    }
    fn delete_all(&self) -> impl Future<Output = Result<usize, Error>> + Send {
        (**self).delete_all()
    }
    fn is_immediate(&self) -> bool {
        (**self).is_immediate()
    }
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
}
