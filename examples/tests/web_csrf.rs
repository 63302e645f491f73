//! The web example's CSRF protection over plain HTTP, on all three
//! frameworks, with no browser: every unsafe method without the session's
//! token is refused (403, HTML or JSON), so is a cross-site or foreign-origin
//! request with it, and the token passes from the form field or the header.

mod support;

use std::net::SocketAddr;

use session_conformance::Response;
use session_conformance::http::send_raw;
use support::App;

/// A web example binary on the memory store, over plain HTTP, ready.
async fn start(bin: &str) -> App {
    let app = App::start(
        bin,
        &[("SESSION_STORE", "memory"), ("SESSION_SECURE", "false")],
    );
    app.wait_ready().await;
    app
}

/// One visitor: the cookie it holds, and the app's address.
struct Visitor {
    addr: SocketAddr,
    cookie: Option<String>,
}

impl Visitor {
    /// Sends a request with the visitor's cookie and these extra header
    /// lines; keeps a cookie the response sets.
    async fn send(&mut self, method: &str, path: &str, headers: &[&str], body: &str) -> Response {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(cookie) = &self.cookie {
            head.push_str(&format!("Cookie: id={cookie}\r\n"));
        }
        for line in headers {
            head.push_str(line);
            head.push_str("\r\n");
        }
        let res = send_raw(self.addr, head.as_bytes(), body.as_bytes()).await;
        if let Some(set) = res
            .all("set-cookie")
            .into_iter()
            .find(|c| c.starts_with("id="))
        {
            let value = set
                .split(';')
                .next()
                .unwrap_or_default()
                .trim_start_matches("id=");
            self.cookie = (!value.is_empty() && !set.contains("Max-Age=0")).then(|| value.into());
        }
        res
    }

    /// The token of the form on `path`.
    async fn token(&mut self, path: &str) -> String {
        let page = self.send("GET", path, &[], "").await;
        assert_eq!(page.status, 200, "GET {path}");
        let html = String::from_utf8(page.body).unwrap();
        let needle = r#"name="csrf_token" value=""#;
        let at = html.find(needle).expect("a token") + needle.len();
        html[at..at + 44].to_owned()
    }
}

const FORM: &str = "Content-Type: application/x-www-form-urlencoded";

async fn check(bin: &str) {
    let app = start(bin).await;
    let mut v = Visitor {
        addr: app.addr,
        cookie: None,
    };
    let token = v.token("/login").await;
    assert!(v.cookie.is_some(), "{bin}: the login form starts a session");
    let login = format!("username=ada&password=lovelace&csrf_token={token}");
    let same_origin = format!("Origin: http://{}", app.addr);

    // No token, a wrong one, a token in a body that is not a form: refused,
    // HTML for a browser and JSON otherwise.
    let res = v
        .send(
            "POST",
            "/login",
            &[FORM, "Accept: text/html"],
            "username=ada&password=lovelace",
        )
        .await;
    assert_eq!(res.status, 403, "{bin}: no token");
    assert!(res.header("content-type").unwrap().starts_with("text/html"));
    let res = v
        .send(
            "POST",
            "/login",
            &[FORM],
            "username=ada&password=lovelace&csrf_token=forged",
        )
        .await;
    assert_eq!(res.status, 403, "{bin}: a wrong token");
    assert_eq!(res.json()["error"], "invalid CSRF token");
    let res = v
        .send("POST", "/login", &["Content-Type: text/plain"], &login)
        .await;
    assert_eq!(res.status, 403, "{bin}: a text/plain body is not searched");

    // The right token from the wrong place: refused.
    let res = v
        .send(
            "POST",
            "/login",
            &[FORM, "Sec-Fetch-Site: cross-site"],
            &login,
        )
        .await;
    assert_eq!(res.status, 403, "{bin}: cross-site");
    assert_eq!(res.json()["error"], "cross-site request refused");
    let res = v
        .send(
            "POST",
            "/login",
            &[FORM, "Origin: http://evil.example"],
            &login,
        )
        .await;
    assert_eq!(res.status, 403, "{bin}: a foreign Origin");

    // The right token, same origin: signed in (303 to the start page).
    let res = v
        .send(
            "POST",
            "/login",
            &[FORM, "Sec-Fetch-Site: same-origin", &same_origin],
            &login,
        )
        .await;
    assert_eq!(
        res.status,
        303,
        "{bin}: the real sign-in: {}",
        String::from_utf8_lossy(&res.body)
    );
    assert_eq!(res.header("location"), Some("/"));

    // Every unsafe method needs the token, on every route: POST is refused;
    // PUT, PATCH and DELETE, which no route takes, are refused or not found
    // (actix routes by method before any extractor runs), never served.
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        for path in [
            "/login",
            "/logout",
            "/wizard/1",
            "/wizard/3",
            "/sessions/end-others",
            "/sessions/end",
            "/confirm",
            "/password",
        ] {
            let res = v.send(method, path, &[FORM], "name=x").await;
            let refused = res.status == 403 || (method != "POST" && res.status == 404);
            assert!(
                refused,
                "{bin}: {method} {path} without a token: {}",
                res.status
            );
        }
    }
    let home = v.send("GET", "/", &[], "").await;
    assert!(
        String::from_utf8_lossy(&home.body).contains("Hello, Ada Lovelace"),
        "{bin}: still signed in after the refusals"
    );

    // The login rotated the token: the login form's no longer passes; the
    // page's does, from the form field or the header.
    let res = v
        .send(
            "POST",
            "/wizard/1",
            &[FORM],
            &format!("name=x&csrf_token={token}"),
        )
        .await;
    assert_eq!(res.status, 403, "{bin}: the pre-login token is dead");
    let token = v.token("/").await;
    let res = v
        .send(
            "POST",
            "/wizard/1",
            &[FORM],
            &format!("name=Apollo&csrf_token={token}"),
        )
        .await;
    assert_eq!(
        res.header("location"),
        Some("/wizard/2"),
        "{bin}: the form field"
    );
    let header = format!("x-csrf-token: {token}");
    let res = v.send("POST", "/logout", &[&header], "").await;
    assert_eq!(res.status, 303, "{bin}: the header");
    assert_eq!(res.header("location"), Some("/login"));
}

