//! `FromRequest` extractors: the session, and guards that require a loaded
//! session or a signed-in one.

use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::error::{ErrorInternalServerError, InternalError};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse};
use session_core::{NO_SESSION_BODY, Requirement};

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

/// A session loaded from the store (the visitor has a live session, signed
/// in or not). Fails with 401 and a JSON body otherwise: the guard for
/// routes that need an existing session, such as a cart or a wizard.
#[derive(Clone, Debug)]
pub struct LoadedSession(pub session_core::Session);

/// A loaded session that belongs to a user (`Session::set_user`): the
/// visitor is signed in. Fails with 401 and a JSON body otherwise: the
/// guard for "must be signed in" routes.
#[derive(Clone, Debug)]
pub struct UserSession(pub session_core::Session);

/// The request's session if it meets `requirement`, else the 401.
fn guarded(
    req: &HttpRequest,
    requirement: Requirement,
) -> Result<session_core::Session, actix_web::Error> {
    let session = session_of(req)?;
    if requirement.is_met_by(&session) {
        Ok(session)
    } else {
        session_core::metrics::refused(401);
        let res = HttpResponse::Unauthorized()
            .content_type("application/json")
            .body(NO_SESSION_BODY);
        Err(InternalError::from_response("no live session", res).into())
    }
}

macro_rules! guard {
    ($guard:ident, $requirement:expr) => {
        impl Deref for $guard {
            type Target = session_core::Session;

            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl FromRequest for $guard {
            type Error = actix_web::Error;
            type Future = Ready<Result<Self, Self::Error>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                ready(guarded(req, $requirement).map(Self))
            }
        }
    };
}

guard!(LoadedSession, Requirement::Loaded);
guard!(UserSession, Requirement::User);
