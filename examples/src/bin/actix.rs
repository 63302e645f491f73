//! The example app on actix-web: `cargo run --release -p session-examples --bin actix`.

use session_examples::serve::{Limits, exit_with, shutdown_signal};
use session_examples::settings::{bind, manager_from_env};

#[actix_web::main]
async fn main() {
    let (settings, manager) = manager_from_env().await;
    let listener = bind(&settings);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server = session_examples::actix_app::server(
        listener,
        manager,
        settings.admin(),
        workers,
        Limits::default(),
    )
    .unwrap_or_else(|e| exit_with(&format!("cannot start the server: {e}")));
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown_signal().await;
        // Graceful: stop accepting, finish the requests in flight.
        handle.stop(true).await;
    });
    if let Err(e) = server.await {
        exit_with(&format!("the server failed: {e}"));
    }
}
