//! The rules the configuration sets for every session.

use crate::record::Metadata;
use crate::time::{Timestamp, duration_millis};

/// The rules the configuration sets for every session: its expiry defaults
/// (which per-session settings override), when a read refreshes it, and how
/// large it may grow. Times in whole milliseconds, as [`Timestamp`]s count
/// them: every session handle holds a copy, so it is kept small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionPolicy {
    idle_ms: u64,
    lifetime_ms: u64,
    touch_ms: u64,
    /// The most bytes (keys plus JSON text) the session's values may hold.
    pub(crate) max_bytes: usize,
    persistent: bool,
}

impl SessionPolicy {
    /// The rules `config` sets.
    pub(crate) fn of(config: &crate::SessionConfig) -> Self {
        Self {
            idle_ms: duration_millis(config.idle_timeout),
            lifetime_ms: duration_millis(config.lifetime),
            touch_ms: duration_millis(config.touch_interval),
            max_bytes: config.max_session_bytes,
            persistent: config.cookie.persistent,
        }
    }

    /// When a session with this metadata ends: at its idle timeout after its
    /// last activity, or at its lifetime after its creation, whichever is first.
    pub(crate) fn expires_at(&self, meta: &Metadata) -> Timestamp {
        let lifetime = meta
            .expiry
            .lifetime
            .map_or(self.lifetime_ms, duration_millis);
        meta.last_activity
            .saturating_add_millis(self.idle_ms(meta))
            .min(meta.created_at.saturating_add_millis(lifetime))
    }

    pub(crate) fn persistent(&self, meta: &Metadata) -> bool {
        meta.expiry.persistent.unwrap_or(self.persistent)
    }

    /// Whether a request at `now` that changes nothing should still refresh
    /// the idle timeout in the store: once the touch interval, or half the
    /// idle timeout if that is shorter, has passed since the last refresh.
    pub(super) fn touch_due(&self, meta: &Metadata, now: Timestamp) -> bool {
        let half_idle = self.idle_ms(meta).div_ceil(2);
        duration_millis(now.since(meta.last_activity)) >= self.touch_ms.min(half_idle)
    }

    fn idle_ms(&self, meta: &Metadata) -> u64 {
        meta.expiry.idle.map_or(self.idle_ms, duration_millis)
    }
}
