#![doc = include_str!("../README.md")]

mod csrf;
mod extract;
mod middleware;

pub use csrf::{CsrfChecked, CsrfForm, CsrfToken, refusal};
pub use extract::{LiveSession, Session};
pub use middleware::{ResponseFuture, SessionMiddleware, SessionMiddlewareService};

/// The core crate, for everything not re-exported here.
pub use session_core as core;
pub use session_core::{
    Clock, CookieConfig, CookiePrefix, CsrfPolicy, CsrfRejection, DynStore, Error, ExpiryOverrides,
    ManualClock, MemoryStore, SameSite, SessionConfig, SessionId, SessionManager, SessionStore,
    SigningKeys, SystemClock, Timestamp,
};
