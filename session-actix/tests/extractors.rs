//! The extractors' answers when the middleware is missing or there is no
//! session, and the handle crossing a spawned task.

use actix_web::{App, HttpResponse, test, web};
use session_actix::{
    MemoryStore, Session, SessionConfig, SessionError, SessionMiddleware, UserSession,
};

#[actix_web::test]
async fn without_the_middleware_the_extractor_is_a_500_naming_it() {
    let app = test::init_service(
        App::new().route("/", web::get().to(|_: Session| async { "unreachable" })),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(res.status(), 500);
    let body = test::read_body(res).await;
    assert!(String::from_utf8_lossy(&body).contains("SessionMiddleware"));
}

#[actix_web::test]
async fn user_session_is_401_json_and_the_handle_is_send() {
    let sessions =
        SessionMiddleware::with_store(MemoryStore::new(), SessionConfig::default()).unwrap();
    let app = test::init_service(
        App::new()
            .wrap(sessions)
            .route(
                "/login",
                web::get().to(|s: Session| async move {
                    // The handle is Send: it can move into a spawned task.
                    let handle = s.0.clone();
                    std::thread::spawn(move || handle.set_user("ada"))
                        .join()
                        .unwrap();
                    HttpResponse::Ok().finish()
                }),
            )
            .route(
                "/me",
                web::get().to(|s: UserSession| async move { s.user().unwrap().to_string() }),
            ),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/json"
    );
    assert_eq!(test::read_body(res).await, r#"{"error":"no live session"}"#);

    let login = test::call_service(&app, test::TestRequest::get().uri("/login").to_request()).await;
    let cookie = login
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let me = test::TestRequest::get()
        .uri("/me")
        .insert_header(("cookie", cookie))
        .to_request();
    let res = test::call_service(&app, me).await;
    assert_eq!(res.status(), 200);
    assert_eq!(test::read_body(res).await, "ada");
}

#[actix_web::test]
async fn a_write_over_the_size_limit_is_413_through_question_mark() {
    let config = SessionConfig {
        max_session_bytes: 16,
        ..SessionConfig::default()
    };
    let sessions = SessionMiddleware::with_store(MemoryStore::new(), config).unwrap();
    let app = test::init_service(App::new().wrap(sessions).route(
        "/big",
        web::get().to(|s: Session| async move {
            s.insert("k", "this value is over sixteen bytes")?;
            Ok::<_, SessionError>(HttpResponse::Ok().finish())
        }),
    ))
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/big").to_request()).await;
    assert_eq!(res.status(), 413);
    assert!(
        res.headers().get("set-cookie").is_none(),
        "a refused write creates no session"
    );
    let body = test::read_body(res).await;
    assert_eq!(&body[..], br#"{"error":"session too large"}"#);
}

#[actix_web::test]
async fn guards_and_other_middleware_reach_the_session_through_session_ext() {
    use actix_web::guard;
    use session_actix::SessionExt;

    let sessions =
        SessionMiddleware::with_store(MemoryStore::new(), SessionConfig::default()).unwrap();
    let app = test::init_service(
        App::new()
            .wrap(sessions)
            .route(
                "/login",
                web::get().to(|s: Session| async move {
                    s.set_user("root");
                    HttpResponse::Ok().finish()
                }),
            )
            .route(
                "/admin",
                web::get()
                    .guard(guard::fn_guard(|ctx| {
                        ctx.session().and_then(|s| s.user()).as_deref() == Some("root")
                    }))
                    .to(|req: actix_web::HttpRequest| async move {
                        let user = req.session().and_then(|s| s.user()).unwrap();
                        HttpResponse::Ok().body(user.to_string())
                    }),
            ),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/admin").to_request()).await;
    assert_eq!(
        res.status(),
        404,
        "the guard refused a visitor without a session"
    );
    let login = test::call_service(&app, test::TestRequest::get().uri("/login").to_request()).await;
    let cookie = login.headers().get("set-cookie").unwrap().to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let req = test::TestRequest::get()
        .uri("/admin")
        .insert_header(("cookie", cookie))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    assert_eq!(&test::read_body(res).await[..], b"root");
}
