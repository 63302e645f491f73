//! Counters and histograms of the session lifecycle and of store calls,
//! through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`).
//!
#![doc = include_str!("../docs/metrics.md")]
//!
//! Without the `metrics` feature every function here is a no-op, so
//! adapters and applications call them unconditionally.

/// Why sessions ended: the `reason` label of `session_ended_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// The session's own request ended it (`Session::destroy`: a logout,
    /// or a login replacing the session it came with).
    Logout,
    /// A request presented a session the engine's rules had ended (idle
    /// timeout or lifetime passed while the store still held it).
    Expired,
    /// The user ended sessions of theirs (logout everywhere, ending one
    /// device, ending the other sessions).
    User,
    /// An operator ended them.
    Operator,
    /// The per-user limit ended the least recently used session to make
    /// room for a new one.
    Limit,
}

impl EndReason {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Expired => "expired",
            Self::User => "user",
            Self::Operator => "operator",
            Self::Limit => "limit",
        }
    }
}

/// A store call: the `op` label of `session_store_seconds` and
/// `session_store_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreOp {
    /// [`SessionStore::load`](crate::SessionStore::load).
    Load,
    /// [`SessionStore::create`](crate::SessionStore::create).
    Create,
    /// [`SessionStore::update`](crate::SessionStore::update).
    Update,
    /// [`SessionStore::renew`](crate::SessionStore::renew).
    Renew,
    /// [`SessionStore::delete`](crate::SessionStore::delete).
    Delete,
    /// [`SessionStore::user_sessions`](crate::SessionStore::user_sessions).
    UserSessions,
    /// [`SessionStore::delete_user`](crate::SessionStore::delete_user).
    DeleteUser,
}

impl StoreOp {
    /// Every operation, in label order.
    pub const ALL: [Self; 7] = [
        Self::Load,
        Self::Create,
        Self::Update,
        Self::Renew,
        Self::Delete,
        Self::UserSessions,
        Self::DeleteUser,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::Create => "create",
            Self::Update => "update",
            Self::Renew => "renew",
            Self::Delete => "delete",
            Self::UserSessions => "user_sessions",
            Self::DeleteUser => "delete_user",
        }
    }
}

/// Counts a new session stored (`session_created_total`).
#[inline]
pub fn created() {
    #[cfg(feature = "metrics")]
    metrics::counter!("session_created_total").increment(1);
}

/// Counts a session moved to a new id (`session_renewed_total`).
#[inline]
pub fn renewed() {
    #[cfg(feature = "metrics")]
    metrics::counter!("session_renewed_total").increment(1);
}

