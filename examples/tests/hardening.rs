//! The example servers against hostile clients and bad starts: slow
//! headers and idle connections are cut off, running out of file
//! descriptors does not stop a server, SIGTERM shuts it down cleanly, and
//! start-up errors say what to do.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use session_core::{DynStore, MemoryStore, SessionConfig, SessionManager};
use session_examples::serve::Limits;
use support::App;

const SECRET: &str = "hardening test secret, comfortably over 32 bytes";

fn manager() -> SessionManager<DynStore> {
    SessionManager::new(DynStore::new(MemoryStore::new()), SessionConfig::default()).unwrap()
}

fn short_limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(1),
    }
}

/// Starts the example app on `framework` in this process with short limits.
fn start_in_process(framework: &str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let framework = framework.to_owned();
    std::thread::spawn(move || {
        if framework == "actix" {
            actix_web::rt::System::new().block_on(async move {
                let server = session_examples::actix_app::server(
                    listener,
                    manager(),
                    None,
                    1,
                    short_limits(),
                )
                .unwrap();
                let _ = server.await;
            });
            return;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let forever = std::future::pending();
            if framework == "axum" {
                session_examples::axum_app::serve(
                    listener,
                    manager(),
                    None,
                    short_limits(),
                    forever,
                )
                .await;
            } else {
                session_examples::hyper_app::serve(
                    listener,
                    manager(),
                    None,
                    short_limits(),
                    forever,
                )
                .await;
            }
        });
    });
    wait_listening(addr);
    addr
}

fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How long until the server closes `stream` (reading whatever it sends,
/// such as a 408), or `None` if it is still open after `patience`.
fn closed_within(stream: &mut TcpStream, patience: Duration) -> Option<Duration> {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 1024];
    while start.elapsed() < patience {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

fn healthz(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    String::from_utf8_lossy(&raw)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn a_slow_header_and_an_idle_connection_are_cut_off() {
    for framework in ["axum", "actix", "hyper"] {
        let addr = start_in_process(framework);
        // One header byte, then nothing: the header-read timeout (1 s here,
        // 10 s in the binaries) ends it.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
        let mut idle = TcpStream::connect(addr).unwrap();
        let slow_closed = closed_within(&mut slow, Duration::from_secs(5));
        let idle_closed = closed_within(&mut idle, Duration::from_secs(5));
        assert!(slow_closed.is_some(), "{framework}: slow header kept open");
        assert!(
            idle_closed.is_some(),
            "{framework}: idle connection kept open"
        );
        // A keep-alive connection that has been answered is closed once idle.
        let mut kept = TcpStream::connect(addr).unwrap();
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert!(
            closed_within(&mut kept, Duration::from_secs(5)).is_some(),
            "{framework}: idle keep-alive connection kept open"
        );
        assert_eq!(healthz(addr), Some(200), "{framework} still serves");
    }
}

/// Starts `bin` with at most `fds` open file descriptors, and waits until
/// it listens.
fn start_with_fd_limit(bin: &str, fds: u32) -> App {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {fds} && exec \"$0\""))
        .arg(bin)
        .env("SESSION_SECRET", SECRET)
        .stderr(Stdio::null());
    let app = App::spawn(command);
    wait_listening(app.addr);
    app
}

fn bins() -> [(&'static str, &'static str); 3] {
    [
        ("axum", env!("CARGO_BIN_EXE_axum")),
        ("actix", env!("CARGO_BIN_EXE_actix")),
        ("hyper", env!("CARGO_BIN_EXE_hyper")),
    ]
}

#[test]
fn running_out_of_file_descriptors_does_not_stop_a_server() {
    for (name, bin) in bins() {
        let mut app = start_with_fd_limit(bin, 64);
        // More connections than the server has descriptors: its accept
        // fails with EMFILE while they are open. (The rest wait in the
        // listen backlog of 128; a connect beyond it would only stall.)
        let flood: Vec<TcpStream> = (0..150)
            .filter_map(|_| TcpStream::connect_timeout(&app.addr, Duration::from_millis(300)).ok())
            .collect();
        assert!(flood.len() > 64, "{name}: the flood did not connect");
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            app.child.try_wait().unwrap().is_none(),
            "{name} exited while out of file descriptors"
        );
        drop(flood);
        // Once the flood is gone, the server answers again.
        let deadline = Instant::now() + Duration::from_secs(20);
        while healthz(app.addr) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "{name} did not recover after the flood"
            );
            assert!(app.child.try_wait().unwrap().is_none(), "{name} exited");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn sigterm_shuts_a_server_down_cleanly() {
    for (name, bin) in bins() {
        let mut app = start_with_fd_limit(bin, 1024);
        assert_eq!(healthz(app.addr), Some(200));
        let pid = app.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = app.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "{name} ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{name} exited with {status}");
    }
}

