//! The per-user session limit: at most N live sessions per user.

use std::future::Future;

use serde::Deserialize;

use crate::error::Error;
use crate::id::SessionId;
use crate::store::{SessionStore, WriteOutcome};
use crate::time::Timestamp;

/// What happens when a write would give a user more live sessions than
/// [`UserLimit::max`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitPolicy {
    /// The user's least recently used sessions end to make room (default):
    /// a new login always succeeds, and the oldest device is logged out.
    #[default]
    EndOldest,
    /// The write is refused ([`WriteOutcome::UserLimitReached`](crate::WriteOutcome::UserLimitReached));
    /// the engine answers 409 ([`Error::TooManySessions`](crate::Error::TooManySessions)).
    Refuse,
}

/// At most `max` live sessions per user, and what to do about one more.
///
/// The engine sends it with each write that gives a session a user (a
/// login's [`create_limited`](crate::SessionStore::create_limited), an
/// [`Update::max_per_user`](crate::Update::max_per_user)); the store checks
/// it in the same atomic step as the write, so concurrent logins of one user
/// cannot pass it together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserLimit {
    /// The most live sessions one user may have (at least 1).
    pub max: usize,
    /// What a write over it does.
    #[serde(default)]
    pub policy: LimitPolicy,
}

impl UserLimit {
    /// At most `max` sessions per user, the oldest ending to make room.
    pub const fn end_oldest(max: usize) -> Self {
        Self {
            max,
            policy: LimitPolicy::EndOldest,
        }
    }

    /// At most `max` sessions per user, refusing one more.
    pub const fn refuse(max: usize) -> Self {
        Self {
            max,
            policy: LimitPolicy::Refuse,
        }
    }

    /// With `others` live sessions of the user besides the one being
    /// written: how many of the others (the least recently used) must end,
    /// or `None` when the write must be refused.
    pub fn to_end(&self, others: usize) -> Option<usize> {
        let room = self.max.saturating_sub(1);
        if others <= room {
            return Some(0);
        }
        match self.policy {
            LimitPolicy::Refuse => None,
            LimitPolicy::EndOldest => Some(others - room),
        }
    }
}

/// The per-user limit around a `write`, for a store that cannot hold it
/// in one atomic step of its own (it must then serialize writes of one user
/// around this call itself, with a lock, or document a weaker guarantee):
/// counts `user`'s live sessions at `now` other than `except`, refuses
/// ([`WriteOutcome::UserLimitReached`]) or runs `write`, then deletes the
/// least recently used surplus. Costs one `user_sessions` call, one load
/// per session of the user, and one delete per session it ends.
pub async fn write_within_limit<S: SessionStore + ?Sized>(
    store: &S,
    user: &str,
    limit: UserLimit,
    now: Timestamp,
    except: &[SessionId],
    write: impl Future<Output = Result<WriteOutcome, Error>>,
) -> Result<WriteOutcome, Error> {
    // Boxed: a store's write future can be large, and this one is nested in
    // the store's own.
    let write = Box::pin(write);
    let mut others = Vec::new();
    for id in store.user_sessions(user, now).await? {
        if except.contains(&id) {
            continue;
        }
        if let Some(record) = store.load(&id, now).await? {
            others.push((record.meta.last_activity, id));
        }
    }
    let Some(to_end) = limit.to_end(others.len()) else {
        return Ok(WriteOutcome::UserLimitReached);
    };
    let outcome = write.await?;
    if outcome != WriteOutcome::Written || to_end == 0 {
        return Ok(outcome);
    }
    others.sort_unstable();
    let mut ended = 0;
    for (_, id) in &others[..to_end] {
        if store.delete(id).await? {
            ended += 1;
        }
    }
    Ok(WriteOutcome::WrittenEndingOldest { ended })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_end_counts_the_sessions_to_end_or_refuses() {
        let oldest = UserLimit::end_oldest(2);
        assert_eq!(oldest.to_end(0), Some(0));
        assert_eq!(oldest.to_end(1), Some(0));
        assert_eq!(oldest.to_end(2), Some(1));
        assert_eq!(oldest.to_end(5), Some(4));
        let refuse = UserLimit::refuse(2);
        assert_eq!(refuse.to_end(1), Some(0));
        assert_eq!(refuse.to_end(2), None);
        let limit: UserLimit = serde_json::from_str(r#"{"max": 3, "policy": "refuse"}"#).unwrap();
        assert_eq!(limit, UserLimit::refuse(3));
    }
}
