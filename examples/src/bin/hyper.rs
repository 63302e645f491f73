//! The example app on hyper: `cargo run --release -p session-examples --bin hyper`.

use session_examples::serve::{Limits, exit_with, shutdown_signal};
use session_examples::settings::{bind, manager_from_env};

#[tokio::main]
async fn main() {
    let (settings, manager) = manager_from_env().await;
    let listener = tokio::net::TcpListener::from_std(bind(&settings))
        .unwrap_or_else(|e| exit_with(&format!("cannot listen: {e}")));
    session_examples::hyper_app::serve(
        listener,
        manager,
        settings.admin(),
        Limits::default(),
        shutdown_signal(),
    )
    .await;
}
