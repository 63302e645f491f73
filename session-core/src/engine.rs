//! `SessionManager`: the decisions of a request's life, and the glue that
//! runs them against a store.

use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::answer::Answer;
use crate::config::SessionConfig;
use crate::cookie_policy::{CookiePolicy, Presented, RejectReason};
use crate::driver::Engine;
use crate::error::Error;
use crate::events::{EventHook, SessionEvent};
use crate::handle::SessionHandle;
use crate::id::SessionId;
use crate::metrics::{self, EndReason, StoreOp};
use crate::random::{OsRandom, RandomSource};
use crate::session::{Plan, Session, SessionPolicy, Write};
use crate::store::{BoxFuture, SessionStore, WriteOutcome};
use crate::time::{Clock, SharedClock, SystemClock, Timestamp};

/// How often a fresh id is drawn again when the store says it is taken.
const ID_ATTEMPTS: usize = 3;

/// The JSON body adapters send, with [`SessionManager::failure_status`], when
/// the store fails. It names no detail of the failure.
pub const STORE_ERROR_BODY: &str = r#"{"error":"session store unavailable"}"#;

/// The JSON body adapters send with 401 when a handler requires a live
/// session and the request has none.
pub const NO_SESSION_BODY: &str = r#"{"error":"no live session"}"#;

/// The JSON body adapters send with 401 when a request presents its
/// session id more than once through a header transport
/// ([`Presented::Ambiguous`]).
pub const AMBIGUOUS_ID_BODY: &str = r#"{"error":"more than one session id"}"#;

/// The JSON body of the 409 a login gets when its user has as many live
/// sessions as [`SessionConfig::max_sessions_per_user`] allows, with
/// [`LimitPolicy::Refuse`](crate::LimitPolicy::Refuse).
pub const TOO_MANY_SESSIONS_BODY: &str = r#"{"error":"too many sessions for this user"}"#;

/// The session engine for one store and one configuration. Cheap to clone;
/// adapters hold one and call [`load`](Self::load) before the handler and
/// [`commit`](Self::commit) after it.
pub struct SessionManager<S> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    store: S,
    config: SessionConfig,
    policy: CookiePolicy,
    defaults: SessionPolicy,
    /// `Clear-Site-Data` for a response that ends the session, and for
    /// one that also starts a new session (without `"cookies"`).
    clear_on_end: Option<Arc<str>>,
    clear_on_end_keep_cookies: Option<Arc<str>>,
    clock: SharedClock,
    random: Box<dyn RandomSource>,
    events: EventHook,
    #[cfg(feature = "metrics")]
    store_metrics: crate::metrics::StoreMetrics,
}

impl<S> Clone for SessionManager<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for SessionManager<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("config", &self.inner.config)
            .field("clock", &self.inner.clock)
            .field("random", &self.inner.random)
            .finish_non_exhaustive()
    }
}

/// The load or commit of one request, as [`SessionFuture`](crate::driver::SessionFuture)
/// takes it: done already (no store needed, or an immediate store), or the
/// store's work as one boxed future. `Err` holds the answer to give.
pub(crate) enum Step<T> {
    Ready(Result<T, Answer>),
    Pending(Pending<T>),
}

/// A step's store work, awaited.
pub(crate) struct Pending<T>(BoxFuture<'static, Result<T, Answer>>);

impl<T> Future for Pending<T> {
    type Output = Result<T, Answer>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl<T> Step<T> {
    fn pending(work: impl Future<Output = Result<T, Answer>> + Send + 'static) -> Self {
        Self::Pending(Pending(Box::pin(work)))
    }
}

/// Why [`SessionManager::without_store`] gave no session: an id to load, or
/// an id presented more than once, which refuses the request
/// ([`Error::AmbiguousId`]). No bigger than the id, so the common path moves
/// no more than it did.
enum Unread {
    Load(SessionId),
    Ambiguous,
}

/// The headers a response must carry for its session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseHeaders {
    /// The id handed out: a `Set-Cookie` value (the session cookie, or its
    /// removal), or with a header [`Transport`](crate::Transport) the id
    /// itself (empty: the client must drop its id).
    pub set_cookie: Option<String>,
    /// Whether the response depends on the session id (`Vary: Cookie`, or
    /// `Vary` with the transport's request header).
    pub vary_cookie: bool,
    /// A header transport's names; `None` for the cookie.
    pub transport: Option<Arc<TransportHeaders>>,
    /// The `Clear-Site-Data` value, on a response that ended the session
    /// (see [`SessionConfig::clear_site_data`]); else `None`.
    pub clear_site_data: Option<Arc<str>>,
}

/// The header names of a header [`Transport`](crate::Transport), lowercase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportHeaders {
    /// The request header the id comes in (what `Vary` names).
    pub request: Box<str>,
    /// The response header the id is handed out in.
    pub response: Box<str>,
}

