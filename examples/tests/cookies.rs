//! The binaries' cookie options from outside: `SESSION_COOKIE_NAME` with
//! and without a prefix, `SESSION_PARTITIONED`, and
//! `SESSION_CLEAR_SITE_DATA`, on the set cookie, the removal cookie and the
//! answers that end a session; and the combinations a browser would drop
//! in silence, refused at start.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use session_conformance::Response;
use session_conformance::http::send_headers;
use support::{App, bins};

const SECRET: &str = "cookie test secret, comfortably over 32 bytes";
const JSON: (&str, &str) = ("Content-Type", "application/json");
const REMOVED: &str = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";

/// Environment variables for one start.
type Env<'a> = &'a [(&'a str, &'a str)];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn name_of(bin: &str) -> &str {
    bin.rsplit('/').next().unwrap_or(bin)
}

/// `bin` with `SESSION_SECRET` and these variables, listening.
fn start(runtime: &tokio::runtime::Runtime, bin: &str, env: &[(&str, &str)]) -> App {
    let mut all = vec![("SESSION_SECRET", SECRET)];
    all.extend_from_slice(env);
    let mut command = Command::new(bin);
    command.env_remove("SESSION_STORE").stderr(Stdio::null());
    command.envs(all.iter().copied());
    let app = App::spawn(command);
    runtime.block_on(app.wait_ready());
    app
}

/// The cookie a browser would send back: `name=value` of a `Set-Cookie`.
fn pair_of(set_cookie: &str) -> &str {
    set_cookie.split("; ").next().unwrap()
}

struct Client<'a> {
    runtime: &'a tokio::runtime::Runtime,
    addr: SocketAddr,
}

impl Client<'_> {
    fn send(&self, method: &str, path: &str, cookie: Option<&str>, body: &str) -> Response {
        let mut headers = vec![JSON];
        if let Some(cookie) = cookie {
            headers.push(("Cookie", cookie));
        }
        self.runtime
            .block_on(send_headers(self.addr, method, path, &headers, body))
    }

    /// Logs `user` in; the cookie to send back.
    fn login(&self, user: &str) -> String {
        let res = self.send(
            "POST",
            "/session/login",
            None,
            &format!(r#"{{"username": "{user}"}}"#),
        );
        assert_eq!(res.status, 200);
        pair_of(res.header("set-cookie").expect("a session cookie")).to_owned()
    }
}

