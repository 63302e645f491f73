//! One request's walk through the engine, written once for every adapter.
//!
//! An adapter's service reads the session id from the request
//! ([`Engine::read_id`]) and hands the rest to
//! [`SessionFuture::start`]; the future loads the session, calls the inner
//! service with the session in the request, commits, and answers. The
//! adapter says how its framework does each of those with a [`Shell`].
//!
//! There is one path for every store. A request with no id asks no store,
//! and neither does a commit with nothing to write. A store that does its
//! work in the calling thread ([`SessionStore::is_immediate`], the
//! in-memory store) has its load and commit done on the spot, and the
//! future is the inner service's future plus the session: nothing is
//! boxed. Any other store's load and commit are one boxed future each,
//! awaited in the same states.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::answer::Answer;
use crate::cookie_policy::Presented;
use crate::engine::{Pending, ResponseHeaders, SessionManager, Step};
use crate::error::Error;
use crate::id::SessionId;
use crate::record::Record;
use crate::session::Session;
use crate::store::SessionStore;
use crate::time::Timestamp;

/// The engine's request-level steps, for adapter authors and custom
/// servers; applications need none of them. [`SessionManager`]'s own
/// methods are the application's: building it, and ending or listing a
/// user's sessions.
///
/// The steps, in a request's order:
///
/// 1. [`read_id`](Self::read_id) (pure): what the request's `Cookie`
///    headers (or the transport's header) say.
/// 2. [`load`](Self::load): the session, from the store.
/// 3. The handler works on the [`Session`].
/// 4. [`commit`](Self::commit): the session's changes to the store, and the
///    [`ResponseHeaders`] to send.
///
/// [`SessionFuture`] runs steps 2 to 4 for an adapter; a custom server may
/// call them itself. Every error of `load` and `commit` becomes a status by
/// [`SessionManager::failure_status`].
pub trait Engine: sealed::Sealed {
    /// The cookie's name as sent.
    fn cookie_name(&self) -> &str;

    /// The status to answer with when the store fails (see
    /// [`STORE_ERROR_BODY`](crate::STORE_ERROR_BODY)).
    fn store_error_status(&self) -> u16;

    /// The request header a header [`Transport`](crate::Transport)
    /// carries the id in, lowercase; `None` for the cookie (the `Cookie`
    /// headers).
    fn id_header(&self) -> Option<&str>;

    /// Step 1 (pure): what the values of the request's id header say (its
    /// `Cookie` headers, or the transport's header; see
    /// [`id_header`](Self::id_header)). Any bytes are accepted; see
    /// [`Presented`].
    fn read_id<'a, I>(&self, values: I) -> Presented
    where
        I: IntoIterator<Item = &'a [u8]>;

    /// [`read_id`](Self::read_id) on a request's `http` header map.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    fn read_request(&self, headers: &http::HeaderMap) -> Presented {
        let values = match self.id_header() {
            None => headers.get_all(http::header::COOKIE),
            Some(name) => headers.get_all(name),
        };
        self.read_id(values.iter().map(http::HeaderValue::as_bytes))
    }

    /// Step 2: loads the presented session and opens it. A missing,
    /// expired, ended or corrupt session gives a new, empty one (strict
    /// mode: the presented id is never adopted). Only a store failure is an
    /// error.
    fn load(&self, presented: Presented) -> impl Future<Output = Result<Session, Error>> + Send;

    /// Step 2 without the store (pure), for callers that load records
    /// themselves.
    fn open(
        &self,
        id: Option<SessionId>,
        record: Option<Record>,
        stale_cookie: bool,
        now: Timestamp,
    ) -> Session;

    /// Step 4: sends the session's changes to the store and returns the
    /// headers for the response. Call it once, after the handler.
    fn commit(
        &self,
        session: &Session,
    ) -> impl Future<Output = Result<ResponseHeaders, Error>> + Send;

    /// The key a session is stored under: its id, or with
    /// [`hash_ids_at_rest`](crate::SessionConfig::hash_ids_at_rest) the
    /// first 16 bytes of its SHA-256, which stores take as they take an id.
    fn store_key(&self, id: &SessionId) -> SessionId;
}

mod sealed {
    pub trait Sealed {}
    impl<S> Sealed for crate::SessionManager<S> {}
    impl<S> Sealed for std::rc::Rc<crate::SessionManager<S>> {}
}

/// What a [`SessionFuture`] keeps of the engine until its commit: the
/// [`SessionManager`] itself (an atomic count per request, for runtimes
/// that move futures between threads), or an `Rc` of one (no atomic count,
/// for single-threaded runtimes such as actix-web's).
pub trait EngineHandle: Clone + sealed::Sealed {
    /// The engine's store.
    type Store: SessionStore;

    /// The engine.
    fn manager(&self) -> &SessionManager<Self::Store>;
}

impl<S: SessionStore> EngineHandle for SessionManager<S> {
    type Store = S;

    fn manager(&self) -> &SessionManager<S> {
        self
    }
}