/// One header [`ResponseHeaders::into_each`] has an adapter append. Which
/// header, and with what, is the engine's decision; the adapter maps it to
/// its framework's types (fixed headers to its constants).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionHeader<'a> {
    /// `Cache-Control: no-store`.
    NoStore,
    /// `Set-Cookie` with this value: the session cookie, or its removal.
    SetCookie(String),
    /// A header [`Transport`](crate::Transport)'s response header (`name`,
    /// lowercase, checked by the config) with the id; empty: the client
    /// must drop its id.
    Id {
        /// The header's name.
        name: &'a str,
        /// The id, or nothing.
        value: String,
    },
    /// `Vary: cookie`.
    VaryCookie,
    /// `Vary` naming a header transport's request header (lowercase).
    Vary(&'a str),
    /// `Clear-Site-Data` with this value (`"cache", "cookies"`, say), on a
    /// response that ended the session.
    ClearSiteData(&'a str),
}

impl SessionHeader<'_> {
    /// The header's name, lowercase.
    pub fn name(&self) -> &str {
        match self {
            Self::NoStore => "cache-control",
            Self::SetCookie(_) => "set-cookie",
            Self::Id { name, .. } => name,
            Self::VaryCookie | Self::Vary(_) => "vary",
            Self::ClearSiteData(_) => "clear-site-data",
        }
    }

    /// The header's value.
    pub fn value(&self) -> &str {
        match self {
            Self::NoStore => "no-store",
            Self::SetCookie(value) | Self::Id { value, .. } => value,
            Self::VaryCookie => "cookie",
            Self::Vary(name) | Self::ClearSiteData(name) => name,
        }
    }
}

impl ResponseHeaders {
    /// Calls `add(headers, header)` for each header to append to the
    /// response's `headers`. These responses must not be cached
    /// (`Cache-Control: no-store`), unless the application set its own
    /// `Cache-Control` (`has_cache_control` says whether it did, and is
    /// asked only then):
    ///
    /// - one that hands out or withdraws the id, with any transport;
    /// - with a header [`Transport`](crate::Transport), also one whose
    ///   handler used the session (the one that varies with the id
    ///   header): the id is a credential the client sends on purpose, and
    ///   an answer made for it belongs in no cache, shared or the client's
    ///   own.
    ///
    /// A cookie response that only read the session carries `Vary: cookie`
    /// alone, as it always has.
    pub fn into_each<M>(
        self,
        headers: &mut M,
        has_cache_control: impl FnOnce(&M) -> bool,
        mut add: impl FnMut(&mut M, SessionHeader<'_>),
    ) {
        let names = self.transport.as_deref();
        let no_store = self.set_cookie.is_some() || (self.vary_cookie && names.is_some());
        if no_store && !has_cache_control(headers) {
            add(headers, SessionHeader::NoStore);
        }
        if let Some(value) = self.set_cookie {
            add(
                headers,
                match names {
                    None => SessionHeader::SetCookie(value),
                    Some(n) => SessionHeader::Id {
                        name: &n.response,
                        value,
                    },
                },
            );
        }
        if self.vary_cookie {
            add(
                headers,
                names.map_or(SessionHeader::VaryCookie, |n| {
                    SessionHeader::Vary(&n.request)
                }),
            );
        }
        if let Some(value) = &self.clear_site_data {
            add(headers, SessionHeader::ClearSiteData(value));
        }
    }
}

impl<S: SessionStore> SessionManager<S> {
    /// An engine on `store` with `config`, after checking the config.
    pub fn new(store: S, config: SessionConfig) -> Result<Self, Error> {
        Self::with_clock(store, config, SystemClock)
    }

