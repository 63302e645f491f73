//! The web app on actix-web: routes, the CSRF extractors, and responses.

use actix_web::http::StatusCode;
use actix_web::http::header::{LOCATION, USER_AGENT};
use actix_web::{HttpRequest, HttpResponse, web};
use session_actix::{CsrfForm, CsrfPolicy, Session};

use super::pages::{self, FORM_LIMIT, Manager, Page};
use crate::serve::Limits;

fn respond(page: Page) -> HttpResponse {
    let mut res = match page {
        Page::Html { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(body)
        }
        Page::Redirect(to) => HttpResponse::SeeOther()
            .insert_header((LOCATION, to))
            .finish(),
    };
    for (name, value) in pages::HEADERS {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static(name),
            actix_web::http::header::HeaderValue::from_static(value),
        );
    }
    res
}

fn step(step: &str) -> u8 {
    step.parse().unwrap_or(0)
}

async fn home(session: Session) -> HttpResponse {
    respond(pages::home(&session))
}

async fn login_form(session: Session) -> HttpResponse {
    respond(pages::login_form(&session))
}

async fn login(session: Session, form: CsrfForm, req: HttpRequest) -> HttpResponse {
    let agent = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok());
    respond(pages::login(&session, &form.0, agent).await)
}

async fn logout(session: Session, _: CsrfForm) -> HttpResponse {
    respond(pages::logout(&session))
}

async fn wizard_form(session: Session, n: web::Path<String>) -> HttpResponse {
    respond(pages::wizard_form(&session, step(&n)))
}

async fn wizard_submit(session: Session, n: web::Path<String>, form: CsrfForm) -> HttpResponse {
    respond(pages::wizard_submit(&session, step(&n), &form.0))
}

async fn sessions(manager: web::Data<Manager>, session: Session) -> HttpResponse {
    respond(pages::sessions(&manager, &session).await)
}

async fn end_others(manager: web::Data<Manager>, session: Session, _: CsrfForm) -> HttpResponse {
    respond(pages::end_others(&manager, &session).await)
}

async fn not_found(session: Session) -> HttpResponse {
    respond(pages::not_found(&session))
}

/// Adds the web app's routes, with sessions from `manager`, to an actix
/// config. Every `POST` handler takes [`CsrfForm`], the body that passed the
/// CSRF check.
pub fn configure(manager: Manager) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(web::Data::new(manager.clone()))
            .app_data(CsrfPolicy::new())
            .app_data(web::PayloadConfig::new(FORM_LIMIT))
            .route("/", web::get().to(home))
            .route("/login", web::get().to(login_form))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
            .route("/wizard/{step}", web::get().to(wizard_form))
            .route("/wizard/{step}", web::post().to(wizard_submit))
            .route("/sessions", web::get().to(sessions))
            .route("/sessions/end-others", web::post().to(end_others))
            .default_service(web::to(not_found));
    }
}

/// The app's actix server on `listener` (see
/// [`actix_server`](crate::serve::actix_server)).
pub fn server(
    listener: std::net::TcpListener,
    manager: Manager,
    workers: usize,
    limits: Limits,
) -> std::io::Result<actix_web::dev::Server> {
    let routes = configure(manager.clone());
    crate::serve::actix_server(listener, manager, routes, workers, limits)
}
