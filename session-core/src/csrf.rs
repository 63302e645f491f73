//! CSRF protection, decided once for every adapter.
//!
//! Two defences, usable together (forms) or the first alone (JSON APIs):
//!
//! 1. **Same-site check** ([`CsrfPolicy::check_origin`]). An unsafe request
//!    (any method but `GET`, `HEAD`, `OPTIONS` and `TRACE`) is refused when
//!    the browser says it is cross-site (`Sec-Fetch-Site: cross-site`) or,
//!    for browsers that send no Fetch Metadata, when its `Origin` is not the
//!    origin the request was sent to (its `Host`) nor a trusted origin.
//!    `same-origin`, `same-site` and `none` (typed in, bookmarks) pass.
//!    A request with neither header passes: it does not come from a browser
//!    that CSRF could abuse (every current browser sends `Origin` on unsafe
//!    requests), and the token check below still applies to it.
//! 2. **Synchronizer token** ([`token`], [`CsrfPolicy::check`]). Each session
//!    has a secret token, 128 bits from the operating system's CSPRNG like
//!    session ids. Pages put it in their forms (field [`TOKEN_FIELD`]) or
//!    scripts send it in the [`TOKEN_HEADER`] header; an unsafe request
//!    without the session's token is refused.
//!
//! # Where the token lives, and why
//!
//! In the session itself, as the reserved value [`TOKEN_KEY`], created the
//! first time a page asks for it. So an anonymous visitor's login form gets
//! a token too (the session that holds it is the one the login then
//! renews): that is what stops login CSRF, which a token that only signed-in
//! sessions had could not. It costs a stored session for each visitor who
//! is shown a form. A token derived from the id (an HMAC of it) would cost
//! no storage, but it needs a server secret the configuration may not have,
//! and a new or renewed session's id is only drawn at commit, after the
//! page that carries the next token is rendered. A stored token has neither
//! problem, and travels with the session through every store.
//!
//! Tokens and masks come straight from the operating system's CSPRNG (the
//! [`Session`] handle does not carry the engine's
//! [`RandomSource`](crate::RandomSource)); tests compare them through
//! [`verify`], never by value.
//!
//! The token is rotated whenever the session's id is
//! ([`Session::renew`], and every login through [`Session::set_user`]):
//! the old value is dropped and the next page gets a new one. Ending the
//! session ([`Session::destroy`]) drops it with everything else.
//!
//! Each call of [`token`] returns the token masked with fresh random bytes
//! (`pad ‖ pad⊕token`), so no two pages carry the same text and a
//! compression side channel (BREACH) cannot recover it byte by byte. The
//! check unmasks and compares in constant time.

use std::fmt;

use subtle::ConstantTimeEq;

use crate::error::Error;
use crate::id::SessionId;
use crate::session::Session;

/// The session key the token is stored under (reserved: do not write it).
pub const TOKEN_KEY: &str = "_csrf.token";

/// The request header a script sends the token in.
pub const TOKEN_HEADER: &str = "x-csrf-token";

/// The form field the token travels in by default.
pub const TOKEN_FIELD: &str = "csrf_token";

/// Bytes of a raw token (128 bits).
const RAW_LEN: usize = 16;
/// Characters of a raw token's text (the session id codec's).
const RAW_TEXT_LEN: usize = 22;

/// The session's CSRF token, masked afresh for this page: put it in a
/// hidden form field named [`TOKEN_FIELD`] (or send it as [`TOKEN_HEADER`]).
///
/// The first call in a session creates the token and stores it in the
/// session (so a visitor shown a form gets a session). Fails only if the
/// session refuses the write.
pub fn token(session: &Session) -> Result<String, Error> {
    let raw = match stored(session) {
        Some(raw) => raw,
        None => {
            let raw = *SessionId::generate().as_bytes();
            session.insert(TOKEN_KEY, SessionId::from_bytes(raw).encode().as_str())?;
            raw
        }
    };
    Ok(mask(raw, *SessionId::generate().as_bytes()))
}

/// Drops the session's token, so the next page gets a new one. The session
/// calls this whenever its id changes.
pub(crate) fn rotate(session: &Session) {
    if session.contains_key(TOKEN_KEY) {
        session.remove(TOKEN_KEY);
    }
}

