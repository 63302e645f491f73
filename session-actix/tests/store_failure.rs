//! A failing store, in-process: the middleware's answer is an error that
//! actix-web renders as the configured status with the no-detail JSON body
//! and `Cache-Control: no-store`, before the handler (load) and after it
//! (commit); requests that need no store are not affected.

use actix_web::{App, test, web};
use session_actix::core::SessionId;
use session_actix::core::driver::Engine;
use session_actix::core::testing::BrokenStore;
use session_actix::{Session, SessionConfig, SessionMiddleware};

#[actix_web::test]
async fn a_store_failure_is_the_configured_status_with_no_detail() {
    let config = SessionConfig {
        store_error_status: 500,
        ..SessionConfig::default()
    };
    let sessions = SessionMiddleware::with_store(BrokenStore::down(), config).unwrap();
    let cookie = format!(
        "{}={}",
        sessions.manager().cookie_name(),
        SessionId::generate()
    );
    let app = test::init_service(
        App::new()
            .wrap(sessions)
            .route(
                "/read",
                web::get().to(|s: Session| async move { format!("{:?}", s.get::<u32>("n")) }),
            )
            .route(
                "/write",
                web::get().to(|s: Session| async move {
                    s.insert("n", &1).unwrap();
                    "written"
                }),
            ),
    )
    .await;

    // No id: no store asked, the handler answers.
    let res = test::call_service(&app, test::TestRequest::get().uri("/read").to_request()).await;
    assert_eq!(res.status(), 200);

    // An id to load (the handler never runs), then a write to commit (the
    // handler's answer is dropped): both are the store failure.
    let requests = [
        test::TestRequest::get()
            .uri("/read")
            .insert_header(("cookie", cookie))
            .to_request(),
        test::TestRequest::get().uri("/write").to_request(),
    ];
    for request in requests {
        let error = test::try_call_service(&app, request)
            .await
            .expect_err("the middleware answers with an error");
        assert_eq!(error.as_response_error().status_code(), 500);
        let res = error.error_response();
        assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "application/json"
        );
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        assert_eq!(body, session_actix::core::STORE_ERROR_BODY);
    }
}

/// A store failure a handler meets itself and returns as `SessionError`
/// (ending a user's sessions while the store is down, say) is answered
/// with the configured status too, not the error's own 503.
#[actix_web::test]
async fn a_store_failure_raised_in_a_handler_takes_the_configured_status() {
    let config = SessionConfig {
        store_error_status: 500,
        ..SessionConfig::default()
    };
    let sessions =
        SessionMiddleware::with_store(session_actix::core::MemoryStore::new(), config).unwrap();
    let app = test::init_service(App::new().wrap(sessions).route(
        "/end",
        web::post().to(|_: Session| async move {
            Err::<&str, _>(session_actix::SessionError(
                session_actix::core::Error::store("connection refused"),
            ))
        }),
    ))
    .await;
    let request = test::TestRequest::post().uri("/end").to_request();
    let error = test::try_call_service(&app, request)
        .await
        .expect_err("the middleware answers with an error");
    assert_eq!(error.as_response_error().status_code(), 500);
    let res = error.error_response();
    assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
}
