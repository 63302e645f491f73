//! Extractors: the session, and guards that require a loaded session or a
//! signed-in one.

use std::fmt;
use std::ops::Deref;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use session_core::{NO_SESSION_BODY, Requirement};

/// The request's session. Derefs to [`session_core::Session`].
///
/// Rejects with 500 [`MissingSessionLayer`] when the router has no
/// [`SessionLayer`](crate::SessionLayer): a wiring mistake, not a visitor's.
#[derive(Clone, Debug)]
pub struct Session(pub session_core::Session);

impl Deref for Session {
    type Target = session_core::Session;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<St: Send + Sync> FromRequestParts<St> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<session_core::Session>()
            .cloned()
            .map(Self)
            .ok_or(MissingSessionLayer)
    }
}

/// A session loaded from the store (the visitor has a live session, signed
/// in or not). Rejects with 401 [`NoLiveSession`] otherwise: the guard for
/// routes that need an existing session, such as a cart or a wizard.
#[derive(Clone, Debug)]
pub struct LoadedSession(pub session_core::Session);

/// A loaded session that belongs to a user (`Session::set_user`): the
/// visitor is signed in. Rejects with 401 [`NoLiveSession`] otherwise: the
/// guard for "must be signed in" routes.
#[derive(Clone, Debug)]
pub struct UserSession(pub session_core::Session);

/// The request's session if it meets `requirement`, else the 401.
async fn guarded<St: Send + Sync>(
    parts: &mut Parts,
    state: &St,
    requirement: Requirement,
) -> Result<session_core::Session, Response> {
    let Session(session) = Session::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    if requirement.is_met_by(&session) {
        Ok(session)
    } else {
        Err(NoLiveSession.into_response())
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

        impl<St: Send + Sync> FromRequestParts<St> for $guard {
            type Rejection = Response;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &St,
            ) -> Result<Self, Self::Rejection> {
                guarded(parts, state, $requirement).await.map(Self)
            }
        }
    };
}

guard!(LoadedSession, Requirement::Loaded);
guard!(UserSession, Requirement::User);

/// The rejection when no [`SessionLayer`](crate::SessionLayer) is installed.
#[derive(Clone, Copy, Debug)]
pub struct MissingSessionLayer;

impl fmt::Display for MissingSessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no session: add session_axum::SessionLayer to the router")
    }
}

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// The rejection of [`LoadedSession`] and [`UserSession`]: 401 with a JSON
/// body.
#[derive(Clone, Copy, Debug)]
pub struct NoLiveSession;

impl IntoResponse for NoLiveSession {
    fn into_response(self) -> Response {
        session_core::metrics::refused(401);
        let mut res = (StatusCode::UNAUTHORIZED, NO_SESSION_BODY).into_response();
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    }
}
