#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod csrf;
mod service;

pub use csrf::{check_csrf, csrf_token, refusal};
pub use service::{
    Inner, NoLiveSession, RequestSessionExt, SessionService, error_response, no_live_session,
};
pub use session_core::driver::SessionFuture;

/// The core crate, for everything not re-exported here.
pub use session_core as core;
pub use session_core::{
    Clock, CookieConfig, CookiePrefix, CsrfPolicy, CsrfRejection, DynStore, Error, ExpiryOverrides,
    ManualClock, MemoryStore, SameSite, Session, SessionConfig, SessionId, SessionManager,
    SessionStore, SigningKeys, SystemClock, Timestamp,
};
