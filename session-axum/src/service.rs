//! The tower `Layer` and `Service`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use session_core::{STORE_ERROR_BODY, SessionManager, SessionStore};
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
            inner,
            manager: self.manager.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
pub struct SessionService<I, S> {
    inner: I,
    manager: SessionManager<S>,
}

impl<I: Clone, S> Clone for SessionService<I, S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
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

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

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
    // One allocation per request: the store's futures borrow the engine, so
    // the request's future cannot be named without it.
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The clone is the one that was not polled ready; keep the ready one.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let manager = self.manager.clone();
        Box::pin(async move {
            let presented = manager.read_request_cookies(req.headers());
            let session = match manager.begin(presented).await {
                Ok(session) => session,
                Err(status) => return Ok(failure(status)),
            };
            req.extensions_mut().insert(session.clone());
            let mut response = inner.call(req).await?;
            match manager.finish(&session).await {
                Ok(headers) => {
                    headers.apply(response.headers_mut());
                    Ok(response)
                }
                Err(status) => Ok(failure(status)),
            }
        })
    }
}

fn failure<B: From<&'static str>>(status: u16) -> Response<B> {
    let mut res = Response::new(B::from(STORE_ERROR_BODY));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
