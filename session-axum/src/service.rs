//! The tower `Layer` and `Service`.

use std::fmt;
use std::task::{Context, Poll};

use ::http::{Request, Response};
use session_core::driver::{Engine, SessionFuture, Shell};
use session_core::{Answer, ResponseHeaders, Session, SessionManager, SessionStore, http};
use tower_layer::Layer;
use tower_service::Service;

/// Adds a session to every request: loads it before the inner service runs
/// (the handler finds it in the request's extensions, or through the
/// [`Session`](crate::Session) extractor) and commits it after.
///
/// A store failure answers with the configured status (503 by default) and a
/// JSON body that names no detail; the inner service is not called when the
/// session cannot be loaded.
pub struct SessionLayer<S> {
    manager: SessionManager<S>,
}

impl<S: SessionStore> SessionLayer<S> {
    /// A layer for this engine.
    pub fn new(manager: SessionManager<S>) -> Self {
        Self { manager }
    }

    /// A layer on `store` with `config`; fails on an invalid config.
    pub fn with_store(
        store: S,
        config: session_core::SessionConfig,
    ) -> Result<Self, session_core::Error> {
        SessionManager::new(store, config).map(Self::new)
    }

    /// The engine, e.g. for [`end_user_sessions`](SessionManager::end_user_sessions).
    pub fn manager(&self) -> &SessionManager<S> {
        &self.manager
    }
}

impl<S> Clone for SessionLayer<S> {
    fn clone(&self) -> Self {
        Self {
            manager: self.manager.clone(),
        }
    }
}

impl<S> fmt::Debug for SessionLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("manager", &self.manager)
            .finish()
    }
}

impl<S: SessionStore, I> Layer<I> for SessionLayer<S> {
    type Service = SessionService<I, S>;

    fn layer(&self, inner: I) -> Self::Service {
        SessionService {
            inner: Inner(inner),
            manager: self.manager.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
pub struct SessionService<I, S> {
    inner: Inner<I>,
    manager: SessionManager<S>,
}

impl<I: Clone, S> Clone for SessionService<I, S> {
    fn clone(&self) -> Self {
        Self {
            inner: Inner(self.inner.0.clone()),
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
    I: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    I::Future: Send,
    S: SessionStore,
    ReqBody: Send + 'static,
    ResBody: From<&'static str> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = I::Error;
    type Future = SessionFuture<Inner<I>, Request<ReqBody>, SessionManager<S>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let presented = self.manager.read_request(req.headers());
        SessionFuture::start(&self.manager, presented, req, &mut self.inner)
    }
}

/// The inner service, as the session engine calls it (the tower
/// [`Shell`]).
#[derive(Debug)]
pub struct Inner<I>(I);

impl<I, ReqBody, ResBody> Shell<Request<ReqBody>> for Inner<I>
where
    I: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
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
        // The clone is the one that was not polled ready; keep the ready
        // one for the request.
        let fresh = self.0.clone();
        Self(std::mem::replace(&mut self.0, fresh))
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