impl<S: SessionStore> EngineHandle for Rc<SessionManager<S>> {
    type Store = S;

    fn manager(&self) -> &SessionManager<S> {
        self
    }
}

/// What an adapter tells the engine about its framework: how to call the
/// inner service with the session, and how to shape the three answers.
/// Adapters implement it on a small value that can call the inner service
/// (the service itself, or an `Rc`/`Arc` of it).
pub trait Shell<Req>: Sized {
    /// The inner service's response, which the wrapped service answers
    /// with too.
    type Response;
    /// The inner service's error, passed through untouched.
    type Error;
    /// The inner service's future.
    type Future: Future<Output = Result<Self::Response, Self::Error>>;

    /// Puts a clone of `session` where handlers find it (the request's
    /// extensions) and calls the inner service.
    fn call(&mut self, request: Req, session: &Session) -> Self::Future;

    /// A shell to call the inner service later, once the store has
    /// answered (for a tower service: the one polled ready, leaving a
    /// clone in its place).
    fn defer(&mut self) -> Self;

    /// Adds the session's headers to the handler's response, in place
    /// ([`ResponseHeaders::into_each`]).
    fn respond(response: &mut Self::Response, headers: ResponseHeaders);

    /// The engine's [`Answer`] when the session could not be loaded (the
    /// store failed, or the request presented its id more than once, see
    /// [`Presented::Ambiguous`]): its status and JSON body, with
    /// `Content-Type: application/json` and `Cache-Control: no-store`, as a
    /// response, or as an error the framework renders so (actix-web's
    /// way). The inner service is not called.
    fn refuse(request: Req, answer: Answer) -> Result<Self::Response, Self::Error>;

    /// Whether the handler's `response` is its framework's rendering of a
    /// store failure it met itself (for example ending a user's sessions
    /// while the store is down: the adapter's error type marks its
    /// response). The engine then answers with its own store-failure
    /// [`Answer`] instead, the configured status included, and commits
    /// nothing for the failed request. Default: never.
    fn handler_store_failure(response: &Self::Response) -> bool {
        let _ = response;
        false
    }

    /// The engine's [`Answer`], as [`refuse`](Self::refuse), when the
    /// handler ran but the commit failed (the store failed, or refused the
    /// write for the size limit): the handler's response is dropped.
    fn fail(response: Self::Response, answer: Answer) -> Result<Self::Response, Self::Error>;
}

pin_project! {
    /// The response future of every adapter's session service: see the
    /// [module](self).
    #[must_use = "futures do nothing unless polled"]
    pub struct SessionFuture<X, Req, H>
    where
        X: Shell<Req>,
    {
        #[pin]
        state: State<X, Req, H>,
        span: RequestSpan,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<X, Req, H>
    where
        X: Shell<Req>,
    {
        // The store is loading the session; the request waits (boxed, for
        // the reason given below).
        Loading {
            load: Pending<Session>,
            waiting: Option<Box<(X, Req)>>,
            engine: H,
        },
        // The inner service runs with the session.
        Calling {
            #[pin]
            inner: X::Future,
            session: Session,
            engine: H,
        },
        // The store is committing; the response waits. Boxed, as is the
        // refusal below: those states are rare (a store doing IO, a store
        // down), and a response held inline would make every request's
        // future as large as a response (moved at least once per request).
        Committing {
            commit: Pending<ResponseHeaders>,
            response: Option<Box<X::Response>>,
        },
        // Answered already.
        Done {
            output: Option<Box<Result<X::Response, X::Error>>>,
        },
    }
}

impl<X, Req, H> SessionFuture<X, Req, H>
where
    X: Shell<Req>,
    H: EngineHandle,
{
    /// Starts `request`, whose session id said `presented`, through the
    /// engine. With an immediate store the session is loaded and the inner
    /// service called before this returns.
    pub fn start(engine: &H, presented: Presented, request: Req, shell: &mut X) -> Self {
        let span = RequestSpan::start(engine.manager().store().kind(), &presented);
        let entered = span.enter();
        let state = match engine.manager().begin(presented) {
            Step::Ready(Ok(session)) => State::Calling {
                inner: shell.call(request, &session),
                session,
                engine: engine.clone(),
            },
            Step::Ready(Err(answer)) => {
                span.answered(&answer);
                State::Done {
                    output: Some(Box::new(X::refuse(request, answer))),
                }
            }
            Step::Pending(load) => State::Loading {
                load,
                waiting: Some(Box::new((shell.defer(), request))),
                engine: engine.clone(),
            },
        };
        drop(entered);
        Self { state, span }
    }
}

impl<X, Req, H> Future for SessionFuture<X, Req, H>
where
    X: Shell<Req>,
    H: EngineHandle,
{
    type Output = Result<X::Response, X::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let span = &*this.span;
        let _entered = span.enter();
        let mut state = this.state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Loading {
                    load,
                    waiting,
                    engine,
                } => {
                    let loaded = ready!(Pin::new(load).poll(cx));
                    let Some((mut shell, request)) = waiting.take().map(|boxed| *boxed) else {
                        return Poll::Ready(polled_after_completion());
                    };
                    match loaded {
                        Ok(session) => State::Calling {
                            inner: shell.call(request, &session),
                            session,
                            engine: engine.clone(),
                        },
                        Err(answer) => {
                            span.answered(&answer);
                            return Poll::Ready(X::refuse(request, answer));
                        }
                    }
                }
                StateProj::Calling {
                    inner,
                    session,
                    engine,
                } => {
                    // The inner service's answer is answered as it is, with
                    // the session's headers added in place: no move of the
                    // response on the common path.
                    let mut polled = ready!(inner.poll(cx));
                    let Ok(response) = &mut polled else {
                        span.outcome("service_error");
                        return Poll::Ready(polled);
                    };
                    if X::handler_store_failure(response) {
                        span.outcome("handler_store_failure");
                        let answer = engine.manager().store_failure_answer();
                        return Poll::Ready(polled.and_then(|r| X::fail(r, answer)));
                    }
                    match engine.manager().finish(session) {
                        Step::Ready(Ok(headers)) => {
                            span.outcome("ok");
                            X::respond(response, headers);
                            return Poll::Ready(polled);
                        }
                        Step::Ready(Err(answer)) => {
                            span.answered(&answer);
                            return Poll::Ready(polled.and_then(|r| X::fail(r, answer)));
                        }
                        Step::Pending(commit) => State::Committing {
                            commit,
                            response: polled.ok().map(Box::new),
                        },
                    }
                }
                StateProj::Committing { commit, response } => {
                    let finished = ready!(Pin::new(commit).poll(cx));
                    let Some(response) = response.take().map(|boxed| *boxed) else {
                        return Poll::Ready(polled_after_completion());
                    };
                    match &finished {
                        Ok(_) => span.outcome("ok"),
                        Err(answer) => span.answered(answer),
                    }
                    return Poll::Ready(answer::<X, Req>(response, finished));
                }
                StateProj::Done { output } => {
                    return Poll::Ready(output.take().map_or_else(polled_after_completion, |b| *b));
                }
            };
            state.set(next);
        }
    }
}

