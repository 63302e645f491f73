//! Glue for the `http` 1.x types (feature `http`), shared by every adapter
//! built on them (axum, hyper, any tower stack).

use std::borrow::Cow;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::engine::{ResponseHeaders, STORE_ERROR_BODY};

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const COOKIE_VALUE: HeaderValue = HeaderValue::from_static("cookie");

impl ResponseHeaders {
    /// Appends these headers to a response's header map, by the rules of
    /// [`into_each`](Self::into_each), without copying: fixed values are
    /// static and the cookie's text is moved in.
    pub fn apply(self, headers: &mut HeaderMap) {
        self.into_each(
            headers,
            |headers| headers.contains_key(CACHE_CONTROL),
            |headers, name, value| {
                let name = match name {
                    "set-cookie" => SET_COOKIE,
                    "cache-control" => CACHE_CONTROL,
                    "vary" => VARY,
                    // A header transport's name, checked by the config.
                    other => match HeaderName::from_bytes(other.as_bytes()) {
                        Ok(name) => name,
                        Err(_) => return,
                    },
                };
                let value = match value {
                    // The fixed values, validated at compile time.
                    Cow::Borrowed("no-store") => NO_STORE,
                    Cow::Borrowed("cookie") => COOKIE_VALUE,
                    Cow::Borrowed(text) => HeaderValue::from_static(text),
                    // Built from validated parts; a value that is somehow
                    // not a valid header is dropped rather than sent broken.
                    Cow::Owned(text) => match HeaderValue::try_from(text) {
                        Ok(value) => value,
                        Err(_) => return,
                    },
                };
                headers.append(name, value);
            },
        );
    }
}

/// `response` with the session's headers added (see
/// [`ResponseHeaders::apply`]): [`Shell::respond`](crate::driver::Shell::respond)
/// for adapters on `http` types.
pub fn respond<B>(mut response: Response<B>, headers: ResponseHeaders) -> Response<B> {
    headers.apply(response.headers_mut());
    response
}

/// The answer to a store failure: `status` with [`STORE_ERROR_BODY`] as
/// JSON and `Cache-Control: no-store`; [`Shell::refuse`](crate::driver::Shell::refuse)
/// and [`Shell::fail`](crate::driver::Shell::fail) for adapters on `http`
/// types.
pub fn failure_response<B: From<&'static str>>(status: u16) -> Response<B> {
    let mut res = Response::new(B::from(STORE_ERROR_BODY));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
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
                |expected, n, v| expected.push((n.to_owned(), v.into_owned())),
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