    /// As [`new`](Self::new), with time from `clock` (tests use
    /// [`ManualClock`](crate::ManualClock)).
    pub fn with_clock(store: S, config: SessionConfig, clock: impl Clock) -> Result<Self, Error> {
        Self::build(
            store,
            config,
            SharedClock::of(clock),
            Box::new(OsRandom),
            EventHook(None),
        )
    }

    /// As [`with_clock`](Self::with_clock), calling `hook` with every
    /// lifecycle event (for metrics, audit logs, or alerts on floods of
    /// forged ids).
    pub fn with_event_hook(
        store: S,
        config: SessionConfig,
        clock: impl Clock,
        hook: impl Fn(&SessionEvent) + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        Self::build(
            store,
            config,
            SharedClock::of(clock),
            Box::new(OsRandom),
            EventHook(Some(Arc::new(hook))),
        )
    }

    /// As [`with_clock`](Self::with_clock), with fresh ids drawn from
    /// `random` instead of the operating system (tests use
    /// [`SeededRandom`](crate::SeededRandom) to know the ids in advance).
    pub fn with_random(
        store: S,
        config: SessionConfig,
        clock: impl Clock,
        random: impl RandomSource,
    ) -> Result<Self, Error> {
        Self::build(
            store,
            config,
            SharedClock::of(clock),
            Box::new(random),
            EventHook(None),
        )
    }

