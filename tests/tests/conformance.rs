//! The conformance suite against each adapter, on the memory store.

use session_conformance::{Framework, checks, conformance_suite};

conformance_suite!(axum, Framework::Axum);
conformance_suite!(actix, Framework::Actix);
conformance_suite!(hyper, Framework::Hyper);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_move_between_adapters_sharing_a_store() {
    checks::sessions_move_between_adapters([Framework::Axum, Framework::Actix, Framework::Hyper])
        .await;
    checks::sessions_move_between_adapters([Framework::Hyper, Framework::Axum, Framework::Actix])
        .await;
    checks::sessions_move_between_adapters([Framework::Actix, Framework::Hyper, Framework::Axum])
        .await;
}
