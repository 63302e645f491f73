//! In-process overhead benchmark: our session adapters (session-axum,
//! session-actix, session-hyper on session-core's `MemoryStore`) against the
//! bare frameworks and against tower-sessions and actix-session.
//!
//! Every service is called directly (no sockets), on one current-thread
//! runtime (actix's `System`, which is a current-thread tokio runtime with a
//! `LocalSet`). All configurations run interleaved, rep by rep, in a shuffled
//! order, so that load from other processes hits them alike. See README.md.

use std::fmt::Write as _;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// The session key the handlers read and write.
const KEY: &str = "n";
/// A signing secret for the "signed" supplementary rows (ours needs >= 32 bytes).
const SECRET: &str = "bench secret: at least thirty-two bytes long, surely";
/// Key material for the peers' signed/private cookies (the `cookie` crate wants 64 bytes).
const KEY64: [u8; 64] = [42; 64];

type LocalFut<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

// ---------------------------------------------------------------------------
// Cases

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    /// No cookie; the handler reads the session and finds nothing.
    NoCookieRead,
    /// A live session's cookie; the handler reads one value.
    CookieRead,
    /// A live session's cookie; the handler reads a counter and writes it + 1.
    CookieWrite,
    /// A live session's cookie; the handler never touches the session.
    CookieIgnore,
}

impl Case {
    const ALL: [Case; 4] = [
        Case::NoCookieRead,
        Case::CookieRead,
        Case::CookieWrite,
        Case::CookieIgnore,
    ];

    fn path(self) -> &'static str {
        match self {
            Case::NoCookieRead => "/a",
            Case::CookieRead => "/b",
            Case::CookieWrite => "/c",
            Case::CookieIgnore => "/d",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Case::NoCookieRead => "(a) no cookie, read",
            Case::CookieRead => "(b) cookie, read",
            Case::CookieWrite => "(c) cookie, read+write",
            Case::CookieIgnore => "(d) cookie, ignored",
        }
    }

    fn sends_cookie(self) -> bool {
        self != Case::NoCookieRead
    }
}

// ---------------------------------------------------------------------------
// Drivers: one per framework, generic over the service they call.

/// What a single probing request saw (setup and sanity checks only).
struct Probe {
    status: u16,
    set_cookie: Vec<String>,
    body: String,
}

trait Driver {
    /// One request, fully inspected.
    fn probe<'a>(&'a self, path: &'static str, cookie: Option<&'a str>) -> LocalFut<'a, Probe>;
    /// `n` requests back to back; the time they took.
    fn time<'a>(
        &'a self,
        path: &'static str,
        cookie: Option<&'a str>,
        n: usize,
    ) -> LocalFut<'a, Duration>;
}

fn set_cookies<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    values
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

// --- axum: `Router` through `tower::ServiceExt::oneshot` on a clone. Every
// router ends with `.with_state(())`, as `axum::serve` does through
// `into_make_service`: it turns handlers into routes once, not per request.

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

    fn time<'a>(
        &'a self,
        path: &'static str,
        cookie: Option<&'a str>,
        n: usize,
    ) -> LocalFut<'a, Duration> {
        use tower::ServiceExt;
        Box::pin(async move {
            let start = Instant::now();
            for _ in 0..n {
                let res = self
                    .0
                    .clone()
                    .oneshot(axum_request(path, cookie))
                    .await
                    .unwrap();
                black_box(res);
            }
            start.elapsed()
        })
    }
}

// --- actix-web: `test::init_service` + `test::call_service`.

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

    fn time<'a>(
        &'a self,
        path: &'static str,
        cookie: Option<&'a str>,
        n: usize,
    ) -> LocalFut<'a, Duration> {
        Box::pin(async move {
            let start = Instant::now();
            for _ in 0..n {
                let res = actix_web::test::call_service(&self.0, actix_request(path, cookie)).await;
                black_box(res);
            }
            start.elapsed()
        })
    }
}

// --- hyper: `hyper::service::Service::call` on a `service_fn` (wrapped or not).

struct HyperDriver<S>(S);