#[tokio::test]
async fn every_unsafe_request_needs_the_token_from_this_origin() {
    for bin in [
        env!("CARGO_BIN_EXE_web-axum"),
        env!("CARGO_BIN_EXE_web-actix"),
        env!("CARGO_BIN_EXE_web-hyper"),
    ] {
        check(bin).await;
    }
}

/// A visitor signed in as `username` on `app`, through the form.
async fn signed_in(app: &App, username: &str, password: &str) -> Visitor {
    let mut v = Visitor {
        addr: app.addr,
        cookie: None,
    };
    let token = v.token("/login").await;
    let form = format!("username={username}&password={password}&csrf_token={token}");
    let res = v.send("POST", "/login", &[FORM], &form).await;
    assert_eq!(res.header("location"), Some("/"), "{username} signs in");
    v
}

/// The handles of the "sign out" buttons on a visitor's "Your sessions".
async fn handles(v: &mut Visitor) -> Vec<String> {
    let page = v.send("GET", "/sessions", &[], "").await;
    let html = String::from_utf8(page.body).unwrap();
    let needle = r#"name="handle" value=""#;
    html.match_indices(needle)
        .map(|(at, _)| html[at + needle.len()..at + needle.len() + 22].to_owned())
        .collect()
}

async fn foreign_handles(bin: &str) {
    let app = start(bin).await;
    let mut ada = signed_in(&app, "ada", "lovelace").await;
    let mut ada2 = signed_in(&app, "ada", "lovelace").await;
    let mut grace = signed_in(&app, "grace", "hopper").await;
    let _grace2 = signed_in(&app, "grace", "hopper").await;
    let theirs = handles(&mut grace).await;
    assert_eq!(theirs.len(), 1, "{bin}: grace sees her other session");
    let own_id = ada.cookie.clone().unwrap();
    let own_id = own_id.split('.').next().unwrap_or_default().to_owned();
    // Another user's handle, a made-up one, a session id, none: a styled
    // 404 page with the app's headers, and nothing ended.
    for handle in [theirs[0].as_str(), "AAAAAAAAAAAAAAAAAAAAAA", &own_id, ""] {
        let token = ada.token("/sessions").await;
        let form = format!("handle={handle}&csrf_token={token}");
        let res = ada.send("POST", "/sessions/end", &[FORM], &form).await;
        assert_eq!(res.status, 404, "{bin}: handle {handle:?}");
        let body = String::from_utf8_lossy(&res.body);
        assert!(body.contains("No such session"), "{bin}: {body}");
        assert!(res.header("content-type").unwrap().starts_with("text/html"));
        assert!(res.header("content-security-policy").is_some());
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }
    assert_eq!(handles(&mut grace).await, theirs, "{bin}: grace's are left");
    assert!(
        String::from_utf8_lossy(&ada2.send("GET", "/", &[], "").await.body)
            .contains("Hello, Ada Lovelace"),
        "{bin}: ada's other session is left"
    );
    // Her own other session's handle: ended.
    let mine = handles(&mut ada).await;
    assert_eq!(mine.len(), 1);
    let token = ada.token("/sessions").await;
    let form = format!("handle={}&csrf_token={token}", mine[0]);
    let res = ada.send("POST", "/sessions/end", &[FORM], &form).await;
    assert_eq!(res.header("location"), Some("/sessions"), "{bin}");
    assert_eq!(
        ada2.send("GET", "/", &[], "").await.header("location"),
        Some("/login"),
        "{bin}: the other session is signed out"
    );
}

#[tokio::test]
async fn a_handle_that_is_not_one_of_yours_gets_a_styled_404() {
    for bin in [
        env!("CARGO_BIN_EXE_web-axum"),
        env!("CARGO_BIN_EXE_web-actix"),
        env!("CARGO_BIN_EXE_web-hyper"),
    ] {
        foreign_handles(bin).await;
    }
}
