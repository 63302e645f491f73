//! What the browser tests run on: one chromedriver, headless Chromium
//! profiles driven over WebDriver (fantoccini), the web example's binaries,
//! a page on a second origin that forges posts, and screenshots.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// Chromium's names on PATH: Debian's first, then other distributions'.
const CHROMIUM_NAMES: [&str; 2] = ["chromium", "chromium-browser"];

/// The flags every profile runs with (plus its own `--user-data-dir`).
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// How long to wait for a page or a process.
const PATIENCE: Duration = Duration::from_secs(15);

/// A free loopback port (free when asked; good enough on a test machine).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

async fn wait_listening(addr: SocketAddr, what: &str) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            start.elapsed() < PATIENCE,
            "{what} did not listen on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A program on PATH, or `None`.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// The paths of Chromium and chromedriver, or why they cannot be used.
pub(crate) fn tools() -> Result<(PathBuf, PathBuf), String> {
    let chromium = CHROMIUM_NAMES
        .iter()
        .find_map(|name| on_path(name))
        .ok_or_else(|| {
            "chromium not on PATH; apt-get install chromium chromium-driver".to_owned()
        })?;
    let chromedriver = on_path("chromedriver")
        .ok_or_else(|| "chromedriver not on PATH; apt-get install chromium-driver".to_owned())?;
    Ok((chromium, chromedriver))
}

/// A child process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One chromedriver, shared by every profile of the run.
pub(crate) struct Driver {
    _process: Process,
    chromium: PathBuf,
    url: String,
    profiles: AtomicUsize,
    scratch: PathBuf,
}

