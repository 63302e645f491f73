//! The web example on actix-web: `SESSION_SECURE=false cargo run --release -p session-examples --bin web-actix`
//! (plain HTTP on a local machine needs `SESSION_SECURE=false`).

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let (settings, manager) = session_examples::settings::manager_from_env().await;
    let listener = std::net::TcpListener::bind(settings.addr)?;
    println!(
        "web example (actix) listening on http://{} (store: {})",
        listener.local_addr()?,
        settings.store
    );
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server = session_examples::web::on_actix::server(listener, manager, workers)?;
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        handle.stop(true).await;
    });
    server.await
}