type HyperReq = http::Request<Full<Bytes>>;
type HyperRes = http::Response<Full<Bytes>>;

fn hyper_request(path: &'static str, cookie: Option<&str>) -> HyperReq {
    let mut b = http::Request::builder().uri(path);
    if let Some(c) = cookie {
        b = b.header(http::header::COOKIE, c);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

impl<S> Driver for HyperDriver<S>
where
    S: hyper::service::Service<HyperReq, Response = HyperRes>,
    S::Error: std::fmt::Debug,
{
    fn probe<'a>(&'a self, path: &'static str, cookie: Option<&'a str>) -> LocalFut<'a, Probe> {
        Box::pin(async move {
            let res = self.0.call(hyper_request(path, cookie)).await.unwrap();
            let status = res.status().as_u16();
            let set_cookie = set_cookies(
                res.headers()
                    .get_all(http::header::SET_COOKIE)
                    .iter()
                    .map(|v| v.as_bytes()),
            );
            let body = res.into_body().collect().await.unwrap().to_bytes();
            Probe {
                status,
                set_cookie,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        })
    }

    fn time<'a>(
        &'a self,
        path: &'static str,
        cookie: Option<&'a str>,
        n: usize,
    ) -> LocalFut<'a, Duration> {
        Box::pin(async move {
            let start = Instant::now();
            for _ in 0..n {
                let res = self.0.call(hyper_request(path, cookie)).await.unwrap();
                black_box(res);
            }
            start.elapsed()
        })
    }
}

// ---------------------------------------------------------------------------
// Handlers. Every app has the routes /a /b /c /d (the four cases) and /n
// (returns the counter; used only by the sanity checks, never timed).

mod axum_apps {
    use std::hint::black_box;

    use axum::Router;
    use axum::routing::get;
    use session_axum::{MemoryStore, Session, SessionConfig, SessionLayer, SessionStore};
    use tower_sessions::cookie::{Key, SameSite};
    use tower_sessions::{MemoryStore as TsMemoryStore, SessionManagerLayer};

    use super::{KEY, KEY64};

    async fn plain() -> &'static str {
        "ok"
    }

    async fn zero() -> &'static str {
        "0"
    }

    pub(crate) fn bare() -> Router {
        Router::new()
            .route("/a", get(plain))
            .route("/b", get(plain))
            .route("/c", get(plain))
            .route("/d", get(plain))
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

    pub(crate) fn ours(config: SessionConfig) -> Router {
        ours_on(MemoryStore::new(), config)
    }

    pub(crate) fn ours_on(store: impl SessionStore, config: SessionConfig) -> Router {
        let layer = SessionLayer::with_store(store, config).unwrap();
        Router::new()
            .route("/a", get(ours_read))
            .route("/b", get(ours_read))
            .route("/c", get(ours_write))
            .route("/d", get(plain))
            .route("/n", get(ours_count))
            .layer(layer)
            .with_state(())
    }

    async fn ts_read(s: tower_sessions::Session) -> &'static str {
        black_box(s.get::<u64>(KEY).await.unwrap());
        "ok"
    }

    async fn ts_write(s: tower_sessions::Session) -> &'static str {
        let n = s.get::<u64>(KEY).await.unwrap().unwrap_or(0);
        s.insert(KEY, n + 1).await.unwrap();
        "ok"
    }

    async fn ts_count(s: tower_sessions::Session) -> String {
        s.get::<u64>(KEY).await.unwrap().unwrap_or(0).to_string()
    }

    pub(crate) fn tower_sessions(signed: bool) -> Router {
        // As close to ours as the API allows: name `id`, Secure, HttpOnly,
        // SameSite=Lax (its default is Strict), Path=/, browser-session cookie
        // (its default expiry), unsigned unless `signed`.
        let layer = SessionManagerLayer::new(TsMemoryStore::default())
            .with_name("id")
            .with_secure(true)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/");
        let router = Router::new()
            .route("/a", get(ts_read))
            .route("/b", get(ts_read))
            .route("/c", get(ts_write))
            .route("/d", get(plain))
            .route("/n", get(ts_count));
        let router = if signed {
            router.layer(layer.with_signed(Key::from(&KEY64)))
        } else {
            router.layer(layer)
        };
        router.with_state(())
    }
}

