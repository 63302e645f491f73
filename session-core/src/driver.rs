//! One request's walk through the engine, written once for every adapter.
//!
//! An adapter's service reads the session id from the request
//! ([`SessionManager::read_cookies`]) and hands the rest to
//! [`SessionFuture::start`]; the future loads the session, calls the inner
//! service with the session in the request, commits, and answers. The
//! adapter says how its framework does each of those with a [`Shell`].
//!
//! There is one path for every store. A store that does its work in the
//! calling thread ([`SessionStore::is_immediate`], the in-memory store) has
//! its load and commit done on the spot, and the future is the inner
//! service's future plus the session: nothing is boxed. Any other store's
//! load and commit are one boxed future each, awaited in the same states.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::cookie_policy::Presented;
use crate::engine::{ResponseHeaders, SessionManager, Step};
use crate::session::Session;
use crate::store::SessionStore;

/// What an adapter tells the engine about its framework: how to call the
/// inner service with the session, and how to shape the three answers.
/// Adapters implement it on a small value that can call the inner service
/// (the service itself, or an `Rc`/`Arc` of it).
pub trait Shell<Req>: Sized {
    /// The inner service's response.
    type Response;
    /// What the wrapped service answers with (often `Response`).
    type Output;
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

    /// The handler's response with the session's headers added
    /// ([`ResponseHeaders::into_each`]).
    fn respond(response: Self::Response, headers: ResponseHeaders) -> Self::Output;

    /// The answer when the session could not be loaded: `status` with
    /// [`STORE_ERROR_BODY`](crate::STORE_ERROR_BODY) and
    /// `Cache-Control: no-store`. The inner service is not called.
    fn refuse(request: Req, status: u16) -> Self::Output;

    /// The answer, as [`refuse`](Self::refuse), when the handler ran but
    /// the commit failed: its response is dropped.
    fn fail(response: Self::Response, status: u16) -> Self::Output;
}

pin_project! {
    /// The response future of every adapter's session service: see the
    /// [module](self).
    #[must_use = "futures do nothing unless polled"]
    pub struct SessionFuture<X, Req, S>
    where
        X: Shell<Req>,
    {
        #[pin]
        state: State<X, Req, S>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<X, Req, S>
    where
        X: Shell<Req>,
    {
        // The store is loading the session; the request waits.
        Loading {
            load: Step<Session>,
            waiting: Option<(X, Req)>,
            manager: SessionManager<S>,
        },
        // The inner service runs with the session.
        Calling {
            #[pin]
            inner: X::Future,
            session: Session,
            manager: SessionManager<S>,
        },
        // The store is committing; the response waits.
        Committing {
            commit: Step<ResponseHeaders>,
            response: Option<X::Response>,
        },
        // Answered already.
        Done {
            output: Option<X::Output>,
        },
    }
}

impl<X, Req, S> SessionFuture<X, Req, S>
where
    X: Shell<Req>,
    S: SessionStore,
{
    /// Starts `request`, whose session id said `presented`, through the
    /// engine. With an immediate store the session is loaded and the inner
    /// service called before this returns.
    pub fn start(
        manager: &SessionManager<S>,
        presented: Presented,
        request: Req,
        shell: &mut X,
    ) -> Self {
        let state = match manager.begin(presented).into_ready() {
            Ok(Ok(session)) => State::Calling {
                inner: shell.call(request, &session),
                session,
                manager: manager.clone(),
            },
            Ok(Err(status)) => State::Done {
                output: Some(X::refuse(request, status)),
            },
            Err(load) => State::Loading {
                load,
                waiting: Some((shell.defer(), request)),
                manager: manager.clone(),
            },
        };
        Self { state }
    }
}

impl<X, Req, S> Future for SessionFuture<X, Req, S>
where
    X: Shell<Req>,
    S: SessionStore,
{
    type Output = Result<X::Output, X::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Loading {
                    load,
                    waiting,
                    manager,
                } => {
                    let loaded = ready!(Pin::new(load).poll(cx));
                    let Some((mut shell, request)) = waiting.take() else {
                        return Poll::Ready(Ok(polled_after_completion()));
                    };
                    match loaded {
                        Ok(session) => State::Calling {
                            inner: shell.call(request, &session),
                            session,
                            manager: manager.clone(),
                        },
                        Err(status) => return Poll::Ready(Ok(X::refuse(request, status))),
                    }
                }
                StateProj::Calling {
                    inner,
                    session,
                    manager,
                } => {
                    let response = ready!(inner.poll(cx))?;
                    match manager.finish(session).into_ready() {
                        Ok(finished) => {
                            return Poll::Ready(Ok(answer::<X, Req>(response, finished)));
                        }
                        Err(commit) => State::Committing {
                            commit,
                            response: Some(response),
                        },
                    }
                }
                StateProj::Committing { commit, response } => {
                    let finished = ready!(Pin::new(commit).poll(cx));
                    let Some(response) = response.take() else {
                        return Poll::Ready(Ok(polled_after_completion()));
                    };
                    return Poll::Ready(Ok(answer::<X, Req>(response, finished)));
                }
                StateProj::Done { output } => {
                    return Poll::Ready(Ok(output.take().unwrap_or_else(polled_after_completion)));
                }
            };
            state.set(next);
        }
    }
}

impl<X: Shell<Req>, Req, S> fmt::Debug for SessionFuture<X, Req, S> {
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
    response: X::Response,
    finished: Result<ResponseHeaders, u16>,
) -> X::Output {
    match finished {
        Ok(headers) => X::respond(response, headers),
        Err(status) => X::fail(response, status),
    }
}

/// Polling a completed future is the caller's bug (the `Future` contract);
/// it gets a panic-free, loud answer rather than undefined behaviour.
#[cold]
fn polled_after_completion<T>() -> T {
    panic!("SessionFuture polled after completion")
}
