//! The example app on a hand-written hyper 1.x server.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::{Service as _, service_fn};
use session_core::DynStore;
use session_hyper::{RequestSessionExt, SessionManager, SessionService};
use tokio::net::TcpListener;

use crate::app::{self, AdminRequest, AdminToken, BODY_LIMIT, Reply};
use crate::observability::{METRICS_CONTENT_TYPE, Observability};
use crate::serve::Limits;

type Manager = SessionManager<DynStore>;
type Body = Full<Bytes>;

fn respond(reply: Reply) -> Response<Body> {
    let mut res = Response::new(Body::from(reply.body));
    *res.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

async fn route(
    manager: Manager,
    observability: Observability,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if let Some(res) = observability_route(&observability, &req).await {
        return Ok(res);
    }
    let live = |req: &Request<Incoming>| req.user_session().cloned();
    if req.method() == Method::POST {
        let content_types = req.headers().get_all(header::CONTENT_TYPE);
        if let Err(reply) = app::require_json(content_types.iter().map(|v| v.as_bytes())) {
            return Ok(respond(reply));
        }
    }
    let reply = match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => app::healthz(),
        (&Method::POST, "/session/login") => {
            let session = req
                .session()
                .cloned()
                .expect("SessionService wraps the app");
            match read_body(req).await {
                Ok(body) => app::login(&session, &body),
                Err(res) => return Ok(res),
            }
        }
        (&Method::GET, "/session/profile") => match live(&req) {
            Ok(session) => app::profile(&session),
            Err(no_session) => return Ok(no_session.into_response()),
        },
        (&Method::POST, "/session/update") => match live(&req) {
            Ok(session) => match read_body(req).await {
                Ok(body) => app::update(&session, &body),
                Err(res) => return Ok(res),
            },
            Err(no_session) => return Ok(no_session.into_response()),
        },
        (&Method::POST, "/session/logout") => match live(&req) {
            Ok(session) => app::logout(&session),
            Err(no_session) => return Ok(no_session.into_response()),
        },
        (&Method::POST, "/session/logout-all") => match live(&req) {
            Ok(session) => app::logout_all(&manager, &session).await,
            Err(no_session) => return Ok(no_session.into_response()),
        },
        (&Method::GET, "/session/sessions") => match live(&req) {
            Ok(session) => app::sessions(&manager, &session).await,
            Err(no_session) => return Ok(no_session.into_response()),
        },
        (&Method::POST, "/session/sessions/end") => match live(&req) {
            Ok(session) => match read_body(req).await {
                Ok(body) => app::end_session(&manager, &session, &body).await,
                Err(res) => return Ok(res),
            },
            Err(no_session) => return Ok(no_session.into_response()),
        },
        _ => Reply::not_found(),
    };
    Ok(respond(reply))
}

/// `GET /metrics` and `GET /readyz` (see [`crate::observability`]); `None`
/// for any other request.
async fn observability_route(
    observability: &Observability,
    req: &Request<Incoming>,
) -> Option<Response<Body>> {
    if req.method() != Method::GET {
        return None;
    }
    match req.uri().path() {
        "/metrics" => {
            let mut res = Response::new(Body::from(observability.metrics()));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static(METRICS_CONTENT_TYPE),
            );
            Some(res)
        }
        "/readyz" => Some(respond(observability.readyz().await)),
        _ => None,
    }
}

/// Every `/admin/` path (see [`app::admin`]), answered before the session
/// service: these answers never read the session or set a cookie (not even
/// the removal of a stale one, which the service sends on other routes).
async fn admin(
    manager: &Manager,
    token: Option<&AdminToken>,
    req: Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = if parts.method == Method::GET || token.is_none() {
        Bytes::new()
    } else {
        match Limited::new(body, BODY_LIMIT).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return respond(Reply::too_large()),
        }
    };
    let values = |name| {
        parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes())
            .collect()
    };
    let req = AdminRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        authorization: values(header::AUTHORIZATION),
        content_types: values(header::CONTENT_TYPE),
        body: &body,
    };
    respond(app::admin(manager, token, req).await)
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    match Limited::new(req.into_body(), BODY_LIMIT).collect().await {
        Ok(body) => Ok(body.to_bytes()),
        Err(_) => Err(respond(Reply::too_large())),
    }
}

/// Serves the app on `listener`, one task per connection, until `shutdown`
/// completes, then finishes the requests in flight (see
/// [`serve`](crate::serve::serve)).
pub async fn serve(
    listener: TcpListener,
    manager: Manager,
    admin: Option<AdminToken>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let app_manager = manager.clone();
    let observability = Observability::new(&manager);
    let sessions = Arc::new(SessionService::new(
        service_fn(move |req| route(app_manager.clone(), observability.clone(), req)),
        manager.clone(),
    ));
    let service = service_fn(move |req: Request<Incoming>| {
        let (sessions, manager, admin_token) = (sessions.clone(), manager.clone(), admin.clone());
        async move {
            if app::is_admin_path(req.uri().path()) {
                return Ok(self::admin(&manager, admin_token.as_ref(), req).await);
            }
            sessions.call(req).await
        }
    });
    crate::serve::serve(listener, service, limits, shutdown).await;
}