impl Driver {
    /// Starts chromedriver on a free port.
    pub(crate) async fn start(chromium: &Path, chromedriver: &Path) -> Self {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromedriver");
        let process = Process(child);
        wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), "chromedriver").await;
        let scratch = std::env::temp_dir().join(format!("session-browser-{}", std::process::id()));
        Self {
            _process: process,
            chromium: chromium.to_owned(),
            url: format!("http://127.0.0.1:{port}"),
            profiles: AtomicUsize::new(0),
            scratch,
        }
    }

    /// A new headless Chromium with a fresh profile directory.
    pub(crate) async fn profile(&self) -> Browser {
        let n = self.profiles.fetch_add(1, Ordering::SeqCst);
        let dir = self.scratch.join(format!("profile-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot make a profile directory");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", dir.display()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": self.chromium, "args": args },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("chromedriver would not start Chromium");
        client
            .set_window_size(900, 720)
            .await
            .expect("cannot size the window");
        Browser { client }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// One browser profile.
pub(crate) struct Browser {
    /// The WebDriver session.
    pub(crate) client: Client,
}

impl Browser {
    /// Opens `url` and waits for it to load.
    pub(crate) async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The path of the current page.
    pub(crate) async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// The element with this CSS selector.
    pub(crate) async fn find(&self, css: &str) -> Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("no {css} on {}: {e}", self.path().await),
        }
    }

    /// Whether an element with this CSS selector is on the page.
    pub(crate) async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    /// The text of the element with this CSS selector.
    pub(crate) async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// The page's visible text.
    pub(crate) async fn body(&self) -> String {
        self.text("body").await
    }

    /// Replaces the value of the input with this id.
    pub(crate) async fn fill(&self, id: &str, value: &str) {
        let input = self.find(&format!("#{id}")).await;
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    /// The value of the input with this id.
    pub(crate) async fn value(&self, id: &str) -> String {
        self.find(&format!("#{id}"))
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Clicks the element with this id and waits for the next page (the
    /// old document's root goes stale), even one at the same URL.
    pub(crate) async fn click(&self, id: &str) {
        let old = self.find("html").await;
        self.find(&format!("#{id}")).await.click().await.unwrap();
        let start = Instant::now();
        while old.tag_name().await.is_ok() {
            assert!(start.elapsed() < PATIENCE, "#{id} led to no new page");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.settle().await;
    }

    /// Waits until the document has loaded.
    pub(crate) async fn settle(&self) {
        let start = Instant::now();
        loop {
            let state = self
                .client
                .execute("return document.readyState", vec![])
                .await;
            if matches!(state, Ok(serde_json::Value::String(s)) if s == "complete") {
                return;
            }
            assert!(start.elapsed() < PATIENCE, "the page did not load");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the browser is on a page of `origin`.
    pub(crate) async fn wait_for_origin(&self, origin: &str) {
        let start = Instant::now();
        loop {
            if let Ok(url) = self.client.current_url().await
                && url.as_str().starts_with(origin)
            {
                self.settle().await;
                return;
            }
            assert!(start.elapsed() < PATIENCE, "never reached {origin}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The session cookie (`id`): its value and, for a persistent cookie,
    /// its expiry in Unix seconds. `None` if the jar has none.
    pub(crate) async fn session_cookie(&self) -> Option<(String, Option<i64>)> {
        let cookies = self.client.get_all_cookies().await.unwrap();
        cookies.iter().find(|c| c.name() == "id").map(|c| {
            (
                c.value().to_owned(),
                c.expires_datetime().map(|t| t.unix_timestamp()),
            )
        })
    }

    /// Forgets every cookie of the current page's host.
    pub(crate) async fn clear_cookies(&self) {
        self.client.delete_all_cookies().await.unwrap();
    }

    /// Saves a screenshot of the page as `dir/name.png`.
    pub(crate) async fn shot(&self, dir: &Path, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Ends the WebDriver session (and Chromium).
    pub(crate) async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// A web example binary on a free port, killed on drop.
pub(crate) struct App {
    _process: Process,
    /// `http://127.0.0.1:PORT`.
    pub(crate) origin: String,
}

impl App {
    /// Starts `bin` over plain HTTP, on the Redis at `redis_url` or else
    /// on the memory store, with these more environment variables.
    pub(crate) async fn start(bin: &str, redis_url: Option<&str>, env: &[(&str, &str)]) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut command = Command::new(bin);
        match redis_url {
            Some(url) => command.env("SESSION_STORE", "redis").env("REDIS_URL", url),
            None => command.env("SESSION_STORE", "memory"),
        };
        let child = command
            .envs(env.iter().copied())
            .env("ADDR", addr.to_string())
            .env("SESSION_SECURE", "false")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let process = Process(child);
        wait_listening(addr, bin).await;
        Self {
            _process: process,
            origin: format!("http://{addr}"),
        }
    }

    /// The URL of `path` on the app.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }
}

/// A forged form: the route it posts to, its encoding and fields.
pub(crate) struct Forgery {
    /// The app's route.
    pub(crate) route: &'static str,
    /// The form's `enctype`.
    pub(crate) enctype: &'static str,
    /// Its fields.
    pub(crate) fields: &'static [(&'static str, &'static str)],
}

/// A site on another origin whose page `/N` auto-submits forgery N to the
/// app: on `localhost` (cross-site to the app on `127.0.0.1`: the browser
/// says so and sends no `SameSite=Lax` cookie) or on `127.0.0.1` at another
/// port (same-site: the cookie goes along, and only the token stops it).
pub(crate) struct Attacker {
    task: tokio::task::JoinHandle<()>,
    port: u16,
    host: &'static str,
}

impl Attacker {
    /// Serves `forgeries` against the app at `target` (an origin).
    pub(crate) async fn start(host: &'static str, target: &str, forgeries: &[Forgery]) -> Self {
        let pages: Vec<String> = forgeries
            .iter()
            .map(|f| {
                let inputs: String = f
                    .fields
                    .iter()
                    .map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{v}">"#))
                    .collect();
                format!(
                    "<!doctype html><html><head><title>You won a prize</title></head><body>\
                     <h1>Claim your prize</h1>\
                     <form id=\"f\" method=\"post\" action=\"{target}{}\" enctype=\"{}\">{inputs}</form>\
                     <script>document.getElementById('f').submit()</script></body></html>",
                    f.route, f.enctype
                )
            })
            .collect();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route(
            "/{n}",
            axum::routing::get(move |axum::extract::Path(n): axum::extract::Path<usize>| {
                let page = pages.get(n).cloned().unwrap_or_default();
                async move { axum::response::Html(page) }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { task, port, host }
    }

    /// The page that forges post `n`.
    pub(crate) fn url(&self, n: usize) -> String {
        format!("http://{}:{}/{n}", self.host, self.port)
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The folder screenshots go to (under the target dir; not committed).
pub(crate) fn screenshot_dir(framework: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("browser-screenshots")
        .join(framework);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
