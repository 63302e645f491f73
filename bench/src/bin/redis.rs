//! Part 2: sessions on Redis. Latency per request and Redis commands per
//! request, for session-axum and session-actix on session-redis (with its
//! client-side cache off and on) against
//! tower-sessions (with tower-sessions-redis-store) and actix-session (with
//! its `RedisSessionStore`).
//!
//! The services are called in-process, as in part 1; only the stores talk to
//! Redis, over loopback, to a redis-server this program starts on a free
//! port (`session_redis::testing::LocalRedis`, killed when the program
//! ends). See README.md.

#[path = "../common.rs"]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{env_usize, median, quantile, shuffle, sorted};
use session_redis::redis;
use session_redis::testing::LocalRedis;

/// The session key the handlers read and write.
const KEY: &str = "n";
/// actix-session's cookie key (it cannot run without one).
const KEY64: [u8; 64] = [42; 64];

type LocalFut<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    /// A live session's cookie; the handler reads one value.
    Read,
    /// A live session's cookie; the handler reads a counter and writes it + 1.
    Write,
}

impl Case {
    const ALL: [Case; 2] = [Case::Read, Case::Write];

    fn path(self) -> &'static str {
        match self {
            Case::Read => "/b",
            Case::Write => "/c",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Case::Read => "(b) cookie, read",
            Case::Write => "(c) cookie, read+write",
        }
    }
}

// ---------------------------------------------------------------------------
// Drivers

struct Probe {
    status: u16,
    set_cookie: Vec<String>,
    body: String,
}

trait Driver {
    /// One request, fully inspected.
    fn probe<'a>(&'a self, path: &'static str, cookie: Option<&'a str>) -> LocalFut<'a, Probe>;
    /// `n` requests back to back; each one's latency (ns) is pushed to `out`.
    fn run<'a>(
        &'a self,
        path: &'static str,
        cookie: &'a str,
        n: usize,
        out: &'a mut Vec<f64>,
    ) -> LocalFut<'a, ()>;
}

fn set_cookies<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    values
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

struct AxumDriver(axum::Router);

fn axum_request(path: &'static str, cookie: Option<&str>) -> http::Request<axum::body::Body> {
    let mut b = http::Request::builder().uri(path);
    if let Some(c) = cookie {
        b = b.header(http::header::COOKIE, c);
    }
    b.body(axum::body::Body::empty()).unwrap()
}

impl Driver for AxumDriver {
    fn probe<'a>(&'a self, path: &'static str, cookie: Option<&'a str>) -> LocalFut<'a, Probe> {
        use tower::ServiceExt;
        Box::pin(async move {
            let res = self
                .0
                .clone()
                .oneshot(axum_request(path, cookie))
                .await
                .unwrap();
            let status = res.status().as_u16();
            let set_cookie = set_cookies(
                res.headers()
                    .get_all(http::header::SET_COOKIE)
                    .iter()
                    .map(|v| v.as_bytes()),
            );
            let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            Probe {
                status,
                set_cookie,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        })
    }

    fn run<'a>(
        &'a self,
        path: &'static str,
        cookie: &'a str,
        n: usize,
        out: &'a mut Vec<f64>,
    ) -> LocalFut<'a, ()> {
        use tower::ServiceExt;
        Box::pin(async move {
            for _ in 0..n {
                let start = Instant::now();
                let res = self
                    .0
                    .clone()
                    .oneshot(axum_request(path, Some(cookie)))
                    .await
                    .unwrap();
                let took = start.elapsed();
                assert_eq!(res.status(), 200, "{path}: a request failed");
                black_box(res);
                out.push(took.as_nanos() as f64);
            }
        })
    }
}

struct ActixDriver<S>(S);

fn actix_request(path: &'static str, cookie: Option<&str>) -> actix_http::Request {
    let mut b = actix_web::test::TestRequest::get().uri(path);
    if let Some(c) = cookie {
        b = b.insert_header((actix_web::http::header::COOKIE, c));
    }
    b.to_request()
}

