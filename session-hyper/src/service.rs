//! A hyper 1.x `Service` wrapper, and the way handlers reach the session.

use std::fmt;
use std::sync::Arc;

use ::http::header::CONTENT_TYPE;
use ::http::{HeaderValue, Request, Response, StatusCode};
use hyper::service::Service;
use session_core::driver::{Engine, SessionFuture, Shell};
use session_core::{
    Answer, NO_SESSION_BODY, Requirement, ResponseHeaders, Session, SessionManager, SessionStore,
    http,
};

/// Wraps a hyper service: loads the session before it runs (the handler
/// reads it with [`RequestSessionExt::session`]) and commits it after.
/// A store failure answers with the configured status (503 by default) and a
/// JSON body that names no detail.
///
/// ```no_run
/// # use std::convert::Infallible;
/// # use hyper::{Request, Response, body::Incoming, service::service_fn};
/// use session_hyper::{MemoryStore, RequestSessionExt, SessionConfig, SessionManager, SessionService};
///
/// async fn handler(req: Request<Incoming>) -> Result<Response<String>, Infallible> {
///     let session = req.session().expect("wrapped in SessionService");
///     let visits = session.get::<u32>("visits").ok().flatten().unwrap_or(0) + 1;
///     session.insert("visits", &visits).ok();
///     Ok(Response::new(format!("visit {visits}")))
/// }
///
/// let manager = SessionManager::new(MemoryStore::new(), SessionConfig::default()).unwrap();
/// let service = SessionService::new(service_fn(handler), manager);
/// // Serve `service.clone()` per connection with hyper::server::conn::http1.
/// ```
pub struct SessionService<I, S> {
    inner: Arc<I>,
    manager: SessionManager<S>,
}

impl<I, S: SessionStore> SessionService<I, S> {
    /// Wraps `inner` with sessions from `manager`.
    pub fn new(inner: I, manager: SessionManager<S>) -> Self {
        Self {
            inner: Arc::new(inner),
            manager,
        }
    }

    /// The engine.
    pub fn manager(&self) -> &SessionManager<S> {
        &self.manager
    }
}

impl<I, S> Clone for SessionService<I, S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            manager: self.manager.clone(),
        }
    }
}

impl<I, S> fmt::Debug for SessionService<I, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("manager", &self.manager)
            .finish_non_exhaustive()
    }
}

impl<I, S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<I, S>
where
    I: Service<Request<ReqBody>, Response = Response<ResBody>> + Send + Sync + 'static,
    I::Future: Send,
    S: SessionStore,
    ReqBody: Send + 'static,
    ResBody: From<&'static str> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = I::Error;
    type Future = SessionFuture<Inner<I>, Request<ReqBody>, SessionManager<S>>;

    fn call(&self, req: Request<ReqBody>) -> Self::Future {
        let presented = self.manager.read_request(req.headers());
        let mut inner = Inner(Arc::clone(&self.inner));
        SessionFuture::start(&self.manager, presented, req, &mut inner)
    }
}

/// The inner service, as the session engine calls it (the hyper
/// [`Shell`]).
#[derive(Debug)]
pub struct Inner<I>(Arc<I>);

impl<I, ReqBody, ResBody> Shell<Request<ReqBody>> for Inner<I>
where
    I: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<&'static str>,
{
    type Response = Response<ResBody>;
    type Error = I::Error;
    type Future = I::Future;

    fn call(&mut self, mut request: Request<ReqBody>, session: &Session) -> I::Future {
        request.extensions_mut().insert(session.clone());
        self.0.call(request)
    }

    fn defer(&mut self) -> Self {
        Self(Arc::clone(&self.0))
    }

    fn respond(response: &mut Self::Response, headers: ResponseHeaders) {
        headers.apply(response.headers_mut());
    }

    fn refuse(_: Request<ReqBody>, answer: Answer) -> Result<Self::Response, Self::Error> {
        Ok(http::failure_response(answer))
    }

    fn fail(_: Self::Response, answer: Answer) -> Result<Self::Response, Self::Error> {
        Ok(http::failure_response(answer))
    }

    fn handler_store_failure(response: &Self::Response) -> bool {
        http::is_handler_store_failure(response)
    }
}

/// The 401 response with a JSON body, for handlers that require a live
/// session (the same answer the axum and actix guards give).
pub fn no_live_session<B: From<&'static str>>() -> Response<B> {
    session_core::metrics::refused(401);
    let mut res = Response::new(B::from(NO_SESSION_BODY));
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// The response for a session error a handler meets: the error's
/// [status](session_core::Error::status) (413 for a session over its size
/// limit, 503 for a store failure) with a JSON body that names no detail of
/// the failure.
pub fn error_response<B: From<&'static str>>(error: &session_core::Error) -> Response<B> {
    let mut res = Response::new(B::from(error.public_body()));
    *res.status_mut() =
        StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut().insert(
        ::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    res
}

/// The request has no live session: answer with
/// [`into_response`](Self::into_response), the 401 of [`no_live_session`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoLiveSession;

impl NoLiveSession {
    /// The 401 response with a JSON body.
    pub fn into_response<B: From<&'static str>>(self) -> Response<B> {
        no_live_session()
    }
}

/// How a handler reaches its session from the request.
pub trait RequestSessionExt {
    /// The request's session; `None` when no [`SessionService`] wraps the
    /// handler.
    fn session(&self) -> Option<&Session>;

    /// The session if it was loaded from the store (the visitor has a live
    /// session, signed in or not); else [`NoLiveSession`], which turns into
    /// the 401.
    fn loaded_session(&self) -> Result<&Session, NoLiveSession> {
        self.session()
            .filter(|s| Requirement::Loaded.is_met_by(s))
            .ok_or(NoLiveSession)
    }

    /// The session if it was loaded and belongs to a user (signed in); else
    /// [`NoLiveSession`], which turns into the 401.
    fn user_session(&self) -> Result<&Session, NoLiveSession> {
        self.session()
            .filter(|s| Requirement::User.is_met_by(s))
            .ok_or(NoLiveSession)
    }
}

impl<B> RequestSessionExt for Request<B> {
    fn session(&self) -> Option<&Session> {
        self.extensions().get::<Session>()
    }
}
