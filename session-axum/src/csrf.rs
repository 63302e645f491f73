//! CSRF protection as a tower layer, and the token as an extractor. The
//! rules are session-core's ([`CsrfPolicy`]); this only reads the request
//! and, for a form, its body.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use pin_project_lite::pin_project;
use session_core::csrf::{CsrfStep, RequestFacts};
use session_core::{CsrfPolicy, CsrfRejection};
use tower_layer::Layer;
use tower_service::Service;

use crate::extract::Session;

/// The largest form body [`CsrfLayer`] reads for a token by default.
pub const DEFAULT_FORM_LIMIT: usize = 64 * 1024;

/// Checks every unsafe request (POST, PUT, PATCH, DELETE, ...) against a
/// [`CsrfPolicy`] before the inner service sees it, and answers a refusal
/// with 403 (an HTML page for browsers, JSON otherwise).
///
/// The token is taken from the `x-csrf-token` header, or else from the
/// field of an `application/x-www-form-urlencoded` body (read up to a
/// limit, then handed on unchanged). Put it inside the
/// [`SessionLayer`](crate::SessionLayer), which must run first (without
/// one, only [`CsrfPolicy::same_site_only`] lets unsafe requests through):
///
/// ```
/// use axum::{Router, routing::post};
/// use session_axum::{CsrfLayer, CsrfPolicy, MemoryStore, SessionConfig, SessionLayer};
///
/// let app: Router = Router::new()
///     .route("/transfer", post(|| async { "done" }))
///     .layer(CsrfLayer::new(CsrfPolicy::new()))
///     .layer(SessionLayer::with_store(MemoryStore::new(), SessionConfig::default()).unwrap());
/// ```
#[derive(Clone, Debug)]
pub struct CsrfLayer {
    policy: CsrfPolicy,
    form_limit: usize,
}

impl CsrfLayer {
    /// A layer enforcing `policy`.
    pub fn new(policy: CsrfPolicy) -> Self {
        Self {
            policy,
            form_limit: DEFAULT_FORM_LIMIT,
        }
    }

    /// Reads at most `limit` bytes of a form body for its token; a longer
    /// form is answered with 413.
    pub fn with_form_limit(mut self, limit: usize) -> Self {
        self.form_limit = limit;
        self
    }
}

impl<I> Layer<I> for CsrfLayer {
    type Service = CsrfService<I>;

    fn layer(&self, inner: I) -> Self::Service {
        CsrfService {
            inner,
            policy: self.policy.clone(),
            form_limit: self.form_limit,
        }
    }
}

/// The service [`CsrfLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct CsrfService<I> {
    inner: I,
    policy: CsrfPolicy,
    form_limit: usize,
}

impl<I> fmt::Debug for CsrfService<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsrfService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

pin_project! {
    /// The response future of [`CsrfService`]: the inner service's future
    /// for an allowed request (nothing boxed), the refusal, or, for a form
    /// whose body must be read for its token, one boxed future.
    pub struct CsrfFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response> },
        Form { future: BoxFuture },
    }
}

impl<F> Future for CsrfFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future } => future.poll(cx),
            StateProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response()))),
            StateProj::Form { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F> fmt::Debug for CsrfFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.state {
            State::Inner { .. } => "CsrfFuture(inner)",
            State::Refused { .. } => "CsrfFuture(refused)",
            State::Form { .. } => "CsrfFuture(form)",
        })
    }
}

impl<I> Service<Request<Body>> for CsrfService<I>
where
    I: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    I::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CsrfFuture<I::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // Without a session layer no token can match, but the same-site
        // check (all that `CsrfPolicy::same_site_only` asks) still works.
        let session = req
            .extensions()
            .get::<session_core::Session>()
            .cloned()
            .unwrap_or_else(session_core::Session::detached);
        let (step, accept) = {
            let facts = RequestFacts::from_http(req.method(), req.uri(), req.headers());
            let step = self.policy.decide(&facts, &session);
            let accept = match step {
                CsrfStep::Allow => None,
                _ => facts.accept.map(<[u8]>::to_vec),
            };
            (step, accept)
        };
        let state = match step {
            CsrfStep::Allow => State::Inner {
                future: self.inner.call(req),
            },
            CsrfStep::Refuse(refused) => State::Refused {
                response: Some(refusal(refused, accept.as_deref())),
            },
            CsrfStep::ReadForm => {
                // The clone is the one not polled ready; keep the ready one.
                let ready = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, ready);
                let policy = self.policy.clone();
                let limit = self.form_limit;
                State::Form {
                    future: Box::pin(async move {
                        let (parts, body) = req.into_parts();
                        let Ok(body) = Limited::new(body, limit).collect().await else {
                            return Ok(StatusCode::PAYLOAD_TOO_LARGE.into_response());
                        };
                        let body = body.to_bytes();
                        if let Err(refused) = policy.decide_with_form(&session, &body) {
                            return Ok(refusal(refused, accept.as_deref()));
                        }
                        inner
                            .call(Request::from_parts(parts, Body::from(body)))
                            .await
                    }),
                }
            }
        };
        CsrfFuture { state }
    }
}