/// The session's raw token, if it has a well-formed one.
fn stored(session: &Session) -> Option<[u8; RAW_LEN]> {
    let text: String = session.get(TOKEN_KEY).ok().flatten()?;
    SessionId::parse(text.as_bytes()).map(|id| *id.as_bytes())
}

fn mask(raw: [u8; RAW_LEN], pad: [u8; RAW_LEN]) -> String {
    let masked: [u8; RAW_LEN] = std::array::from_fn(|i| raw[i] ^ pad[i]);
    let mut out = String::with_capacity(2 * RAW_TEXT_LEN);
    out.push_str(SessionId::from_bytes(pad).encode().as_str());
    out.push_str(SessionId::from_bytes(masked).encode().as_str());
    out
}

/// The raw token inside a presented (masked) one; `None` if malformed.
fn unmask(presented: &[u8]) -> Option<[u8; RAW_LEN]> {
    if presented.len() != 2 * RAW_TEXT_LEN {
        return None;
    }
    let (pad, masked) = presented.split_at(RAW_TEXT_LEN);
    let pad = SessionId::parse(pad)?;
    let masked = SessionId::parse(masked)?;
    let (pad, masked) = (pad.as_bytes(), masked.as_bytes());
    Some(std::array::from_fn(|i| pad[i] ^ masked[i]))
}

/// Whether `presented` is this session's token, compared in constant time.
pub fn verify(session: &Session, presented: &[u8]) -> bool {
    match (stored(session), unmask(presented)) {
        (Some(expected), Some(got)) => bool::from(expected.ct_eq(&got)),
        _ => false,
    }
}

/// Whether a method may change nothing, so needs no check (`GET`, `HEAD`,
/// `OPTIONS`, `TRACE`). Everything else, `POST`, `PUT`, `PATCH`, `DELETE`
/// and any extension method, is unsafe.
pub fn is_safe_method(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE")
}

/// Whether a `Content-Type` is an HTML form's default encoding
/// (`application/x-www-form-urlencoded`, parameters allowed), the only one
/// whose body the check reads a token from.
pub fn is_urlencoded_form(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    essence.eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
}

/// The first value of field `name` in an `application/x-www-form-urlencoded`
/// body, decoded (`+` is a space, `%XX` a byte). `None` when absent or not
/// UTF-8.
pub fn form_value(body: &[u8], name: &str) -> Option<String> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        (percent_decode(key)? == name.as_bytes())
            .then(|| String::from_utf8(percent_decode(value)?).ok())
            .flatten()
    })
}