fn run_to_exit(bin: &str, envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(bin);
    command
        .env("SESSION_SECRET", SECRET)
        .env_remove("SESSION_STORE");
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{bin} did not exit on a bad start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn start_up_errors_say_what_to_do() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    for (name, bin) in bins() {
        let out = run_to_exit(bin, &[("ADDR", &taken_addr)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("already in use") && stderr.contains("ADDR"),
            "{name}: {stderr}"
        );
        assert!(
            !stderr.contains("Os {"),
            "{name} printed a debug error: {stderr}"
        );

        for (var, value, accepted) in [
            ("SESSION_SECURE", "no", "true or false"),
            ("SESSION_STORE", "disk", "memory"),
            ("SESSION_IDLE_SECS", "soon", "seconds"),
            ("SESSION_MAX_BYTES", "0", "bytes"),
            ("ADDR", "localhost", "127.0.0.1:3000"),
        ] {
            let out = run_to_exit(bin, &[(var, value)]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {var}={value}: {stderr}");
            assert!(
                stderr.contains(var) && stderr.contains(accepted),
                "{name} {var}={value}: {stderr}"
            );
        }
    }
    drop(taken);
}

/// The binaries with `SESSION_TRANSPORT=header:x-session` and
/// `bearer:x-session`, from outside: answers that use the session are not
/// cacheable, an id header sent twice is 401 and changes nothing, and two
/// `Content-Type` lines are 415.
#[test]
fn header_transports_refuse_duplicates_and_are_never_cached() {
    use session_conformance::http::send_headers;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The transport, and the request header the id goes back in.
    let transports = [
        ("header:x-session", "x-session"),
        ("bearer:x-session", "authorization"),
    ];
    for (name, bin) in bins() {
        for (transport, id_header) in transports {
            let what = format!("{name} {transport}");
            let app = App::start(
                bin,
                &[("SESSION_SECRET", SECRET), ("SESSION_TRANSPORT", transport)],
            );
            wait_listening(app.addr);
            let send = |method: &str, path: &str, headers: &[(&str, &str)], body: &str| {
                runtime.block_on(send_headers(app.addr, method, path, headers, body))
            };
            let json = ("Content-Type", "application/json");
            let login = r#"{"username": "ada", "data": {"a": 1}}"#;
            let res = send("POST", "/session/login", &[json], login);
            assert_eq!(res.status, 200, "{what}");
            assert_eq!(res.all("cache-control"), ["no-store"], "{what}");
            let token = res.header("x-session").expect("the id in x-session");
            let id = match id_header {
                "authorization" => format!("Bearer {token}"),
                _ => token.to_owned(),
            };
            let one = (id_header, id.as_str());

            let res = send("GET", "/session/profile", &[one], "");
            assert_eq!(res.status, 200, "{what}");
            assert_eq!(res.all("cache-control"), ["no-store"], "{what}: profile");
            let res = send("POST", "/session/update", &[one, json], r#"{"b": 2}"#);
            assert_eq!(res.status, 200, "{what}");
            assert_eq!(res.all("cache-control"), ["no-store"], "{what}: update");

            let twice = [one, one, json];
            for (method, path, body) in [
                ("GET", "/session/profile", ""),
                ("POST", "/session/update", r#"{"a": 9}"#),
                ("POST", "/session/logout", ""),
            ] {
                let res = send(method, path, &twice, body);
                assert_eq!(res.status, 401, "{what}: {path} with two ids");
                assert!(res.json()["error"].is_string(), "{what}: {path}");
                assert_eq!(res.header("x-session"), None, "{what}: {path}");
            }
            let res = send(
                "POST",
                "/session/update",
                &[one, json, ("Content-Type", "text/plain")],
                r#"{"a": 9}"#,
            );
            assert_eq!(res.status, 415, "{what}: two Content-Type lines");
            assert!(res.json()["error"].is_string(), "{what}");

            let res = send("GET", "/session/profile", &[one], "");
            assert_eq!(res.status, 200, "{what}: the session survived");
            assert_eq!(
                res.json()["data"],
                serde_json::json!({ "a": 1, "b": 2 }),
                "{what}"
            );
        }
    }
}