/// The 403 answer to a refused request: HTML when `accept` names
/// `text/html`, else JSON; never cached.
pub fn refusal(refused: CsrfRejection, accept: Option<&[u8]>) -> Response {
    session_core::metrics::refused(403);
    let (content_type, body) = refused.body(accept);
    let mut res = (StatusCode::FORBIDDEN, body).into_response();
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The session's CSRF token, masked for this page: put it in a hidden form
/// field named [`TOKEN_FIELD`](session_core::csrf::TOKEN_FIELD) (or have a
/// script send it as `x-csrf-token`). Creates the token on first use.
#[derive(Clone)]
pub struct CsrfToken(pub String);

impl fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfToken(..)")
    }
}

impl<St: Send + Sync> FromRequestParts<St> for CsrfToken {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let Session(session) = Session::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        session_core::csrf::token(&session)
            .map(Self)
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::{get, post};
    use http::header::{ACCEPT, COOKIE, SET_COOKIE};
    use session_core::{CookiePrefix, MemoryStore, SessionConfig};
    use tower::ServiceExt;

    use super::*;
    use crate::SessionLayer;

    fn app() -> Router {
        let mut config = SessionConfig::default();
        config.cookie.prefix = CookiePrefix::None;
        Router::new()
            .route("/form", get(|CsrfToken(t): CsrfToken| async move { t }))
            .route("/change", post(|body: String| async move { body }))
            .layer(CsrfLayer::new(CsrfPolicy::new()))
            .layer(SessionLayer::with_store(MemoryStore::new(), config).unwrap())
    }

    async fn text(res: Response) -> String {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn forms_pass_with_their_token_and_are_refused_without() {
        let app = app();
        let res = app
            .clone()
            .oneshot(Request::get("/form").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let cookie = res.headers()[SET_COOKIE].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let token = text(res).await;
        let post = |body: String, site: &'static str| {
            Request::post("/change")
                .header(COOKIE, &cookie)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("sec-fetch-site", site)
                .header(ACCEPT, "text/html")
                .body(Body::from(body))
                .unwrap()
        };
        let body = format!("a=1&csrf_token={token}");
        let res = app
            .clone()
            .oneshot(post(body.clone(), "same-origin"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(text(res).await, body, "the body reaches the handler whole");
        for (body, site) in [
            (body.clone(), "cross-site"),
            ("a=1&csrf_token=forged".to_owned(), "same-origin"),
            ("a=1".to_owned(), "same-origin"),
        ] {
            let res = app.clone().oneshot(post(body, site)).await.unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN);
            assert!(
                res.headers()[CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
        }
        let header = Request::post("/change")
            .header(COOKIE, &cookie)
            .header("x-csrf-token", &token)
            .body(Body::from("{}"))
            .unwrap();
        assert_eq!(app.oneshot(header).await.unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn the_same_site_check_alone_guards_a_json_api_without_sessions() {
        let api: Router = Router::new()
            .route("/api", post(|| async { "ok" }))
            .layer(CsrfLayer::new(CsrfPolicy::same_site_only()));
        let post = |site: &str, origin: &str| {
            Request::post("/api")
                .header(http::header::HOST, "api.example")
                .header("sec-fetch-site", site)
                .header(http::header::ORIGIN, origin)
                .header(CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap()
        };
        let res = api
            .clone()
            .oneshot(post("same-origin", "https://api.example"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let res = api
            .oneshot(post("cross-site", "https://evil.example"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(text(res).await, r#"{"error":"cross-site request refused"}"#);
    }
}