fn percent_decode(text: &[u8]) -> Option<Vec<u8>> {
    fn hex(b: u8) -> Option<u8> {
        char::from(b).to_digit(16).map(|d| d as u8)
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex(*text.get(i + 1)?)?;
                let lo = hex(*text.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

/// What the check needs to know of a request: its method and a few header
/// values, as bytes. Adapters fill it from their request type (on `http`
/// 1.x: `from_http`, with the feature `http`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestFacts<'a> {
    /// The method, e.g. `b"POST"`.
    pub method: &'a [u8],
    /// The `Host` header (or the request target's authority): the origin
    /// the request was sent to, without its scheme.
    pub host: Option<&'a [u8]>,
    /// The `Origin` header.
    pub origin: Option<&'a [u8]>,
    /// The `Sec-Fetch-Site` header.
    pub sec_fetch_site: Option<&'a [u8]>,
    /// The [`TOKEN_HEADER`] header.
    pub header_token: Option<&'a [u8]>,
    /// The `Content-Type` header.
    pub content_type: Option<&'a [u8]>,
    /// The `Accept` header (chooses an HTML or a JSON refusal).
    pub accept: Option<&'a [u8]>,
}

/// Why a request was refused. Every refusal is answered with 403 and
/// [`body`](Self::body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsrfRejection {
    /// The browser said the request is cross-site (`Sec-Fetch-Site`).
    CrossSite,
    /// The `Origin` is not the request's own origin nor a trusted one
    /// (including `Origin: null`).
    ForeignOrigin,
    /// The request carried no token, or the session has none (it expired,
    /// or the form was rendered before a login rotated it).
    MissingToken,
    /// The request carried a token that is not the session's.
    WrongToken,
}

impl CsrfRejection {
    /// The status to answer with: 403.
    pub const STATUS: u16 = 403;

    /// A short reason, for logs and the JSON body.
    pub fn reason(self) -> &'static str {
        match self {
            Self::CrossSite => "cross-site request refused",
            Self::ForeignOrigin => "request from another origin refused",
            Self::MissingToken => "missing CSRF token",
            Self::WrongToken => "invalid CSRF token",
        }
    }

    /// The response body and its `Content-Type`: an HTML page when the
    /// request's `Accept` names `text/html` (a browser's form post), JSON
    /// otherwise.
    pub fn body(self, accept: Option<&[u8]>) -> (&'static str, String) {
        let wants_html =
            accept.is_some_and(|a| a.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")));
        if wants_html {
            let html = format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <title>403 Forbidden</title></head><body><h1>403 Forbidden</h1>\
                 <p>The request was refused ({}). This form has expired or was sent from \
                 another site: go back, reload the page and try again.</p></body></html>\n",
                self.reason()
            );
            ("text/html; charset=utf-8", html)
        } else {
            let json = format!(r#"{{"error":"{}"}}"#, self.reason());
            ("application/json", json)
        }
    }
}

impl fmt::Display for CsrfRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for CsrfRejection {}

/// What an adapter does next with a request (see [`CsrfPolicy::decide`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsrfStep {
    /// Let it through.
    Allow,
    /// Answer 403 with the rejection's body.
    Refuse(CsrfRejection),
    /// The token can only be in the form body: read the body and call
    /// [`CsrfPolicy::decide_with_form`].
    ReadForm,
}

/// The CSRF rules: which origins are trusted, whether a token is required,
/// and the form field it travels in.
///
/// [`CsrfPolicy::new`] (forms: same-site check and token) and
/// [`CsrfPolicy::same_site_only`] (JSON APIs: the same-site check alone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsrfPolicy {
    trusted_origins: Vec<String>,
    require_token: bool,
    field: String,
}

impl Default for CsrfPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl CsrfPolicy {
    /// The same-site check and a required token, from the header or the
    /// form field [`TOKEN_FIELD`].
    pub fn new() -> Self {
        Self {
            trusted_origins: Vec::new(),
            require_token: true,
            field: TOKEN_FIELD.to_owned(),
        }
    }

    /// The same-site check alone, for JSON APIs whose clients send no
    /// token (a page on another site cannot send a cross-site JSON request
    /// without CORS, and a browser that could be fooled into one says where
    /// it comes from).
    pub fn same_site_only() -> Self {
        Self {
            require_token: false,
            ..Self::new()
        }
    }

