//! CSRF protection as `FromRequest` extractors. The rules are
//! session-core's ([`CsrfPolicy`]); this only reads the request and, for a
//! form, its body.
//!
//! The policy is the app's `app_data::<CsrfPolicy>()`, or
//! [`CsrfPolicy::new`] (same-site check and token) when none is set.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use session_core::csrf::{CsrfStep, RequestFacts, TOKEN_HEADER};
use session_core::{CsrfPolicy, CsrfRejection};

/// The 403 answer to a refused request: HTML when `accept` names
/// `text/html`, else JSON; never cached.
pub fn refusal(refused: CsrfRejection, accept: Option<&[u8]>) -> HttpResponse {
    session_core::metrics::refused(403);
    let (content_type, body) = refused.body(accept);
    HttpResponse::Forbidden()
        .content_type(content_type)
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body)
}

fn refused_error(refused: CsrfRejection, req: &HttpRequest) -> actix_web::Error {
    let accept = req.headers().get(ACCEPT).map(|v| v.as_bytes());
    InternalError::from_response(refused, refusal(refused, accept)).into()
}

fn facts(req: &HttpRequest) -> RequestFacts<'_> {
    let get = |name: &str| req.headers().get(name).map(|v| v.as_bytes());
    RequestFacts {
        method: req.method().as_str().as_bytes(),
        host: req.headers().get(HOST).map(|v| v.as_bytes()),
        origin: req.headers().get(ORIGIN).map(|v| v.as_bytes()),
        sec_fetch_site: get("sec-fetch-site"),
        header_token: get(TOKEN_HEADER),
        content_type: req.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()),
        accept: req.headers().get(ACCEPT).map(|v| v.as_bytes()),
    }
}

fn policy(req: &HttpRequest) -> CsrfPolicy {
    req.app_data::<CsrfPolicy>()
        .or_else(|| req.app_data::<web::Data<CsrfPolicy>>().map(|d| d.as_ref()))
        .cloned()
        .unwrap_or_default()
}

/// The request's session; without the middleware, a detached one, so the
/// same-site check (all that [`CsrfPolicy::same_site_only`] asks) still works
/// and no token can match.
fn session(req: &HttpRequest) -> Result<session_core::Session, actix_web::Error> {
    Ok(crate::Session::extract(req)
        .into_inner()
        .map_or_else(|_| session_core::Session::detached(), |s| s.0))
}

/// A request that passed the CSRF check without its body being read: the
/// same-site check, and the token from the `x-csrf-token` header. For
/// JSON APIs (with [`CsrfPolicy::same_site_only`]) and scripts that send the
/// header; forms take [`CsrfForm`]. Fails with 403 otherwise.
#[derive(Clone, Copy, Debug)]
pub struct CsrfChecked;

impl FromRequest for CsrfChecked {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(session(req).and_then(|session| {
            match policy(req).decide(&facts(req), &session) {
                CsrfStep::Allow => Ok(Self),
                CsrfStep::Refuse(refused) => Err(refused_error(refused, req)),
                // The token could only be in the body, which this does not read.
                CsrfStep::ReadForm => Err(refused_error(CsrfRejection::MissingToken, req)),
            }
        }))
    }
}

/// The body of a request that passed the CSRF check, the token read from
/// the `x-csrf-token` header or the form's field. The body is read within
/// the app's `web::PayloadConfig` limit. Fails with 403 when refused.
///
/// ```
/// use session_actix::CsrfForm;
///
/// async fn transfer(form: CsrfForm) -> String {
///     format!("{} verified bytes", form.0.len())
/// }
/// ```
#[derive(Clone)]
pub struct CsrfForm(pub web::Bytes);

impl fmt::Debug for CsrfForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CsrfForm({} bytes)", self.0.len())
    }
}

impl FromRequest for CsrfForm {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let session = session(&req)?;
            let policy = policy(&req);
            let step = policy.decide(&facts(&req), &session);
            if let CsrfStep::Refuse(refused) = step {
                return Err(refused_error(refused, &req));
            }
            let body = body.await?;
            if step == CsrfStep::ReadForm {
                policy
                    .decide_with_form(&session, &body)
                    .map_err(|refused| refused_error(refused, &req))?;
            }
            Ok(Self(body))
        })
    }
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

impl FromRequest for CsrfToken {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(session(req).and_then(|session| {
            session_core::csrf::token(&session)
                .map(Self)
                .map_err(actix_web::error::ErrorInternalServerError)
        }))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::{App, test};
    use session_core::{CookiePrefix, MemoryStore, SessionConfig};

    use super::*;
    use crate::SessionMiddleware;

    #[actix_web::test]
    async fn forms_pass_with_their_token_and_are_refused_without() {
        let mut config = SessionConfig::default();
        config.cookie.prefix = CookiePrefix::None;
        let middleware = SessionMiddleware::with_store(MemoryStore::new(), config).unwrap();
        let app = test::init_service(
            App::new()
                .wrap(middleware)
                .route("/form", web::get().to(|t: CsrfToken| async move { t.0 }))
                .route(
                    "/change",
                    web::post().to(|f: CsrfForm| async move { f.0.to_vec() }),
                )
                .route("/api", web::post().to(|_: CsrfChecked| async { "ok" })),
        )
        .await;
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/form").to_request()).await;
        let set_cookie = res
            .headers()
            .get(actix_web::http::header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let token = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
        let post = |body: String, site: &str| {
            test::TestRequest::post()
                .uri("/change")
                .insert_header((actix_web::http::header::COOKIE, cookie.clone()))
                .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
                .insert_header(("sec-fetch-site", site.to_owned()))
                .insert_header((ACCEPT, "text/html"))
                .set_payload(body)
                .to_request()
        };
        let body = format!("a=1&csrf_token={token}");
        let res = test::call_service(&app, post(body.clone(), "same-origin")).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(test::read_body(res).await, body.as_bytes());
        for (body, site) in [
            (body.clone(), "cross-site"),
            ("a=1&csrf_token=forged".to_owned(), "same-origin"),
            ("a=1".to_owned(), "same-origin"),
        ] {
            let res = test::call_service(&app, post(body, site)).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN);
        }
        let api = |token: &str| {
            test::TestRequest::post()
                .uri("/api")
                .insert_header((actix_web::http::header::COOKIE, cookie.clone()))
                .insert_header(("x-csrf-token", token.to_owned()))
                .to_request()
        };
        assert_eq!(
            test::call_service(&app, api(&token)).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            test::call_service(&app, api("forged")).await.status(),
            StatusCode::FORBIDDEN
        );
    }
}
