//! The per-user session limit: at most N live sessions per user.

use serde::Deserialize;

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
