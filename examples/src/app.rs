//! The routes' logic, written once for every framework.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use session_core::{DynStore, Error, Session, SessionHandle, SessionManager};

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

#[cfg(test)]
mod tests {
    use super::*;

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
