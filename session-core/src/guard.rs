//! What a route may require of its session: the rule behind every adapter's
//! guards, decided once.

use crate::session::Session;

/// What a route requires of the request's session. Each adapter offers one
/// guard per requirement (`LoadedSession` and `UserSession` extractors on
/// axum and actix, `RequestSessionExt` methods on hyper), and answers a
/// request that does not meet it with 401 and
/// [`NO_SESSION_BODY`](crate::NO_SESSION_BODY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Requirement {
    /// A session loaded from the store: the visitor has a live session,
    /// whatever it holds (a cart, a wizard's answers), signed in or not.
    Loaded,
    /// A loaded session that belongs to a user
    /// ([`Session::set_user`]): the visitor is signed in.
    User,
}

impl Requirement {
    /// Whether `session` meets the requirement.
    pub fn is_met_by(self, session: &Session) -> bool {
        match self {
            Self::Loaded => !session.is_new(),
            Self::User => !session.is_new() && session.user().is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_meets_neither_and_a_user_is_required_for_user() {
        let fresh = Session::detached();
        fresh.set_user("ada");
        // Not loaded: a user set in this very request does not count yet.
        assert!(!Requirement::Loaded.is_met_by(&fresh));
        assert!(!Requirement::User.is_met_by(&fresh));
    }
}
