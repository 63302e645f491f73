//! The connection handling the axum and hyper examples share: an accept
//! loop that survives accept errors, HTTP/1 with a header-read timeout,
//! graceful shutdown, and start-up errors a person can act on. (actix-web
//! has all of this built in; `actix_app` sets the same numbers.)

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

/// How long connections may take, on every framework.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A client must send a request's whole header within this time, or its
    /// connection is closed. On an idle keep-alive connection the clock runs
    /// from the end of the last response, so this is also the keep-alive
    /// idle timeout. Default 10 s.
    pub header_read_timeout: Duration,
    /// How long shutdown waits for requests in flight. Default 10 s.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The longest pause after a failed `accept` (out of file descriptors, say).
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Serves HTTP/1 connections from `listener` with `service` until
/// `shutdown` completes, then stops accepting and waits up to
/// [`Limits::shutdown_grace`] for the requests in flight.
///
/// An `accept` that fails never ends the server: a connection-level error
/// (the client hung up) is skipped, and anything else (`EMFILE` when every
/// file descriptor is taken) is logged once per attempt and retried after a
/// pause that doubles up to one second, so a flood of connections slows the
/// server down but cannot stop it.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                stream
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_BACKOFF);
                eprintln!("warning: accepting a connection failed: {e}; retrying in {backoff:?}");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service.clone());
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or times out is not the server's error.
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!(
            "warning: requests still running after {:?}; stopping anyway",
            limits.shutdown_grace
        );
    }
}

/// Errors of one connection that the next `accept` does not share.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what `kill` and container
/// runtimes send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    eprintln!("shutting down: finishing the requests in flight");
}

/// Why listening on `addr` failed, in words a person can act on.
pub fn bind_error(addr: SocketAddr, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => format!(
            "cannot listen on {addr}: the address is already in use (another server is \
             running there); stop it or set ADDR to another address, e.g. ADDR=127.0.0.1:3001"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "cannot listen on {addr}: permission denied (ports below 1024 need privileges); \
             set ADDR to another address, e.g. ADDR=127.0.0.1:3000"
        ),
        io::ErrorKind::AddrNotAvailable => format!(
            "cannot listen on {addr}: this machine has no such address; set ADDR to one of \
             its addresses, e.g. ADDR=127.0.0.1:3000"
        ),
        _ => format!("cannot listen on {addr}: {e}"),
    }
}

/// Prints `why` as an error and exits with status 2.
pub fn exit_with(why: &str) -> ! {
    eprintln!("error: {why}");
    std::process::exit(2)
}

/// An actix-web server on `listener` for an app made of `routes`, behind the
/// session middleware of `manager`, with the same [`Limits`] as the other
/// frameworks: a client that has not sent a request's header within the
/// header-read timeout gets 408 and loses its connection, and an idle
/// keep-alive connection is closed after the same time. actix-server pauses
/// after a failed `accept` (out of file descriptors, say) and goes on. Run
/// it inside an actix system (`#[actix_web::main]` or
/// `actix_web::rt::System`); it handles no signals itself: call
/// [`ServerHandle::stop`](actix_web::dev::ServerHandle::stop) to shut down.
pub fn actix_server<R>(
    listener: std::net::TcpListener,
    manager: session_core::SessionManager<session_core::DynStore>,
    routes: R,
    workers: usize,
    limits: Limits,
) -> io::Result<actix_web::dev::Server>
where
    R: Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
{
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .wrap(session_actix::SessionMiddleware::new(manager.clone()))
            .configure(routes.clone())
    })
    .workers(workers)
    .client_request_timeout(limits.header_read_timeout)
    .keep_alive(limits.header_read_timeout)
    .shutdown_timeout(limits.shutdown_grace.as_secs())
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// As [`actix_server`], with `plain` routes outside the session middleware
/// (matched first): they never read the session nor set a cookie.
pub fn actix_server_with<P, R>(
    listener: std::net::TcpListener,
    manager: session_core::SessionManager<session_core::DynStore>,
    plain: P,
    routes: R,
    workers: usize,
    limits: Limits,
) -> io::Result<actix_web::dev::Server>
where
    P: Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
    R: Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
{
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().configure(plain.clone()).service(
            // Every other path: the scope matches them all.
            actix_web::web::scope("")
                .wrap(session_actix::SessionMiddleware::new(manager.clone()))
                .configure(routes.clone()),
        )
    })
    .workers(workers)
    .client_request_timeout(limits.header_read_timeout)
    .keep_alive(limits.header_read_timeout)
    .shutdown_timeout(limits.shutdown_grace.as_secs())
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