mod actix_apps {
    use std::hint::black_box;

    use actix_session::config::CookieContentSecurity;
    use actix_session::storage::CookieSessionStore;
    use actix_web::cookie::{Key, SameSite};
    use actix_web::web;
    use session_actix::{MemoryStore, Session, SessionConfig, SessionMiddleware, SessionStore};

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
            .route("/a", web::get().to(plain))
            .route("/b", web::get().to(plain))
            .route("/c", web::get().to(plain))
            .route("/d", web::get().to(plain))
            .route("/n", web::get().to(zero));
        Box::new(ActixDriver(actix_web::test::init_service(app).await))
    }

    pub(crate) async fn ours(config: SessionConfig) -> Box<dyn Driver> {
        ours_on(MemoryStore::new(), config).await
    }

    pub(crate) async fn ours_on(
        store: impl SessionStore,
        config: SessionConfig,
    ) -> Box<dyn Driver> {
        let mw = SessionMiddleware::with_store(store, config).unwrap();
        let app = actix_web::App::new()
            .wrap(mw)
            .route("/a", web::get().to(ours_read))
            .route("/b", web::get().to(ours_read))
            .route("/c", web::get().to(ours_write))
            .route("/d", web::get().to(plain))
            .route("/n", web::get().to(ours_count));
        Box::new(ActixDriver(actix_web::test::init_service(app).await))
    }

    pub(crate) async fn actix_session(security: CookieContentSecurity) -> Box<dyn Driver> {
        // CookieSessionStore: the whole state lives in the cookie. Its
        // defaults: name `id`, Secure, HttpOnly, SameSite=Lax, Path=/,
        // browser-session cookie, Private (encrypted) content; set explicitly.
        let mw = actix_session::SessionMiddleware::builder(
            CookieSessionStore::default(),
            Key::from(&KEY64),
        )
        .cookie_name("id".to_owned())
        .cookie_secure(true)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/".to_owned())
        .cookie_content_security(security)
        .build();
        let app = actix_web::App::new()
            .wrap(mw)
            .route("/a", web::get().to(as_read))
            .route("/b", web::get().to(as_read))
            .route("/c", web::get().to(as_write))
            .route("/d", web::get().to(plain))
            .route("/n", web::get().to(as_count));
        Box::new(ActixDriver(actix_web::test::init_service(app).await))
    }
}

mod hyper_apps {
    use std::convert::Infallible;
    use std::hint::black_box;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::service::service_fn;
    use session_hyper::{
        MemoryStore, RequestSessionExt, SessionConfig, SessionManager, SessionService,
    };

    use super::{Driver, HyperDriver, HyperReq, HyperRes, KEY};

    fn text(s: impl Into<Bytes>) -> HyperRes {
        http::Response::new(Full::new(s.into()))
    }

    async fn bare_handler(req: HyperReq) -> Result<HyperRes, Infallible> {
        Ok(match req.uri().path() {
            "/n" => text("0"),
            _ => text("ok"),
        })
    }

    async fn ours_handler(req: HyperReq) -> Result<HyperRes, Infallible> {
        let s = req.session().expect("wrapped in SessionService");
        Ok(match req.uri().path() {
            "/a" | "/b" => {
                black_box(s.get::<u64>(KEY).unwrap());
                text("ok")
            }
            "/c" => {
                let n = s.get::<u64>(KEY).unwrap().unwrap_or(0);
                s.insert(KEY, &(n + 1)).unwrap();
                text("ok")
            }
            "/n" => text(s.get::<u64>(KEY).unwrap().unwrap_or(0).to_string()),
            _ => text("ok"),
        })
    }

    pub(crate) fn bare() -> Box<dyn Driver> {
        Box::new(HyperDriver(service_fn(bare_handler)))
    }

    pub(crate) fn ours(config: SessionConfig) -> Box<dyn Driver> {
        ours_on(MemoryStore::new(), config)
    }