#[test]
fn cookie_names_bring_their_prefix_and_partitioned_to_set_and_removal_cookies() {
    let runtime = runtime();
    let secure = "Path=/; HttpOnly; Secure; SameSite=Lax";
    let partitioned = "Path=/; HttpOnly; Secure; SameSite=Lax; Partitioned";
    let plain = "Path=/; HttpOnly; SameSite=Lax";
    // The variables, the cookie's name, and its attributes.
    let cases: [(Env, &str, &str); 7] = [
        (&[], "__Host-id", secure),
        (
            &[("SESSION_COOKIE_NAME", "__Host-sid")],
            "__Host-sid",
            secure,
        ),
        (
            &[("SESSION_COOKIE_NAME", "__Host-Http-sid")],
            "__Host-Http-sid",
            secure,
        ),
        (&[("SESSION_PARTITIONED", "true")], "__Host-id", partitioned),
        (
            &[
                ("SESSION_COOKIE_NAME", "__Host-Http-x"),
                ("SESSION_PARTITIONED", "true"),
            ],
            "__Host-Http-x",
            partitioned,
        ),
        // Plain-HTTP development: the default name drops its prefix.
        (&[("SESSION_SECURE", "false")], "id", plain),
        (
            &[("SESSION_SECURE", "false"), ("SESSION_COOKIE_NAME", "sid")],
            "sid",
            plain,
        ),
    ];
    for bin in bins() {
        for (env, name, attributes) in cases {
            let what = format!("{} {env:?}", name_of(bin));
            let app = start(&runtime, bin, env);
            let client = Client {
                runtime: &runtime,
                addr: app.addr,
            };
            let res = client.send("POST", "/session/login", None, r#"{"username": "ada"}"#);
            assert_eq!(res.status, 200, "{what}");
            let set = res.header("set-cookie").expect("a session cookie");
            let (pair, rest) = set.split_once("; ").unwrap();
            assert!(pair.starts_with(&format!("{name}=")), "{what}: {set}");
            assert_eq!(rest, attributes, "{what}: {set}");

            // The browser sends it back under that name: the session is found.
            let res = client.send("GET", "/session/profile", Some(pair), "");
            assert_eq!(res.status, 200, "{what}: read back");
            // Under the default name when it is another: not found.
            if name != "__Host-id" {
                let (_, value) = pair.split_once('=').unwrap();
                let other = format!("__Host-id={value}");
                let res = client.send("GET", "/session/profile", Some(&other), "");
                assert_eq!(res.status, 401, "{what}: read under another name");
            }

            // Removed with the same name and attributes (Partitioned too).
            let res = client.send("POST", "/session/logout", Some(pair), "");
            assert_eq!(res.status, 200, "{what}");
            assert_eq!(
                res.all("set-cookie"),
                [format!("{name}=; {REMOVED}; {attributes}")],
                "{what}"
            );
        }
    }
}

fn run_to_exit(bin: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(bin);
    command
        .env("SESSION_SECRET", SECRET)
        .env("ADDR", support::free_addr().to_string())
        .env_remove("SESSION_STORE")
        .envs(env.iter().copied());
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{bin} {env:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn cookie_settings_a_browser_would_drop_stop_the_app_at_start() {
    // The variables, and what the message must name.
    let cases: [(Env, &[&str]); 9] = [
        (
            &[
                ("SESSION_COOKIE_NAME", "__Host-id"),
                ("SESSION_SECURE", "false"),
            ],
            &["SESSION_COOKIE_NAME", "SESSION_SECURE=true"],
        ),
        (
            &[
                ("SESSION_COOKIE_NAME", "__Host-Http-id"),
                ("SESSION_SECURE", "false"),
            ],
            &["SESSION_COOKIE_NAME", "SESSION_SECURE=true"],
        ),
        // Browsers match prefixes in any case.
        (
            &[
                ("SESSION_COOKIE_NAME", "__host-id"),
                ("SESSION_SECURE", "false"),
            ],
            &["SESSION_COOKIE_NAME", "SESSION_SECURE=true"],
        ),
        (
            &[
                ("SESSION_COOKIE_NAME", "__Secure-id"),
                ("SESSION_SECURE", "false"),
            ],
            &["SESSION_COOKIE_NAME", "SESSION_SECURE=true"],
        ),
        (
            &[("SESSION_PARTITIONED", "true"), ("SESSION_SECURE", "false")],
            &["SESSION_PARTITIONED", "SESSION_SECURE=true"],
        ),
        (
            &[("SESSION_PARTITIONED", "yes")],
            &["SESSION_PARTITIONED", "true or false"],
        ),
        (
            &[("SESSION_COOKIE_NAME", "my session")],
            &["SESSION_COOKIE_NAME", "__Host-", "__Host-Http-"],
        ),
        (
            &[("SESSION_CLEAR_SITE_DATA", "cache,everything")],
            &["SESSION_CLEAR_SITE_DATA", "cache, cookies and storage"],
        ),
        (
            &[("SESSION_CLEAR_SITE_DATA", "\"cache\"")],
            &["SESSION_CLEAR_SITE_DATA", "cache, cookies and storage"],
        ),
    ];
    for bin in bins() {
        for (env, named) in cases {
            let what = format!("{} {env:?}", name_of(bin));
            let out = run_to_exit(bin, env);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
            for word in named {
                assert!(stderr.contains(word), "{what}: {word} not in {stderr}");
            }
        }
    }
}

#[test]
fn clear_site_data_only_where_configured_and_only_on_logout_and_logout_all() {
    let runtime = runtime();
    let none: [&str; 0] = [];
    for bin in bins() {
        let what = name_of(bin);
        let app = start(
            &runtime,
            bin,
            &[("SESSION_CLEAR_SITE_DATA", "storage, cookies,cache")],
        );
        let client = Client {
            runtime: &runtime,
            addr: app.addr,
        };
        let expected = [r#""cache", "cookies", "storage""#];
        let res = client.send("POST", "/session/login", None, r#"{"username": "ada"}"#);
        assert_eq!(res.all("clear-site-data"), none, "{what}: login");
        let cookie = pair_of(res.header("set-cookie").unwrap()).to_owned();
        let cookie = Some(cookie.as_str());
        for (method, path, body) in [
            ("GET", "/session/profile", ""),
            ("POST", "/session/update", r#"{"a": 1}"#),
            ("GET", "/healthz", ""),
            ("GET", "/nowhere", ""),
        ] {
            let res = client.send(method, path, cookie, body);
            assert!(res.status < 500, "{what}: {path}");
            assert_eq!(res.all("clear-site-data"), none, "{what}: {path}");
        }
        let res = client.send("POST", "/session/logout", cookie, "");
        assert_eq!(res.status, 200, "{what}");
        assert_eq!(res.all("clear-site-data"), expected, "{what}: logout");
        // Nothing left to end: 401, and nothing to clear.
        for path in ["/session/logout", "/session/logout-all"] {
            let res = client.send("POST", path, cookie, "");
            assert_eq!(res.status, 401, "{what}: {path} again");
            assert_eq!(res.all("clear-site-data"), none, "{what}: {path} again");
        }

        let other = client.login("ada");
        let this = client.login("ada");
        let res = client.send("POST", "/session/logout-all", Some(&this), "");
        assert_eq!(res.json(), serde_json::json!({ "ended": 2 }), "{what}");
        assert_eq!(res.all("clear-site-data"), expected, "{what}: logout-all");
        // The other device's cookie is dropped as stale, its data kept.
        let res = client.send("GET", "/session/profile", Some(&other), "");
        assert_eq!(res.status, 401, "{what}");
        assert_eq!(res.all("clear-site-data"), none, "{what}: stale cookie");
        drop(app);

        // Not configured: never sent.
        let app = start(&runtime, bin, &[]);
        let client = Client {
            runtime: &runtime,
            addr: app.addr,
        };
        let cookie = client.login("ada");
        let res = client.send("POST", "/session/logout", Some(&cookie), "");
        assert_eq!(res.status, 200, "{what}");
        assert_eq!(res.all("clear-site-data"), none, "{what}: not configured");
        client.login("ada");
        let cookie = client.login("ada");
        let res = client.send("POST", "/session/logout-all", Some(&cookie), "");
        assert_eq!(res.status, 200, "{what}");
        assert_eq!(res.all("clear-site-data"), none, "{what}: not configured");
    }
}
