//! The rules the configuration sets for every session.

use std::time::Duration;

use crate::record::Metadata;
use crate::time::Timestamp;

/// The rules the configuration sets for every session: its expiry defaults
/// (which per-session settings override), when a read refreshes it, and how
/// large it may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionPolicy {
    pub(crate) idle: Duration,
    pub(crate) lifetime: Duration,
    pub(crate) persistent: bool,
    pub(crate) touch_interval: Duration,
    /// The most bytes (keys plus JSON text) the session's values may hold.
    pub(crate) max_bytes: usize,
}

impl SessionPolicy {
    /// The rules `config` sets.
    pub(crate) fn of(config: &crate::SessionConfig) -> Self {
        Self {
            idle: config.idle_timeout,
            lifetime: config.lifetime,
            persistent: config.cookie.persistent,
            touch_interval: config.touch_interval,
            max_bytes: config.max_session_bytes,
        }
    }

    /// When a session with this metadata ends: at its idle timeout after its
    /// last activity, or at its lifetime after its creation, whichever is first.
    pub(crate) fn expires_at(&self, meta: &Metadata) -> Timestamp {
        let idle = meta.expiry.idle.unwrap_or(self.idle);
        let lifetime = meta.expiry.lifetime.unwrap_or(self.lifetime);
        meta.last_activity
            .saturating_add(idle)
            .min(meta.created_at.saturating_add(lifetime))
    }

    pub(crate) fn persistent(&self, meta: &Metadata) -> bool {
        meta.expiry.persistent.unwrap_or(self.persistent)
    }

    /// Whether a request at `now` that changes nothing should still refresh
    /// the idle timeout in the store.
    pub(super) fn touch_due(&self, meta: &Metadata, now: Timestamp) -> bool {
        let idle = meta.expiry.idle.unwrap_or(self.idle);
        now.since(meta.last_activity) >= self.touch_interval.min(idle / 2)
    }
}