impl<S, B> Driver for ActixDriver<S>
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    fn probe<'a>(&'a self, path: &'static str, cookie: Option<&'a str>) -> LocalFut<'a, Probe> {
        Box::pin(async move {
            let res = actix_web::test::call_service(&self.0, actix_request(path, cookie)).await;
            let status = res.status().as_u16();
            let set_cookie = set_cookies(
                res.headers()
                    .get_all(actix_web::http::header::SET_COOKIE)
                    .map(|v| v.as_bytes()),
            );
            let body = actix_web::test::read_body(res).await;
            Probe {
                status,
                set_cookie,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        })
    }

    fn run<'a>(
        &'a self,
        path: &'static str,
        cookie: &'a str,
        n: usize,
        out: &'a mut Vec<f64>,
    ) -> LocalFut<'a, ()> {
        Box::pin(async move {
            for _ in 0..n {
                let start = Instant::now();
                let res =
                    actix_web::test::call_service(&self.0, actix_request(path, Some(cookie))).await;
                let took = start.elapsed();
                assert_eq!(res.status(), 200, "{path}: a request failed");
                black_box(res);
                out.push(took.as_nanos() as f64);
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Apps: routes /b (read), /c (read + write), /n (the counter, for checks).

/// Our config: the same as part 1's main rows (`SessionConfig::default()`,
/// cookie name `id`, which the default `__Host-` prefix turns into
/// `__Host-id`).
fn our_config() -> session_axum::SessionConfig {
    let mut config = session_axum::SessionConfig::default();
    config.cookie.name = "id".to_owned();
    config.cookie.secure = true;
    config.cookie.http_only = true;
    config.cookie.path = "/".to_owned();
    config
}

mod axum_apps {
    use std::hint::black_box;

    use axum::Router;
    use axum::routing::get;
    use session_axum::{Session, SessionLayer};
    use session_redis::RedisStore;
    use tower_sessions_014::SessionManagerLayer;
    use tower_sessions_014::cookie::SameSite;
    use tower_sessions_redis_store::RedisStore as TsRedisStore;
    use tower_sessions_redis_store::fred::prelude::Client as FredClient;

    use super::KEY;

    async fn plain() -> &'static str {
        "ok"
    }

    async fn zero() -> &'static str {
        "0"
    }

    pub(crate) fn bare() -> Router {
        Router::new()
            .route("/b", get(plain))
            .route("/c", get(plain))
            .route("/n", get(zero))
            .with_state(())
    }

    async fn ours_read(Session(s): Session) -> &'static str {
        black_box(s.get::<u64>(KEY).unwrap());
        "ok"
    }

    async fn ours_write(Session(s): Session) -> &'static str {
        let n = s.get::<u64>(KEY).unwrap().unwrap_or(0);
        s.insert(KEY, &(n + 1)).unwrap();
        "ok"
    }

    async fn ours_count(Session(s): Session) -> String {
        s.get::<u64>(KEY).unwrap().unwrap_or(0).to_string()
    }

    /// Ours, on `store`.
    pub(crate) fn ours(store: RedisStore) -> Router {
        let layer = SessionLayer::with_store(store, super::our_config()).unwrap();
        Router::new()
            .route("/b", get(ours_read))
            .route("/c", get(ours_write))
            .route("/n", get(ours_count))
            .layer(layer)
            .with_state(())
    }

    async fn ts_read(s: tower_sessions_014::Session) -> &'static str {
        black_box(s.get::<u64>(KEY).await.unwrap());
        "ok"
    }

    async fn ts_write(s: tower_sessions_014::Session) -> &'static str {
        let n = s.get::<u64>(KEY).await.unwrap().unwrap_or(0);
        s.insert(KEY, n + 1).await.unwrap();
        "ok"
    }

    async fn ts_count(s: tower_sessions_014::Session) -> String {
        s.get::<u64>(KEY).await.unwrap().unwrap_or(0).to_string()
    }

    /// tower-sessions 0.14 on its Redis store (fred), with part 1's cookie
    /// settings: name `id`, Secure, HttpOnly, SameSite=Lax, Path=/,
    /// browser-session cookie (its default expiry), unsigned (its default).
    pub(crate) fn tower_sessions(client: FredClient) -> Router {
        let layer = SessionManagerLayer::new(TsRedisStore::new(client))
            .with_name("id")
            .with_secure(true)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/");
        Router::new()
            .route("/b", get(ts_read))
            .route("/c", get(ts_write))
            .route("/n", get(ts_count))
            .layer(layer)
            .with_state(())
    }
}

