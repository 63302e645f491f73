//! Session errors as actix-web responses, so `?` works in handlers.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, ResponseError};

/// A [`session_core::Error`] a handler returns with `?`: it answers with
/// the error's [status](session_core::Error::status) (413 for a session
/// over its size limit; for a store failure the session middleware's
/// configured
/// [`store_error_status`](session_core::SessionConfig::store_error_status),
/// 503 by default) and a JSON body that names no detail of the failure.
///
/// ```
/// use session_actix::{Session, SessionError};
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

impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .insert_header((CONTENT_TYPE, "application/json"))
            .insert_header((CACHE_CONTROL, "no-store"))
            .body(self.0.public_body())
    }
}

/// The engine's [`Answer`](session_core::Answer) when the session store
/// fails around a request (its load before the handler, or its commit
/// after), or refuses the commit (the size limit): its status (for a store
/// failure, the configured one, 503 by default) and JSON body, with
/// `Cache-Control: no-store`. The middleware returns it as an error, which
/// actix-web renders as that response.
#[derive(Debug)]
pub(crate) struct StoreFailure(pub(crate) session_core::Answer);

impl StoreFailure {
    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
    }
}

impl fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.body())
    }
}

impl ResponseError for StoreFailure {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status())
            .insert_header((CONTENT_TYPE, "application/json"))
            .insert_header((CACHE_CONTROL, "no-store"))
            .body(self.0.body())
    }
}
