//! The routes' logic, written once for every framework.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use session_core::{DynStore, Error, Session, SessionHandle, SessionId, SessionManager};
use subtle::ConstantTimeEq;

/// A response: status and JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// JSON text.
    pub body: String,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body: body.to_string(),
        }
    }

    /// A refusal (any 4xx is counted in `session_refused_total`, see
    /// [`not_found`](Self::not_found)) or another error.
    fn error(status: u16, message: &str) -> Self {
        if (400..500).contains(&status) {
            session_core::metrics::refused(status);
        }
        Self {
            status,
            body: json!({ "error": message }).to_string(),
        }
    }

    /// 404 for any route the app does not have (not a refusal: not
    /// counted).
    pub fn not_found() -> Self {
        Self {
            status: 404,
            body: json!({ "error": "not found" }).to_string(),
        }
    }

    /// 413 for a body over [`BODY_LIMIT`]; the session is left as it was.
    pub fn too_large() -> Self {
        Self::error(413, "body too large")
    }

    /// 415 for a `POST` that is not JSON (see [`require_json`]).
    pub fn not_json() -> Self {
        Self::error(415, "content-type must be application/json")
    }

    /// The answer to a session error a handler let through: 413 for a
    /// session over its size limit, the error's status otherwise, and no
    /// detail of a store failure.
    pub fn session_error(manager: Option<&SessionManager<DynStore>>, e: &Error) -> Self {
        match e {
            Error::TooLarge { size, limit } => Self::error(
                413,
                &format!("session too large: it would hold {size} bytes, the limit is {limit}"),
            ),
            _ => Self {
                status: manager.map_or_else(|| e.status(), |m| m.failure_status(e)),
                body: e.public_body().to_owned(),
            },
        }
    }
}

/// The 415 rule for every `POST`: it must carry exactly one `Content-Type`
/// header, `application/json` (parameters such as `; charset=utf-8`
/// allowed). `content_types` are the values of every `Content-Type` header
/// line, in order.
///
/// A page on another site can make a browser post a form (`text/plain`,
/// urlencoded, multipart) with no preflight, but not JSON; refusing
/// everything else, before the session is touched, is what stops such a
/// page from logging a visitor in as someone else (login CSRF). Two
/// `Content-Type` lines are refused too, whatever they say: a proxy or a
/// body parser could go by the other one.
pub fn require_json<'a>(content_types: impl IntoIterator<Item = &'a [u8]>) -> Result<(), Reply> {
    let mut values = content_types.into_iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(Reply::not_json());
    };
    let essence = value.split(|&b| b == b';').next().unwrap_or_default();
    if essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/json")
    {
        Ok(())
    } else {
        Err(Reply::not_json())
    }
}

/// The largest request body accepted, on every framework.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The longest username accepted.
const MAX_USERNAME: usize = 256;

/// `GET /healthz`.
pub fn healthz() -> Reply {
    Reply::ok(json!({ "status": "ok" }))
}

#[derive(Deserialize)]
struct Login {
    username: String,
    #[serde(default)]
    data: Option<Map<String, Value>>,
}

/// `POST /session/login`: ends any current session and starts a new one
/// (new id) for the user, with the optional `data`.
pub fn login(session: &Session, body: &[u8]) -> Reply {
    let login: Login = match serde_json::from_slice(body) {
        Ok(login) => login,
        Err(e) => return Reply::error(400, &format!("invalid login body: {e}")),
    };
    if login.username.is_empty() || login.username.len() > MAX_USERNAME {
        return Reply::error(400, "username must be 1 to 256 bytes");
    }
    let data: Vec<(String, String)> = login
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, value.to_string()))
        .collect();
    // Checked before the old session is ended: a login over the limit
    // leaves everything as it was and creates no session.
    let size = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    let limit = session.size_limit();
    if size > limit {
        return Reply::session_error(None, &Error::TooLarge { size, limit });
    }
    session.destroy();
    session.set_user(login.username);
    if let Err(e) = session.extend_raw(data) {
        return Reply::session_error(None, &e);
    }
    profile(session)
}

/// `GET /session/profile` (the caller has checked the session is live).
pub fn profile(session: &Session) -> Reply {
    let data: Map<String, Value> = session
        .keys()
        .into_iter()
        .filter_map(|key| {
            let value = session.get::<Value>(&key).ok().flatten()?;
            Some((key, value))
        })
        .collect();
    Reply::ok(json!({
        "username": session.user().as_deref(),
        "created_at": session.created_at().unix_secs(),
        "last_activity": session.last_activity().unix_secs(),
        "authenticated_at": session.authenticated_at().map(|at| at.unix_secs()),
        "data": data,
    }))
}

/// `POST /session/update`: merges a JSON object into `data`. Anything but
/// an object is 400 and changes nothing.
pub fn update(session: &Session, body: &[u8]) -> Reply {
    let fields: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => return Reply::error(400, "body must be a JSON object"),
        Err(e) => return Reply::error(400, &format!("invalid JSON: {e}")),
    };
    // All or nothing: an update over the size limit changes no key.
    let fields = fields
        .into_iter()
        .map(|(key, value)| (key, value.to_string()));
    if let Err(e) = session.extend_raw(fields) {
        return Reply::session_error(None, &e);
    }
    profile(session)
}

