//! Glue for the `http` 1.x types (feature `http`), shared by every adapter
//! built on them (axum, hyper, any tower stack).

use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue};

use crate::cookie_policy::Presented;
use crate::engine::{ResponseHeaders, SessionManager};
use crate::store::SessionStore;

impl<S: SessionStore> SessionManager<S> {
    /// [`read_cookies`](Self::read_cookies) on a request's header map.
    pub fn read_request_cookies(&self, headers: &HeaderMap) -> Presented {
        self.read_cookies(headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes))
    }
}

impl ResponseHeaders {
    /// Appends these headers to a response's header map, by the rules of
    /// [`for_each`](Self::for_each), without copying: the cookie's text is
    /// moved in, the fixed values are static.
    pub fn apply(self, headers: &mut HeaderMap) {
        if let Some(cookie) = self.set_cookie {
            if !headers.contains_key(CACHE_CONTROL) {
                headers.append(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            // Cookie text is built from validated parts; a value that is
            // somehow not a valid header is dropped rather than sent broken.
            if let Ok(value) = HeaderValue::try_from(cookie) {
                headers.append(SET_COOKIE, value);
            }
        }
        if self.vary_cookie {
            headers.append(VARY, HeaderValue::from_static("cookie"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_appends_what_for_each_names() {
        let headers = ResponseHeaders {
            set_cookie: Some("id=x; Path=/".into()),
            vary_cookie: true,
        };
        for has_cache_control in [false, true] {
            let mut map = HeaderMap::new();
            if has_cache_control {
                map.insert(CACHE_CONTROL, HeaderValue::from_static("private"));
            }
            headers.clone().apply(&mut map);
            let mut expected = Vec::new();
            headers.for_each(has_cache_control, |n, v| {
                expected.push((n.to_owned(), v.to_owned()))
            });
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
