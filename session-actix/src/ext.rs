//! Reaching the session from anything that carries the request's
//! extensions: guards, `ServiceRequest` in other middleware, `HttpRequest`.

use actix_web::HttpMessage;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{HttpRequest, guard::GuardContext};

/// The request's session, where an extractor cannot reach: in a
/// [guard](actix_web::guard), in another middleware (`ServiceRequest`,
/// `ServiceResponse`), or from an `HttpRequest` by hand.
///
/// `None` when no [`SessionMiddleware`](crate::SessionMiddleware) runs
/// before (middleware registered with `wrap` runs in reverse order: wrap the
/// session middleware last so it runs first).
///
/// ```
/// use actix_web::{App, HttpResponse, guard, web};
/// use session_actix::{MemoryStore, SessionConfig, SessionExt, SessionMiddleware};
///
/// let sessions = SessionMiddleware::with_store(MemoryStore::new(), SessionConfig::default())?;
/// let app = App::new().wrap(sessions).route(
///     "/admin",
///     web::get()
///         .guard(guard::fn_guard(|ctx| {
///             ctx.session().and_then(|s| s.user()).as_deref() == Some("root")
///         }))
///         .to(HttpResponse::Ok),
/// );
/// # let _ = app;
/// # Ok::<(), session_actix::Error>(())
/// ```
pub trait SessionExt {
    /// The request's session (a cheap clone of the shared handle).
    fn session(&self) -> Option<session_core::Session>;
}

impl SessionExt for HttpRequest {
    fn session(&self) -> Option<session_core::Session> {
        self.extensions().get::<session_core::Session>().cloned()
    }
}

impl SessionExt for ServiceRequest {
    fn session(&self) -> Option<session_core::Session> {
        self.extensions().get::<session_core::Session>().cloned()
    }
}

impl<B> SessionExt for ServiceResponse<B> {
    fn session(&self) -> Option<session_core::Session> {
        self.request().session()
    }
}

impl SessionExt for GuardContext<'_> {
    fn session(&self) -> Option<session_core::Session> {
        self.req_data().get::<session_core::Session>().cloned()
    }
}
