//! The store contract of session-core, on every backend.

use session_core::testing::store_contract;
use session_sql::SqlStore;
use session_sql::testing::{Kind, TestDatabase};

async fn contract(kind: Kind) {
    let Some(db) = TestDatabase::new(kind, "contract").await else {
        return;
    };
    store_contract(&db.store().await).await;
}

async fn contract_with_a_table_prefix(kind: Kind) {
    let Some(db) = TestDatabase::new(kind, "prefix").await else {
        return;
    };
    let store = SqlStore::new(db.url())
        .unwrap()
        .with_table_prefix("app_")
        .unwrap();
    assert_eq!(store.table(), "app_sessions");
    store.migrate().await.unwrap();
    store_contract(&store).await;
}

backend_tests!(contract, contract_with_a_table_prefix);

/// An in-memory SQLite database (one connection's own) holds the contract
/// too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_sqlite_in_memory() {
    let store = SqlStore::new("sqlite::memory:").unwrap();
    store.migrate().await.unwrap();
    store_contract(&store).await;
}
