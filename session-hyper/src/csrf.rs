//! CSRF protection as a function to call in a handler. The rules are
//! session-core's ([`CsrfPolicy`]); this only reads the request head and the
//! body the handler read.

use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use session_core::csrf::{CsrfStep, RequestFacts};
use session_core::{CsrfPolicy, CsrfRejection, Session};

/// Checks a request against `policy`: `head` is the request's head (from
/// `Request::into_parts`, with the session the [`SessionService`](crate::SessionService)
/// put in its extensions) and `body` the body the handler read (empty if it
/// read none). The token comes from the `x-csrf-token` header or, for an
/// `application/x-www-form-urlencoded` body, from the policy's form field.
///
/// `Err` is the answer to send: 403, an HTML page for browsers and JSON
/// otherwise ([`refusal`]).
///
/// ```
/// use http::Request;
/// use session_hyper::{CsrfPolicy, Session, check_csrf};
///
/// let mut req = Request::post("/transfer").body(()).unwrap();
/// req.extensions_mut().insert(Session::detached());
/// let (head, ()) = req.into_parts();
/// // No token: refused.
/// let refused = check_csrf::<String>(&CsrfPolicy::new(), &head, b"amount=10").unwrap_err();
/// assert_eq!(refused.status(), 403);
/// ```
pub fn check_csrf<R: From<String>>(
    policy: &CsrfPolicy,
    head: &Parts,
    body: &[u8],
) -> Result<(), Response<R>> {
    let facts = RequestFacts::from_http(&head.method, &head.uri, &head.headers);
    // Without a session layer no token can match; the rules still decide.
    let detached;
    let session = match head.extensions.get::<Session>() {
        Some(session) => session,
        None => {
            detached = Session::detached();
            &detached
        }
    };
    let result = match policy.decide(&facts, session) {
        CsrfStep::Allow => Ok(()),
        CsrfStep::Refuse(refused) => Err(refused),
        CsrfStep::ReadForm => policy.decide_with_form(session, body),
    };
    result.map_err(|refused| refusal(refused, head.headers.get(ACCEPT).map(HeaderValue::as_bytes)))
}

/// The 403 answer to a refused request: HTML when `accept` names
/// `text/html`, else JSON; never cached.
pub fn refusal<R: From<String>>(refused: CsrfRejection, accept: Option<&[u8]>) -> Response<R> {
    session_core::metrics::refused(403);
    let (content_type, body) = refused.body(accept);
    let mut res = Response::new(R::from(body));
    *res.status_mut() = StatusCode::FORBIDDEN;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The session's CSRF token, masked for this page: put it in a hidden form
/// field named [`TOKEN_FIELD`](session_core::csrf::TOKEN_FIELD). Creates the
/// token on first use (see [`session_core::csrf::token`]).
pub fn csrf_token(session: &Session) -> Result<String, session_core::Error> {
    session_core::csrf::token(session)
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    #[test]
    fn a_form_passes_with_its_token_and_is_refused_without() {
        let session = Session::detached();
        let token = csrf_token(&session).unwrap();
        let head = |site: &str| {
            let mut req = Request::post("/change")
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("sec-fetch-site", site)
                .header(ACCEPT, "text/html")
                .body(())
                .unwrap();
            req.extensions_mut().insert(session.clone());
            req.into_parts().0
        };
        let policy = CsrfPolicy::new();
        let good = format!("a=1&csrf_token={token}");
        assert!(check_csrf::<String>(&policy, &head("same-origin"), good.as_bytes()).is_ok());
        for (site, body) in [
            ("cross-site", good.as_str()),
            ("same-origin", "a=1&csrf_token=forged"),
            ("same-origin", "a=1"),
        ] {
            let res = check_csrf::<String>(&policy, &head(site), body.as_bytes()).unwrap_err();
            assert_eq!(res.status(), StatusCode::FORBIDDEN);
            assert!(res.body().contains("403 Forbidden"), "HTML for a browser");
        }
        let get = Request::get("/").body(()).unwrap().into_parts().0;
        assert!(check_csrf::<String>(&policy, &get, b"").is_ok());
    }
}