mod actix_apps {
    use std::hint::black_box;

    use actix_session::storage::RedisSessionStore;
    use actix_web::cookie::{Key, SameSite};
    use actix_web::web;
    use session_actix::{Session, SessionMiddleware};
    use session_redis::RedisStore;

    use super::{ActixDriver, Driver, KEY, KEY64};

    async fn plain() -> &'static str {
        "ok"
    }

    async fn zero() -> &'static str {
        "0"
    }

    async fn ours_read(s: Session) -> &'static str {
        black_box(s.get::<u64>(KEY).unwrap());
        "ok"
    }

    async fn ours_write(s: Session) -> &'static str {
        let n = s.get::<u64>(KEY).unwrap().unwrap_or(0);
        s.insert(KEY, &(n + 1)).unwrap();
        "ok"
    }

    async fn ours_count(s: Session) -> String {
        s.get::<u64>(KEY).unwrap().unwrap_or(0).to_string()
    }

    async fn as_read(s: actix_session::Session) -> &'static str {
        black_box(s.get::<u64>(KEY).unwrap());
        "ok"
    }

    async fn as_write(s: actix_session::Session) -> &'static str {
        let n = s.get::<u64>(KEY).unwrap().unwrap_or(0);
        s.insert(KEY, n + 1).unwrap();
        "ok"
    }

    async fn as_count(s: actix_session::Session) -> String {
        s.get::<u64>(KEY).unwrap().unwrap_or(0).to_string()
    }

    pub(crate) async fn bare() -> Box<dyn Driver> {
        let app = actix_web::App::new()
            .route("/b", web::get().to(plain))
            .route("/c", web::get().to(plain))
            .route("/n", web::get().to(zero));
        Box::new(ActixDriver(actix_web::test::init_service(app).await))
    }

    pub(crate) async fn ours(store: RedisStore) -> Box<dyn Driver> {
        let mw = SessionMiddleware::with_store(store, super::our_config()).unwrap();
        let app = actix_web::App::new()
            .wrap(mw)
            .route("/b", web::get().to(ours_read))
            .route("/c", web::get().to(ours_write))
            .route("/n", web::get().to(ours_count));
        Box::new(ActixDriver(actix_web::test::init_service(app).await))
    }

    /// actix-session 0.11 on its `RedisSessionStore` (one
    /// `ConnectionManager`), with its defaults, as in part 1: name `id`,
    /// Secure, HttpOnly, SameSite=Lax, Path=/, browser-session cookie,
    /// Private (encrypted) cookie content: here the cookie holds only the
    /// session key; the state is a JSON string under that key in Redis.
    pub(crate) async fn actix_session(url: &str) -> Box<dyn Driver> {
        let store = RedisSessionStore::new(url).await.unwrap();
        let mw = actix_session::SessionMiddleware::builder(store, Key::from(&KEY64))
            .cookie_name("id".to_owned())
            .cookie_secure(true)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_path("/".to_owned())
            .build();
        let app = actix_web::App::new()
            .wrap(mw)
            .route("/b", web::get().to(as_read))
            .route("/c", web::get().to(as_write))
            .route("/n", web::get().to(as_count));
        Box::new(ActixDriver(actix_web::test::init_service(app).await))
    }
}

