//! The example app on actix-web.

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use session_actix::{LiveSession, Session, SessionManager, SessionMiddleware};
use session_core::DynStore;

use crate::app::{self, BODY_LIMIT, Reply};

type Manager = SessionManager<DynStore>;

fn respond(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type("application/json")
        .body(reply.body)
}

async fn healthz() -> HttpResponse {
    respond(app::healthz())
}

async fn login(session: Session, body: Result<web::Bytes, actix_web::Error>) -> HttpResponse {
    match body {
        Ok(body) => respond(app::login(&session, &body)),
        Err(_) => respond(Reply::too_large()),
    }
}

async fn profile(session: LiveSession) -> HttpResponse {
    respond(app::profile(&session))
}

async fn update(session: LiveSession, body: Result<web::Bytes, actix_web::Error>) -> HttpResponse {
    match body {
        Ok(body) => respond(app::update(&session, &body)),
        Err(_) => respond(Reply::too_large()),
    }
}

async fn logout(session: LiveSession) -> HttpResponse {
    respond(app::logout(&session))
}

async fn logout_all(manager: web::Data<Manager>, session: LiveSession) -> HttpResponse {
    respond(app::logout_all(&manager, &session).await)
}

async fn not_found() -> HttpResponse {
    respond(Reply::not_found())
}

/// Adds the app's routes, with sessions from `manager`, to an actix config.
pub fn configure(manager: Manager) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(web::Data::new(manager.clone()))
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .route("/healthz", web::get().to(healthz))
            .route("/session/login", web::post().to(login))
            .route("/session/profile", web::get().to(profile))
            .route("/session/update", web::post().to(update))
            .route("/session/logout", web::post().to(logout))
            .route("/session/logout-all", web::post().to(logout_all))
            .default_service(web::to(not_found));
    }
}

/// An actix server for the app on `listener`. Run it inside an actix
/// system (`#[actix_web::main]` or `actix_web::rt::System`).
pub fn server(
    listener: std::net::TcpListener,
    manager: Manager,
    workers: usize,
) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        App::new()
            .wrap(SessionMiddleware::new(manager.clone()))
            .configure(configure(manager.clone()))
    })
    .workers(workers)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
