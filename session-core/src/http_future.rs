//! The response future shared by adapters on `http` 1.x (feature `http`):
//! for an immediate store, the inner service's future followed by an
//! in-place commit, with nothing boxed.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;

use crate::cookie_policy::Presented;
use crate::engine::{STORE_ERROR_BODY, SessionManager};
use crate::session::Session;
use crate::store::{BoxFuture, SessionStore};

pin_project! {
    /// The response future of an `http` 1.x session service (see
    /// `session-axum` and `session-hyper`), built for a [`Route`] with
    /// [`direct`](Self::direct), [`later`](Self::later) or
    /// [`failed`](Self::failed).
    pub struct ResponseFuture<F, S, B, E> {
        #[pin]
        state: State<F, S, B, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, B, E> {
        // An immediate store: the inner service's future, then the commit.
        Direct {
            #[pin]
            inner: F,
            session: Session,
            manager: SessionManager<S>,
        },
        // Any other store: the whole request in one boxed future.
        Boxed {
            future: BoxFuture<'static, Result<Response<B>, E>>,
        },
        // The session could not be loaded: answer with this status.
        Failed {
            status: u16,
        },
    }
}

impl<F, S, B, E> ResponseFuture<F, S, B, E> {
    /// For an immediate store ([`Route::Now`]): `inner` is the inner
    /// service's future for the request that carries `session`; the session
    /// is committed in place when it completes.
    pub fn direct(inner: F, session: Session, manager: SessionManager<S>) -> Self {
        Self {
            state: State::Direct {
                inner,
                session,
                manager,
            },
        }
    }

    /// For any other store ([`Route::Later`]): the whole request as one
    /// boxed future that loads the session, calls `call` with the request,
    /// and commits.
    pub fn later<R, C, CF>(
        manager: SessionManager<S>,
        presented: Presented,
        mut req: Request<R>,
        call: C,
    ) -> Self
    where
        S: SessionStore,
        R: Send + 'static,
        B: From<&'static str> + Send + 'static,
        E: 'static,
        C: FnOnce(Request<R>) -> CF + Send + 'static,
        CF: Future<Output = Result<Response<B>, E>> + Send + 'static,
    {
        let future: BoxFuture<'static, Result<Response<B>, E>> = Box::pin(async move {
            let session = match manager.begin(presented).await {
                Ok(session) => session,
                Err(status) => return Ok(failure_response(status)),
            };
            req.extensions_mut().insert(session.clone());
            let mut response = call(req).await?;
            match manager.finish(&session).await {
                Ok(headers) => {
                    headers.apply(response.headers_mut());
                    Ok(response)
                }
                Err(status) => Ok(failure_response(status)),
            }
        });
        Self {
            state: State::Boxed { future },
        }
    }

    /// The session could not be loaded ([`Route::Failed`]): answer `status`
    /// (see [`failure_response`]).
    pub fn failed(status: u16) -> Self {
        Self {
            state: State::Failed { status },
        }
    }
}

impl<F, S, B, E> Future for ResponseFuture<F, S, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    S: SessionStore,
    B: From<&'static str>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Direct {
                inner,
                session,
                manager,
            } => {
                let mut response = ready!(inner.poll(cx))?;
                Poll::Ready(Ok(match manager.finish_now(session) {
                    Some(Ok(headers)) => {
                        headers.apply(response.headers_mut());
                        response
                    }
                    Some(Err(status)) => failure_response(status),
                    // An immediate store stays immediate; answer as for a
                    // failing store if it somehow did not.
                    None => failure_response(manager.store_error_status()),
                }))
            }
            StateProj::Boxed { future } => future.as_mut().poll(cx),
            StateProj::Failed { status } => Poll::Ready(Ok(failure_response(*status))),
        }
    }
}

impl<F, S, B, E> fmt::Debug for ResponseFuture<F, S, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.state {
            State::Direct { .. } => "ResponseFuture(direct)",
            State::Boxed { .. } => "ResponseFuture(boxed)",
            State::Failed { .. } => "ResponseFuture(failed)",
        })
    }
}

/// Which way a request goes through the session engine (see [`route`]).
#[derive(Debug)]
pub enum Route<B> {
    /// An immediate store loaded the session in place and put it in the
    /// request's extensions: call the inner service now and wrap its future
    /// with [`ResponseFuture::direct`].
    Now(Request<B>, Session),
    /// Any other store: build the response with [`ResponseFuture::later`].
    Later(Request<B>, Presented),
    /// The session could not be loaded: [`ResponseFuture::failed`].
    Failed(u16),
}

/// Reads the request's cookies and decides its [`Route`].
pub fn route<S: SessionStore, B>(manager: &SessionManager<S>, mut req: Request<B>) -> Route<B> {
    let presented = manager.read_request_cookies(req.headers());
    match manager.begin_now(presented) {
        Some(Ok(session)) => {
            req.extensions_mut().insert(session.clone());
            Route::Now(req, session)
        }
        Some(Err(status)) => Route::Failed(status),
        None => Route::Later(req, presented),
    }
}

/// The answer to a store failure: `status` with [`STORE_ERROR_BODY`] as
/// JSON and `Cache-Control: no-store`.
pub fn failure_response<B: From<&'static str>>(status: u16) -> Response<B> {
    let mut res = Response::new(B::from(STORE_ERROR_BODY));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
