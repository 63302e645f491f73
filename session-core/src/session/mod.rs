//! `Session`: the handle a handler uses, and the changes it records.

mod plan;
mod policy;

pub(crate) use plan::{Plan, Write};
pub(crate) use policy::SessionPolicy;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::data::Data;
use crate::error::Error;
use crate::id::SessionId;
use crate::record::{ExpiryOverrides, Metadata, Record};
use crate::time::{SharedClock, Timestamp};

/// Keys of flash values start with this.
const FLASH_PREFIX: &str = "_flash.";

/// Whether `key` holds the engine's own bookkeeping (flash values, the CSRF
/// token), which [`Session::keys`] and [`Session::len`] leave out.
fn is_internal(key: &str) -> bool {
    key.starts_with(FLASH_PREFIX) || key.starts_with("_csrf.")
}

/// A visitor's session, as a handler sees it.
///
/// The API is sync: values live in memory for the length of the request and
/// reach the store when the response is sent. Values are stored as JSON; only
/// the keys a request writes or removes are sent to the store, so concurrent
/// requests that change different keys both keep their change.
///
/// The handle is `Clone + Send + Sync`: clones share one session, and can
/// cross `.await` and `spawn`.
///
/// # After the response
///
/// Once the response is committed the handle is **spent**: its changes and
/// values have gone to the store, reads find nothing, and nothing more is
/// saved. A write to a spent handle (one kept in a task that outlives its
/// request) is refused: [`insert`](Self::insert), [`insert_raw`](Self::insert_raw)
/// and [`extend_raw`](Self::extend_raw) return [`Error::Committed`], and the
/// calls that return no `Result` (`remove`, `clear`, `renew`, `destroy`,
/// `set_user` and the expiry setters) change nothing and log a warning.
/// Finish a session's writes before the handler returns.
///
/// # A typed session
///
/// Keep related values in one struct under one key: one read, one write,
/// and the compiler checks the fields.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use session_core::Session;
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Cart {
///     items: Vec<String>,
/// }
///
/// # let session = Session::detached();
/// let cart = session.update("cart", |cart: &mut Cart| cart.items.push("apple".into()))?;
/// assert_eq!(cart.items, ["apple"]);
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Session(Arc<Mutex<State>>);

pub(crate) struct State {
    /// The id the session is stored under; `None` until it is first stored.
    id: Option<SessionId>,
    /// A stored session ended by `destroy` in this request.
    destroyed: Option<SessionId>,
    meta: Metadata,
    /// Values as loaded.
    base: Option<Data>,
    /// Keys this request wrote (`Some`) or removed (`None`). A B-tree: a
    /// request changes few keys, and an empty one costs nothing to make
    /// (no hasher keys to draw).
    changes: BTreeMap<String, Option<String>>,
    cleared: bool,
    user_changed: bool,
    /// A login in this request set (or a logout cleared) the
    /// authentication time.
    auth_changed: bool,
    expiry_changed: bool,
    renew: bool,
    /// A handler read or wrote values (responses then vary by cookie).
    accessed: bool,
    /// The request's cookie named a session that is not (or no longer) live.
    stale_cookie: bool,
    defaults: SessionPolicy,
    /// When the request opened the session.
    opened_at: Timestamp,
    /// For a new session opened without reading the clock (a request with
    /// no id): the clock that stamps its times when first needed (when
    /// the handler asks for them, or when it is stored). `None` once
    /// stamped.
    unstamped: Option<SharedClock>,
    /// Committed: the changes went to the store and the values were let go.
    spent: bool,
    /// Bytes (keys plus JSON text) of the values as this request sees them;
    /// counted on the first write, so read-only requests never count.
    size: Option<usize>,
}

impl Session {
    pub(crate) fn open(
        id: Option<SessionId>,
        record: Option<Record>,
        stale_cookie: bool,
        defaults: SessionPolicy,
        now: Timestamp,
    ) -> Self {
        let (meta, base) = match record {
            Some(r) => (r.meta, Some(r.data)),
            None => (fresh_meta(now), None),
        };
        Self::with(id, meta, base, stale_cookie, defaults, now, None)
    }

    /// A new session whose times `clock` gives when they are first needed:
    /// a request that never uses them (most anonymous traffic) reads no
    /// clock.
    #[inline]
    pub(crate) fn unstamped(
        stale_cookie: bool,
        defaults: SessionPolicy,
        clock: SharedClock,
    ) -> Self {
        let epoch = Timestamp::default();
        let meta = fresh_meta(epoch);
        Self::with(None, meta, None, stale_cookie, defaults, epoch, Some(clock))
    }

    #[inline]
    fn with(
        id: Option<SessionId>,
        meta: Metadata,
        base: Option<Data>,
        stale_cookie: bool,
        defaults: SessionPolicy,
        now: Timestamp,
        unstamped: Option<SharedClock>,
    ) -> Self {
        Self(Arc::new(Mutex::new(State {
            id,
            destroyed: None,
            meta,
            base,
            changes: BTreeMap::new(),
            cleared: false,
            user_changed: false,
            auth_changed: false,
            expiry_changed: false,
            renew: false,
            accessed: false,
            stale_cookie,
            defaults,
            opened_at: now,
            unstamped,
            spent: false,
            size: None,
        })))
    }

    /// A new, empty session with the default settings, outside any request:
    /// for unit tests of handlers.
    pub fn detached() -> Self {
        let config = crate::SessionConfig::default();
        Self::open(
            None,
            None,
            false,
            SessionPolicy::of(&config),
            Timestamp::default(),
        )
    }

    /// The value under `key`, decoded as `T`. `Ok(None)` if there is none;
    /// an error if the stored JSON is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let mut s = self.0.lock();
        s.accessed = true;
        s.raw(key)
            .map(serde_json::from_str)
            .transpose()
            .map_err(Error::Value)
    }

    /// The JSON text under `key`, undecoded.
    pub fn get_raw(&self, key: &str) -> Option<String> {
        let mut s = self.0.lock();
        s.accessed = true;
        s.raw(key).map(str::to_owned)
    }

    /// Stores `value` under `key`. Encoding happens now, so an error comes
    /// back here and the session is left as it was.
    ///
    /// # Errors
    ///
    /// [`Error::Value`] if `value` cannot be encoded as JSON, and
    /// [`Error::TooLarge`] if the session's values would go over
    /// [`max_session_bytes`](crate::SessionConfig::max_session_bytes); in
    /// both cases nothing changed.
    pub fn insert<T: Serialize + ?Sized>(
        &self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), Error> {
        let json = serde_json::to_string(value)?;
        self.insert_raw(key, json)
    }

    /// Stores JSON text under `key` as it is. The caller vouches that it is
    /// valid JSON.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`], as [`insert`](Self::insert); nothing changed.
    pub fn insert_raw(&self, key: impl Into<String>, json: String) -> Result<(), Error> {
        let key = key.into();
        let mut s = self.0.lock();
        s.writable()?;
        s.accessed = true;
        let old = match s.raw(&key) {
            Some(old) if old == json => return Ok(()),
            old => old.map_or(0, |old| key.len() + old.len()),
        };
        let before = s.size();
        s.admit(before, before - old + key.len() + json.len())?;
        s.changes.insert(key, Some(json));
        Ok(())
    }

    /// Stores several JSON texts at once, all or nothing: if the session's
    /// values would go over
    /// [`max_session_bytes`](crate::SessionConfig::max_session_bytes) with
    /// all of them, none is stored. The caller vouches that each is valid
    /// JSON; a key given twice keeps its last value.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`]; nothing changed.
    pub fn extend_raw<I>(&self, entries: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut batch: HashMap<String, String> = HashMap::new();
        batch.extend(entries);
        let mut s = self.0.lock();
        s.writable()?;
        s.accessed = true;
        batch.retain(|key, json| s.raw(key) != Some(json.as_str()));
        if batch.is_empty() {
            return Ok(());
        }
        let before = s.size();
        let after = batch.iter().fold(before, |size, (key, json)| {
            let old = s.raw(key).map_or(0, |old| key.len() + old.len());
            size - old + key.len() + json.len()
        });
        s.admit(before, after)?;
        for (key, json) in batch {
            s.changes.insert(key, Some(json));
        }
        Ok(())
    }

    /// The bytes this session's values hold as this request sees them: keys
    /// plus their JSON text, the measure of
    /// [`max_session_bytes`](crate::SessionConfig::max_session_bytes).
    pub fn size(&self) -> usize {
        self.0.lock().size()
    }

    /// The most bytes this session's values may hold
    /// ([`max_session_bytes`](crate::SessionConfig::max_session_bytes)).
    pub fn size_limit(&self) -> usize {
        self.0.lock().defaults.max_bytes
    }

    /// Removes `key`; returns whether it held a value. The removal is sent
    /// to the store either way, so it also removes a value another request
    /// stored meanwhile.
    pub fn remove(&self, key: &str) -> bool {
        let mut s = self.0.lock();
        if !s.mutable("remove") {
            return false;
        }
        s.accessed = true;
        let old = s.raw(key).map(|old| key.len() + old.len());
        if let (Some(size), Some(old)) = (s.size.as_mut(), old) {
            *size -= old;
        }
        s.changes.insert(key.to_owned(), None);
        old.is_some()
    }

    /// Removes `key` and returns its value decoded as `T`.
    pub fn take<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let value = self.get(key)?;
        if value.is_some() {
            self.remove(key);
        }
        Ok(value)
    }

    /// Removes every value. The session itself (id, user, times) stays.
    pub fn clear(&self) {
        let mut s = self.0.lock();
        if !s.mutable("clear") {
            return;
        }
        s.accessed = true;
        s.cleared = true;
        s.changes.clear();
        s.size = Some(0);
    }

    /// Whether `key` holds a value.
    pub fn contains_key(&self, key: &str) -> bool {
        let mut s = self.0.lock();
        s.accessed = true;
        s.raw(key).is_some()
    }

    /// The keys that hold values, in no particular order. Flash values
    /// (see [`flash`](Self::flash)) and the CSRF token
    /// ([`csrf::TOKEN_KEY`](crate::csrf::TOKEN_KEY)) are not among them.
    pub fn keys(&self) -> Vec<String> {
        let mut s = self.0.lock();
        s.accessed = true;
        s.keys()
            .filter(|k| !is_internal(k))
            .map(str::to_owned)
            .collect()
    }

    /// How many keys hold values, flash values and the CSRF token not
    /// counted.
    pub fn len(&self) -> usize {
        let mut s = self.0.lock();
        s.accessed = true;
        s.keys().filter(|k| !is_internal(k)).count()
    }

    /// The value under `key`, or `default()` stored there first if there is
    /// none.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get) and [`insert`](Self::insert); on an error
    /// nothing changed.
    pub fn get_or_insert_with<T>(&self, key: &str, default: impl FnOnce() -> T) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
    {
        if let Some(value) = self.get(key)? {
            return Ok(value);
        }
        let value = default();
        self.insert(key, &value)?;
        Ok(value)
    }

    /// Reads the value under `key` (or `T::default()`), lets `change` modify
    /// it, stores it back and returns it: a counter, a cart, or a whole
    /// typed session behind one key (see [`Session`]).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get) and [`insert`](Self::insert); on an error
    /// nothing changed.
    pub fn update<T>(&self, key: &str, change: impl FnOnce(&mut T)) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        let mut value = self.get(key)?.unwrap_or_default();
        change(&mut value);
        self.insert(key, &value)?;
        Ok(value)
    }

    /// Whether no key holds a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores a flash value: one that [`take_flash`](Self::take_flash) reads
    /// once, typically on the next request. Flash values are stored under
    /// keys that start with `_flash.`, count toward the size limit, and are
    /// left out of [`keys`](Self::keys) and [`len`](Self::len).
    pub fn flash<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        self.insert(format!("{FLASH_PREFIX}{key}"), value)
    }

    /// Reads and removes a flash value.
    pub fn take_flash<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.take(&format!("{FLASH_PREFIX}{key}"))
    }

    /// Gives the session a new id when the response is sent: values, user
    /// and times are kept, and the old id is dead from then on. Call it
    /// whenever privileges change (login does it for you through
    /// [`set_user`](Self::set_user)).
    pub fn renew(&self) {
        let mut s = self.0.lock();
        if s.mutable("renew") && s.id.is_some() {
            s.renew = true;
        }
        drop(s);
        crate::csrf::rotate(self); // CSRF: a new id, a new token.
    }

    /// Ends the session: it is deleted from the store and the browser gets a
    /// removal cookie. Values stored after this start a new session with a
    /// new id.
    pub fn destroy(&self) {
        let mut s = self.0.lock();
        if !s.mutable("destroy") {
            return;
        }
        s.accessed = true;
        if let Some(id) = s.id.take() {
            s.destroyed = Some(id);
        }
        s.meta = fresh_meta(s.opened_at);
        s.base = None;
        s.changes.clear();
        s.cleared = false;
        s.user_changed = false;
        s.auth_changed = false;
        s.expiry_changed = false;
        s.renew = false;
        s.size = Some(0);
    }

    /// The user this session belongs to.
    pub fn user(&self) -> Option<Arc<str>> {
        self.0.lock().meta.user.clone()
    }

    /// Ties the session to `user`: a login, which also records its time as
    /// [`authenticated_at`](Self::authenticated_at) (the instant the request
    /// opened the session). When the user changes, the session also gets a
    /// new id, as OWASP asks on every privilege change. Calling it again
    /// with the same user (the password asked again before a sensitive
    /// action) only records the new login time; call [`renew`](Self::renew)
    /// too for a new id.
    pub fn set_user(&self, user: impl Into<Arc<str>>) {
        self.change_user(Some(user.into()));
    }

    /// Unties the session from its user (and forgets its login time); the
    /// session gets a new id.
    pub fn clear_user(&self) {
        self.change_user(None);
    }

    fn change_user(&self, user: Option<Arc<str>>) {
        let mut s = self.0.lock();
        if !s.mutable("set_user") {
            return;
        }
        let at = user.is_some().then(|| s.stamped_now());
        if s.meta.authenticated_at != at {
            s.meta.authenticated_at = at;
            s.auth_changed = true;
        }
        if s.meta.user != user {
            s.meta.user = user;
            s.user_changed = true;
            if s.id.is_some() {
                s.renew = true;
            }
            drop(s);
            crate::csrf::rotate(self); // CSRF: a new user, a new token.
        }
    }

    /// When this session's user last logged in ([`set_user`](Self::set_user)),
    /// kept by every later request of the session; `None` without a user.
    pub fn authenticated_at(&self) -> Option<Timestamp> {
        self.0.lock().meta.authenticated_at
    }

    /// Whether this session's user logged in at most `max_age` before `now`:
    /// the check for a sensitive route (changing a password, paying) that
    /// wants a recent login, and asks for the password again otherwise.
    /// `false` without a user, or with a login time after `now` (a clock
    /// that went back is no proof of a recent login).
    pub fn authenticated_within(&self, max_age: Duration, now: Timestamp) -> bool {
        self.authenticated_at()
            .is_some_and(|at| at <= now && now.since(at) <= max_age)
    }

    /// [`authenticated_within`](Self::authenticated_within) as a guard for a
    /// handler: `Err(`[`Error::ReauthenticationRequired`]`)` when the login is
    /// older than `max_age` (or there is none), which every adapter's error
    /// type answers with 401 and `{"error":"re-authentication required"}`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_core::{Error, Session, Timestamp};
    ///
    /// fn change_password(session: &Session, now: Timestamp) -> Result<(), Error> {
    ///     session.require_authenticated_within(Duration::from_secs(300), now)?;
    ///     // ... the sensitive work
    ///     Ok(())
    /// }
    /// ```
    pub fn require_authenticated_within(
        &self,
        max_age: Duration,
        now: Timestamp,
    ) -> Result<(), Error> {
        if self.authenticated_within(max_age, now) {
            Ok(())
        } else {
            Err(Error::ReauthenticationRequired)
        }
    }

    /// The id the session is stored under; `None` for a session not stored
    /// yet (or destroyed in this request). Renewal takes effect at commit.
    pub fn id(&self) -> Option<SessionId> {
        self.0.lock().id
    }

    /// When the session was first stored. For a new one: when it was opened,
    /// or, for a request that came with no session id, the first time its
    /// times were asked for (such a request reads no clock until then).
    pub fn created_at(&self) -> Timestamp {
        self.0.lock().stamped().created_at
    }

    /// The last activity the store knows of (for a new one: as
    /// [`created_at`](Self::created_at)).
    pub fn last_activity(&self) -> Timestamp {
        self.0.lock().stamped().last_activity
    }

    /// When the session ends unless it is used again.
    pub fn expires_at(&self) -> Timestamp {
        let mut s = self.0.lock();
        s.stamped();
        s.defaults.expires_at(&s.meta)
    }

    /// Per-session expiry settings.
    pub fn expiry(&self) -> ExpiryOverrides {
        self.0.lock().meta.expiry
    }

    /// Sets this session's idle timeout (`None`: the configured one).
    pub fn set_idle_timeout(&self, idle: Option<Duration>) {
        self.change_expiry(|e| e.idle = idle);
    }

    /// Sets this session's absolute lifetime (`None`: the configured one).
    pub fn set_lifetime(&self, lifetime: Option<Duration>) {
        self.change_expiry(|e| e.lifetime = lifetime);
    }

    /// Makes this session's cookie persistent (`Some(true)`, "remember me"),
    /// a browser-session cookie (`Some(false)`), or the configured kind.
    pub fn set_persistent(&self, persistent: Option<bool>) {
        self.change_expiry(|e| e.persistent = persistent);
    }

    fn change_expiry(&self, f: impl FnOnce(&mut ExpiryOverrides)) {
        let mut s = self.0.lock();
        if !s.mutable("an expiry setter") {
            return;
        }
        let before = s.meta.expiry;
        f(&mut s.meta.expiry);
        if s.meta.expiry != before {
            s.expiry_changed = true;
        }
    }

    /// Whether the session is not stored yet.
    pub fn is_new(&self) -> bool {
        self.0.lock().id.is_none()
    }

    /// Takes the commit plan out of the handle (see the type's docs: the
    /// handle is spent).
    pub(crate) fn plan(&self, now: impl FnOnce() -> Timestamp) -> Plan {
        self.0.lock().take_plan(now)
    }

    /// [`plan`](Self::plan) for the engine's own handle: when no clone is
    /// left (the handler's are dropped, as they are by the commit on axum
    /// and hyper), without taking the lock.
    pub(crate) fn plan_last(&mut self, now: impl FnOnce() -> Timestamp) -> Plan {
        // The count is a plain load; `get_mut` itself costs an atomic
        // exchange, worth it only when it will succeed.
        if Arc::strong_count(&self.0) == 1
            && let Some(state) = Arc::get_mut(&mut self.0)
        {
            return state.get_mut().take_plan(now);
        }
        self.plan(now)
    }
}