    fn build(
        store: S,
        config: SessionConfig,
        clock: SharedClock,
        random: Box<dyn RandomSource>,
        events: EventHook,
    ) -> Result<Self, Error> {
        config.validate()?;
        let inner = Inner {
            #[cfg(feature = "metrics")]
            store_metrics: crate::metrics::StoreMetrics::new(store.kind()),
            random,
            policy: CookiePolicy::new(&config),
            defaults: SessionPolicy::of(&config),
            clear_on_end: config.clear_site_data_value(false),
            clear_on_end_keep_cookies: config.clear_site_data_value(true),
            store,
            config,
            clock,
            events,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// Logs a failed store call (with its source, server-side only) and
    /// returns the status to answer with: the configured
    /// [`store_error_status`](SessionConfig::store_error_status) for a store
    /// failure, else the error's own [status](Error::status). For errors of
    /// [`end_user_sessions`](Self::end_user_sessions) and the like, and of
    /// every load and commit.
    pub fn failure_status(&self, error: &Error) -> u16 {
        self.failure_answer(error).status()
    }

    /// The answer to a store failure a handler met itself (see
    /// [`Shell::handler_store_failure`](crate::driver::Shell::handler_store_failure)):
    /// the configured status and the body that names no detail.
    pub fn store_failure_answer(&self) -> Answer {
        Answer::new(self.inner.config.store_error_status, STORE_ERROR_BODY)
    }

    /// As [`failure_status`](Self::failure_status), the whole [`Answer`]:
    /// the status and a body that names no detail of the failure.
    pub fn failure_answer(&self, error: &Error) -> Answer {
        #[cfg(feature = "tracing")]
        if !matches!(
            error,
            Error::TooLarge { .. }
                | Error::AmbiguousId
                | Error::TooManySessions { .. }
                | Error::ReauthenticationRequired
        ) {
            let source = std::error::Error::source(error).map(ToString::to_string);
            tracing::error!(target: "session", %error, source = source.as_deref().unwrap_or(""),
                "session request failed");
        }
        let answer = Answer::of(error, self.inner.config.store_error_status);
        if (400..500).contains(&answer.status()) {
            metrics::refused(answer.status());
        }
        answer
    }

    /// Now, by the engine's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Steps 1 to 3 for the driver: [`load`](Engine::load), with a failure
    /// logged and turned into the status to answer. The one place where an
    /// [immediate](SessionStore::is_immediate) store's work is done on the
    /// spot; any other store's is one boxed future. A request with no id
    /// (or a refused one) asks no store, and is ready at once on any store.
    #[inline]
    pub(crate) fn begin(&self, presented: Presented) -> Step<Session> {
        let id = match self.without_store(presented) {
            Ok(session) => return Step::Ready(Ok(session)),
            Err(Unread::Load(id)) => id,
            Err(Unread::Ambiguous) => {
                return Step::Ready(Err(self.failure_answer(&Error::AmbiguousId)));
            }
        };
        let now = self.now();
        if self.inner.store.is_immediate() {
            return Step::Ready(self.run_in_place(self.load_id(id, now)));
        }
        let manager = self.clone();
        Step::pending(async move {
            manager
                .load_id(id, now)
                .await
                .map_err(|e| manager.failure_answer(&e))
        })
    }

    /// Steps 5 and 6 for the driver: [`commit`](Engine::commit), with a
    /// failure logged and turned into the status to answer; a plan that asks
    /// nothing of the store is ready at once, and immediate stores are
    /// handled in place, as in [`begin`](Self::begin).
    #[inline]
    pub(crate) fn finish(&self, session: &mut Session) -> Step<ResponseHeaders> {
        let plan = session.plan_last(|| self.now());
        if let Some(headers) = self.settle(&plan) {
            return Step::Ready(Ok(headers));
        }
        if self.inner.store.is_immediate() {
            return Step::Ready(self.run_in_place(self.carry_out(plan)));
        }
        let manager = self.clone();
        Step::pending(async move {
            manager
                .carry_out(plan)
                .await
                .map_err(|e| manager.failure_answer(&e))
        })
    }

    /// The session when the store need not be asked (no id, or one refused
    /// unread): a new one, which reads the clock only when its times are
    /// first needed. Else the id to load, or an ambiguous id, which refuses
    /// the request.
    #[inline]
    fn without_store(&self, presented: Presented) -> Result<Session, Unread> {
        let stale_cookie = match presented {
            Presented::Nothing => false,
            Presented::Rejected(reason) => {
                self.emit(SessionEvent::Rejected { id: None, reason });
                true
            }
            Presented::Id(id) => return Err(Unread::Load(id)),
            Presented::Ambiguous => return Err(self.ambiguous()),
        };
        let clock = self.inner.clock.clone();
        Ok(Session::unstamped(stale_cookie, self.inner.defaults, clock))
    }

    /// An id presented more than once: logged, to be refused.
    #[cold]
    fn ambiguous(&self) -> Unread {
        self.emit(SessionEvent::Rejected {
            id: None,
            reason: RejectReason::Ambiguous,
        });
        Unread::Ambiguous
    }

    /// Loads and opens the session stored under a presented id.
    async fn load_id(&self, id: SessionId, now: Timestamp) -> Result<Session, Error> {
        let key = self.store_key(&id);
        let load = self.inner.store.load(&key, now);
        let record = match self.timed(StoreOp::Load, load).await {
            Ok(record) => record,
            Err(Error::Corrupt(_)) => {
                self.emit(SessionEvent::Rejected {
                    id: Some(id.log_hash()),
                    reason: RejectReason::Corrupt,
                });
                return Ok(self.open(None, None, true, now));
            }
            Err(e) => return Err(e),
        };
        match record {
            Some(r) if self.inner.defaults.expires_at(&r.meta) > now => {
                Ok(self.open(Some(id), Some(r), false, now))
            }
            Some(_) => {
                metrics::ended(EndReason::Expired, 1);
                self.emit(SessionEvent::Expired { id: id.log_hash() });
                Ok(self.open(None, None, true, now))
            }
            None => {
                self.emit(SessionEvent::Rejected {
                    id: Some(id.log_hash()),
                    reason: RejectReason::Unknown,
                });
                Ok(self.open(None, None, true, now))
            }
        }
    }

    /// The headers of a plan that asks nothing of the store (most reads);
    /// `None` for a plan to [`carry_out`](Self::carry_out).
    #[inline]
    fn settle(&self, plan: &Plan) -> Option<ResponseHeaders> {
        if plan.delete.is_some() || !matches!(plan.write, Write::Nothing) {
            return None;
        }
        Some(ResponseHeaders {
            set_cookie: plan.remove_cookie.then(|| self.inner.policy.removal()),
            vary_cookie: plan.vary,
            transport: self.inner.policy.transport_headers(),
            clear_site_data: None,
        })
    }

    /// Sends a plan that needs the store to it; the headers to answer with.
    async fn carry_out(&self, plan: Plan) -> Result<ResponseHeaders, Error> {
        let Plan {
            delete,
            write,
            remove_cookie,
            vary,
            persistent,
            now,
            #[cfg(feature = "metrics")]
            size,
        } = plan;
        #[cfg(feature = "metrics")]
        if let Some(size) = size {
            self.inner.store_metrics.written_size(size);
        }
        let store = &self.inner.store;
        let ended = delete.is_some();
        if let Some(old) = delete {
            let key = self.store_key(&old);
            if self.timed(StoreOp::Delete, store.delete(&key)).await? {
                metrics::ended(EndReason::Logout, 1);
            }
            self.emit(SessionEvent::Destroyed { id: old.log_hash() });
        }
        let mut headers = ResponseHeaders {
            set_cookie: None,
            vary_cookie: vary,
            transport: self.inner.policy.transport_headers(),
            clear_site_data: None,
        };
        let cookie_for = |id: &SessionId, expires_at: Timestamp| {
            let max_age = persistent.then(|| expires_at.since(now));
            self.inner.policy.set_cookie(id, max_age.map(whole_seconds))
        };
        let limit = self.inner.config.max_sessions_per_user;
        let wanted_write = !matches!(write, Write::Nothing);
        let written = match write {
            Write::Nothing => false,
            Write::Create(record) => {
                let record = &record;
                let limit = limit.filter(|_| record.meta.user.is_some());
                #[cfg(feature = "metrics")]
                self.inner.store_metrics.written_size(record.data.bytes());
                let id = self
                    .with_fresh_id(|id| async move {
                        let key = self.store_key(&id);
                        match limit {
                            Some(limit) => {
                                let create = store.create_limited(&key, record, limit);
                                self.timed(StoreOp::Create, create).await
                            }
                            None => {
                                let create = store.create(&key, record);
                                self.timed(StoreOp::Create, create).await
                            }
                        }
                    })
                    .await?
                    .ok_or(Error::IdCollision)?;
                metrics::created();
                self.emit(SessionEvent::Created { id: id.log_hash() });
                headers.set_cookie = Some(cookie_for(&id, record.expires_at));
                true
            }
            Write::Update {
                id,
                mut update,
                cookie,
            } => {
                let expires_at = update.expires_at;
                update.max_per_user = limit;
                let key = self.store_key(&id);
                match self
                    .timed(StoreOp::Update, store.update(&key, *update))
                    .await?
                {
                    outcome if outcome.is_written() => {
                        self.ended_for_limit(&id, outcome);
                        if cookie {
                            headers.set_cookie = Some(cookie_for(&id, expires_at));
                        }
                        true
                    }
                    WriteOutcome::TooLarge { size } => return Err(self.too_large(size)),
                    WriteOutcome::UserLimitReached => return Err(self.too_many()),
                    _ => self.ended_meanwhile(&id),
                }
            }
            Write::Renew { old, mut update } => {
                update.max_per_user = limit;
                let old_key = self.store_key(&old);
                let update = &update;
                let renewed = self
                    .with_fresh_id(|new| {
                        let old_key = &old_key;
                        async move {
                            let new_key = self.store_key(&new);
                            let renew = store.renew(old_key, &new_key, update);
                            self.timed(StoreOp::Renew, renew).await
                        }
                    })
                    .await?;
                match renewed {
                    Some(new) => {
                        metrics::renewed();
                        self.emit(SessionEvent::Renewed {
                            old: old.log_hash(),
                            id: new.log_hash(),
                        });
                        headers.set_cookie = Some(cookie_for(&new, update.expires_at));
                        true
                    }
                    None => self.ended_meanwhile(&old),
                }
            }
        };
        if !written && (remove_cookie || wanted_write) {
            headers.set_cookie = Some(self.inner.policy.removal());
        }
        if ended {
            // A new session written after the end keeps its cookie.
            let value = if written {
                &self.inner.clear_on_end_keep_cookies
            } else {
                &self.inner.clear_on_end
            };
            headers.clear_site_data.clone_from(value);
        }
        Ok(headers)
    }

    /// Polls a future of an immediate store once, where it stands.
    fn run_in_place<T>(&self, future: impl Future<Output = Result<T, Error>>) -> Result<T, Answer> {
        let mut future = pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(result) => result.map_err(|e| self.failure_answer(&e)),
            Poll::Pending => {
                // The store broke its promise; never block on it.
                let broken = Error::store("a store declared immediate returned a pending future");
                Err(self.failure_answer(&broken))
            }
        }
    }

    /// Ends every session of `user` (logout everywhere). Returns how many
    /// there were.
    pub async fn end_user_sessions(&self, user: &str) -> Result<usize, Error> {
        let delete = self.inner.store.delete_user(user);
        let ended = self.timed(StoreOp::DeleteUser, delete).await?;
        metrics::ended(EndReason::User, ended as u64);
        self.emit(SessionEvent::UserSessionsEnded { count: ended });
        Ok(ended)
    }

    /// Ends every session of this session's user except this one (after a
    /// password change, say). Returns how many were ended; 0 for a session
    /// without a user. Costs one store call per session of that user.
    pub async fn end_other_sessions(&self, session: &Session) -> Result<usize, Error> {
        let Some(user) = session.user() else {
            return Ok(0);
        };
        let keep = session.id().map(|id| self.store_key(&id));
        let store = &self.inner.store;
        let mut ended = 0;
        let keys = self
            .timed(
                StoreOp::UserSessions,
                store.user_sessions(&user, self.now()),
            )
            .await?;
        for key in keys {
            if Some(key) != keep && self.timed(StoreOp::Delete, store.delete(&key)).await? {
                ended += 1;
            }
        }
        metrics::ended(EndReason::User, ended as u64);
        self.emit(SessionEvent::UserSessionsEnded { count: ended });
        Ok(ended)
    }

    /// The live sessions of this session's user, most recently active
    /// first, with what a "your devices" page shows: each one's
    /// [handle](SessionHandle) (to end it with
    /// [`end_session_by_handle`](Self::end_session_by_handle)), times,
    /// whether the cookie is persistent, whether it is this very session,
    /// and the values (say, a device name the app stored at login). Ids are
    /// left out: they are credentials. Empty for a session without a user.
    /// Costs one store call, plus one load per session of that user.
    pub async fn user_sessions(&self, session: &Session) -> Result<Vec<SessionInfo>, Error> {
        let Some(user) = session.user() else {
            return Ok(Vec::new());
        };
        let this = session.id().map(|id| self.store_key(&id));
        let now = self.now();
        let store = &self.inner.store;
        let mut sessions = Vec::new();
        let keys = self
            .timed(StoreOp::UserSessions, store.user_sessions(&user, now))
            .await?;
        for key in keys {
            let record = match self.timed(StoreOp::Load, store.load(&key, now)).await {
                Ok(Some(record)) => record,
                // Ended meanwhile, or unreadable: not a live session.
                Ok(None) | Err(Error::Corrupt(_)) => continue,
                Err(e) => return Err(e),
            };
            sessions.push(SessionInfo {
                handle: SessionHandle::of_store_key(&key),
                current: Some(key) == this,
                authenticated_at: record.meta.authenticated_at,
                created_at: record.meta.created_at,
                last_activity: record.meta.last_activity,
                expires_at: self.inner.defaults.expires_at(&record.meta),
                persistent: self.inner.defaults.persistent(&record.meta),
                data: record.data,
            });
        }
        sessions.sort_by_key(|s| std::cmp::Reverse(s.last_activity));
        Ok(sessions)
    }

    /// Ends the session of this session's user that `handle` names (from
    /// [`user_sessions`](Self::user_sessions)): "sign out that device".
    /// Returns whether it did; `false` for a handle that names no live
    /// session of this user (another user's, an ended one, or none), and
    /// for a session without a user. Costs one store call, plus one delete.
    ///
    /// A handle that names this very session destroys it as
    /// [`Session::destroy`] does: it is deleted when the response is
    /// committed, and the response removes the cookie.
    pub async fn end_session_by_handle(
        &self,
        session: &Session,
        handle: &SessionHandle,
    ) -> Result<bool, Error> {
        let Some(user) = session.user() else {
            return Ok(false);
        };
        let store = &self.inner.store;
        let keys = store.user_sessions(&user, self.now()).await?;
        let Some(key) = keys
            .into_iter()
            .find(|key| SessionHandle::of_store_key(key) == *handle)
        else {
            return Ok(false);
        };
        if session.id().is_some_and(|id| self.store_key(&id) == key) {
            session.destroy();
            return Ok(true);
        }
        let ended = store.delete(&key).await?;
        if ended {
            self.emit(SessionEvent::UserSessionsEnded { count: 1 });
        }
        Ok(ended)
    }

    /// How many sessions the store holds live now (the operator's view).
    /// One store call, counted through the store's index
    /// ([`SessionStore::count`]); a store without one answers
    /// [`Error::Store`].
    pub async fn count_sessions(&self) -> Result<usize, Error> {
        self.inner.store.count(self.now()).await
    }

    /// One page of the live sessions, for an operator: at most `limit`,
    /// starting after `after` (the `next` cursor of the page before; `None`
    /// for the first page). Returns the page and the cursor of the next one
    /// (`None` after the last page). A cursor is opaque text (the last
    /// store key of the page); one that does not parse starts nowhere: the
    /// answer is an empty last page. Sessions the engine's rules have
    /// ended (idle timeout or lifetime shortened since they were written)
    /// are left out. Ids are never shown: each session is named by its
    /// [handle](SessionHandle). One store call.
    pub async fn list_sessions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<AdminSessionInfo>, Option<String>), Error> {
        let after = match after {
            Some(text) => match SessionId::parse(text.as_bytes()) {
                Some(id) => Some(id),
                None => return Ok((Vec::new(), None)),
            },
            None => None,
        };
        if limit == 0 {
            return Ok((Vec::new(), None));
        }
        let now = self.now();
        let page = self.inner.store.list(now, after.as_ref(), limit).await?;
        let next = (page.len() >= limit)
            .then(|| page.last().map(|(key, _)| key.encode().as_str().to_owned()))
            .flatten();
        let sessions = page
            .into_iter()
            .filter_map(|(key, record)| {
                let expires_at = self.inner.defaults.expires_at(&record.meta);
                (expires_at > now).then(|| AdminSessionInfo {
                    username: record.meta.user.as_deref().map(str::to_owned),
                    handle: SessionHandle::of_store_key(&key),
                    created_at: record.meta.created_at,
                    last_activity: record.meta.last_activity,
                    expires_at,
                })
            })
            .collect();
        Ok((sessions, next))
    }