    /// Also accepts unsafe requests from `origin` (`scheme://host[:port]`,
    /// e.g. a separate front end), even cross-site.
    pub fn with_trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted_origins.push(origin.into());
        self
    }

    /// Reads the token from this form field instead of [`TOKEN_FIELD`].
    pub fn with_form_field(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }

    /// The form field the token is read from.
    pub fn form_field(&self) -> &str {
        &self.field
    }

    /// Whether a token is required (not for [`same_site_only`](Self::same_site_only)).
    pub fn requires_token(&self) -> bool {
        self.require_token
    }

    /// The same-site check alone (see the module docs). Safe methods pass.
    pub fn check_origin(&self, req: &RequestFacts<'_>) -> Result<(), CsrfRejection> {
        if is_safe_method(req.method) || self.is_trusted(req.origin) {
            return Ok(());
        }
        if let Some(site) = req.sec_fetch_site {
            match site.trim_ascii() {
                b"same-origin" | b"same-site" | b"none" => return Ok(()),
                b"cross-site" => return Err(CsrfRejection::CrossSite),
                // A value this code does not know: judge by Origin.
                _ => {}
            }
        }
        match req.origin {
            None => Ok(()),
            Some(origin) if req.host.is_some_and(|host| same_origin(origin, host)) => Ok(()),
            Some(_) => Err(CsrfRejection::ForeignOrigin),
        }
    }

    /// The first step for an adapter, before the handler: allow, refuse, or
    /// read the form body for its token.
    pub fn decide(&self, req: &RequestFacts<'_>, session: &Session) -> CsrfStep {
        if is_safe_method(req.method) {
            return CsrfStep::Allow;
        }
        if let Err(refused) = self.check_origin(req) {
            return CsrfStep::Refuse(refused);
        }
        if !self.require_token {
            return CsrfStep::Allow;
        }
        if let Some(token) = req.header_token {
            return match self.check_token(session, Some(token)) {
                Ok(()) => CsrfStep::Allow,
                Err(refused) => CsrfStep::Refuse(refused),
            };
        }
        if req.content_type.is_some_and(is_urlencoded_form) {
            return CsrfStep::ReadForm;
        }
        CsrfStep::Refuse(CsrfRejection::MissingToken)
    }

    /// The second step, after [`CsrfStep::ReadForm`]: the token in the
    /// form `body`'s field.
    pub fn decide_with_form(&self, session: &Session, body: &[u8]) -> Result<(), CsrfRejection> {
        let token = form_value(body, &self.field);
        self.check_token(session, token.as_deref().map(str::as_bytes))
    }

    /// The whole check, for an app that has the form's token already
    /// (`form_token`; the header is tried first).
    pub fn check(
        &self,
        req: &RequestFacts<'_>,
        session: &Session,
        form_token: Option<&str>,
    ) -> Result<(), CsrfRejection> {
        match self.decide(req, session) {
            CsrfStep::Allow => Ok(()),
            CsrfStep::Refuse(refused) => Err(refused),
            CsrfStep::ReadForm => self.check_token(session, form_token.map(str::as_bytes)),
        }
    }

    fn check_token(
        &self,
        session: &Session,
        presented: Option<&[u8]>,
    ) -> Result<(), CsrfRejection> {
        let presented = presented.ok_or(CsrfRejection::MissingToken)?;
        if !session.contains_key(TOKEN_KEY) {
            return Err(CsrfRejection::MissingToken);
        }
        if verify(session, presented) {
            Ok(())
        } else {
            Err(CsrfRejection::WrongToken)
        }
    }

    fn is_trusted(&self, origin: Option<&[u8]>) -> bool {
        origin.is_some_and(|origin| {
            self.trusted_origins
                .iter()
                .any(|t| t.as_bytes().eq_ignore_ascii_case(origin.trim_ascii()))
        })
    }
}

/// Whether an `Origin` (`scheme://host[:port]`) names the same host and
/// port as a `Host` header (`host[:port]`; a missing port is the scheme's
/// default). `Host` carries no scheme, so the scheme is not compared.
fn same_origin(origin: &[u8], host: &[u8]) -> bool {
    let origin = origin.trim_ascii();
    let (default_port, rest): (&[u8], &[u8]) =
        if let Some(rest) = strip_prefix_ci(origin, b"https://") {
            (b"443", rest)
        } else if let Some(rest) = strip_prefix_ci(origin, b"http://") {
            (b"80", rest)
        } else {
            // `null`, or a scheme that is not the web's.
            return false;
        };
    let (o_host, o_port) = split_port(rest);
    let (h_host, h_port) = split_port(host.trim_ascii());
    !o_host.is_empty()
        && o_host.eq_ignore_ascii_case(h_host)
        && o_port.unwrap_or(default_port) == h_port.unwrap_or(default_port)
}

fn strip_prefix_ci<'a>(text: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &text[prefix.len()..])
}

/// `host[:port]` split; an IPv6 literal keeps its brackets.
fn split_port(authority: &[u8]) -> (&[u8], Option<&[u8]>) {
    let host_end = if authority.first() == Some(&b'[') {
        authority
            .iter()
            .position(|&b| b == b']')
            .map_or(authority.len(), |i| i + 1)
    } else {
        authority
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(authority.len())
    };
    let (host, rest) = authority.split_at(host_end);
    (host, rest.strip_prefix(b":"))
}