fn fresh_meta(now: Timestamp) -> Metadata {
    Metadata {
        created_at: now,
        last_activity: now,
        user: None,
        authenticated_at: None,
        expiry: ExpiryOverrides::default(),
    }
}

impl State {
    /// The metadata, with a new session's times stamped now if they were
    /// not yet: a new session counts as opened when its times are first
    /// asked for.
    fn stamped(&mut self) -> &Metadata {
        if let Some(clock) = self.unstamped.take() {
            self.stamp(clock.now());
        }
        &self.meta
    }

    /// The instant the request opened the session, stamping a new
    /// session's times first if they were not yet.
    fn stamped_now(&mut self) -> Timestamp {
        self.stamped();
        self.opened_at
    }

    fn stamp(&mut self, now: Timestamp) {
        self.opened_at = now;
        self.meta.created_at = now;
        self.meta.last_activity = now;
    }

    /// The bytes of the values as this request sees them, counted once.
    fn size(&mut self) -> usize {
        if let Some(size) = self.size {
            return size;
        }
        let size = self
            .keys()
            .map(|key| key.len() + self.raw(key).map_or(0, str::len))
            .sum();
        self.size = Some(size);
        size
    }

    /// Refuses writes once the handle is spent (see [`Session`]).
    fn writable(&self) -> Result<(), Error> {
        if self.spent {
            return Err(Error::Committed);
        }
        Ok(())
    }

