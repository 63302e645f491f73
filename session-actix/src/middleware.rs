//! The actix-web `Transform` and its service.

use std::fmt;
use std::future::{Ready, ready as ready_future};
use std::rc::Rc;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{
    CACHE_CONTROL, CLEAR_SITE_DATA, COOKIE, HeaderName, HeaderValue, SET_COOKIE, VARY,
};
use session_core::driver::{Engine, SessionFuture, Shell};
use session_core::{Answer, ResponseHeaders, Session, SessionHeader, SessionManager, SessionStore};

use crate::error::StoreFailure;

/// Adds a session to every request: loads it before the inner service runs
/// (handlers take the [`Session`](crate::Session) extractor) and commits it
/// after. A store failure answers with the configured status (503 by
/// default) and a JSON body that names no detail: the service returns it
/// as an error that actix-web renders so (as it renders handler errors),
/// and the response type stays the inner service's.
pub struct SessionMiddleware<S> {
    manager: SessionManager<S>,
}

impl<S: SessionStore> SessionMiddleware<S> {
    /// Middleware for this engine.
    pub fn new(manager: SessionManager<S>) -> Self {
        Self { manager }
    }

    /// Middleware on `store` with `config`; fails on an invalid config.
    pub fn with_store(
        store: S,
        config: session_core::SessionConfig,
    ) -> Result<Self, session_core::Error> {
        SessionManager::new(store, config).map(Self::new)
    }

    /// The engine.
    pub fn manager(&self) -> &SessionManager<S> {
        &self.manager
    }
}

impl<S> Clone for SessionMiddleware<S> {
    fn clone(&self) -> Self {
        Self {
            manager: self.manager.clone(),
        }
    }
}

impl<S> fmt::Debug for SessionMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("manager", &self.manager)
            .finish()
    }
}

impl<I, S, B> Transform<I, ServiceRequest> for SessionMiddleware<S>
where
    I: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S: SessionStore,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = SessionMiddlewareService<I, S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: I) -> Self::Future {
        ready_future(Ok(SessionMiddlewareService {
            inner: Rc::new(service),
            manager: Rc::new(self.manager.clone()),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an inner service.
pub struct SessionMiddlewareService<I, S> {
    inner: Rc<I>,
    // An `Rc`: the response future keeps it with no atomic count.
    manager: Rc<SessionManager<S>>,
}

impl<I, S> fmt::Debug for SessionMiddlewareService<I, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddlewareService")
            .field("manager", &self.manager)
            .finish_non_exhaustive()
    }
}

impl<I, S, B> Service<ServiceRequest> for SessionMiddlewareService<I, S>
where
    I: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S: SessionStore,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = SessionFuture<Inner<I>, ServiceRequest, Rc<SessionManager<S>>>;

    forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let values = match self.manager.id_header() {
            None => req.headers().get_all(COOKIE),
            Some(name) => req.headers().get_all(name),
        };
        let presented = self.manager.read_id(values.map(HeaderValue::as_bytes));
        let mut inner = Inner(Rc::clone(&self.inner));
        SessionFuture::start(&self.manager, presented, req, &mut inner)
    }
}

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const COOKIE_VALUE: HeaderValue = HeaderValue::from_static("cookie");

/// The inner service, as the session engine calls it (the actix-web
/// [`Shell`]).
pub struct Inner<I>(Rc<I>);

impl<I> fmt::Debug for Inner<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Inner")
    }
}

impl<I, B> Shell<ServiceRequest> for Inner<I>
where
    I: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = I::Future;

    fn call(&mut self, request: ServiceRequest, session: &Session) -> I::Future {
        request.extensions_mut().insert(session.clone());
        self.0.call(request)
    }

    fn defer(&mut self) -> Self {
        Self(Rc::clone(&self.0))
    }

    fn respond(response: &mut Self::Response, headers: ResponseHeaders) {
        headers.into_each(
            response.headers_mut(),
            |map| map.contains_key(CACHE_CONTROL),
            |map, header| {
                let (name, value) = match header {
                    SessionHeader::NoStore => (CACHE_CONTROL, NO_STORE),
                    SessionHeader::VaryCookie => (VARY, COOKIE_VALUE),
                    // Built from validated parts; never sent broken.
                    SessionHeader::SetCookie(text) => match HeaderValue::try_from(text) {
                        Ok(value) => (SET_COOKIE, value),
                        Err(_) => return,
                    },
                    SessionHeader::Id { name, value } => {
                        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                            (Ok(name), Ok(value)) => (name, value),
                            _ => return,
                        }
                    }
                    SessionHeader::Vary(request) => match HeaderValue::try_from(request) {
                        Ok(value) => (VARY, value),
                        Err(_) => return,
                    },
                    SessionHeader::ClearSiteData(directives) => {
                        match HeaderValue::try_from(directives) {
                            Ok(value) => (CLEAR_SITE_DATA, value),
                            Err(_) => return,
                        }
                    }
                };
                map.append(name, value);
            },
        );
    }

    fn refuse(_: ServiceRequest, answer: Answer) -> Result<Self::Response, Self::Error> {
        Err(StoreFailure(answer).into())
    }

    fn fail(_: Self::Response, answer: Answer) -> Result<Self::Response, Self::Error> {
        Err(StoreFailure(answer).into())
    }

    fn handler_store_failure(response: &Self::Response) -> bool {
        response
            .response()
            .error()
            .and_then(|e| e.as_error::<crate::SessionError>())
            .is_some_and(|e| e.0.status() == 503)
    }
}
