//! `Answer`: what the engine answers in place of the handler.

use crate::error::Error;

/// A response the engine gives instead of the handler's: a store that
/// failed, a write over the session's size limit found at commit, an id
/// presented more than once. Framework-neutral: a status and a JSON body
/// that names the kind of failure and no detail of it. Every answer also
/// carries `Content-Type: application/json` and `Cache-Control: no-store`;
/// each adapter turns it into its framework's response in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    status: u16,
    body: &'static str,
}

impl Answer {
    /// An answer with `status` and a JSON `body`.
    pub const fn new(status: u16, body: &'static str) -> Self {
        Self { status, body }
    }

    /// The answer to `error`, with a store failure's status replaced by
    /// `store_error_status` (see
    /// [`store_error_status`](crate::SessionConfig::store_error_status)).
    pub fn of(error: &Error, store_error_status: u16) -> Self {
        let status = match error.status() {
            503 => store_error_status,
            status => status,
        };
        Self::new(status, error.public_body())
    }

    /// The HTTP status.
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// The JSON body.
    pub const fn body(&self) -> &'static str {
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_take_the_configured_status_and_say_nothing_more() {
        let answer = Answer::of(&Error::store("connection refused to 10.0.0.7"), 500);
        assert_eq!(answer.status(), 500);
        assert_eq!(answer.body(), crate::STORE_ERROR_BODY);
        let too_large = Answer::of(&Error::TooLarge { size: 9, limit: 4 }, 500);
        assert_eq!(too_large.status(), 413);
        assert_eq!(too_large.body(), r#"{"error":"session too large"}"#);
    }
}
