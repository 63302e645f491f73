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

use super::pages::{self, FORM_LIMIT, Page, WebApp};
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

async fn sessions(State(app): State<WebApp>, session: Session) -> Response {
    respond(pages::sessions(&app, &session).await)
}

async fn end_session(
    State(app): State<WebApp>,
    session: Session,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    respond(pages::end_session(&app, &session, &body).await)
}

async fn end_others(State(app): State<WebApp>, session: Session) -> Response {
    respond(pages::end_others(&app, &session).await)
}

async fn confirm_form(session: Session) -> Response {
    respond(pages::confirm_form(&session))
}

async fn confirm(session: Session, body: Result<Bytes, BytesRejection>) -> Response {
    let Ok(body) = body else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    respond(pages::confirm(&session, &body).await)
}

async fn password_form(State(app): State<WebApp>, session: Session) -> Response {
    respond(pages::password_form(&app, &session))
}

async fn change_password(
    State(app): State<WebApp>,
    session: Session,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    respond(pages::change_password(&app, &session, &body).await)
}

async fn not_found(session: Session) -> Response {
    respond(pages::not_found(&session))
}

/// The web app's router with sessions from `app`'s engine. Every unsafe
/// request passes [`CsrfLayer`] (inside the session layer) before any
/// handler.
pub fn router(app: WebApp) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/wizard/{step}", get(wizard_form).post(wizard_submit))
        .route("/sessions", get(sessions))
        .route("/sessions/end", post(end_session))
        .route("/sessions/end-others", post(end_others))
        .route("/confirm", get(confirm_form).post(confirm))
        .route("/password", get(password_form).post(change_password))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(CsrfLayer::new(CsrfPolicy::new()).with_form_limit(FORM_LIMIT))
        .layer(SessionLayer::new(app.manager.clone()))
        .with_state(app)
}

/// Serves the web app on `listener` until `shutdown` completes, then
/// finishes the requests in flight (see [`serve`](crate::serve::serve)).
pub async fn serve(
    listener: TcpListener,
    app: WebApp,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let service = TowerToHyperService::new(router(app));
    crate::serve::serve(listener, service, limits, shutdown).await;
}
