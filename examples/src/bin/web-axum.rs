//! The web example on axum: `SESSION_SECURE=false cargo run --release -p session-examples --bin web-axum`
//! (plain HTTP on a local machine needs `SESSION_SECURE=false`).

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (settings, manager) = session_examples::settings::manager_from_env().await;
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    println!(
        "web example (axum) listening on http://{} (store: {})",
        listener.local_addr()?,
        settings.store
    );
    tokio::select! {
        served = session_examples::web::on_axum::serve(listener, manager) => served,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