/// `POST /session/logout`: ends this session on the server.
pub fn logout(session: &Session) -> Reply {
    session.destroy();
    Reply::ok(json!({ "logged_out": true }))
}

/// `POST /session/logout-all`: ends every session of this session's user.
pub async fn logout_all(manager: &SessionManager<DynStore>, session: &Session) -> Reply {
    let Some(user) = session.user() else {
        return Reply::error(401, "no live session");
    };
    match manager.end_user_sessions(&user).await {
        Ok(ended) => {
            session.destroy();
            Reply::ok(json!({ "ended": ended }))
        }
        Err(e) => Reply::session_error(Some(manager), &e),
    }
}

/// `GET /session/sessions`: this session's user's live sessions, each
/// named by its handle (never its id).
pub async fn sessions(manager: &SessionManager<DynStore>, session: &Session) -> Reply {
    match manager.user_sessions(session).await {
        Ok(listed) => {
            let sessions: Vec<Value> = listed
                .iter()
                .map(|s| {
                    json!({
                        "handle": s.handle.to_string(),
                        "current": s.current,
                        "created_at": s.created_at.unix_secs(),
                        "last_activity": s.last_activity.unix_secs(),
                        "expires_at": s.expires_at.unix_secs(),
                        "persistent": s.persistent,
                    })
                })
                .collect();
            Reply::ok(json!({ "sessions": sessions }))
        }
        Err(e) => Reply::session_error(Some(manager), &e),
    }
}

#[derive(Deserialize)]
struct EndSession {
    handle: String,
}

/// `POST /session/sessions/end` `{"handle": "..."}`: ends that session of
/// this session's user; 404 for a handle that names none of them. Ending
/// this very session removes its cookie, as a logout does.
pub async fn end_session(
    manager: &SessionManager<DynStore>,
    session: &Session,
    body: &[u8],
) -> Reply {
    let end: EndSession = match serde_json::from_slice(body) {
        Ok(end) => end,
        Err(e) => return Reply::error(400, &format!("invalid body: {e}")),
    };
    let Some(handle) = SessionHandle::parse(&end.handle) else {
        return Reply::error(404, "no such session");
    };
    match manager.end_session_by_handle(session, &handle).await {
        Ok(true) => Reply::ok(json!({ "ended": 1 })),
        Ok(false) => Reply::error(404, "no such session"),
        Err(e) => Reply::session_error(Some(manager), &e),
    }
}

/// The operator's bearer token (`SESSION_ADMIN_TOKEN`): with one, the
/// `/admin/` routes answer requests that carry it; without, every
/// `/admin/` path is 404.
#[derive(Clone)]
pub struct AdminToken(Arc<[u8]>);

impl AdminToken {
    /// The token the operator's requests must present.
    pub fn new(token: &str) -> Self {
        Self(token.as_bytes().into())
    }

    /// Whether `authorization` (every `Authorization` header line, in
    /// order) is exactly one `Bearer` credential equal to the token. The
    /// comparison takes the same time whatever bytes differ (only the
    /// token's length can show).
    pub fn admits<'a>(&self, authorization: impl IntoIterator<Item = &'a [u8]>) -> bool {
        let mut values = authorization.into_iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        let Some((scheme, credential)) = value.split_at_checked(7) else {
            return false;
        };
        scheme.eq_ignore_ascii_case(b"bearer ") && bool::from(credential.ct_eq(&self.0))
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// The operator's request to an `/admin/` path, as every framework hands
/// it over: nothing of the visitor's session is read or written.
pub struct AdminRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, `/admin/...`.
    pub path: &'a str,
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// Every `Authorization` header line's value.
    pub authorization: Vec<&'a [u8]>,
    /// Every `Content-Type` header line's value.
    pub content_types: Vec<&'a [u8]>,
    /// The body (empty for a `GET`).
    pub body: &'a [u8],
}