// ---------------------------------------------------------------------------
// Targets

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Bare,
    Peer,
    Ours,
    /// Ours as `RedisStore::new` makes it: the default configuration, with
    /// the client-side cache on.
    Cached,
}

struct Target {
    framework: &'static str,
    label: &'static str,
    role: Role,
    driver: Box<dyn Driver>,
    cookie: String,
}

async fn build_targets(url: &str) -> Vec<Target> {
    use session_redis::RedisStore;
    use tower_sessions_redis_store::fred::prelude::{ClientLike, Config};

    let fred = tower_sessions_redis_store::fred::prelude::Client::new(
        Config::from_url(url).unwrap(),
        None,
        None,
        None,
    );
    fred.init().await.expect("fred cannot connect");
    // Our stores: one each, as an app would have; separate key prefixes.
    let ours_axum = RedisStore::new(url.to_owned())
        .unwrap()
        .with_prefix("bench:axum:")
        .without_cache();
    let ours_actix = RedisStore::new(url.to_owned())
        .unwrap()
        .with_prefix("bench:actix:")
        .without_cache();
    ours_axum.ping().await.unwrap();
    ours_actix.ping().await.unwrap();
    // The default configuration: the cache is on unless turned off.
    let cached = |prefix: &str| RedisStore::new(url.to_owned()).unwrap().with_prefix(prefix);
    let (cached_axum, cached_actix) = (cached("bench:axum-cache:"), cached("bench:actix-cache:"));
    cached_axum.ping().await.unwrap();
    cached_actix.ping().await.unwrap();

    let t = |framework, label, role, driver| Target {
        framework,
        label,
        role,
        driver,
        cookie: String::new(),
    };
    vec![
        t(
            "axum",
            "axum (bare)",
            Role::Bare,
            Box::new(AxumDriver(axum_apps::bare())) as Box<dyn Driver>,
        ),
        t(
            "axum",
            "axum + tower-sessions 0.14 (redis-store 0.16, fred)",
            Role::Peer,
            Box::new(AxumDriver(axum_apps::tower_sessions(fred))),
        ),
        t(
            "axum",
            "axum + session-axum (session-redis, no cache)",
            Role::Ours,
            Box::new(AxumDriver(axum_apps::ours(ours_axum))),
        ),
        t(
            "axum",
            "axum + session-axum (session-redis, default: client-side cache)",
            Role::Cached,
            Box::new(AxumDriver(axum_apps::ours(cached_axum))),
        ),
        t(
            "actix",
            "actix-web (bare)",
            Role::Bare,
            actix_apps::bare().await,
        ),
        t(
            "actix",
            "actix-web + actix-session (RedisSessionStore)",
            Role::Peer,
            actix_apps::actix_session(url).await,
        ),
        t(
            "actix",
            "actix-web + session-actix (session-redis, no cache)",
            Role::Ours,
            actix_apps::ours(ours_actix).await,
        ),
        t(
            "actix",
            "actix-web + session-actix (session-redis, default: client-side cache)",
            Role::Cached,
            actix_apps::ours(cached_actix).await,
        ),
    ]
}

