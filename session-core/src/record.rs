//! What a store keeps for a session, and what a commit sends it.

use std::sync::Arc;
use std::time::Duration;

use crate::data::Data;
use crate::limit::UserLimit;
use crate::time::Timestamp;

/// Per-session expiry settings that override the configured defaults ("remember
/// me" is `persistent: Some(true)` with a longer `idle`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpiryOverrides {
    /// Idle timeout for this session.
    pub idle: Option<Duration>,
    /// Absolute lifetime for this session, counted from its creation.
    pub lifetime: Option<Duration>,
    /// Whether the cookie outlives the browser session.
    pub persistent: Option<bool>,
}

impl ExpiryOverrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.idle.is_none() && self.lifetime.is_none() && self.persistent.is_none()
    }
}

/// Everything about a session but its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// When the session was first stored. Renewing keeps it, so the absolute
    /// lifetime cannot be stretched by renewing.
    pub created_at: Timestamp,
    /// The last request that refreshed the idle timeout.
    pub last_activity: Timestamp,
    /// The user the session belongs to, for "end every session of this user".
    pub user: Option<Arc<str>>,
    /// When the user last logged in to this session ([`Session::set_user`](crate::Session::set_user));
    /// `None` for a session without a user. Later requests keep it, renewing
    /// too, so a sensitive route can ask for a recent login.
    pub authenticated_at: Option<Timestamp>,
    /// Per-session expiry settings.
    pub expiry: ExpiryOverrides,
}

/// A stored session as a store hands it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Times, user and expiry settings.
    pub meta: Metadata,
    /// The instant after which the store must not return the record. The
    /// engine computes it; stores use it for their own expiry (TTLs).
    pub expires_at: Timestamp,
    /// The values, shared so that loading a record need not copy them.
    pub data: Data,
}

/// The changes one request made to an existing session: the store applies
/// them to what it holds now, so concurrent requests that change different
/// keys both keep their change.
///
/// It carries its own size limit, [`max_bytes`](Self::max_bytes): the store
/// checks it where it merges the update, in the same atomic step, so no
/// number of concurrent updates can take a stored session past it (see
/// [`size_after`](Self::size_after)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// Drop every value the store holds before applying `set`.
    pub cleared: bool,
    /// Keys written, with their new JSON text.
    pub set: Vec<(String, String)>,
    /// Keys removed.
    pub removed: Vec<String>,
    /// New last-activity instant.
    pub last_activity: Timestamp,
    /// New expiry instant (see [`Record::expires_at`]).
    pub expires_at: Timestamp,
    /// `Some` when the session's user changed (to a user, or to none).
    pub user: Option<Option<Arc<str>>>,
    /// `Some` when the session's authentication time changed (a login,
    /// which may keep the user; or to none, with the user cleared).
    pub authenticated_at: Option<Option<Timestamp>>,
    /// `Some` when the per-session expiry settings changed.
    pub expiry: Option<ExpiryOverrides>,
    /// The most bytes (keys plus JSON text) the session's values may hold
    /// after this update. The store refuses an update that would grow the
    /// values past it ([`WriteOutcome::TooLarge`](crate::WriteOutcome::TooLarge)),
    /// measured on the record as it holds it at the merge. `usize::MAX`
    /// (the default) is no limit.
    pub max_bytes: usize,
    /// The per-user session limit, when the update gives the session a
    /// user (`user` is `Some(Some(_))`): the store checks it in the same
    /// atomic step as the update, counting the user's other live sessions
    /// ([`UserLimit`]). `None` (the default) is no limit. The engine sets
    /// it from [`SessionConfig::max_sessions_per_user`](crate::SessionConfig::max_sessions_per_user).
    pub max_per_user: Option<UserLimit>,
}

impl Default for Update {
    fn default() -> Self {
        Self {
            cleared: false,
            set: Vec::new(),
            removed: Vec::new(),
            last_activity: Timestamp::default(),
            expires_at: Timestamp::default(),
            user: None,
            authenticated_at: None,
            expiry: None,
            max_bytes: usize::MAX,
            max_per_user: None,
        }
    }
}

impl Update {
    /// The bytes of `data` (keys plus JSON text) once this update's values
    /// are applied to it, computed without building the result.
    pub fn size_after(&self, data: &Data) -> usize {
        let entry = |key: &str| data.get(key).map_or(0, |value| key.len() + value.len());
        let mut size = if self.cleared { 0 } else { data.bytes() };
        if !self.cleared {
            for key in &self.removed {
                size = size.saturating_sub(entry(key));
            }
        }
        for (key, value) in &self.set {
            // A key removed and set in one update is counted once.
            let held = !self.cleared && !self.removed.contains(key);
            if held {
                size = size.saturating_sub(entry(key));
            }
            size += key.len() + value.len();
        }
        size
    }

    /// Whether the store may merge this update into `data`: `Err` with the
    /// size the values would reach if it grows them past
    /// [`max_bytes`](Self::max_bytes). Only growth is refused, so a session
    /// over the limit (a limit lowered since it was written) can still
    /// shrink.
    pub fn admits(&self, data: &Data) -> Result<(), usize> {
        if self.max_bytes == usize::MAX {
            return Ok(());
        }
        let after = self.size_after(data);
        if after > self.max_bytes && after > data.bytes() {
            return Err(after);
        }
        Ok(())
    }

    /// The user this update gives the session and the limit to check for
    /// it, when it gives the session a user and carries a
    /// [`max_per_user`](Self::max_per_user).
    pub fn limited_user(&self) -> Option<(&Arc<str>, UserLimit)> {
        match (&self.user, self.max_per_user) {
            (Some(Some(user)), Some(limit)) => Some((user, limit)),
            _ => None,
        }
    }

    /// Whether the update only refreshes times (no values, user,
    /// authentication time or settings).
    pub fn is_touch_only(&self) -> bool {
        !self.cleared
            && self.set.is_empty()
            && self.removed.is_empty()
            && self.user.is_none()
            && self.authenticated_at.is_none()
            && self.expiry.is_none()
    }

    /// Applies the update to a stored record, in place, moving its keys
    /// and values in. Stores that keep [`Record`]s in memory use this (or
    /// [`apply_to`](Self::apply_to)); others apply the same rules natively.
    pub fn apply(self, record: &mut Record) {
        if self.cleared || !self.set.is_empty() || !self.removed.is_empty() {
            record.data = record
                .data
                .with_changes(self.cleared, &self.removed, self.set);
        }
        record.meta.last_activity = record.meta.last_activity.max(self.last_activity);
        record.expires_at = self.expires_at;
        if let Some(user) = self.user {
            record.meta.user = user;
        }
        if let Some(at) = self.authenticated_at {
            record.meta.authenticated_at = at;
        }
        if let Some(expiry) = self.expiry {
            record.meta.expiry = expiry;
        }
    }

    /// As [`apply`](Self::apply), copying the keys and values.
    pub fn apply_to(&self, record: &mut Record) {
        self.clone().apply(record);
    }
}
