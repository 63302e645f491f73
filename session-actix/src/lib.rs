#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod csrf;
mod error;
mod ext;
mod extract;
mod middleware;

pub use csrf::{CsrfChecked, CsrfForm, CsrfToken, refusal};
pub use error::SessionError;
pub use ext::SessionExt;
pub use extract::{LoadedSession, Session, UserSession};
pub use middleware::{Inner, SessionMiddleware, SessionMiddlewareService};
pub use session_core::driver::SessionFuture;

/// The core crate, for everything not re-exported here.
pub use session_core as core;
pub use session_core::{
    Clock, CookieConfig, CookiePrefix, CsrfPolicy, CsrfRejection, DynStore, Error, ExpiryOverrides,
    ManualClock, MemoryStore, SameSite, SessionConfig, SessionId, SessionManager, SessionStore,
    SigningKeys, SystemClock, Timestamp,
};
