#![doc = include_str!("../README.md")]

mod extract;
mod middleware;

pub use extract::{LiveSession, Session};
pub use middleware::{ResponseFuture, SessionMiddleware, SessionMiddlewareService};

/// The core crate, for everything not re-exported here.
pub use session_core as core;
pub use session_core::{
    Clock, CookieConfig, CookiePrefix, DynStore, Error, ExpiryOverrides, ManualClock, MemoryStore,
    SameSite, SessionConfig, SessionId, SessionManager, SessionStore, SigningKeys, SystemClock,
    Timestamp,
};
