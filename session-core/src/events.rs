//! Lifecycle events: what happened to which session, with the id hashed.

use std::fmt;
use std::sync::Arc;

use crate::cookie_policy::RejectReason;
use crate::id::LogHash;

/// Something that happened to a session. Ids appear only as keyed hashes
/// ([`LogHash`]), never in clear.
///
/// With the `tracing` feature (on by default), every event is also emitted
/// as a `tracing` event with target `session` (level `info`; `warn` for
/// rejections), so an app can alert on a flood of forged or tampered ids
/// without a hook.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A new session was stored.
    Created {
        /// The new session.
        id: LogHash,
    },
    /// A session moved to a new id; the old one is dead.
    Renewed {
        /// The dead id.
        old: LogHash,
        /// The new id.
        id: LogHash,
    },
    /// A session was ended by `destroy`.
    Destroyed {
        /// The ended session.
        id: LogHash,
    },
    /// Every session of a user was ended.
    UserSessionsEnded {
        /// How many there were.
        count: usize,
    },
    /// A request presented a session that the store still returned but
    /// the engine's rules have ended (for example after the idle timeout was
    /// shortened). Stores drop expired sessions themselves, so most expired
    /// ids show up as [`Rejected`](Self::Rejected) with
    /// [`RejectReason::Unknown`].
    Expired {
        /// The expired session.
        id: LogHash,
    },
    /// A request presented a cookie that led to no session: malformed,
    /// oversized, badly signed, unknown, or corrupt in the store; or a
    /// header transport's id more than once (refused with 401).
    Rejected {
        /// The presented id, when it was well-formed.
        id: Option<LogHash>,
        /// Why.
        reason: RejectReason,
    },
    /// A write gave a user one session more than the per-user limit
    /// allows, so that user's least recently used sessions ended.
    EndedForLimit {
        /// The session written (new, or renewed).
        id: LogHash,
        /// How many of the user's other sessions ended.
        count: usize,
    },
    /// A request's changes were dropped because its session had ended
    /// meanwhile (no resurrection).
    WriteDropped {
        /// The ended session.
        id: LogHash,
    },
}

/// A function called with every [`SessionEvent`].
pub(crate) type HookFn = dyn Fn(&SessionEvent) + Send + Sync;

/// The optional hook of a [`SessionManager`](crate::SessionManager).
#[derive(Clone)]
pub(crate) struct EventHook(pub(crate) Option<Arc<HookFn>>);

impl fmt::Debug for EventHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "EventHook(set)"
        } else {
            "EventHook(none)"
        })
    }
}

impl EventHook {
    pub(crate) fn emit(&self, event: SessionEvent) {
        #[cfg(feature = "tracing")]
        log(&event);
        if let Some(hook) = &self.0 {
            hook(&event);
        }
    }
}

/// The event as a `tracing` event (feature `tracing`, on by default).
#[cfg(feature = "tracing")]
fn log(event: &SessionEvent) {
    {
        match event {
            SessionEvent::Created { id } => {
                tracing::info!(target: "session", event = "created", id = %id);
            }
            SessionEvent::Renewed { old, id } => {
                tracing::info!(target: "session", event = "renewed", old = %old, id = %id);
            }
            SessionEvent::Destroyed { id } => {
                tracing::info!(target: "session", event = "destroyed", id = %id);
            }
            SessionEvent::UserSessionsEnded { count } => {
                tracing::info!(target: "session", event = "user_sessions_ended", count);
            }
            SessionEvent::Expired { id } => {
                tracing::info!(target: "session", event = "expired", id = %id);
            }
            SessionEvent::Rejected { id, reason } => {
                let id = id.map(|h| h.to_string());
                tracing::warn!(target: "session", event = "rejected", reason = reason.as_str(),
                    id = id.as_deref().unwrap_or("-"));
            }
            SessionEvent::EndedForLimit { id, count } => {
                tracing::info!(target: "session", event = "ended_for_limit", id = %id, count);
            }
            SessionEvent::WriteDropped { id } => {
                tracing::info!(target: "session", event = "write_dropped", id = %id);
            }
        }
    }
}
