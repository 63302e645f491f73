//! The extractors' answers when the layer is missing or there is no session.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use session_axum::{
    LoadedSession, MemoryStore, Session, SessionConfig, SessionError, SessionLayer, UserSession,
};
use tower::ServiceExt;

async fn body_text(res: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn without_the_layer_the_extractor_is_a_500_naming_it() {
    let app = Router::new().route("/", get(|_: Session| async { "unreachable" }));
    let res = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body_text(res).await.contains("SessionLayer"));
}

#[tokio::test]
async fn user_session_is_401_json_without_a_session_and_passes_with_one() {
    let layer = SessionLayer::with_store(MemoryStore::new(), SessionConfig::default()).unwrap();
    let app = Router::new()
        .route(
            "/login",
            get(|s: Session| async move {
                s.set_user("ada");
                "ok"
            }),
        )
        .route(
            "/me",
            get(|s: UserSession| async move { s.user().unwrap().to_string() }),
        )
        .layer(layer);
    let res = app
        .clone()
        .oneshot(Request::get("/me").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(body_text(res).await, r#"{"error":"no live session"}"#);

    let login = app
        .clone()
        .oneshot(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let me = Request::get("/me")
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(me).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body_text(res).await, "ada");
}

#[tokio::test]
async fn a_write_over_the_size_limit_is_413_through_question_mark() {
    let config = SessionConfig {
        max_session_bytes: 16,
        ..SessionConfig::default()
    };
    let layer = SessionLayer::with_store(MemoryStore::new(), config).unwrap();
    let app = Router::new()
        .route(
            "/big",
            get(|s: Session| async move {
                s.insert("k", "this value is over sixteen bytes")?;
                Ok::<_, SessionError>("stored")
            }),
        )
        .layer(layer);
    let res = app
        .oneshot(Request::get("/big").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert!(
        res.headers().get("set-cookie").is_none(),
        "a refused write creates no session"
    );
    assert_eq!(body_text(res).await, r#"{"error":"session too large"}"#);
}

#[tokio::test]
async fn loaded_session_needs_a_stored_session_and_user_session_a_user() {
    let layer = SessionLayer::with_store(MemoryStore::new(), SessionConfig::default()).unwrap();
    let app = Router::new()
        .route(
            "/cart",
            get(|s: Session| async move {
                s.insert("cart", &["apple"]).unwrap();
                "added"
            }),
        )
        .route("/loaded", get(|_: LoadedSession| async { "loaded" }))
        .route("/signed-in", get(|_: UserSession| async { "signed in" }))
        .layer(layer);
    let get_with = |path: &str, cookie: Option<&str>| {
        let mut req = Request::get(path);
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        req.body(Body::empty()).unwrap()
    };
    for path in ["/loaded", "/signed-in"] {
        let res = app.clone().oneshot(get_with(path, None)).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let cart = app.clone().oneshot(get_with("/cart", None)).await.unwrap();
    let cookie = cart.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let loaded = app
        .clone()
        .oneshot(get_with("/loaded", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(
        loaded.status(),
        StatusCode::OK,
        "an anonymous cart is loaded"
    );
    let signed_in = app
        .oneshot(get_with("/signed-in", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(
        signed_in.status(),
        StatusCode::UNAUTHORIZED,
        "but nobody is signed in"
    );
    assert_eq!(body_text(signed_in).await, r#"{"error":"no live session"}"#);
}

/// A store failure a handler meets itself (ending a user's sessions while
/// the store is down, say), returned with `?`, is answered with the layer's
/// configured status, not the error's own 503.
#[tokio::test]
async fn a_store_failure_raised_in_a_handler_takes_the_configured_status() {
    let config = SessionConfig {
        store_error_status: 500,
        ..SessionConfig::default()
    };
    let layer = SessionLayer::with_store(MemoryStore::new(), config).unwrap();
    let app = Router::new()
        .route(
            "/end",
            get(|_: Session| async move {
                Err::<&str, _>(SessionError(session_axum::core::Error::store(
                    "connection refused",
                )))
            }),
        )
        .layer(layer);
    let res = app
        .oneshot(Request::get("/end").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        body_text(res).await,
        r#"{"error":"session store unavailable"}"#
    );
}