    /// Ends every session of `user`, for an operator: as
    /// [`end_user_sessions`](Self::end_user_sessions), counted in
    /// `session_ended_total` with `reason="operator"`.
    pub async fn end_user_sessions_as_operator(&self, user: &str) -> Result<usize, Error> {
        let delete = self.inner.store.delete_user(user);
        let ended = self.timed(StoreOp::DeleteUser, delete).await?;
        metrics::ended(EndReason::Operator, ended as u64);
        self.emit(SessionEvent::UserSessionsEnded { count: ended });
        Ok(ended)
    }

    /// Ends every session in the store (and every user's index), for an
    /// operator. Returns how many there were. One store call
    /// ([`SessionStore::delete_all`]), counted in `session_ended_total` with
    /// `reason="operator"`.
    pub async fn end_all_sessions(&self) -> Result<usize, Error> {
        let ended = self.inner.store.delete_all().await?;
        metrics::ended(EndReason::Operator, ended as u64);
        Ok(ended)
    }

    /// Runs `write` with fresh ids until it is not [`WriteOutcome::IdTaken`].
    /// `Some(id)` when written, `None` when the session was missing.
    async fn with_fresh_id<F, Fut>(&self, write: F) -> Result<Option<SessionId>, Error>
    where
        F: Fn(SessionId) -> Fut,
        Fut: Future<Output = Result<WriteOutcome, Error>>,
    {
        for _ in 0..ID_ATTEMPTS {
            let id = SessionId::generate_from(&*self.inner.random);
            match write(id).await? {
                outcome @ (WriteOutcome::Written | WriteOutcome::WrittenEndingOldest { .. }) => {
                    self.ended_for_limit(&id, outcome);
                    return Ok(Some(id));
                }
                WriteOutcome::Missing => return Ok(None),
                WriteOutcome::IdTaken => continue,
                WriteOutcome::TooLarge { size } => return Err(self.too_large(size)),
                WriteOutcome::UserLimitReached => return Err(self.too_many()),
            }
        }
        Err(Error::IdCollision)
    }

