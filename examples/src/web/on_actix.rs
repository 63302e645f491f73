//! The web app on actix-web: routes, the CSRF extractors, and responses.

use actix_web::http::StatusCode;
use actix_web::http::header::{LOCATION, USER_AGENT};
use actix_web::{HttpRequest, HttpResponse, web};
use session_actix::{CsrfForm, CsrfPolicy, Session};

use super::pages::{self, FORM_LIMIT, Page, WebApp};
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

async fn sessions(app: web::Data<WebApp>, session: Session) -> HttpResponse {
    respond(pages::sessions(&app, &session).await)
}

async fn end_session(app: web::Data<WebApp>, session: Session, form: CsrfForm) -> HttpResponse {
    respond(pages::end_session(&app, &session, &form.0).await)
}

async fn end_others(app: web::Data<WebApp>, session: Session, _: CsrfForm) -> HttpResponse {
    respond(pages::end_others(&app, &session).await)
}

async fn confirm_form(session: Session) -> HttpResponse {
    respond(pages::confirm_form(&session))
}

async fn confirm(session: Session, form: CsrfForm) -> HttpResponse {
    respond(pages::confirm(&session, &form.0).await)
}

async fn password_form(app: web::Data<WebApp>, session: Session) -> HttpResponse {
    respond(pages::password_form(&app, &session))
}

async fn change_password(app: web::Data<WebApp>, session: Session, form: CsrfForm) -> HttpResponse {
    respond(pages::change_password(&app, &session, &form.0).await)
}

async fn not_found(session: Session) -> HttpResponse {
    respond(pages::not_found(&session))
}

/// Adds the web app's routes to an actix config (the session middleware,
/// on `app`'s engine, wraps them). Every `POST` handler takes [`CsrfForm`],
/// the body that passed the CSRF check.
pub fn configure(app: WebApp) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(web::Data::new(app.clone()))
            .app_data(CsrfPolicy::new())
            .app_data(web::PayloadConfig::new(FORM_LIMIT))
            .route("/", web::get().to(home))
            .route("/login", web::get().to(login_form))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
            .route("/wizard/{step}", web::get().to(wizard_form))
            .route("/wizard/{step}", web::post().to(wizard_submit))
            .route("/sessions", web::get().to(sessions))
            .route("/sessions/end", web::post().to(end_session))
            .route("/sessions/end-others", web::post().to(end_others))
            .route("/confirm", web::get().to(confirm_form))
            .route("/confirm", web::post().to(confirm))
            .route("/password", web::get().to(password_form))
            .route("/password", web::post().to(change_password))
            .default_service(web::to(not_found));
    }
}

/// The app's actix server on `listener` (see
/// [`actix_server`](crate::serve::actix_server)).
pub fn server(
    listener: std::net::TcpListener,
    app: WebApp,
    workers: usize,
    limits: Limits,
) -> std::io::Result<actix_web::dev::Server> {
    let manager = app.manager.clone();
    crate::serve::actix_server(listener, manager, configure(app), workers, limits)
}
