#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod answer;
mod config;
mod cookie_policy;
pub mod csrf;
mod data;
pub mod driver;
mod engine;
mod error;
mod events;
mod guard;
mod handle;
#[cfg(feature = "http")]
mod http_headers;
mod id;
mod limit;
mod memory;
pub mod metrics;
mod random;
mod record;
mod session;
mod store;
mod time;

#[cfg(test)]
mod engine_tests;
#[cfg(all(test, feature = "metrics"))]
mod metrics_tests;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use answer::Answer;
pub use config::{
    ClearSiteData, CookieConfig, CookiePrefix, DEFAULT_MAX_SESSION_BYTES, SameSite, SessionConfig,
    SigningKeys, Transport,
};
pub use cookie_policy::{Presented, RejectReason};
pub use csrf::{CsrfPolicy, CsrfRejection};
pub use engine::{
    AMBIGUOUS_ID_BODY, AdminSessionInfo, NO_SESSION_BODY, ResponseHeaders, STORE_ERROR_BODY,
    SessionHeader, SessionInfo, SessionManager, TOO_MANY_SESSIONS_BODY,
};
pub use error::{BoxError, Error};
pub use events::SessionEvent;
pub use guard::Requirement;
pub use handle::SessionHandle;

/// Glue for adapters on the `http` 1.x types (feature `http`).
#[cfg(feature = "http")]
pub mod http {
    pub use crate::http_headers::{
        HandlerStoreFailure, failure_response, is_handler_store_failure, respond,
    };
}
pub use data::Data;
pub use id::{EncodedId, LogHash, SessionId};
pub use limit::{LimitPolicy, UserLimit, write_within_limit};
pub use memory::MemoryStore;
pub use random::{OsRandom, RandomSource, SeededRandom};
pub use record::{ExpiryOverrides, Metadata, Record, Update};
pub use session::Session;
pub use store::{BoxFuture, DynSessionStore, DynStore, SessionStore, WriteOutcome};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