    /// A write the store refused at its merge for the size limit: the
    /// session keeps what it had, and the request is answered with 413.
    fn too_large(&self, size: usize) -> Error {
        Error::TooLarge {
            size,
            limit: self.inner.defaults.max_bytes,
        }
    }

    /// A write the store refused for the per-user limit: answered with 409.
    fn too_many(&self) -> Error {
        Error::TooManySessions {
            limit: self
                .inner
                .config
                .max_sessions_per_user
                .map_or(0, |limit| limit.max),
        }
    }

    /// The event for sessions a write ended to keep its user within the
    /// per-user limit, if it ended any.
    fn ended_for_limit(&self, id: &SessionId, outcome: WriteOutcome) {
        if let WriteOutcome::WrittenEndingOldest { ended } = outcome
            && ended > 0
        {
            self.emit(SessionEvent::EndedForLimit {
                id: id.log_hash(),
                count: ended,
            });
            metrics::ended(EndReason::Limit, u64::try_from(ended).unwrap_or(u64::MAX));
        }
    }

    fn ended_meanwhile(&self, id: &SessionId) -> bool {
        self.emit(SessionEvent::WriteDropped { id: id.log_hash() });
        false
    }

    fn emit(&self, event: SessionEvent) {
        self.inner.events.emit(event);
    }

