//! The routes' logic, written once for every framework.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use session_core::{DynStore, Session, SessionManager};

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

    fn error(status: u16, message: &str) -> Self {
        Self {
            status,
            body: json!({ "error": message }).to_string(),
        }
    }

    /// 404 for any route the app does not have.
    pub fn not_found() -> Self {
        Self::error(404, "not found")
    }

    /// 413 for a body over [`BODY_LIMIT`]; the session is left as it was.
    pub fn too_large() -> Self {
        Self::error(413, "body too large")
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
    session.destroy();
    session.set_user(login.username);
    for (key, value) in login.data.unwrap_or_default() {
        session.insert_raw(key, value.to_string());
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
    for (key, value) in fields {
        session.insert_raw(key, value.to_string());
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
        Err(e) => {
            let status = manager.failure_status(&e);
            Reply {
                status,
                body: session_core::STORE_ERROR_BODY.to_owned(),
            }
        }
    }
}