#[cfg(feature = "http")]
impl<'a> RequestFacts<'a> {
    /// The facts of an `http` 1.x request (feature `http`).
    pub fn from_http(
        method: &'a http::Method,
        uri: &'a http::Uri,
        headers: &'a http::HeaderMap,
    ) -> Self {
        use http::header::{ACCEPT, CONTENT_TYPE, HOST, ORIGIN};
        let get = |name: &str| headers.get(name).map(http::HeaderValue::as_bytes);
        Self {
            method: method.as_str().as_bytes(),
            host: headers
                .get(HOST)
                .map(http::HeaderValue::as_bytes)
                .or_else(|| uri.authority().map(|a| a.as_str().as_bytes())),
            origin: headers.get(ORIGIN).map(http::HeaderValue::as_bytes),
            sec_fetch_site: get("sec-fetch-site"),
            header_token: get(TOKEN_HEADER),
            content_type: headers.get(CONTENT_TYPE).map(http::HeaderValue::as_bytes),
            accept: headers.get(ACCEPT).map(http::HeaderValue::as_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post<'a>() -> RequestFacts<'a> {
        RequestFacts {
            method: b"POST",
            host: Some(b"app.example:8080"),
            ..RequestFacts::default()
        }
    }

    #[test]
    fn safe_methods_pass_and_the_rest_are_unsafe() {
        for m in ["GET", "HEAD", "OPTIONS", "TRACE"] {
            assert!(is_safe_method(m.as_bytes()), "{m}");
        }
        for m in ["POST", "PUT", "PATCH", "DELETE", "PROPFIND", "get"] {
            assert!(!is_safe_method(m.as_bytes()), "{m}");
        }
        let policy = CsrfPolicy::new();
        let get = RequestFacts {
            method: b"GET",
            sec_fetch_site: Some(b"cross-site"),
            ..RequestFacts::default()
        };
        assert_eq!(policy.decide(&get, &Session::detached()), CsrfStep::Allow);
    }

    #[test]
    fn fetch_metadata_decides_when_present() {
        let policy = CsrfPolicy::same_site_only();
        for (site, ok) in [
            (&b"same-origin"[..], true),
            (b"same-site", true),
            (b"none", true),
            (b"cross-site", false),
        ] {
            let req = RequestFacts {
                sec_fetch_site: Some(site),
                // Fetch Metadata wins over an Origin that disagrees.
                origin: Some(b"http://elsewhere.example"),
                ..post()
            };
            assert_eq!(policy.check_origin(&req).is_ok(), ok, "{site:?}");
        }
        let cross = RequestFacts {
            sec_fetch_site: Some(b"cross-site"),
            ..post()
        };
        assert_eq!(policy.check_origin(&cross), Err(CsrfRejection::CrossSite));
    }

    #[test]
    fn origin_must_be_the_requests_own_without_fetch_metadata() {
        let policy = CsrfPolicy::same_site_only();
        let with = |origin: &'static [u8]| RequestFacts {
            origin: Some(origin),
            ..post()
        };
        for ok in [&b"http://app.example:8080"[..], b"https://APP.example:8080"] {
            assert_eq!(policy.check_origin(&with(ok)), Ok(()), "{ok:?}");
        }
        for bad in [
            &b"http://app.example"[..],
            b"http://app.example:8081",
            b"http://evil.example:8080",
            b"http://sub.app.example:8080",
            b"null",
            b"app.example:8080",
            b"",
        ] {
            assert_eq!(
                policy.check_origin(&with(bad)),
                Err(CsrfRejection::ForeignOrigin),
                "{bad:?}"
            );
        }
        // No header at all: not a browser CSRF can abuse; allowed.
        assert_eq!(policy.check_origin(&post()), Ok(()));
        // No Host to compare with: a present Origin cannot be vouched for.
        let no_host = RequestFacts {
            host: None,
            ..with(b"http://app.example:8080")
        };
        assert!(no_host.host.is_none() && policy.check_origin(&no_host).is_err());
    }

    #[test]
    fn default_ports_and_ipv6_literals_compare_as_origins_do() {
        assert!(same_origin(b"https://a.example", b"a.example"));
        assert!(same_origin(b"https://a.example", b"a.example:443"));
        assert!(same_origin(b"http://a.example:80", b"a.example"));
        assert!(!same_origin(b"https://a.example", b"a.example:80"));
        assert!(same_origin(b"http://[::1]:3000", b"[::1]:3000"));
        assert!(!same_origin(b"http://[::1]:3000", b"[::1]:3001"));
        assert!(same_origin(b"http://127.0.0.1:3000", b"127.0.0.1:3000"));
        assert!(!same_origin(b"http://localhost:3000", b"127.0.0.1:3000"));
    }

    #[test]
    fn trusted_origins_pass_even_cross_site() {
        let policy = CsrfPolicy::same_site_only().with_trusted_origin("https://front.example");
        let req = RequestFacts {
            origin: Some(b"https://front.example"),
            sec_fetch_site: Some(b"cross-site"),
            ..post()
        };
        assert_eq!(policy.check_origin(&req), Ok(()));
    }

    #[test]
    fn the_token_is_created_once_masked_each_time_and_verified() {
        let session = Session::detached();
        assert!(!session.contains_key(TOKEN_KEY));
        let a = token(&session).unwrap();
        let b = token(&session).unwrap();
        assert!(session.contains_key(TOKEN_KEY), "stored on first use");
        assert_eq!(a.len(), 44);
        assert_ne!(a, b, "masked afresh for every page");
        assert!(verify(&session, a.as_bytes()) && verify(&session, b.as_bytes()));
        // The stored raw token is never accepted as is, nor a tampered one.
        let raw: String = session.get(TOKEN_KEY).unwrap().unwrap();
        assert!(!verify(&session, raw.as_bytes()));
        let mut tampered = a.clone().into_bytes();
        tampered[30] = if tampered[30] == b'A' { b'B' } else { b'A' };
        assert!(!verify(&session, &tampered));
        assert!(!verify(&session, b""));
        // Another session's token is not this one's.
        let other = token(&Session::detached()).unwrap();
        assert!(!verify(&session, other.as_bytes()));
    }

    #[test]
    fn renewing_or_changing_the_user_rotates_the_token() {
        for change in [
            |s: &Session| s.set_user("ada"),
            |s: &Session| s.clear_user(),
            |s: &Session| s.renew(),
            |s: &Session| s.destroy(),
        ] {
            let session = Session::detached();
            session.set_user("bob");
            let old = token(&session).unwrap();
            change(&session);
            assert!(!verify(&session, old.as_bytes()));
            let new = token(&session).unwrap();
            assert!(verify(&session, new.as_bytes()));
        }
    }

    #[test]
    fn a_login_through_the_engine_stores_a_new_token_under_the_new_id() {
        use crate::driver::Engine;
        use crate::testing::block_on;
        use crate::{MemoryStore, Presented, SessionConfig, SessionManager};
        let manager = SessionManager::new(MemoryStore::new(), SessionConfig::default()).unwrap();
        // The cookie a response sets, as the next request presents it.
        let next = |headers: crate::ResponseHeaders| {
            let set = headers.set_cookie.expect("a cookie is set");
            let pair = set.split(';').next().unwrap().to_owned();
            match manager.read_id([pair.as_bytes()]) {
                Presented::Id(id) => (id, block_on(manager.load(Presented::Id(id))).unwrap()),
                other => panic!("no id in {set}: {other:?}"),
            }
        };
        // An anonymous visitor is shown the login form: a session with a token.
        let visitor = block_on(manager.load(Presented::Nothing)).unwrap();
        let form_token = token(&visitor).unwrap();
        let (id, login) = next(block_on(manager.commit(&visitor)).unwrap());
        assert!(verify(&login, form_token.as_bytes()));
        // The login: a new id, and a new token for the page after it.
        login.set_user("ada");
        assert!(!verify(&login, form_token.as_bytes()));
        let page_token = token(&login).unwrap();
        let (new_id, after) = next(block_on(manager.commit(&login)).unwrap());
        assert_ne!(new_id, id);
        assert!(verify(&after, page_token.as_bytes()));
        assert!(!verify(&after, form_token.as_bytes()));
    }

    #[test]
    fn decide_takes_the_header_then_asks_for_the_form() {
        let policy = CsrfPolicy::new();
        let session = Session::detached();
        let good = token(&session).unwrap();
        let with_header = RequestFacts {
            header_token: Some(good.as_bytes()),
            ..post()
        };
        assert_eq!(policy.decide(&with_header, &session), CsrfStep::Allow);
        let wrong = RequestFacts {
            header_token: Some(b"nope"),
            ..post()
        };
        assert_eq!(
            policy.decide(&wrong, &session),
            CsrfStep::Refuse(CsrfRejection::WrongToken)
        );
        let form = RequestFacts {
            content_type: Some(b"Application/X-WWW-Form-Urlencoded; charset=utf-8"),
            ..post()
        };
        assert_eq!(policy.decide(&form, &session), CsrfStep::ReadForm);
        let body = format!("name=a+b&csrf_token={}&x=1", good.replace('-', "%2D"));
        assert_eq!(policy.decide_with_form(&session, body.as_bytes()), Ok(()));
        assert_eq!(
            policy.decide_with_form(&session, b"name=a"),
            Err(CsrfRejection::MissingToken)
        );
        // text/plain and multipart bodies are never searched for a token.
        for ct in [&b"text/plain"[..], b"multipart/form-data; boundary=x"] {
            let req = RequestFacts {
                content_type: Some(ct),
                ..post()
            };
            assert_eq!(
                policy.decide(&req, &session),
                CsrfStep::Refuse(CsrfRejection::MissingToken)
            );
        }
        // A session without a token refuses any token.
        let fresh = Session::detached();
        assert_eq!(
            policy.check(&post(), &fresh, Some(&good)),
            Err(CsrfRejection::MissingToken)
        );
        // The origin is checked before the token.
        let cross = RequestFacts {
            sec_fetch_site: Some(b"cross-site"),
            header_token: Some(good.as_bytes()),
            ..post()
        };
        assert_eq!(
            policy.check(&cross, &session, None),
            Err(CsrfRejection::CrossSite)
        );
        // The token alone is not asked for by the same-site-only policy.
        assert_eq!(
            CsrfPolicy::same_site_only().decide(&post(), &fresh),
            CsrfStep::Allow
        );
    }

    #[test]
    fn form_values_are_decoded() {
        let body = b"a=1&b=x+y%21&c&d=%zz&b=second&%63srf=%E2%9C%93";
        assert_eq!(form_value(body, "a").as_deref(), Some("1"));
        assert_eq!(form_value(body, "b").as_deref(), Some("x y!"));
        assert_eq!(form_value(body, "c").as_deref(), Some(""));
        assert_eq!(form_value(body, "d"), None);
        assert_eq!(form_value(body, "csrf").as_deref(), Some("✓"));
        assert_eq!(form_value(body, "missing"), None);
        assert_eq!(form_value(b"", "a"), None);
    }

    #[test]
    fn refusals_are_html_for_browsers_and_json_otherwise() {
        let r = CsrfRejection::CrossSite;
        let (ct, body) = r.body(Some(b"text/html,application/xhtml+xml;q=0.9"));
        assert!(ct.starts_with("text/html") && body.contains("403 Forbidden"));
        let (ct, body) = r.body(Some(b"application/json"));
        assert_eq!(ct, "application/json");
        assert_eq!(body, r#"{"error":"cross-site request refused"}"#);
        assert_eq!(r.body(None).0, "application/json");
    }

    fn bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)
    }

    proptest::proptest! {
        #[test]
        fn no_input_passes_an_unsafe_request_without_the_token(
            method in bytes(), host in bytes(), origin in bytes(), site in bytes(),
            header in bytes(), body in bytes(),
        ) {
            let session = Session::detached();
            token(&session).unwrap();
            let req = RequestFacts {
                method: &method,
                host: Some(&host),
                origin: Some(&origin),
                sec_fetch_site: Some(&site),
                header_token: (!header.is_empty()).then_some(&header[..]),
                content_type: Some(b"application/x-www-form-urlencoded"),
                accept: Some(&body),
            };
            let policy = CsrfPolicy::new();
            match policy.decide(&req, &session) {
                CsrfStep::Allow => proptest::prop_assert!(is_safe_method(&method)),
                CsrfStep::ReadForm => {
                    proptest::prop_assert!(policy.decide_with_form(&session, &body).is_err())
                }
                CsrfStep::Refuse(refused) => {
                    let _ = refused.body(req.accept);
                }
            }
            let _ = form_value(&body, "csrf_token");
        }
    }
}
