//! The web example on hyper: `SESSION_SECURE=false cargo run --release -p session-examples --bin web-hyper`
//! (plain HTTP on a local machine needs `SESSION_SECURE=false`).

use session_examples::serve::{Limits, exit_with, shutdown_signal};
use session_examples::settings::{bind, manager_from_env};

#[tokio::main]
async fn main() {
    let (settings, manager) = manager_from_env().await;
    let listener = tokio::net::TcpListener::from_std(bind(&settings))
        .unwrap_or_else(|e| exit_with(&format!("cannot listen: {e}")));
    let app = session_examples::web::app_from_env(manager);
    session_examples::web::on_hyper::serve(listener, app, Limits::default(), shutdown_signal())
        .await;
}