    /// A store call, timed into `session_store_seconds` (feature
    /// `metrics`; without it, the call itself).
    #[cfg(feature = "metrics")]
    async fn timed<T>(
        &self,
        op: StoreOp,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let started = std::time::Instant::now();
        let result = call.await;
        self.inner
            .store_metrics
            .record(op, started.elapsed(), result.is_err());
        result
    }

    /// A store call (no `metrics` feature: nothing to time).
    #[cfg(not(feature = "metrics"))]
    #[inline(always)]
    fn timed<F>(&self, _op: StoreOp, call: F) -> F {
        call
    }
}

/// The request-level steps, for adapters and custom servers (see
/// [`Engine`]).
impl<S: SessionStore> Engine for SessionManager<S> {
    fn cookie_name(&self) -> &str {
        self.inner.policy.name()
    }

    fn store_error_status(&self) -> u16 {
        self.inner.config.store_error_status
    }

    fn id_header(&self) -> Option<&str> {
        self.inner.policy.id_header()
    }

    fn read_id<'a, I>(&self, values: I) -> Presented
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        self.inner.policy.find(values)
    }

    async fn load(&self, presented: Presented) -> Result<Session, Error> {
        match self.without_store(presented) {
            Ok(session) => Ok(session),
            Err(Unread::Load(id)) => self.load_id(id, self.now()).await,
            Err(Unread::Ambiguous) => Err(Error::AmbiguousId),
        }
    }

