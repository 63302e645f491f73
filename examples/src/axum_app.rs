//! The example app on axum.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hyper_util::service::TowerToHyperService;
use session_axum::{Session, SessionLayer, SessionManager, UserSession};
use session_core::DynStore;
use tokio::net::TcpListener;

use crate::app::{self, AdminRequest, AdminToken, BODY_LIMIT, Reply};
use crate::observability::{METRICS_CONTENT_TYPE, Observability};
use crate::serve::Limits;

type Manager = SessionManager<DynStore>;

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        reply.body,
    )
        .into_response()
}

/// A `POST` whose body is JSON; anything else is refused with 415 before
/// any other extractor (or the session) is consulted.
struct JsonPost;

impl<St: Send + Sync> FromRequestParts<St> for JsonPost {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        let content_types = parts.headers.get_all(header::CONTENT_TYPE);
        app::require_json(content_types.iter().map(|v| v.as_bytes()))
            .map(|()| JsonPost)
            .map_err(respond)
    }
}

async fn healthz() -> Response {
    respond(app::healthz())
}

async fn login(_: JsonPost, session: Session, body: Result<Bytes, BytesRejection>) -> Response {
    match body {
        Ok(body) => respond(app::login(&session, &body)),
        Err(_) => respond(Reply::too_large()),
    }
}

async fn profile(session: UserSession) -> Response {
    respond(app::profile(&session))
}

async fn update(
    _: JsonPost,
    session: UserSession,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body {
        Ok(body) => respond(app::update(&session, &body)),
        Err(_) => respond(Reply::too_large()),
    }
}

async fn logout(_: JsonPost, session: UserSession) -> Response {
    respond(app::logout(&session))
}

async fn logout_all(_: JsonPost, State(manager): State<Manager>, session: UserSession) -> Response {
    respond(app::logout_all(&manager, &session).await)
}

async fn sessions(State(manager): State<Manager>, session: UserSession) -> Response {
    respond(app::sessions(&manager, &session).await)
}

async fn end_session(
    _: JsonPost,
    State(manager): State<Manager>,
    session: UserSession,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body {
        Ok(body) => respond(app::end_session(&manager, &session, &body).await),
        Err(_) => respond(Reply::too_large()),
    }
}

/// Every `/admin/` path (see [`app::admin`]), outside the session layer:
/// these answers never read the session or set a cookie (not even the
/// removal of a stale one, which the layer sends on other routes).
async fn admin(
    manager: &Manager,
    token: Option<&AdminToken>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return respond(Reply::too_large());
    };
    let values = |name| headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
    let req = AdminRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query(),
        authorization: values(header::AUTHORIZATION),
        content_types: values(header::CONTENT_TYPE),
        body: &body,
    };
    respond(app::admin(manager, token, req).await)
}

/// The `/admin/` routes, answered by [`admin`].
fn admin_routes(token: Option<AdminToken>) -> Router<Manager> {
    let handler = any(
        move |State(manager): State<Manager>,
              method: Method,
              uri: Uri,
              headers: HeaderMap,
              body: Result<Bytes, BytesRejection>| {
            let token = token.clone();
            async move { admin(&manager, token.as_ref(), method, uri, headers, body).await }
        },
    );
    Router::new()
        .route("/admin", handler.clone())
        .route("/admin/{*rest}", handler)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

async fn not_found() -> Response {
    respond(Reply::not_found())
}

/// `GET /metrics` and `GET /readyz` (see [`crate::observability`]).
fn observability_routes(manager: &Manager) -> Router<Manager> {
    let observability = Observability::new(manager);
    let ready = observability.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
                    observability.metrics(),
                )
                    .into_response()
            }),
        )
        .route(
            "/readyz",
            get(move || async move { respond(ready.readyz().await) }),
        )
}

/// The app's router with sessions from `manager`, and the operator's
/// routes when there is an `admin` token.
pub fn router(manager: Manager, admin: Option<AdminToken>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/session/login", post(login))
        .route("/session/profile", get(profile))
        .route("/session/update", post(update))
        .route("/session/logout", post(logout))
        .route("/session/logout-all", post(logout_all))
        .route("/session/sessions", get(sessions))
        .route("/session/sessions/end", post(end_session))
        .merge(observability_routes(&manager))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(SessionLayer::new(manager.clone()))
        // Added after the session layer, so outside it.
        .merge(admin_routes(admin))
        .with_state(manager)
}

/// Serves the app on `listener` until `shutdown` completes, then finishes
/// the requests in flight (see [`serve`](crate::serve::serve)).
pub async fn serve(
    listener: TcpListener,
    manager: Manager,
    admin: Option<AdminToken>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let service = TowerToHyperService::new(router(manager, admin));
    crate::serve::serve(listener, service, limits, shutdown).await;
}