/// Creates the session the cases replay and checks that the cases do what
/// they claim. Returns a line for the report.
async fn prepare(target: &mut Target, bare_cookie: &str) -> String {
    let d = &target.driver;
    if target.role == Role::Bare {
        target.cookie = bare_cookie.to_owned();
        for case in Case::ALL {
            assert_eq!(d.probe(case.path(), Some(bare_cookie)).await.status, 200);
        }
        return format!(
            "{}: plain handlers; the cases send `{bare_cookie}`",
            target.label
        );
    }
    let created = d.probe("/c", None).await;
    assert_eq!(created.status, 200, "{}: create", target.label);
    let set = created
        .set_cookie
        .first()
        .unwrap_or_else(|| panic!("{}: no Set-Cookie on create", target.label));
    let cookie = set.split(';').next().unwrap().trim().to_owned();
    let n0: u64 = d.probe("/n", Some(&cookie)).await.body.parse().unwrap();
    assert!(n0 >= 1, "{}: the cookie is not accepted", target.label);
    let name = cookie.split('=').next().unwrap_or_default();
    let mut line = format!(
        "{}: cookie `{name}=…` ({} bytes); Set-Cookie sent by case:",
        target.label,
        cookie.len()
    );
    for case in Case::ALL {
        let p = d.probe(case.path(), Some(&cookie)).await;
        assert_eq!(p.status, 200, "{} {:?}", target.label, case);
        let _ = write!(
            line,
            " {}={}",
            &case.label()[..3],
            if p.set_cookie.is_empty() { "no" } else { "yes" }
        );
    }
    let n1: u64 = d.probe("/n", Some(&cookie)).await.body.parse().unwrap();
    assert_eq!(n1, n0 + 1, "{}: the write case did not write", target.label);
    let _ = write!(line, "; counter {n0} before, {n1} after one (c)");
    target.cookie = cookie;
    line
}

// ---------------------------------------------------------------------------
// Counting Redis commands

/// `INFO commandstats` as command name → (calls, microseconds).
fn commandstats(admin: &mut redis::Connection) -> HashMap<String, (u64, u64)> {
    let text: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(admin)
        .expect("INFO commandstats");
    let mut stats = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cmdstat_") else {
            continue;
        };
        let Some((name, fields)) = rest.split_once(':') else {
            continue;
        };
        let field = |key: &str| -> u64 {
            fields
                .split(',')
                .find_map(|kv| kv.strip_prefix(key))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        stats.insert(name.to_owned(), (field("calls="), field("usec=")));
    }
    stats
}

/// `redis-cli monitor` on our server: every command it executes, those run
/// by Lua scripts marked `[0 lua]`; read on a thread of its own.
struct Monitor {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Monitor {
    fn start(port: &str) -> Self {
        let mut child = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", port, "monitor"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run redis-cli monitor");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let monitor = Self { child, lines };
        monitor.wait_for(|l| l.trim() == "OK");
        monitor
    }