    /// Whether a call that returns no `Result` may change the session; when
    /// the handle is spent, it says so in the log and changes nothing.
    fn mutable(&self, call: &str) -> bool {
        #[cfg(feature = "tracing")]
        if self.spent {
            tracing::warn!(target: "session", call,
                "a session was changed after its response was committed; the change is dropped");
        }
        #[cfg(not(feature = "tracing"))]
        let _ = call;
        !self.spent
    }

    /// Accepts a write that takes the values from `before` to `after`
    /// bytes, or refuses it if it grows them over the limit. Over the limit
    /// only growth is refused: a session that concurrent requests left
    /// larger can still shrink.
    fn admit(&mut self, before: usize, after: usize) -> Result<(), Error> {
        let limit = self.defaults.max_bytes;
        if after > limit && after > before {
            return Err(Error::TooLarge { size: after, limit });
        }
        self.size = Some(after);
        Ok(())
    }

    fn raw(&self, key: &str) -> Option<&str> {
        match self.changes.get(key) {
            Some(change) => change.as_deref(),
            None if self.cleared => None,
            None => self.base.as_ref()?.get(key),
        }
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        let base = self.base.as_ref().filter(|_| !self.cleared);
        let kept = base
            .into_iter()
            .flat_map(|b| b.keys())
            .filter(|k| !self.changes.contains_key(*k));
        let set = self
            .changes
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.as_str());
        kept.chain(set)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.lock();
        // A session not stamped yet has no times to show (and showing them
        // must not read the clock).
        let stamped = s.unstamped.is_none();
        f.debug_struct("Session")
            .field("id", &s.id)
            .field("user", &s.meta.user)
            .field("created_at", &stamped.then_some(s.meta.created_at))
            .field("last_activity", &stamped.then_some(s.meta.last_activity))
            .field("keys", &s.keys().count())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(data: &[(&str, &str)]) -> Session {
        loaded_with_limit(data, 1 << 20)
    }

