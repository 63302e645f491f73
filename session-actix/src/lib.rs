#![doc = include_str!("../README.md")]

mod error;
mod extract;
mod middleware;

pub use error::SessionError;
pub use extract::{LiveSession, Session};
pub use middleware::{ResponseFuture, SessionMiddleware, SessionMiddlewareService};

/// The core crate, for everything not re-exported here.
pub use session_core as core;
pub use session_core::{
    Clock, CookieConfig, CookiePrefix, DynStore, Error, ExpiryOverrides, ManualClock, MemoryStore,
    SameSite, SessionConfig, SessionId, SessionManager, SessionStore, SigningKeys, SystemClock,
    Timestamp,
};