    /// Waits (up to 10 s) until a line satisfies `pred`; returns its index.
    fn wait_for(&self, pred: impl Fn(&str) -> bool) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.lines.lock().unwrap().iter().position(|l| pred(l)) {
                return i;
            }
            assert!(Instant::now() < deadline, "redis-cli monitor is silent");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The commands between the two `ECHO` markers: (by client, by Lua).
    fn between(&self, start: &str, end: &str) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
        let i = self.wait_for(|l| l.contains(&format!("\"{start}\"")));
        let j = self.wait_for(|l| l.contains(&format!("\"{end}\"")));
        let lines = self.lines.lock().unwrap();
        let (mut client, mut lua) = (BTreeMap::new(), BTreeMap::new());
        for line in &lines[i + 1..j] {
            // `<time> [<db> <client address or lua>] "CMD" "arg" ...`
            let Some((origin, rest)) = line.split_once(']') else {
                continue;
            };
            let name = rest
                .trim_start()
                .trim_start_matches('"')
                .split('"')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if name == "info" || name == "echo" || name == "ping" {
                continue; // ours (the admin connection's, or the cache's PINGs and delivery check)
            }
            let map = if origin.ends_with(" lua") {
                &mut lua
            } else {
                &mut client
            };
            *map.entry(name).or_default() += 1;
        }
        (client, lua)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Commands per request for one (target, case).
struct Counts {
    /// Top-level commands (client round trips), by name.
    client: BTreeMap<String, u64>,
    /// Commands run inside Lua scripts, by name.
    lua: BTreeMap<String, u64>,
    /// `INFO commandstats` deltas (client and Lua together), by name.
    stats: BTreeMap<String, u64>,
    /// Server time (µs) in the top-level commands (a script's includes the
    /// commands it runs).
    usec: u64,
    requests: usize,
}

fn per_request(map: &BTreeMap<String, u64>, n: usize) -> (f64, String) {
    let total = map.values().sum::<u64>() as f64 / n as f64;
    let detail = map
        .iter()
        .map(|(k, v)| {
            let per = *v as f64 / n as f64;
            if (per - per.round()).abs() < 0.005 {
                format!("{} {}", k.to_ascii_uppercase(), per.round())
            } else {
                format!("{} {per:.2}", k.to_ascii_uppercase())
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    (
        total,
        if detail.is_empty() {
            "—".into()
        } else {
            detail
        },
    )
}

/// `n` requests of one (target, case) between two `ECHO` markers (seen by
/// the monitor, if one runs); the `INFO commandstats` deltas around them.
async fn counted_run(
    target: &Target,
    case: Case,
    n: usize,
    admin: &mut redis::Connection,
    tag: &str,
) -> HashMap<String, (u64, u64)> {
    let before = commandstats(admin);
    let _: String = redis::cmd("ECHO")
        .arg(format!("{tag}-start"))
        .query(admin)
        .unwrap();
    let mut sink = Vec::with_capacity(n);
    target
        .driver
        .run(case.path(), &target.cookie, n, &mut sink)
        .await;
    let _: String = redis::cmd("ECHO")
        .arg(format!("{tag}-end"))
        .query(admin)
        .unwrap();
    let after = commandstats(admin);
    let mut delta = HashMap::new();
    for (name, (calls, usec)) in after {
        let (calls0, usec0) = before.get(&name).copied().unwrap_or((0, 0));
        if calls > calls0 && name != "info" && name != "echo" && name != "ping" {
            delta.insert(name, (calls - calls0, usec - usec0));
        }
    }
    delta
}

/// Commands per request of one (target, case): a run with no monitor for
/// the counts and times of `INFO commandstats` (MONITOR slows every command
/// down, Lua's most), then a run under MONITOR to tell the client's
/// commands from those its scripts ran.
async fn count_commands(
    target: &Target,
    case: Case,
    n: usize,
    admin: &mut redis::Connection,
    port: &str,
    tag: usize,
) -> Counts {
    let quiet = counted_run(target, case, n, admin, &format!("bench-quiet-{tag}")).await;
    let monitor = Monitor::start(port);
    let tag = format!("bench-monitored-{tag}");
    counted_run(target, case, n, admin, &tag).await;
    let (client, lua) = monitor.between(&format!("{tag}-start"), &format!("{tag}-end"));
    drop(monitor);
    let usec = client
        .keys()
        .map(|name| quiet.get(name).map_or(0, |&(_, usec)| usec))
        .sum();
    Counts {
        client,
        lua,
        stats: quiet
            .into_iter()
            .map(|(k, (calls, _))| (k, calls))
            .collect(),
        usec,
        requests: n,
    }
}

// ---------------------------------------------------------------------------

fn main() {
    // Our own server on a free loopback port; killed when `server` drops
    // (also on a panic).
    let server = LocalRedis::start();
    let url = server.url();
    let mut admin = server.admin();
    actix_web::rt::System::new().block_on(run(&url, &mut admin));
    drop(server);
}

async fn run(url: &str, admin: &mut redis::Connection) {
    let reps = env_usize("BENCH_REPS", 30).max(1);
    let n = env_usize("BENCH_N", 1000).max(1);
    let warmup = env_usize("BENCH_WARMUP", 2);
    let count_n = env_usize("BENCH_COUNT_N", 1000).max(1);
    let port = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let info: String = redis::cmd("INFO").arg("server").query(admin).unwrap();
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_owned();

    let mut targets = build_targets(url).await;
    let bare_cookie = format!("id={}", session_axum::SessionId::generate());
    let mut setup = Vec::new();
    for t in &mut targets {
        setup.push(prepare(t, &bare_cookie).await);
    }

    // Commands per request, each (target, case) alone, untimed.
    eprintln!("counting Redis commands ({count_n} requests per row and case)...");
    let mut counts: Vec<[Option<Counts>; 2]> = targets.iter().map(|_| [None, None]).collect();
    let mut tag = 0;
    for (i, t) in targets.iter().enumerate() {
        for case in Case::ALL {
            tag += 1;
            counts[i][case as usize] =
                Some(count_commands(t, case, count_n, admin, &port, tag).await);
        }
    }

    // Latency, interleaved as in part 1.
    let mut work: Vec<(usize, Case)> = (0..targets.len())
        .flat_map(|i| Case::ALL.map(|c| (i, c)))
        .collect();
    // Per (target, case): every request's latency, and each rep's median.
    let mut all: Vec<[Vec<f64>; 2]> = targets.iter().map(|_| Default::default()).collect();
    let mut rep_medians: Vec<[Vec<f64>; 2]> = targets.iter().map(|_| Default::default()).collect();
    eprintln!(
        "timing {} configurations x {reps} reps (+{warmup} warm-up) x {n} requests...",
        work.len()
    );
    let started = Instant::now();
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut buf = Vec::with_capacity(n);
    for rep in 0..warmup + reps {
        shuffle(&mut work, &mut rng);
        for &(i, case) in &work {
            let t = &targets[i];
            buf.clear();
            t.driver.run(case.path(), &t.cookie, n, &mut buf).await;
            if rep >= warmup {
                rep_medians[i][case as usize].push(median(&buf));
                all[i][case as usize].extend_from_slice(&buf);
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!("done in {:.1} s", elapsed.as_secs_f64());

    // ------------------------------------------------------------------
    // Report
    let us = |ns: f64| ns / 1000.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run: BENCH_REPS={reps} BENCH_N={n} BENCH_WARMUP={warmup} BENCH_COUNT_N={count_n}; redis-server {version} (ours, loopback, port {port}); {} configurations interleaved in shuffled order each rep; {:.1} s of timing.\n",
        work.len(),
        elapsed.as_secs_f64()
    );
    let _ = writeln!(out, "Setup and sanity checks:\n");
    for line in &setup {
        let _ = writeln!(out, "- {line}");
    }

    let _ = writeln!(out, "\n### Latency per request\n");
    let _ = writeln!(
        out,
        "| config | case | median µs | p90 µs | p99 µs | median − bare µs | ours / peer (median; per-rep p25–p75) |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    let stat = |i: usize, case: Case| sorted(all[i][case as usize].clone());
    let bare_of = |i: usize| {
        targets
            .iter()
            .position(|b| b.framework == targets[i].framework && b.role == Role::Bare)
            .unwrap()
    };
    let peer_of = |i: usize| {
        targets
            .iter()
            .position(|b| b.framework == targets[i].framework && b.role == Role::Peer)
            .unwrap()
    };
    let mut latency_ratios = Vec::new();
    for framework in ["axum", "actix"] {
        for case in Case::ALL {
            for (i, t) in targets.iter().enumerate() {
                if t.framework != framework {
                    continue;
                }
                let s = stat(i, case);
                let med = quantile(&s, 0.5);
                let over = if t.role == Role::Bare {
                    "—".to_owned()
                } else {
                    format!("{:.1}", us(med - quantile(&stat(bare_of(i), case), 0.5)))
                };
                let ratio = if matches!(t.role, Role::Ours | Role::Cached) {
                    let p = peer_of(i);
                    let peer_med = quantile(&stat(p, case), 0.5);
                    let r = med / peer_med;
                    let per_rep = sorted(
                        rep_medians[i][case as usize]
                            .iter()
                            .zip(&rep_medians[p][case as usize])
                            .map(|(a, b)| a / b)
                            .collect(),
                    );
                    latency_ratios.push((framework, case, t.role, med, peer_med, r));
                    format!(
                        "{r:.2} ({:.2}–{:.2})",
                        quantile(&per_rep, 0.25),
                        quantile(&per_rep, 0.75)
                    )
                } else {
                    "—".to_owned()
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.1} | {:.1} | {:.1} | {} | {} |",
                    t.label,
                    case.label(),
                    us(med),
                    us(quantile(&s, 0.9)),
                    us(quantile(&s, 0.99)),
                    over,
                    ratio
                );
            }
        }
    }

    let _ = writeln!(out, "\n### Redis commands per request\n");
    let _ = writeln!(
        out,
        "Round trips: top-level commands the client sent (MONITOR lines not from `lua`). Executed: `INFO commandstats` deltas, which count the commands run inside Lua scripts too. Redis server µs: commandstats `usec` of the top-level commands per request (a script's time includes its commands). Per row and case, {count_n} requests run alone for the commandstats counts and times, then {count_n} more under MONITOR for the round trips.\n"
    );
    let _ = writeln!(
        out,
        "| config | case | round trips | of which | executed (commandstats) | of which | Redis server µs |"
    );
    let _ = writeln!(out, "|---|---|---:|---|---:|---|---:|");
    let mut trips = Vec::new();
    for framework in ["axum", "actix"] {
        for case in Case::ALL {
            for (i, t) in targets.iter().enumerate() {
                if t.framework != framework || t.role == Role::Bare {
                    continue;
                }
                let c = counts[i][case as usize].as_ref().unwrap();
                let (rt, rt_detail) = per_request(&c.client, c.requests);
                let (ex, ex_detail) = per_request(&c.stats, c.requests);
                // Cross-check: MONITOR's client + Lua lines = commandstats.
                let (lua_total, _) = per_request(&c.lua, c.requests);
                if ((rt + lua_total) - ex).abs() > 0.1 {
                    eprintln!(
                        "note: {} {}: MONITOR saw {:.2} commands/request, commandstats {ex:.2}",
                        t.label,
                        case.label(),
                        rt + lua_total
                    );
                }
                trips.push((framework, case, t.role, rt, ex));
                let _ = writeln!(
                    out,
                    "| {} | {} | {rt:.2} | {rt_detail} | {ex:.2} | {ex_detail} | {:.1} |",
                    t.label,
                    case.label(),
                    c.usec as f64 / c.requests as f64
                );
            }
        }
    }

    let _ = writeln!(out, "\n### Targets\n");
    let _ = writeln!(
        out,
        "| framework | case | row | target | ours | peer | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---:|---:|---|");
    for framework in ["axum", "actix"] {
        for case in Case::ALL {
            let get = |role| {
                trips
                    .iter()
                    .find(|(f, c, r, _, _)| *f == framework && *c == case && *r == role)
                    .map(|&(_, _, _, rt, ex)| (rt, ex))
                    .unwrap()
            };
            let (peer_rt, peer_ex) = get(Role::Peer);
            for (role, row, max_trips, max_ratio) in [
                (Role::Ours, "no cache", 1.0, 1.0),
                (
                    Role::Cached,
                    "default (cache)",
                    if case == Case::Read { 0.0 } else { 1.0 },
                    1.0,
                ),
            ] {
                let (ours_rt, ours_ex) = get(role);
                let _ = writeln!(
                    out,
                    "| {framework} | {} | {row} | ≤ {max_trips:.0} round trips per request | {ours_rt:.2} ({ours_ex:.2} executed) | {peer_rt:.2} ({peer_ex:.2} executed) | {} |",
                    case.label(),
                    if ours_rt <= max_trips + 1e-9 {
                        "met"
                    } else {
                        "MISSED"
                    }
                );
                let &(.., ours_med, peer_med, r) = latency_ratios
                    .iter()
                    .find(|(f, c, rl, ..)| *f == framework && *c == case && *rl == role)
                    .unwrap();
                let _ = writeln!(
                    out,
                    "| {framework} | {} | {row} | median latency ≤ {max_ratio} × peer | {:.1} µs | {:.1} µs | {r:.2}: {} |",
                    case.label(),
                    us(ours_med),
                    us(peer_med),
                    if r <= max_ratio { "met" } else { "MISSED" }
                );
            }
        }
    }
    print!("{out}");
}