    pub(crate) fn ours_on(
        store: impl session_hyper::SessionStore,
        config: SessionConfig,
    ) -> Box<dyn Driver> {
        let manager = SessionManager::new(store, config).unwrap();
        Box::new(HyperDriver(SessionService::new(
            service_fn(ours_handler),
            manager,
        )))
    }
}

// ---------------------------------------------------------------------------
// The memory store without its promise of immediacy

/// `MemoryStore`, delegated call by call, but not
/// [immediate](session_core::SessionStore::is_immediate): the engine takes
/// the path of stores that do IO (a boxed future for the load and one for
/// the commit), while the work stays the same.
#[derive(Default)]
struct NotImmediate(session_core::MemoryStore);

impl session_core::SessionStore for NotImmediate {
    fn load(
        &self,
        id: &session_core::SessionId,
        now: session_core::Timestamp,
    ) -> impl Future<Output = Result<Option<session_core::Record>, session_core::Error>> + Send
    {
        self.0.load(id, now)
    }

    fn create(
        &self,
        id: &session_core::SessionId,
        record: &session_core::Record,
    ) -> impl Future<Output = Result<session_core::WriteOutcome, session_core::Error>> + Send {
        self.0.create(id, record)
    }

    fn update(
        &self,
        id: &session_core::SessionId,
        update: session_core::Update,
    ) -> impl Future<Output = Result<session_core::WriteOutcome, session_core::Error>> + Send {
        self.0.update(id, update)
    }

    fn renew(
        &self,
        old_id: &session_core::SessionId,
        new_id: &session_core::SessionId,
        update: &session_core::Update,
    ) -> impl Future<Output = Result<session_core::WriteOutcome, session_core::Error>> + Send {
        self.0.renew(old_id, new_id, update)
    }

    fn delete(
        &self,
        id: &session_core::SessionId,
    ) -> impl Future<Output = Result<bool, session_core::Error>> + Send {
        self.0.delete(id)
    }

    fn user_sessions(
        &self,
        user: &str,
        now: session_core::Timestamp,
    ) -> impl Future<Output = Result<Vec<session_core::SessionId>, session_core::Error>> + Send
    {
        self.0.user_sessions(user, now)
    }

    fn delete_user(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<usize, session_core::Error>> + Send {
        self.0.delete_user(user)
    }
}

// ---------------------------------------------------------------------------
// Targets

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Bare,
    Peer,
    Ours,
}

/// Which comparison a row belongs to: the main one (everyone's defaults) or
/// the supplementary one (cookies signed on both sides).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Group {
    Main,
    Signed,
    /// Ours on the memory store declared not immediate: what the engine's
    /// second path (one boxed future for the load, one for the commit)
    /// costs against the in-place one of the main rows.
    Boxed,
}

struct Target {
    framework: &'static str,
    label: &'static str,
    role: Role,
    group: Group,
    driver: Box<dyn Driver>,
    /// `name=value` sent in the cookie cases.
    cookie: String,
}

/// Our config (the same `session_core::SessionConfig` type all three adapters
/// re-export).
fn our_config(signed: bool) -> session_axum::SessionConfig {
    let mut config = session_axum::SessionConfig::default();
    // Stated explicitly, though these are the defaults: unsigned, Secure,
    // HttpOnly, SameSite=Lax, Path=/, browser-session cookie named `id`,
    // touch_interval 60 s, ids not hashed at rest.
    config.cookie.name = "id".to_owned();
    config.cookie.secure = true;
    config.cookie.http_only = true;
    config.cookie.path = "/".to_owned();
    if signed {
        config.cookie.signing_keys = session_axum::SigningKeys::new([SECRET]);
    }
    config
}