impl<X: Shell<Req>, Req, H> fmt::Debug for SessionFuture<X, Req, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.state {
            State::Loading { .. } => "SessionFuture(loading)",
            State::Calling { .. } => "SessionFuture(calling)",
            State::Committing { .. } => "SessionFuture(committing)",
            State::Done { .. } => "SessionFuture(done)",
        })
    }
}

fn answer<X: Shell<Req>, Req>(
    mut response: X::Response,
    finished: Result<ResponseHeaders, Answer>,
) -> Result<X::Response, X::Error> {
    match finished {
        Ok(headers) => {
            X::respond(&mut response, headers);
            Ok(response)
        }
        Err(answer) => X::fail(response, answer),
    }
}

/// The span of one request's session work (load, handler, commit): target
/// `session`, level `debug`, with the store's kind, the presented id's
/// [`LogHash`](crate::LogHash) and the outcome (`ok`, `refused` or
/// `failed` with the engine's `status`, `service_error`). Feature
/// `tracing`; without a subscriber that wants it, it is a no-op and nothing
/// is hashed or formatted.
struct RequestSpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl RequestSpan {
    #[inline]
    fn start(store: &'static str, presented: &Presented) -> Self {
        #[cfg(feature = "tracing")]
        {
            use tracing::field::{Empty, display};
            let span = tracing::debug_span!(target: "session", "session", store,
                id = Empty, outcome = Empty, status = Empty);
            if !span.is_disabled()
                && let Presented::Id(id) = presented
            {
                span.record("id", display(id.log_hash()));
            }
            Self { span }
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = (store, presented);
            Self {}
        }
    }

    /// Enters the span until the guard is dropped.
    #[inline]
    fn enter(&self) -> impl Sized + '_ {
        #[cfg(feature = "tracing")]
        {
            self.span.enter()
        }
    }

    #[inline]
    fn outcome(&self, outcome: &'static str) {
        #[cfg(feature = "tracing")]
        if !self.span.is_disabled() {
            self.span.record("outcome", outcome);
        }
        #[cfg(not(feature = "tracing"))]
        let _ = outcome;
    }

    /// The engine answered instead of the handler (or over its response).
    fn answered(&self, answer: &Answer) {
        #[cfg(feature = "tracing")]
        if !self.span.is_disabled() {
            let outcome = if answer.status() < 500 {
                "refused"
            } else {
                "failed"
            };
            self.span.record("outcome", outcome);
            self.span.record("status", answer.status());
        }
        #[cfg(not(feature = "tracing"))]
        let _ = answer;
    }
}

/// Polling a completed future breaks the `Future` contract; like an
/// `async fn`'s future, this one then panics.
#[cold]
fn polled_after_completion<T>() -> T {
    panic!("SessionFuture polled after completion")
}
