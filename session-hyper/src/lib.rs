#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod service;

pub use service::{
    NoLiveSession, RequestSessionExt, SessionService, error_response, no_live_session,
};
pub use session_core::http::ResponseFuture;

/// The core crate, for everything not re-exported here.
pub use session_core as core;
pub use session_core::{
    Clock, CookieConfig, CookiePrefix, DynStore, Error, ExpiryOverrides, ManualClock, MemoryStore,
    SameSite, Session, SessionConfig, SessionId, SessionManager, SessionStore, SigningKeys,
    SystemClock, Timestamp,
};
