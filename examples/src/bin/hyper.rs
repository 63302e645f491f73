//! The example app on hyper: `cargo run --release -p session-examples --bin hyper`.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (settings, manager) = session_examples::settings::manager_from_env().await;
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    println!(
        "hyper example listening on http://{} (store: {})",
        listener.local_addr()?,
        settings.store
    );
    tokio::select! {
        served = session_examples::hyper_app::serve(listener, manager) => served,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