impl fmt::Debug for AdminRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token.
        f.debug_struct("AdminRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The most sessions `GET /admin/sessions` shows at once, and the default.
const ADMIN_MAX_LIMIT: usize = 1000;
const ADMIN_DEFAULT_LIMIT: usize = 100;

/// Whether `path` is one of the operator's (`/admin` and below).
pub fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

/// Every `/admin/` path: 404 without an [`AdminToken`] (as for any path
/// the app does not have), 401 without the token, then
/// `GET /admin/sessions`, `POST /admin/sessions/end` and
/// `POST /admin/sessions/end-all`.
pub async fn admin(
    manager: &SessionManager<DynStore>,
    token: Option<&AdminToken>,
    req: AdminRequest<'_>,
) -> Reply {
    let Some(token) = token else {
        return Reply::not_found();
    };
    if !token.admits(req.authorization.iter().copied()) {
        return Reply::error(401, "missing or wrong admin token");
    }
    let operator_error = |e: &Error| match e {
        Error::Store(cause) if cause.to_string().contains("not supported") => {
            Reply::error(501, "not supported by this session store")
        }
        _ => Reply::session_error(Some(manager), e),
    };
    match (req.method, req.path) {
        ("GET", "/admin/sessions") => {
            let (limit, after) = match admin_page(req.query) {
                Ok(page) => page,
                Err(reply) => return reply,
            };
            let count = match manager.count_sessions().await {
                Ok(count) => count,
                Err(e) => return operator_error(&e),
            };
            match manager.list_sessions(after.as_deref(), limit).await {
                Ok((listed, next)) => {
                    let sessions: Vec<Value> = listed
                        .iter()
                        .map(|s| {
                            json!({
                                "username": s.username,
                                "handle": s.handle.to_string(),
                                "created_at": s.created_at.unix_secs(),
                                "last_activity": s.last_activity.unix_secs(),
                                "expires_at": s.expires_at.unix_secs(),
                            })
                        })
                        .collect();
                    Reply::ok(json!({ "count": count, "sessions": sessions, "next": next }))
                }
                Err(e) => operator_error(&e),
            }
        }
        ("POST", "/admin/sessions/end") => {
            if let Err(reply) = require_json(req.content_types.iter().copied()) {
                return reply;
            }
            #[derive(Deserialize)]
            struct EndUser {
                username: String,
            }
            let end: EndUser = match serde_json::from_slice(req.body) {
                Ok(end) => end,
                Err(e) => return Reply::error(400, &format!("invalid body: {e}")),
            };
            if end.username.is_empty() || end.username.len() > MAX_USERNAME {
                return Reply::error(400, "username must be 1 to 256 bytes");
            }
            match manager.end_user_sessions_as_operator(&end.username).await {
                Ok(ended) => Reply::ok(json!({ "ended": ended })),
                Err(e) => operator_error(&e),
            }
        }
        ("POST", "/admin/sessions/end-all") => {
            if let Err(reply) = require_json(req.content_types.iter().copied()) {
                return reply;
            }
            match manager.end_all_sessions().await {
                Ok(ended) => Reply::ok(json!({ "ended": ended })),
                Err(e) => operator_error(&e),
            }
        }
        _ => Reply::not_found(),
    }
}

/// `limit` (1 to 1000, default 100) and `after` (a cursor) of
/// `GET /admin/sessions`; anything else in the query is ignored.
fn admin_page(query: Option<&str>) -> Result<(usize, Option<String>), Reply> {
    let mut limit = ADMIN_DEFAULT_LIMIT;
    let mut after = None;
    for pair in query.unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("limit", value)) => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=ADMIN_MAX_LIMIT).contains(n))
                    .ok_or_else(|| Reply::error(400, "limit must be a number from 1 to 1000"))?;
            }
            Some(("after", value)) => {
                // A cursor is a store key's text: 22 base64url characters.
                if SessionId::parse(value.as_bytes()).is_none() {
                    return Err(Reply::error(400, "after is not a cursor this app gave"));
                }
                after = Some(value.to_owned());
            }
            _ => {}
        }
    }
    Ok((limit, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_takes_exactly_one_bearer_credential() {
        let token = AdminToken::new("s3cret");
        assert!(token.admits([b"Bearer s3cret".as_slice()]));
        assert!(token.admits([b"bearer s3cret".as_slice()]));
        for refused in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Bearer  s3cret",
            "Basic s3cret",
            "s3cret",
            "",
        ] {
            assert!(!token.admits([refused.as_bytes()]), "{refused:?}");
        }
        assert!(!token.admits([]));
        assert!(!token.admits([b"Bearer s3cret".as_slice(), b"Bearer s3cret".as_slice()]));
    }

    #[test]
    fn admin_page_limits() {
        assert_eq!(admin_page(None).unwrap(), (100, None));
        assert_eq!(admin_page(Some("limit=2")).unwrap(), (2, None));
        assert_eq!(admin_page(Some("limit=1000")).unwrap().0, 1000);
        for bad in ["limit=0", "limit=1001", "limit=x", "limit=", "after=nope"] {
            assert_eq!(admin_page(Some(bad)).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn require_json_takes_exactly_one_json_content_type() {
        let one = |v: &'static str| require_json([v.as_bytes()]);
        assert_eq!(one("application/json"), Ok(()));
        assert_eq!(one(" Application/JSON ; charset=utf-8"), Ok(()));
        for refused in ["text/plain", "application/json, text/plain", ""] {
            assert_eq!(one(refused), Err(Reply::not_json()), "{refused:?}");
        }
        assert_eq!(require_json([]), Err(Reply::not_json()));
        for pair in [
            ["application/json", "text/plain"],
            ["application/json", "application/json"],
            ["text/plain", "application/json"],
        ] {
            assert_eq!(
                require_json(pair.map(str::as_bytes)),
                Err(Reply::not_json()),
                "{pair:?}"
            );
        }
    }
}