/// Counts `count` sessions ended for `reason` (`session_ended_total`).
#[inline]
pub fn ended(reason: EndReason, count: u64) {
    #[cfg(feature = "metrics")]
    {
        let counter = match reason {
            EndReason::Logout => metrics::counter!("session_ended_total", "reason" => "logout"),
            EndReason::Expired => metrics::counter!("session_ended_total", "reason" => "expired"),
            EndReason::User => metrics::counter!("session_ended_total", "reason" => "user"),
            EndReason::Operator => {
                metrics::counter!("session_ended_total", "reason" => "operator")
            }
            EndReason::Limit => metrics::counter!("session_ended_total", "reason" => "limit"),
        };
        counter.increment(count);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (reason, count);
}

/// Counts a request refused with `status` (`session_refused_total`): call
/// it where a 4xx answer about the session is made (the engine, the
/// adapters' extractors and CSRF checks do; an application calls it for
/// its own refusals). Statuses outside the table's list count as `other`.
#[inline]
pub fn refused(status: u16) {
    #[cfg(feature = "metrics")]
    {
        // One literal per label: static keys, nothing allocated.
        let counter = match status {
            400 => metrics::counter!("session_refused_total", "status" => "400"),
            401 => metrics::counter!("session_refused_total", "status" => "401"),
            403 => metrics::counter!("session_refused_total", "status" => "403"),
            404 => metrics::counter!("session_refused_total", "status" => "404"),
            409 => metrics::counter!("session_refused_total", "status" => "409"),
            413 => metrics::counter!("session_refused_total", "status" => "413"),
            415 => metrics::counter!("session_refused_total", "status" => "415"),
            428 => metrics::counter!("session_refused_total", "status" => "428"),
            429 => metrics::counter!("session_refused_total", "status" => "429"),
            _ => metrics::counter!("session_refused_total", "status" => "other"),
        };
        counter.increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = status;
}

/// Records the size of a session's values as a write leaves them
/// (`session_size_bytes`).
#[inline]
pub fn written_size(bytes: usize) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("session_size_bytes").record(bytes as f64);
    #[cfg(not(feature = "metrics"))]
    let _ = bytes;
}

/// Describes every metric of the table (help text and unit) to the
/// installed recorder. Optional: call it once, after installing the
/// recorder, for `# HELP` lines.
pub fn describe() {
    #[cfg(feature = "metrics")]
    {
        use metrics::{Unit, describe_counter, describe_histogram};
        describe_counter!(
            "session_created_total",
            "Sessions stored for the first time."
        );
        describe_counter!("session_renewed_total", "Sessions moved to a new id.");
        describe_counter!("session_ended_total", "Sessions ended, by reason.");
        describe_counter!(
            "session_refused_total",
            "Requests refused by the session layer or the app's session routes, by status."
        );
        describe_histogram!(
            "session_store_seconds",
            Unit::Seconds,
            "Duration of session store calls, by op and store."
        );
        describe_counter!(
            "session_store_errors_total",
            "Session store calls that failed, by op and store."
        );
        describe_histogram!(
            "session_size_bytes",
            Unit::Bytes,
            "Size of a session's values (keys plus JSON text) as a write leaves them."
        );
    }
}

/// The store metrics of one engine, with the store's
/// [`kind`](crate::SessionStore::kind) as a label: each series is looked up
/// in the recorder on its first use and its handle kept, so a store call
/// costs two clock reads and an atomic update, and allocates nothing.
/// Install the recorder before the first request.
#[cfg(feature = "metrics")]
pub(crate) struct StoreMetrics {
    store: &'static str,
    seconds: [std::sync::OnceLock<metrics::Histogram>; 7],
    errors: [std::sync::OnceLock<metrics::Counter>; 7],
    size: std::sync::OnceLock<metrics::Histogram>,
}

#[cfg(feature = "metrics")]
impl StoreMetrics {
    pub(crate) fn new(store: &'static str) -> Self {
        Self {
            store,
            seconds: Default::default(),
            errors: Default::default(),
            size: Default::default(),
        }
    }

    /// [`written_size`], with the handle kept.
    pub(crate) fn written_size(&self, bytes: usize) {
        self.size
            .get_or_init(|| metrics::histogram!("session_size_bytes"))
            .record(bytes as f64);
    }

    fn key(&self, name: &'static str, op: StoreOp) -> metrics::Key {
        metrics::Key::from_parts(
            name,
            vec![
                metrics::Label::from_static_parts("op", op.as_str()),
                metrics::Label::from_static_parts("store", self.store),
            ],
        )
    }

    /// Records one store call: its duration, and whether it failed.
    pub(crate) fn record(&self, op: StoreOp, elapsed: std::time::Duration, failed: bool) {
        static METADATA: metrics::Metadata<'static> =
            metrics::Metadata::new("session", metrics::Level::INFO, Some(module_path!()));
        let i = op as usize;
        self.seconds[i]
            .get_or_init(|| {
                let key = self.key("session_store_seconds", op);
                metrics::with_recorder(|r| r.register_histogram(&key, &METADATA))
            })
            .record(elapsed.as_secs_f64());
        if failed {
            self.errors[i]
                .get_or_init(|| {
                    let key = self.key("session_store_errors_total", op);
                    metrics::with_recorder(|r| r.register_counter(&key, &METADATA))
                })
                .increment(1);
        }
    }
}

#[cfg(feature = "metrics")]
impl std::fmt::Debug for StoreMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreMetrics(..)")
    }
}
