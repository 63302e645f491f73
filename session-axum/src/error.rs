//! Session errors as axum responses, so `?` works in handlers.

use std::fmt;

use axum_core::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};

/// A [`session_core::Error`] a handler returns with `?`: it answers with
/// the error's [status](session_core::Error::status) (413 for a session
/// over its size limit; for a store failure the session layer's configured
/// [`store_error_status`](session_core::SessionConfig::store_error_status),
/// 503 by default) and a JSON body that names no detail of the failure.
///
/// ```
/// use session_axum::{Session, SessionError};
///
/// async fn remember(session: Session) -> Result<&'static str, SessionError> {
///     session.insert("theme", "dark")?;
///     Ok("saved")
/// }
/// ```
#[derive(Debug)]
pub struct SessionError(pub session_core::Error);

impl From<session_core::Error> for SessionError {
    fn from(e: session_core::Error) -> Self {
        Self(e)
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, self.0.public_body()).into_response();
        if self.0.status() == 503 {
            // The session layer answers it with the configured status.
            res.extensions_mut()
                .insert(session_core::http::HandlerStoreFailure);
        }
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}