async fn build_targets() -> Vec<Target> {
    use actix_session::config::CookieContentSecurity;
    let t = |framework, label, role, group, driver| Target {
        framework,
        label,
        role,
        group,
        driver,
        cookie: String::new(),
    };
    vec![
        t(
            "axum",
            "axum (bare)",
            Role::Bare,
            Group::Main,
            Box::new(AxumDriver(axum_apps::bare())) as Box<dyn Driver>,
        ),
        t(
            "axum",
            "axum + tower-sessions",
            Role::Peer,
            Group::Main,
            Box::new(AxumDriver(axum_apps::tower_sessions(false))),
        ),
        t(
            "axum",
            "axum + session-axum",
            Role::Ours,
            Group::Main,
            Box::new(AxumDriver(axum_apps::ours(our_config(false)))),
        ),
        t(
            "axum",
            "axum + tower-sessions (signed)",
            Role::Peer,
            Group::Signed,
            Box::new(AxumDriver(axum_apps::tower_sessions(true))),
        ),
        t(
            "axum",
            "axum + session-axum (signed)",
            Role::Ours,
            Group::Signed,
            Box::new(AxumDriver(axum_apps::ours(our_config(true)))),
        ),
        t(
            "actix",
            "actix-web (bare)",
            Role::Bare,
            Group::Main,
            actix_apps::bare().await,
        ),
        t(
            "actix",
            "actix-web + actix-session (cookie store, Private)",
            Role::Peer,
            Group::Main,
            actix_apps::actix_session(CookieContentSecurity::Private).await,
        ),
        t(
            "actix",
            "actix-web + session-actix",
            Role::Ours,
            Group::Main,
            actix_apps::ours(our_config(false)).await,
        ),
        t(
            "actix",
            "actix-web + actix-session (cookie store, Signed)",
            Role::Peer,
            Group::Signed,
            actix_apps::actix_session(CookieContentSecurity::Signed).await,
        ),
        t(
            "actix",
            "actix-web + session-actix (signed)",
            Role::Ours,
            Group::Signed,
            actix_apps::ours(our_config(true)).await,
        ),
        t(
            "hyper",
            "hyper service_fn (bare)",
            Role::Bare,
            Group::Main,
            hyper_apps::bare(),
        ),
        t(
            "hyper",
            "hyper + session-hyper",
            Role::Ours,
            Group::Main,
            hyper_apps::ours(our_config(false)),
        ),
        t(
            "axum",
            "axum + session-axum (boxed path)",
            Role::Ours,
            Group::Boxed,
            Box::new(AxumDriver(axum_apps::ours_on(
                NotImmediate::default(),
                our_config(false),
            ))),
        ),
        t(
            "actix",
            "actix-web + session-actix (boxed path)",
            Role::Ours,
            Group::Boxed,
            actix_apps::ours_on(NotImmediate::default(), our_config(false)).await,
        ),
        t(
            "hyper",
            "hyper + session-hyper (boxed path)",
            Role::Ours,
            Group::Boxed,
            hyper_apps::ours_on(NotImmediate::default(), our_config(false)),
        ),
    ]
}

/// Creates the session each cookie case replays and checks that every case
/// does what it claims. Returns a line for the report.
async fn prepare(target: &mut Target, bare_cookie: &str) -> String {
    let d = &target.driver;
    if target.role == Role::Bare {
        target.cookie = bare_cookie.to_owned();
        for case in Case::ALL {
            let p = d
                .probe(case.path(), case.sends_cookie().then_some(bare_cookie))
                .await;
            assert_eq!(p.status, 200, "{} {:?}", target.label, case);
        }
        return format!(
            "{}: plain handlers; cookie cases send `{bare_cookie}`",
            target.label
        );
    }
    // One request creates the session (counter = 1); replay its cookie.
    let created = d.probe("/c", None).await;
    assert_eq!(created.status, 200, "{}: create", target.label);
    let set = created
        .set_cookie
        .first()
        .unwrap_or_else(|| panic!("{}: no Set-Cookie on create", target.label));
    let cookie = set.split(';').next().unwrap().trim().to_owned();
    let attrs = set.split_once(';').map_or("", |(_, a)| a.trim());
    let n0: u64 = d.probe("/n", Some(&cookie)).await.body.parse().unwrap();
    assert!(
        n0 >= 1,
        "{}: the replayed cookie is not accepted",
        target.label
    );

    let name = cookie.split('=').next().unwrap_or_default();
    let mut line = format!(
        "{}: cookie `{name}=…` ({} bytes), attributes `{attrs}`; Set-Cookie sent by case:",
        target.label,
        cookie.len()
    );
    for case in Case::ALL {
        let p = d
            .probe(case.path(), case.sends_cookie().then_some(&cookie))
            .await;
        assert_eq!(p.status, 200, "{} {:?}", target.label, case);
        let _ = write!(
            line,
            " {}={}",
            &case.label()[..3],
            if p.set_cookie.is_empty() { "no" } else { "yes" }
        );
    }
    let n1: u64 = d.probe("/n", Some(&cookie)).await.body.parse().unwrap();
    let _ = write!(
        line,
        "; counter seen with the replayed cookie: {n0} before, {n1} after one (c)"
    );
    if target.framework != "actix" || target.role == Role::Ours {
        // Server-side stores: the write is visible through the same cookie.
        assert_eq!(n1, n0 + 1, "{}: the write case did not write", target.label);
    } else {
        // actix-session's cookie store keeps the state in the cookie itself:
        // replaying the old cookie sees the old value, and (c) re-issues it.
        let p = d.probe("/c", Some(&cookie)).await;
        assert!(
            !p.set_cookie.is_empty(),
            "{}: (c) set no cookie",
            target.label
        );
    }
    target.cookie = cookie;
    line
}

