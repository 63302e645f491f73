//! The actix-web `Transform` and its service.

use std::borrow::Cow;
use std::fmt;
use std::future::{Future, Ready, ready as ready_future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, COOKIE, HeaderName, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use pin_project_lite::pin_project;
use session_core::{ResponseHeaders, STORE_ERROR_BODY, Session, SessionManager, SessionStore};

/// Adds a session to every request: loads it before the inner service runs
/// (handlers take the [`Session`](crate::Session) extractor) and commits it
/// after. A store failure answers with the configured status (503 by
/// default) and a JSON body that names no detail.
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
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionMiddlewareService<I, S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: I) -> Self::Future {
        ready_future(Ok(SessionMiddlewareService {
            inner: Rc::new(service),
            manager: self.manager.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an inner service.
pub struct SessionMiddlewareService<I, S> {
    inner: Rc<I>,
    manager: SessionManager<S>,
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
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = ResponseFuture<I::Future, S, B>;

    forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let cookies = req.headers().get_all(COOKIE).map(HeaderValue::as_bytes);
        let presented = self.manager.read_cookies(cookies);
        match self.manager.begin_now(presented) {
            // An immediate store: the session is loaded already, so the inner
            // service is called now and no future of ours is boxed.
            Some(Ok(session)) => {
                req.extensions_mut().insert(session.clone());
                let inner = self.inner.call(req);
                ResponseFuture {
                    state: State::Direct {
                        inner,
                        session,
                        manager: self.manager.clone(),
                    },
                }
            }
            Some(Err(status)) => {
                let response = failure(req.into_parts().0, status);
                ResponseFuture {
                    state: State::Ready {
                        response: Some(response),
                    },
                }
            }
            None => {
                let inner = Rc::clone(&self.inner);
                let manager = self.manager.clone();
                let future = Box::pin(async move {
                    let session = match manager.begin(presented).await {
                        Ok(session) => session,
                        Err(status) => return Ok(failure(req.into_parts().0, status)),
                    };
                    req.extensions_mut().insert(session.clone());
                    let response = inner.call(req).await?;
                    let finished = manager.finish(&session).await;
                    Ok(with_session_headers(response, finished))
                });
                ResponseFuture {
                    state: State::Boxed { future },
                }
            }
        }
    }
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

pin_project! {
    /// The response future of [`SessionMiddlewareService`].
    pub struct ResponseFuture<F, S, B> {
        #[pin]
        state: State<F, S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, B> {
        // An immediate store: the inner service's future, then the commit.
        Direct {
            #[pin]
            inner: F,
            session: Session,
            manager: SessionManager<S>,
        },
        // Any other store: the whole request in one boxed future.
        Boxed {
            future: LocalBoxFuture<Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>,
        },
        // Answered already (the session could not be loaded).
        Ready {
            response: Option<ServiceResponse<EitherBody<B>>>,
        },
    }
}

impl<F, S, B> Future for ResponseFuture<F, S, B>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    S: SessionStore,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Direct {
                inner,
                session,
                manager,
            } => {
                let response = ready!(inner.poll(cx))?;
                // An immediate store stays immediate; answer as for a failing
                // store if it somehow did not.
                let finished = manager
                    .finish_now(session)
                    .unwrap_or(Err(manager.store_error_status()));
                Poll::Ready(Ok(with_session_headers(response, finished)))
            }
            StateProj::Boxed { future } => future.as_mut().poll(cx),
            StateProj::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Ready(Err(actix_web::error::ErrorInternalServerError(
                    "polled after completion",
                ))),
            },
        }
    }
}

impl<F, S, B> fmt::Debug for ResponseFuture<F, S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.state {
            State::Direct { .. } => "ResponseFuture(direct)",
            State::Boxed { .. } => "ResponseFuture(boxed)",
            State::Ready { .. } => "ResponseFuture(ready)",
        })
    }
}

/// The handler's response with the session's headers, or the failure answer
/// if the commit failed.
fn with_session_headers<B>(
    mut response: ServiceResponse<B>,
    finished: Result<ResponseHeaders, u16>,
) -> ServiceResponse<EitherBody<B>> {
    match finished {
        Ok(headers) => {
            let map = response.headers_mut();
            headers.into_each(map.contains_key(CACHE_CONTROL), |name, value| {
                let value = match value {
                    Cow::Borrowed(text) => HeaderValue::from_static(text),
                    Cow::Owned(text) => match HeaderValue::try_from(text) {
                        Ok(value) => value,
                        Err(_) => return,
                    },
                };
                map.append(HeaderName::from_static(name), value);
            });
            response.map_into_left_body()
        }
        Err(status) => failure(response.into_parts().0, status),
    }
}

fn failure<B>(req: HttpRequest, status: u16) -> ServiceResponse<EitherBody<B>> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let res = HttpResponse::build(status)
        .content_type("application/json")
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(STORE_ERROR_BODY);
    ServiceResponse::new(req, res).map_into_right_body()
}
