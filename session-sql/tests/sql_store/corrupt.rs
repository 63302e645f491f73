//! Rows that break the schema read as `Error::Corrupt`, never panic, and
//! the engine treats them as no session.

use session_core::driver::Engine;
use std::time::SystemTime;

use session_core::testing::record_at;
use session_core::{
    Error, Presented, SessionConfig, SessionId, SessionManager, SessionStore, Timestamp,
    WriteOutcome,
};
use session_sql::testing::{Kind, TestDatabase};

fn hex(id: &SessionId) -> String {
    id.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn id_literal(kind: Kind, id: &SessionId) -> String {
    match kind {
        Kind::Postgres => format!("'\\x{}'::bytea", hex(id)),
        _ => format!("X'{}'", hex(id)),
    }
}

async fn corrupt_rows_are_errors_and_no_session(kind: Kind) {
    let Some(db) = TestDatabase::new(kind, "corrupt").await else {
        return;
    };
    let store = db.store().await;
    let now = Timestamp::from(SystemTime::now());
    let exp = now.unix_millis() + 3_600_000;
    // Rows each backend's column types let through but the store cannot
    // read: (created_at, expires_at, user_name, data) as SQL literals.
    let mut rows: Vec<(&str, String, &str, &str)> = vec![
        ("1", exp.to_string(), "NULL", r#"'{"a": 1}'"#),
        ("-5", exp.to_string(), "NULL", r#"'{"a": "1"}'"#),
    ];
    match kind {
        Kind::Postgres => rows.push(("1", exp.to_string(), "NULL", r#"'{"a": [1]}'"#)),
        Kind::MySql => {
            rows.push(("1", exp.to_string(), "NULL", "'not json'"));
            rows.push(("1", exp.to_string(), "X'ff'", "'{}'"));
        }
        Kind::Sqlite => {
            rows.push(("1", exp.to_string(), "NULL", "'not json'"));
            rows.push(("1", "'soon'".to_owned(), "NULL", "'{}'"));
            rows.push(("1", exp.to_string(), "NULL", "'[1, 2]'"));
        }
    }
    let manager = SessionManager::new(store.clone(), SessionConfig::default()).unwrap();
    let mut ids = Vec::new();
    for (created, expires, user, data) in &rows {
        let id = SessionId::generate();
        let key = manager.store_key(&id);
        db.execute(&format!(
            "INSERT INTO {} (id, created_at, last_activity, expires_at, user_name, data) \
             VALUES ({}, {created}, 1, {expires}, {user}, {data})",
            store.table(),
            id_literal(kind, &key),
        ))
        .await
        .unwrap();
        ids.push((id, key));
    }
    for (i, (id, key)) in ids.iter().enumerate() {
        let result = store.load(key, now).await;
        assert!(
            matches!(result, Err(Error::Corrupt(_))),
            "{kind:?} row {i}: {result:?}"
        );
        // The engine: a corrupt record is no session, never an error.
        let session = manager.load(Presented::Id(*id)).await.unwrap();
        assert!(session.id().is_none(), "{kind:?} row {i}: adopted");
        // Creating over it is refused; deleting clears it.
        let fresh = record_at(now, None, &[("ok", "true")]);
        assert_eq!(
            store.create(key, &fresh).await.unwrap(),
            WriteOutcome::IdTaken
        );
        assert!(store.delete(key).await.unwrap());
        assert_eq!(
            store.create(key, &fresh).await.unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(store.load(key, now).await.unwrap(), Some(fresh));
    }
}

backend_tests!(corrupt_rows_are_errors_and_no_session);