    fn open(
        &self,
        id: Option<SessionId>,
        record: Option<crate::Record>,
        stale_cookie: bool,
        now: Timestamp,
    ) -> Session {
        Session::open(id, record, stale_cookie, self.inner.defaults, now)
    }

    async fn commit(&self, session: &Session) -> Result<ResponseHeaders, Error> {
        let plan = session.plan(|| self.now());
        match self.settle(&plan) {
            Some(headers) => Ok(headers),
            None => self.carry_out(plan).await,
        }
    }

    fn store_key(&self, id: &SessionId) -> SessionId {
        if !self.inner.config.hash_ids_at_rest {
            return *id;
        }
        let digest = Sha256::digest(id.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        SessionId::from_bytes(bytes)
    }
}

/// One of a user's live sessions, as [`SessionManager::user_sessions`]
/// lists them for a "your devices" page.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// What names it to [`SessionManager::end_session_by_handle`]; never
    /// usable as its id.
    pub handle: SessionHandle,
    /// Whether this is the session of the request that asked.
    pub current: bool,
    /// When its user logged in.
    pub authenticated_at: Option<Timestamp>,
    /// When it was created (signing in).
    pub created_at: Timestamp,
    /// Its last request that refreshed the idle timeout.
    pub last_activity: Timestamp,
    /// When it ends unless used again.
    pub expires_at: Timestamp,
    /// Whether its cookie outlives the browser ("remember me").
    pub persistent: bool,
    /// Its values, for what the app chose to keep (a device name, say).
    pub data: crate::Data,
}

/// One live session, as [`SessionManager::list_sessions`] shows it to an
/// operator: who, and when, never the id or the values.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdminSessionInfo {
    /// Its user, if it has logged in.
    pub username: Option<String>,
    /// Its [handle](SessionHandle): the same one its user sees in
    /// [`SessionManager::user_sessions`].
    pub handle: SessionHandle,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its last request that refreshed the idle timeout.
    pub last_activity: Timestamp,
    /// When it ends unless used again.
    pub expires_at: Timestamp,
}

/// A cookie's `Max-Age`: whole seconds, rounded down so the cookie never
/// outlives the session on the server.
fn whole_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}
