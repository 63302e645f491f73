//! The web app on a hand-written hyper 1.x server: routing by hand, the
//! CSRF check as a function call, and responses.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use session_core::Session;
use session_hyper::{CsrfPolicy, SessionService, check_csrf};
use tokio::net::TcpListener;

use super::pages::{self, FORM_LIMIT, Page, WebApp};
use crate::serve::Limits;

type Body = Full<Bytes>;

fn respond(page: Page) -> Response<Body> {
    let mut res = match page {
        Page::Html { status, body } => {
            let mut res = Response::new(Body::from(body));
            *res.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            res
        }
        Page::Redirect(to) => {
            let mut res = Response::new(Body::default());
            *res.status_mut() = StatusCode::SEE_OTHER;
            res.headers_mut()
                .insert(LOCATION, HeaderValue::from_static(to));
            res
        }
    };
    for (name, value) in pages::HEADERS {
        res.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    res
}

fn status(code: StatusCode) -> Response<Body> {
    let mut res = Response::new(Body::default());
    *res.status_mut() = code;
    res
}

/// A `POST`'s session and body, once past the CSRF check; else the answer.
async fn checked_form(
    policy: &CsrfPolicy,
    req: Request<Incoming>,
) -> Result<(Session, Bytes, Option<String>), Response<Body>> {
    let (head, body) = req.into_parts();
    let body = match Limited::new(body, FORM_LIMIT).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Err(status(StatusCode::PAYLOAD_TOO_LARGE)),
    };
    check_csrf::<String>(policy, &head, &body).map_err(|refused| refused.map(Body::from))?;
    let session = head
        .extensions
        .get::<Session>()
        .cloned()
        .ok_or_else(|| status(StatusCode::INTERNAL_SERVER_ERROR))?;
    let agent = head
        .headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((session, body, agent))
}

async fn route(
    app: WebApp,
    policy: Arc<CsrfPolicy>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        return Ok(status(StatusCode::INTERNAL_SERVER_ERROR));
    };
    let path = req.uri().path().to_owned();
    let wizard_step = path
        .strip_prefix("/wizard/")
        .map(|n| n.parse::<u8>().unwrap_or(0));
    let method = req.method().clone();
    if method != Method::GET && method != Method::HEAD {
        // Every unsafe request passes the CSRF check before any page.
        let (session, body, agent) = match checked_form(&policy, req).await {
            Ok(checked) => checked,
            Err(res) => return Ok(res),
        };
        let page = match (method, path.as_str(), wizard_step) {
            (Method::POST, "/login", _) => pages::login(&session, &body, agent.as_deref()).await,
            (Method::POST, "/logout", _) => pages::logout(&session),
            (Method::POST, "/sessions/end", _) => pages::end_session(&app, &session, &body).await,
            (Method::POST, "/sessions/end-others", _) => pages::end_others(&app, &session).await,
            (Method::POST, "/confirm", _) => pages::confirm(&session, &body).await,
            (Method::POST, "/password", _) => pages::change_password(&app, &session, &body).await,
            (Method::POST, _, Some(step)) => pages::wizard_submit(&session, step, &body),
            _ => pages::not_found(&session),
        };
        return Ok(respond(page));
    }
    let page = match (path.as_str(), wizard_step) {
        ("/", _) => pages::home(&session),
        ("/login", _) => pages::login_form(&session),
        ("/sessions", _) => pages::sessions(&app, &session).await,
        ("/confirm", _) => pages::confirm_form(&session),
        ("/password", _) => pages::password_form(&app, &session),
        (_, Some(step)) => pages::wizard_form(&session, step),
        _ => pages::not_found(&session),
    };
    Ok(respond(page))
}

/// Serves the web app on `listener` until `shutdown` completes, then
/// finishes the requests in flight (see [`serve`](crate::serve::serve)).
pub async fn serve(
    listener: TcpListener,
    app: WebApp,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let manager = app.manager.clone();
    let policy = Arc::new(CsrfPolicy::new());
    let service = SessionService::new(
        service_fn(move |req| route(app.clone(), Arc::clone(&policy), req)),
        manager,
    );
    crate::serve::serve(listener, service, limits, shutdown).await;
}