// ---------------------------------------------------------------------------
// Statistics and the report

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// A small deterministic shuffle (xorshift64), so every rep runs the
/// configurations in a different order.
fn shuffle<T>(items: &mut [T], state: &mut u64) {
    for i in (1..items.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let j = (*state % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

struct Stat {
    median: f64,
    /// Median of the per-rep paired differences with the bare row.
    overhead: Option<(f64, f64, f64)>,
}

fn main() {
    actix_web::rt::System::new().block_on(run());
}

async fn run() {
    let reps = env_usize("BENCH_REPS", 30).max(1);
    let n = env_usize("BENCH_N", 2000).max(1);
    let warmup = env_usize("BENCH_WARMUP", 2);
    let only = std::env::var("BENCH_ONLY").ok();
    let only_case = std::env::var("BENCH_CASE").ok();

    let mut targets = build_targets().await;
    let bare_cookie = format!("id={}", session_axum::SessionId::generate());
    let mut setup = Vec::new();
    for t in &mut targets {
        setup.push(prepare(t, &bare_cookie).await);
    }

    // Which (target, case) pairs run; BENCH_ONLY ('|'-separated exact
    // labels) and BENCH_CASE (a, b, c or d) narrow it for profiling; the
    // report needs them all.
    let cases: Vec<Case> = Case::ALL
        .into_iter()
        .filter(|c| {
            only_case
                .as_deref()
                .is_none_or(|f| c.path().trim_start_matches('/') == f)
        })
        .collect();
    let mut work: Vec<(usize, Case)> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        if only
            .as_deref()
            .is_some_and(|f| !f.split('|').any(|l| l.trim() == t.label))
        {
            continue;
        }
        for &c in &cases {
            work.push((i, c));
        }
    }
    let mut samples: Vec<[Vec<f64>; 4]> = targets.iter().map(|_| Default::default()).collect();

    eprintln!(
        "running {} configurations x {reps} reps (+{warmup} warm-up) x {n} requests...",
        work.len()
    );
    let started = Instant::now();
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    for rep in 0..warmup + reps {
        shuffle(&mut work, &mut rng);
        for &(i, case) in &work {
            let t = &targets[i];
            let cookie = case.sends_cookie().then_some(t.cookie.as_str());
            let took = t.driver.time(case.path(), cookie, n).await;
            if rep >= warmup {
                samples[i][case as usize].push(took.as_nanos() as f64 / n as f64);
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!("done in {:.1} s", elapsed.as_secs_f64());
    if only.is_some() || only_case.is_some() {
        for &(i, case) in &work {
            let s = sorted(samples[i][case as usize].clone());
            if !s.is_empty() {
                println!(
                    "{} {}: median {:.0} ns/req",
                    targets[i].label,
                    case.label(),
                    quantile(&s, 0.5)
                );
            }
        }
        return;
    }

    // Statistics per (target, case).
    let stat = |i: usize, case: Case| -> Stat {
        let own = &samples[i][case as usize];
        let median = quantile(&sorted(own.clone()), 0.5);
        let t = &targets[i];
        let overhead = (t.role != Role::Bare).then(|| {
            let bare = targets
                .iter()
                .position(|b| b.framework == t.framework && b.role == Role::Bare)
                .unwrap();
            let diffs = sorted(
                own.iter()
                    .zip(&samples[bare][case as usize])
                    .map(|(a, b)| a - b)
                    .collect(),
            );
            (
                quantile(&diffs, 0.5),
                quantile(&diffs, 0.25),
                quantile(&diffs, 0.75),
            )
        });
        Stat { median, overhead }
    };
    let peer_of = |i: usize| -> Option<usize> {
        let t = &targets[i];
        targets
            .iter()
            .position(|p| p.framework == t.framework && p.group == t.group && p.role == Role::Peer)
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run: BENCH_REPS={reps} BENCH_N={n} BENCH_WARMUP={warmup}; {} configurations, interleaved in shuffled order each rep; {:.1} s.\n",
        work.len(),
        elapsed.as_secs_f64()
    );
    let _ = writeln!(out, "Setup and sanity checks:\n");
    for line in &setup {
        let _ = writeln!(out, "- {line}");
    }
    let mut verdicts = Vec::new();
    for framework in ["axum", "actix", "hyper"] {
        let _ = writeln!(out, "\n### {framework}\n");
        let _ = writeln!(
            out,
            "| config | case | median ns/req | overhead ns (p25–p75) | our overhead / peer overhead |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|");
        for group in [Group::Main, Group::Signed, Group::Boxed] {
            for case in Case::ALL {
                for (i, t) in targets.iter().enumerate() {
                    if t.framework != framework || t.group != group {
                        continue;
                    }
                    let s = stat(i, case);
                    let overhead = s.overhead.map_or("—".to_owned(), |(m, lo, hi)| {
                        format!("{m:.0} ({lo:.0}–{hi:.0})")
                    });
                    let ratio = match (t.role, peer_of(i)) {
                        (Role::Ours, Some(p)) => {
                            let ours = s.overhead.unwrap().0;
                            let peer = stat(p, case).overhead.unwrap().0;
                            let r = ours / peer;
                            if group == Group::Main {
                                verdicts.push((framework, case, ours, peer, r, targets[p].label));
                            }
                            if peer > 0.0 {
                                format!("{r:.2}")
                            } else {
                                format!("n/a (peer {peer:.0} ns)")
                            }
                        }
                        (Role::Ours, None) => "n/a (no peer)".to_owned(),
                        _ => "—".to_owned(),
                    };
                    let _ = writeln!(
                        out,
                        "| {} | {} | {:.0} | {} | {} |",
                        t.label,
                        case.label(),
                        s.median,
                        overhead,
                        ratio
                    );
                }
            }
        }
    }
    let _ = writeln!(out, "\n### Targets (main rows: everyone's defaults)\n");
    let _ = writeln!(
        out,
        "| framework | case | our overhead ns | peer | peer overhead ns | ratio | target | verdict |"
    );
    let _ = writeln!(out, "|---|---|---:|---|---:|---:|---:|---|");
    for (framework, case, ours, peer, r, peer_label) in verdicts {
        let goal = match case {
            // Anonymous traffic costs no more than with the peer.
            Case::NoCookieRead => Some(1.0),
            Case::CookieRead => Some(0.25),
            Case::CookieWrite => Some(0.30),
            _ => None,
        };
        let Some(goal) = goal else { continue };
        let verdict = if peer > 0.0 && r <= goal {
            "met"
        } else {
            "MISSED"
        };
        let _ = writeln!(
            out,
            "| {framework} | {} | {ours:.0} | {peer_label} | {peer:.0} | {r:.2} | ≤ {goal} | {verdict} |",
            case.label()
        );
    }
    print!("{out}");
}
