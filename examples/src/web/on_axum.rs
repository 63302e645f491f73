//! The web app on axum: routes, the CSRF layer, and responses.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{CONTENT_TYPE, LOCATION, USER_AGENT};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::service::TowerToHyperService;
use session_axum::{CsrfLayer, CsrfPolicy, Session, SessionLayer};
use tokio::net::TcpListener;

use super::pages::{self, FORM_LIMIT, Manager, Page};
use crate::serve::Limits;

fn respond(page: Page) -> Response {
    let mut res = match page {
        Page::Html { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut res = (status, body).into_response();
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            res
        }
        Page::Redirect(to) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
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

fn step(step: &str) -> u8 {
    step.parse().unwrap_or(0)
}

async fn home(session: Session) -> Response {
    respond(pages::home(&session))
}

async fn login_form(session: Session) -> Response {
    respond(pages::login_form(&session))
}

async fn login(
    session: Session,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok());
    respond(pages::login(&session, &body, agent).await)
}

async fn logout(session: Session) -> Response {
    respond(pages::logout(&session))
}

async fn wizard_form(session: Session, Path(n): Path<String>) -> Response {
    respond(pages::wizard_form(&session, step(&n)))
}

async fn wizard_submit(
    session: Session,
    Path(n): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    respond(pages::wizard_submit(&session, step(&n), &body))
}

async fn sessions(State(manager): State<Manager>, session: Session) -> Response {
    respond(pages::sessions(&manager, &session).await)
}

async fn end_others(State(manager): State<Manager>, session: Session) -> Response {
    respond(pages::end_others(&manager, &session).await)
}

async fn not_found(session: Session) -> Response {
    respond(pages::not_found(&session))
}

/// The web app's router with sessions from `manager`. Every unsafe request
/// passes [`CsrfLayer`] (inside the session layer) before any handler.
pub fn router(manager: Manager) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/wizard/{step}", get(wizard_form).post(wizard_submit))
        .route("/sessions", get(sessions))
        .route("/sessions/end-others", post(end_others))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(CsrfLayer::new(CsrfPolicy::new()).with_form_limit(FORM_LIMIT))
        .layer(SessionLayer::new(manager.clone()))
        .with_state(manager)
}

/// Serves the web app on `listener` until `shutdown` completes, then
/// finishes the requests in flight (see [`serve`](crate::serve::serve)).
pub async fn serve(
    listener: TcpListener,
    manager: Manager,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let service = TowerToHyperService::new(router(manager));
    crate::serve::serve(listener, service, limits, shutdown).await;
}
