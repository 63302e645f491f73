//! `FromRequest` extractors: the session, and a guard that requires a live one.

use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::error::{ErrorInternalServerError, InternalError};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse};
use session_core::NO_SESSION_BODY;

/// The request's session. Derefs to [`session_core::Session`], which is
/// `Send + Sync`, so it can move into `spawn`ed work and across `.await`.
///
/// Fails with 500 when the app has no
/// [`SessionMiddleware`](crate::SessionMiddleware): a wiring mistake.
#[derive(Clone, Debug)]
pub struct Session(pub session_core::Session);

impl Deref for Session {
    type Target = session_core::Session;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

fn session_of(req: &HttpRequest) -> Result<session_core::Session, actix_web::Error> {
    req.extensions()
        .get::<session_core::Session>()
        .cloned()
        .ok_or_else(|| {
            ErrorInternalServerError("no session: wrap the app in session_actix::SessionMiddleware")
        })
}

impl FromRequest for Session {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(session_of(req).map(Self))
    }
}

/// A session that was live when the request came in (loaded from the
/// store, not new). Fails with 401 and a JSON body otherwise: the guard for
/// "must be signed in" routes.
#[derive(Clone, Debug)]
pub struct LiveSession(pub session_core::Session);

impl Deref for LiveSession {
    type Target = session_core::Session;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl FromRequest for LiveSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(session_of(req).and_then(|session| {
            if session.is_new() {
                let res = HttpResponse::Unauthorized()
                    .content_type("application/json")
                    .body(NO_SESSION_BODY);
                Err(InternalError::from_response("no live session", res).into())
            } else {
                Ok(Self(session))
            }
        }))
    }
}
