//! The example app on actix-web.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use session_actix::{Session, SessionManager, UserSession};
use session_core::DynStore;

use crate::app::{self, AdminRequest, AdminToken, BODY_LIMIT, Reply};
use crate::observability::{METRICS_CONTENT_TYPE, Observability};
use crate::serve::Limits;

type Manager = SessionManager<DynStore>;

fn respond(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type("application/json")
        .body(reply.body)
}

/// A `POST` whose body is JSON; anything else is refused with 415 before
/// any other extractor (or the session) is consulted.
struct JsonPost;

impl FromRequest for JsonPost {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let content_types = req.headers().get_all(header::CONTENT_TYPE);
        ready(
            app::require_json(content_types.map(|v| v.as_bytes()))
                .map(|()| JsonPost)
                .map_err(|reply| InternalError::from_response("not JSON", respond(reply)).into()),
        )
    }
}

async fn healthz() -> HttpResponse {
    respond(app::healthz())
}

async fn login(
    _: JsonPost,
    session: Session,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    match body {
        Ok(body) => respond(app::login(&session, &body)),
        Err(_) => respond(Reply::too_large()),
    }
}

async fn profile(session: UserSession) -> HttpResponse {
    respond(app::profile(&session))
}

async fn update(
    _: JsonPost,
    session: UserSession,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    match body {
        Ok(body) => respond(app::update(&session, &body)),
        Err(_) => respond(Reply::too_large()),
    }
}

async fn logout(_: JsonPost, session: UserSession) -> HttpResponse {
    respond(app::logout(&session))
}

async fn logout_all(
    _: JsonPost,
    manager: web::Data<Manager>,
    session: UserSession,
) -> HttpResponse {
    respond(app::logout_all(&manager, &session).await)
}

async fn sessions(manager: web::Data<Manager>, session: UserSession) -> HttpResponse {
    respond(app::sessions(&manager, &session).await)
}

async fn end_session(
    _: JsonPost,
    manager: web::Data<Manager>,
    session: UserSession,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    match body {
        Ok(body) => respond(app::end_session(&manager, &session, &body).await),
        Err(_) => respond(Reply::too_large()),
    }
}

/// Every `/admin/` path (see [`app::admin`]), outside the session
/// middleware: these answers never read the session or set a cookie (not
/// even the removal of a stale one, which the middleware sends on other
/// routes).
async fn admin(
    req: HttpRequest,
    manager: web::Data<Manager>,
    token: web::Data<Option<AdminToken>>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let Ok(body) = body else {
        return respond(Reply::too_large());
    };
    let values = |name| {
        req.headers()
            .get_all(name)
            .map(|v| v.as_bytes())
            .collect::<Vec<_>>()
    };
    let admin_req = AdminRequest {
        method: req.method().as_str(),
        path: req.path(),
        query: Some(req.query_string()).filter(|q| !q.is_empty()),
        authorization: values(header::AUTHORIZATION),
        content_types: values(header::CONTENT_TYPE),
        body: &body,
    };
    respond(app::admin(&manager, token.as_ref().as_ref(), admin_req).await)
}

async fn not_found() -> HttpResponse {
    respond(Reply::not_found())
}

/// `GET /metrics` (see [`crate::observability`]).
async fn metrics(observability: web::Data<Observability>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(METRICS_CONTENT_TYPE)
        .body(observability.metrics())
}

/// `GET /readyz` (see [`crate::observability`]).
async fn readyz(observability: web::Data<Observability>) -> HttpResponse {
    respond(observability.readyz().await)
}

/// The `/admin/` routes (answered by [`app::admin`]; 404 without an `admin`
/// token), for the part of the app outside the session middleware.
pub fn admin_routes(
    manager: Manager,
    admin: Option<AdminToken>,
) -> impl Fn(&mut web::ServiceConfig) + Clone {
    let manager = web::Data::new(manager);
    let admin_token = web::Data::new(admin);
    move |cfg| {
        cfg.service(
            web::scope("/admin")
                .app_data(manager.clone())
                .app_data(admin_token.clone())
                .app_data(web::PayloadConfig::new(BODY_LIMIT))
                .default_service(web::to(self::admin)),
        );
    }
}

/// Adds the app's routes, with sessions from `manager`, to an actix config.
pub fn configure(manager: Manager) -> impl Fn(&mut web::ServiceConfig) + Clone {
    let observability = web::Data::new(Observability::new(&manager));
    move |cfg| {
        cfg.app_data(observability.clone())
            .route("/metrics", web::get().to(metrics))
            .route("/readyz", web::get().to(readyz));
        cfg.app_data(web::Data::new(manager.clone()))
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .route("/healthz", web::get().to(healthz))
            .route("/session/login", web::post().to(login))
            .route("/session/profile", web::get().to(profile))
            .route("/session/update", web::post().to(update))
            .route("/session/logout", web::post().to(logout))
            .route("/session/logout-all", web::post().to(logout_all))
            .route("/session/sessions", web::get().to(sessions))
            .route("/session/sessions/end", web::post().to(end_session))
            .default_service(web::to(not_found));
    }
}

/// The app's actix server on `listener` (see
/// [`actix_server`](crate::serve::actix_server)).
pub fn server(
    listener: std::net::TcpListener,
    manager: Manager,
    admin: Option<AdminToken>,
    workers: usize,
    limits: Limits,
) -> std::io::Result<actix_web::dev::Server> {
    let plain = admin_routes(manager.clone(), admin);
    let routes = configure(manager.clone());
    crate::serve::actix_server_with(listener, manager, plain, routes, workers, limits)
}