    fn loaded_with_limit(data: &[(&str, &str)], max_bytes: usize) -> Session {
        let record = Record {
            meta: fresh_meta(Timestamp::from_unix_secs(1_000)),
            expires_at: Timestamp::from_unix_secs(10_000),
            data: data.iter().copied().collect(),
        };
        let config = crate::SessionConfig {
            idle_timeout: Duration::from_secs(3600),
            lifetime: Duration::from_secs(86_400),
            touch_interval: Duration::from_secs(60),
            max_session_bytes: max_bytes,
            ..crate::SessionConfig::default()
        };
        let defaults = SessionPolicy::of(&config);
        Session::open(
            Some(SessionId::generate()),
            Some(record),
            false,
            defaults,
            Timestamp::default(),
        )
    }

    #[test]
    fn typed_values_round_trip_and_keep_their_types() {
        let s = Session::detached();
        s.insert("n", &42u32).unwrap();
        s.insert("name", "ada").unwrap();
        s.insert("list", &vec![1, 2]).unwrap();
        assert_eq!(s.get::<u32>("n").unwrap(), Some(42));
        assert_eq!(s.get::<String>("name").unwrap().as_deref(), Some("ada"));
        assert_eq!(s.get::<Vec<i32>>("list").unwrap(), Some(vec![1, 2]));
        assert!(
            s.get::<u32>("name").is_err(),
            "a type mismatch is an error, not a panic"
        );
        assert_eq!(s.get::<u32>("missing").unwrap(), None);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn reads_see_this_requests_changes_over_the_loaded_values() {
        let s = loaded(&[("a", "1"), ("b", "2")]);
        s.insert("b", &3).unwrap();
        s.insert("c", &4).unwrap();
        assert!(s.remove("a"));
        assert!(!s.remove("zzz"));
        let mut keys = s.keys();
        keys.sort();
        assert_eq!(keys, ["b", "c"]);
        assert_eq!(s.get::<i32>("b").unwrap(), Some(3));
        s.clear();
        assert!(s.is_empty());
        s.insert("d", &5).unwrap();
        assert_eq!(s.keys(), ["d"]);
    }

    #[test]
    fn flash_values_are_read_once() {
        let s = Session::detached();
        s.insert("kept", &1).unwrap();
        s.flash("notice", "saved").unwrap();
        crate::csrf::token(&s).unwrap();
        assert_eq!(
            s.keys(),
            ["kept"],
            "flash values and the CSRF token are not listed"
        );
        assert_eq!(s.len(), 1);
        assert_eq!(
            s.take_flash::<String>("notice").unwrap().as_deref(),
            Some("saved")
        );
        assert_eq!(s.take_flash::<String>("notice").unwrap(), None);
    }

    #[test]
    fn a_read_only_request_within_the_touch_interval_plans_nothing() {
        let s = loaded(&[("a", "1")]);
        assert_eq!(s.get::<i32>("a").unwrap(), Some(1));
        let plan = s.plan(|| Timestamp::from_unix_secs(1_059));
        assert!(matches!(plan.write, Write::Nothing));
        assert!(plan.vary);
        let s = loaded(&[("a", "1")]);
        let plan = s.plan(|| Timestamp::from_unix_secs(1_060));
        let Write::Update { update, .. } = plan.write else {
            panic!("expected a touch")
        };
        assert!(update.is_touch_only());
        assert_eq!(update.last_activity, Timestamp::from_unix_secs(1_060));
        assert_eq!(update.expires_at, Timestamp::from_unix_secs(1_060 + 3_600));
    }

    #[test]
    fn writing_the_same_value_again_is_no_change() {
        let s = loaded(&[("a", "1")]);
        s.insert("a", &1).unwrap();
        assert!(matches!(
            s.plan(|| Timestamp::from_unix_secs(1_001)).write,
            Write::Nothing
        ));
    }

    #[test]
    fn an_update_carries_only_what_changed() {
        let s = loaded(&[("a", "1"), ("b", "2")]);
        s.insert("c", &3).unwrap();
        s.remove("a");
        let Write::Update { update, .. } = s.plan(|| Timestamp::from_unix_secs(1_001)).write else {
            panic!("expected an update")
        };
        assert_eq!(update.set, [("c".to_owned(), "3".to_owned())]);
        assert_eq!(update.removed, ["a"]);
        assert!(!update.cleared && update.user.is_none());
    }

    #[test]
    fn set_user_renews_a_stored_session() {
        let s = loaded(&[]);
        s.set_user("ada");
        let Write::Renew { update, .. } = s.plan(|| Timestamp::from_unix_secs(1_001)).write else {
            panic!("expected a renewal")
        };
        assert_eq!(update.user, Some(Some(Arc::from("ada"))));
    }

    #[test]
    fn destroy_then_write_starts_a_new_session() {
        let s = loaded(&[("a", "1")]);
        let old = s.id().unwrap();
        s.destroy();
        assert!(s.is_empty() && s.is_new());
        let plan = s.plan(|| Timestamp::from_unix_secs(1_001));
        assert_eq!(plan.delete, Some(old));
        assert!(matches!(plan.write, Write::Nothing) && plan.remove_cookie);

        let s = loaded(&[("a", "1")]);
        let old = s.id().unwrap();
        s.destroy();
        s.flash("notice", "bye").unwrap();
        let plan = s.plan(|| Timestamp::from_unix_secs(1_001));
        assert_eq!(plan.delete, Some(old));
        let Write::Create(record) = plan.write else {
            panic!("expected a new session")
        };
        assert_eq!(record.data.len(), 1);
    }

    #[test]
    fn a_committed_handle_is_spent() {
        let s = loaded(&[("a", "1")]);
        s.insert("b", &2).unwrap();
        let Write::Update { update, .. } = s.plan(|| Timestamp::from_unix_secs(1_001)).write else {
            panic!("expected an update")
        };
        assert_eq!(update.set, [("b".to_owned(), "2".to_owned())]);
        // The values went to the store: nothing is left to read or send again.
        assert!(s.is_empty());
        // A late write is refused, not dropped in silence.
        assert!(matches!(s.insert("late", &3), Err(Error::Committed)));
        assert!(matches!(
            s.extend_raw([("late".to_owned(), "3".to_owned())]),
            Err(Error::Committed)
        ));
        assert!(!s.remove("a"));
        s.destroy();
        s.set_user("mallory");
        assert_eq!(s.user(), None);
        let again = s.plan(|| Timestamp::from_unix_secs(1_002));
        assert!(
            matches!(again.write, Write::Nothing) && again.delete.is_none() && !again.remove_cookie
        );
    }

    #[test]
    fn handle_is_send_sync_and_clones_share_state() {
        fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync::<Session>();
        let s = Session::detached();
        let t = s.clone();
        std::thread::spawn(move || t.insert("k", &1).unwrap())
            .join()
            .unwrap();
        assert_eq!(s.get::<i32>("k").unwrap(), Some(1));
    }

    #[test]
    fn writes_over_the_size_limit_are_refused_and_change_nothing() {
        // "a" + "1" and "b" + "\"xy\"" hold 2 + 5 = 7 bytes; the limit is 12.
        let session = loaded_with_limit(&[("a", "1"), ("b", "\"xy\"")], 12);
        assert_eq!(session.size(), 7);
        assert_eq!(session.size_limit(), 12);
        // 7 + "c" + "12345" = 13: one byte over.
        let err = session.insert_raw("c", "12345".into()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    size: 13,
                    limit: 12
                }
            ),
            "{err:?}"
        );
        assert_eq!(session.get_raw("c"), None);
        assert_eq!(session.size(), 7);
        // Exactly at the limit is allowed.
        session.insert_raw("c", "1234".into()).unwrap();
        assert_eq!(session.size(), 12);
        // Replacing a value with a smaller one always passes.
        session.insert_raw("b", "0".into()).unwrap();
        assert_eq!(session.size(), 9);
        // A batch is all or nothing.
        let batch = [
            ("d".to_owned(), "1".to_owned()),
            ("e".to_owned(), "12".to_owned()),
        ];
        assert!(matches!(
            session.extend_raw(batch.clone()),
            Err(Error::TooLarge {
                size: 14,
                limit: 12
            })
        ));
        assert!(!session.contains_key("d") && !session.contains_key("e"));
        session.remove("c");
        assert_eq!(session.size(), 4);
        session.extend_raw(batch).unwrap();
        assert_eq!(session.size(), 9);
        // The commit carries exactly the accepted writes.
        let Write::Update { update, .. } = session.plan(|| Timestamp::from_unix_secs(2_000)).write
        else {
            panic!("expected an update");
        };
        let mut set = update.set.clone();
        set.sort();
        assert_eq!(
            set,
            [("b", "0"), ("d", "1"), ("e", "12")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(update.removed, ["c"]);
    }

    #[test]
    fn a_session_over_the_limit_can_still_shrink() {
        // Concurrent requests can leave a stored session over the limit.
        let session = loaded_with_limit(&[("a", "123456789")], 5);
        assert!(session.insert_raw("b", "1".into()).is_err());
        session.insert_raw("a", "1234".into()).unwrap();
        assert_eq!(session.size(), 5);
        session.clear();
        assert_eq!(session.size(), 0);
        session.insert("k", &12).unwrap();
        assert_eq!(session.size(), 3);
    }

    #[test]
    fn update_and_get_or_insert_with_read_modify_write() {
        let s = Session::detached();
        assert_eq!(s.update("visits", |n: &mut u32| *n += 1).unwrap(), 1);
        assert_eq!(s.update("visits", |n: &mut u32| *n += 1).unwrap(), 2);
        assert_eq!(s.get::<u32>("visits").unwrap(), Some(2));
        let mut calls = 0;
        let mut default = || {
            calls += 1;
            "light".to_owned()
        };
        assert_eq!(
            s.get_or_insert_with("theme", &mut default).unwrap(),
            "light"
        );
        assert_eq!(
            s.get_or_insert_with("theme", &mut default).unwrap(),
            "light"
        );
        assert_eq!(calls, 1);
        // A stored value of another type is an error, and stays as it was.
        assert!(matches!(
            s.update("theme", |n: &mut u32| *n += 1),
            Err(Error::Value(_))
        ));
        assert_eq!(s.get::<String>("theme").unwrap().as_deref(), Some("light"));
    }
}
