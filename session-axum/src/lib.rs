#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod csrf;
mod error;
mod extract;
mod service;

pub use csrf::{CsrfFuture, CsrfLayer, CsrfService, CsrfToken, DEFAULT_FORM_LIMIT, refusal};
pub use error::SessionError;
pub use extract::{LoadedSession, MissingSessionLayer, NoLiveSession, Session, UserSession};
pub use service::{Inner, SessionLayer, SessionService};
pub use session_core::driver::SessionFuture;

/// The core crate, for everything not re-exported here.
pub use session_core as core;
pub use session_core::{
    Clock, CookieConfig, CookiePrefix, CsrfPolicy, CsrfRejection, DynStore, Error, ExpiryOverrides,
    ManualClock, MemoryStore, SameSite, SessionConfig, SessionId, SessionManager, SessionStore,
    SigningKeys, SystemClock, Timestamp,
};
