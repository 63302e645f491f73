//! Glue for the `http` 1.x types (feature `http`), shared by every adapter
//! built on them (axum, hyper, any tower stack).

use http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::answer::Answer;
use crate::engine::{ResponseHeaders, SessionHeader};

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const COOKIE_VALUE: HeaderValue = HeaderValue::from_static("cookie");
const CLEAR_SITE_DATA: HeaderName = HeaderName::from_static("clear-site-data");

impl ResponseHeaders {
    /// Appends these headers to a response's header map, by the rules of
    /// [`into_each`](Self::into_each), without copying: fixed headers are
    /// constants and the cookie's text is moved in.
    pub fn apply(self, headers: &mut HeaderMap) {
        self.into_each(
            headers,
            |headers| headers.contains_key(CACHE_CONTROL),
            |headers, header| {
                let (name, value) = match header {
                    SessionHeader::NoStore => (CACHE_CONTROL, NO_STORE),
                    SessionHeader::VaryCookie => (VARY, COOKIE_VALUE),
                    // Built from validated parts (the config checks the
                    // transport's names); a header that is somehow not
                    // valid is dropped rather than sent broken.
                    SessionHeader::SetCookie(text) => match HeaderValue::try_from(text) {
                        Ok(value) => (SET_COOKIE, value),
                        Err(_) => return,
                    },
                    SessionHeader::Id { name, value } => {
                        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                            (Ok(name), Ok(value)) => (name, value),
                            _ => return,
                        }
                    }
                    SessionHeader::Vary(request) => match HeaderValue::try_from(request) {
                        Ok(value) => (VARY, value),
                        Err(_) => return,
                    },
                    SessionHeader::ClearSiteData(directives) => {
                        match HeaderValue::try_from(directives) {
                            Ok(value) => (CLEAR_SITE_DATA, value),
                            Err(_) => return,
                        }
                    }
                };
                headers.append(name, value);
            },
        );
    }
}

/// `response` with the session's headers added (see
/// [`ResponseHeaders::apply`]), for servers that own their responses.
pub fn respond<B>(mut response: Response<B>, headers: ResponseHeaders) -> Response<B> {
    headers.apply(response.headers_mut());
    response
}

/// A response extension that marks a handler's response as its rendering
/// of a store failure it met itself (an adapter's error type inserts it):
/// the session layer then answers with the engine's store-failure answer,
/// the configured status included, instead
/// ([`Shell::handler_store_failure`](crate::driver::Shell::handler_store_failure)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandlerStoreFailure;

/// Whether `response` carries [`HandlerStoreFailure`].
pub fn is_handler_store_failure<B>(response: &Response<B>) -> bool {
    response.extensions().get::<HandlerStoreFailure>().is_some()
}

/// The engine's [`Answer`] as a response: its status and JSON body, with
/// `Content-Type: application/json` and `Cache-Control: no-store`;
/// [`Shell::refuse`](crate::driver::Shell::refuse) and
/// [`Shell::fail`](crate::driver::Shell::fail) for adapters on `http` types.
pub fn failure_response<B: From<&'static str>>(answer: Answer) -> Response<B> {
    let mut res = Response::new(B::from(answer.body()));
    *res.status_mut() =
        StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_appends_what_into_each_names() {
        let headers = ResponseHeaders {
            set_cookie: Some("id=x; Path=/".into()),
            vary_cookie: true,
            transport: None,
            clear_site_data: Some("\"cache\", \"cookies\"".into()),
        };
        for has_cache_control in [false, true] {
            let mut map = HeaderMap::new();
            if has_cache_control {
                map.insert(CACHE_CONTROL, HeaderValue::from_static("private"));
            }
            headers.clone().apply(&mut map);
            let mut expected = Vec::new();
            headers.clone().into_each(
                &mut expected,
                |_| has_cache_control,
                |expected, h| expected.push((h.name().to_owned(), h.value().to_owned())),
            );
            for (name, value) in expected {
                assert!(
                    map.get_all(name.as_str())
                        .iter()
                        .any(|v| v == value.as_str()),
                    "{name}: {value}"
                );
            }
            assert_eq!(map.get_all(CACHE_CONTROL).iter().count(), 1);
        }
    }
}
