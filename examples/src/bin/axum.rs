//! The example app on axum: `cargo run --release -p session-examples --bin axum`.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (settings, manager) = session_examples::settings::manager_from_env().await;
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    println!(
        "axum example listening on http://{} (store: {})",
        listener.local_addr()?,
        settings.store
    );
    tokio::select! {
        served = session_examples::axum_app::serve(listener, manager) => served,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
