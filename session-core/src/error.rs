//! The crate's one error type.

use std::error::Error as StdError;
use std::fmt;

/// A boxed error from a store or another source.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What can go wrong with a session.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A value could not be turned into JSON, or the JSON stored under a key
    /// is not of the type asked for.
    Value(serde_json::Error),
    /// The store could not be reached or failed (down, timed out, refused).
    /// Adapters answer it with the configured status (503 by default).
    Store(BoxError),
    /// The store holds a record it cannot decode. The engine treats it as no
    /// session; it never reaches a visitor.
    Corrupt(BoxError),
    /// A write would take the session's values over
    /// [`max_session_bytes`](crate::SessionConfig::max_session_bytes)
    /// (keys plus JSON text). Nothing was changed: the session keeps the
    /// values it had. Adapters answer it with 413.
    TooLarge {
        /// The bytes the session would have held.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The session was committed already (its response has gone): a write
    /// to a handle kept past its request would be lost, so it is refused.
    Committed,
    /// A bounded store is full and will not take a new session.
    StoreFull,
    /// Fresh ids kept colliding with live ones: the random source is broken.
    IdCollision,
    /// The configuration breaks a rule (for example the `__Host-` prefix
    /// without `Secure`).
    Config(String),
    /// The request presented its session id more than once through a
    /// header transport ([`Presented::Ambiguous`](crate::Presented::Ambiguous)).
    /// Adapters answer it with 401 and
    /// [`AMBIGUOUS_ID_BODY`](crate::AMBIGUOUS_ID_BODY), before the handler
    /// and without asking the store.
    AmbiguousId,
    /// A login would give its user more live sessions than
    /// [`max_sessions_per_user`](crate::SessionConfig::max_sessions_per_user)
    /// allows, and the policy is [`Refuse`](crate::LimitPolicy::Refuse).
    /// Nothing was written. Adapters answer it with 409.
    TooManySessions {
        /// The configured limit.
        limit: usize,
    },
    /// A sensitive route needs a login younger than the session's
    /// ([`Session::require_authenticated_within`](crate::Session::require_authenticated_within)):
    /// the user must prove who they are again. Adapters answer it with 401
    /// and `{"error":"re-authentication required"}`; the session stays.
    ReauthenticationRequired,
}

impl Error {
    /// Wraps a store's error.
    pub fn store(err: impl Into<BoxError>) -> Self {
        Self::Store(err.into())
    }

    /// Wraps a decoding error for a stored record.
    pub fn corrupt(err: impl Into<BoxError>) -> Self {
        Self::Corrupt(err.into())
    }

    /// The HTTP status for this error when a handler lets it through: 401
    /// for [`AmbiguousId`](Self::AmbiguousId) and
    /// [`ReauthenticationRequired`](Self::ReauthenticationRequired), 409 for
    /// [`TooManySessions`](Self::TooManySessions), 413 for
    /// [`TooLarge`](Self::TooLarge), 500 for a value the application
    /// could not encode or a bad configuration, and 503 for a store that
    /// failed or is full.
    pub fn status(&self) -> u16 {
        match self {
            Self::AmbiguousId | Self::ReauthenticationRequired => 401,
            Self::TooLarge { .. } => 413,
            Self::TooManySessions { .. } => 409,
            Self::Value(_) | Self::Config(_) | Self::Committed => 500,
            Self::Store(_) | Self::Corrupt(_) | Self::StoreFull | Self::IdCollision => 503,
        }
    }

    /// A JSON body for [`status`](Self::status) that names the kind of
    /// failure and no detail of it (no store address, no value).
    pub fn public_body(&self) -> &'static str {
        match self {
            Self::AmbiguousId => crate::AMBIGUOUS_ID_BODY,
            Self::ReauthenticationRequired => r#"{"error":"re-authentication required"}"#,
            Self::TooLarge { .. } => r#"{"error":"session too large"}"#,
            Self::TooManySessions { .. } => crate::TOO_MANY_SESSIONS_BODY,
            Self::Value(_) | Self::Config(_) | Self::Committed => r#"{"error":"internal error"}"#,
            Self::Store(_) | Self::Corrupt(_) | Self::StoreFull | Self::IdCollision => {
                crate::STORE_ERROR_BODY
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(_) => f.write_str("session value could not be encoded or decoded"),
            Self::Store(_) => f.write_str("session store failed"),
            Self::Corrupt(_) => f.write_str("stored session record is corrupt"),
            Self::TooLarge { size, limit } => write!(
                f,
                "session would hold {size} bytes, over its limit of {limit}"
            ),
            Self::Committed => f.write_str(
                "the session was committed with its response; a write to it now would be lost",
            ),
            Self::StoreFull => f.write_str("session store is full"),
            Self::IdCollision => f.write_str("fresh session ids kept colliding"),
            Self::Config(why) => write!(f, "invalid session configuration: {why}"),
            Self::AmbiguousId => f.write_str("the session id was presented more than once"),
            Self::ReauthenticationRequired => {
                f.write_str("this action needs a more recent login of the session's user")
            }
            Self::TooManySessions { limit } => {
                write!(f, "the user has {limit} live sessions, the most allowed")
            }
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Value(e) => Some(e),
            Self::Store(e) | Self::Corrupt(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Value(e)
    }
}
