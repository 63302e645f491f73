#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod extract;
mod service;

pub use error::SessionError;
pub use extract::{LoadedSession, MissingSessionLayer, NoLiveSession, Session, UserSession};
pub use service::{SessionLayer, SessionService};
pub use session_core::http::ResponseFuture;

/// The core crate, for everything not re-exported here.
pub use session_core as core;
pub use session_core::{
    Clock, CookieConfig, CookiePrefix, DynStore, Error, ExpiryOverrides, ManualClock, MemoryStore,
    SameSite, SessionConfig, SessionId, SessionManager, SessionStore, SigningKeys, SystemClock,
    Timestamp,
};
