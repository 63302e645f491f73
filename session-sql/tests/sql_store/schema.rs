//! Migrations are idempotent and versioned; sweeping deletes expired rows
//! in bounded batches and nothing else.

use std::time::{Duration, SystemTime};

use session_core::testing::record_at;
use session_core::{Error, SessionId, SessionStore, Timestamp, WriteOutcome};
use session_sql::SqlStore;
use session_sql::testing::{Kind, TestDatabase};

async fn migrations_are_idempotent_and_versioned(kind: Kind) {
    let Some(db) = TestDatabase::new(kind, "migrate").await else {
        return;
    };
    let store = SqlStore::new(db.url()).unwrap();
    // Several processes starting at once: they take turns.
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    store.migrate().await.unwrap();
    let now = Timestamp::from(SystemTime::now());
    let id = SessionId::generate();
    assert_eq!(
        store
            .create(&id, &record_at(now, None, &[("a", "1")]))
            .await
            .unwrap(),
        WriteOutcome::Written
    );
    // Migrating again keeps the data.
    store.migrate().await.unwrap();
    assert!(store.load(&id, now).await.unwrap().is_some());
    // A schema from a later version of the crate is refused, not touched.
    db.execute(&format!(
        "INSERT INTO {} (version, applied_at) VALUES (99, 0)",
        store.migrations_table()
    ))
    .await
    .unwrap();
    assert!(matches!(store.migrate().await, Err(Error::Config(_))));
    assert!(matches!(
        SqlStore::new(db.url())
            .unwrap()
            .with_table_prefix("bad-prefix"),
        Err(Error::Config(_))
    ));
}

/// A table made by schema version 1 (before `authenticated_at`) gains the
/// column, and keeps its sessions, when a newer store migrates it.
async fn a_version_1_table_gains_the_login_time(kind: Kind) {
    let Some(db) = TestDatabase::new(kind, "migrate_v1").await else {
        return;
    };
    let store = db.store().await;
    let now = Timestamp::from(SystemTime::now());
    let id = SessionId::generate();
    let user = format!("u-{}", SessionId::generate());
    store
        .create(&id, &record_at(now, Some(&user), &[("a", "1")]))
        .await
        .unwrap();
    // Back to version 1: the column and its migration row gone.
    db.execute(&format!(
        "ALTER TABLE {} DROP COLUMN authenticated_at",
        store.table()
    ))
    .await
    .unwrap();
    db.execute(&format!(
        "DELETE FROM {} WHERE version = 2",
        store.migrations_table()
    ))
    .await
    .unwrap();
    // A newer process starts (its own connections, none prepared against
    // the old shape) and migrates.
    let store = SqlStore::new(db.url()).unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let record = store.load(&id, now).await.unwrap().unwrap();
    assert_eq!(record.meta.user.as_deref(), Some(user.as_str()));
    assert_eq!(record.meta.authenticated_at, None, "no login time known");
    assert_eq!(record.data.get("a"), Some("1"));
    let mut login = session_core::testing::update_at(now, &[], &[]);
    login.authenticated_at = Some(Some(now));
    assert_eq!(
        store.update(&id, login).await.unwrap(),
        WriteOutcome::Written
    );
    let record = store.load(&id, now).await.unwrap().unwrap();
    assert_eq!(record.meta.authenticated_at, Some(now));
}

async fn sweep_deletes_expired_rows_in_batches(kind: Kind) {
    let Some(db) = TestDatabase::new(kind, "sweep").await else {
        return;
    };
    let store = db.store().await;
    let now = Timestamp::from(SystemTime::now());
    let long_ago = Timestamp::from_unix_millis(now.unix_millis() - 7_200_000);
    for _ in 0..25 {
        // Created two hours ago, expired an hour ago.
        let record = record_at(long_ago, Some("old"), &[("a", "1")]);
        store.create(&SessionId::generate(), &record).await.unwrap();
    }
    let mut live = Vec::new();
    for _ in 0..3 {
        let id = SessionId::generate();
        store
            .create(&id, &record_at(now, Some("old"), &[]))
            .await
            .unwrap();
        live.push(id);
    }
    let mut swept = Vec::new();
    loop {
        let n = store.sweep(now, 10).await.unwrap();
        swept.push(n);
        if n < 10 {
            break;
        }
    }
    assert_eq!(swept, [10, 10, 5]);
    for id in &live {
        assert!(store.load(id, now).await.unwrap().is_some());
    }
    let mut listed = store.user_sessions("old", now).await.unwrap();
    listed.sort();
    live.sort();
    assert_eq!(listed, live);
    // The rest expire later.
    let later = now.saturating_add(Duration::from_secs(3601));
    assert_eq!(store.sweep(later, 10).await.unwrap(), 3);
}

async fn delete_user_counts_only_live_sessions(kind: Kind) {
    let Some(db) = TestDatabase::new(kind, "delete_user").await else {
        return;
    };
    let store = db.store().await;
    let now = Timestamp::from(SystemTime::now());
    let long_ago = Timestamp::from_unix_millis(now.unix_millis() - 7_200_000);
    let user = format!("u-{}", SessionId::generate());
    store
        .create(
            &SessionId::generate(),
            &record_at(long_ago, Some(&user), &[]),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        store
            .create(&SessionId::generate(), &record_at(now, Some(&user), &[]))
            .await
            .unwrap();
    }
    assert_eq!(store.delete_user(&user).await.unwrap(), 2);
    assert_eq!(store.sweep(now, 100).await.unwrap(), 0, "expired row left");
}

backend_tests!(
    migrations_are_idempotent_and_versioned,
    a_version_1_table_gains_the_login_time,
    sweep_deletes_expired_rows_in_batches,
    delete_user_counts_only_live_sessions
);
