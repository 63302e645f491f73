//! A hung or dead database gives `Error::Store` within the timeout, the
//! same store works again once it is back, and nothing committed before
//! is lost.

use std::time::{Duration, Instant, SystemTime};

use session_core::testing::{record_at, update_at};
use session_core::{Error, SessionId, SessionStore, Timestamp, WriteOutcome};
use session_sql::SqlStore;
use session_sql::testing::{Kind, Proxy, ProxyMode, TestDatabase};

const TIMEOUT: Duration = Duration::from_millis(500);
const MARGIN: Duration = Duration::from_millis(400);

/// Every operation fails with `Error::Store` (its cause kept) in time.
async fn every_operation_fails_in_time(store: &SqlStore, live: &SessionId, phase: &str) {
    let now = Timestamp::from(SystemTime::now());
    let record = record_at(now, Some("outage-user"), &[("a", "1")]);
    let update = update_at(now, &[("b", "2")], &[]);
    let (fresh, other) = (SessionId::generate(), SessionId::generate());
    let mut results: Vec<(&str, Duration, Result<(), Error>)> = Vec::new();
    macro_rules! time {
        ($name:literal, $op:expr) => {{
            let started = Instant::now();
            let result = $op.await.map(drop);
            results.push(($name, started.elapsed(), result));
        }};
    }
    time!("load", store.load(live, now));
    time!("update", store.update(live, update.clone()));
    time!("create", store.create(&fresh, &record));
    time!("renew", store.renew(&fresh, &other, &update));
    time!("delete", store.delete(&other));
    time!("user_sessions", store.user_sessions("outage-user", now));
    time!("delete_user", store.delete_user("nobody"));
    time!("sweep", store.sweep(now, 10));
    for (name, elapsed, result) in results {
        match result {
            Err(err @ Error::Store(_)) => {
                let source = std::error::Error::source(&err).expect("source kept");
                println!("{phase}: {name} failed after {elapsed:?}: {source}");
            }
            other => panic!("{phase}: {name} gave {other:?}, not Error::Store"),
        }
        assert!(
            elapsed < TIMEOUT + MARGIN,
            "{phase}: {name} took {elapsed:?}"
        );
    }
}

/// Retries `load` until it succeeds; returns how long that took.
async fn until_back(store: &SqlStore, id: &SessionId) -> Duration {
    let started = Instant::now();
    loop {
        let now = Timestamp::from(SystemTime::now());
        match store.load(id, now).await {
            Ok(_) => return started.elapsed(),
            Err(Error::Store(_)) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("store did not come back: {err:?}"),
        }
    }
}

async fn must_have(store: &SqlStore, id: &SessionId, key: &str) {
    let now = Timestamp::from(SystemTime::now());
    let record = store.load(id, now).await.unwrap().expect("session lost");
    assert!(record.data.contains_key(key), "committed value {key} lost");
}

/// Through a proxy: hung, then back; dead, then back.
async fn outages_fail_in_time_and_the_store_recovers(kind: Kind) {
    if kind == Kind::Sqlite {
        return sqlite_locked_elsewhere().await;
    }
    let Some(db) = TestDatabase::new(kind, "outage").await else {
        return;
    };
    db.store().await; // migrated directly
    let proxy = Proxy::start(db.server_addr().expect("server address"))
        .await
        .unwrap();
    let store = SqlStore::new(&db.url_via(&proxy))
        .unwrap()
        .with_timeout(TIMEOUT)
        .with_max_connections(4);
    let now = Timestamp::from(SystemTime::now());
    let id = SessionId::generate();
    let record = record_at(now, None, &[("a", "1")]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );

    proxy.set_mode(ProxyMode::Hang);
    every_operation_fails_in_time(&store, &id, "hung").await;
    proxy.set_mode(ProxyMode::Forward);
    println!("hung: back after {:?}", until_back(&store, &id).await);
    must_have(&store, &id, "a").await;
    let later = update_at(Timestamp::from(SystemTime::now()), &[("b", "2")], &[]);
    assert_eq!(
        store.update(&id, later).await.unwrap(),
        WriteOutcome::Written
    );

    proxy.set_mode(ProxyMode::Down);
    every_operation_fails_in_time(&store, &id, "down").await;
    proxy.set_mode(ProxyMode::Forward);
    println!("down: back after {:?}", until_back(&store, &id).await);
    must_have(&store, &id, "a").await;
    must_have(&store, &id, "b").await;
    let fresh = SessionId::generate();
    let record = record_at(Timestamp::from(SystemTime::now()), Some("back"), &[]);
    assert_eq!(
        store.create(&fresh, &record).await.unwrap(),
        WriteOutcome::Written
    );
}

/// PostgreSQL ends every connection of the database (as a restart or a
/// failover does): at most one call fails, then the store reconnects.
async fn terminated_connections_are_replaced(kind: Kind) {
    if kind != Kind::Postgres {
        return;
    }
    let Some(db) = TestDatabase::new(kind, "terminate").await else {
        return;
    };
    let store = db.store().await.with_timeout(TIMEOUT);
    let now = Timestamp::from(SystemTime::now());
    let id = SessionId::generate();
    let record = record_at(now, None, &[("a", "1")]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );
    let name = db.name().unwrap();
    db.execute_as_admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .await
    .unwrap();
    let mut failures = 0;
    for _ in 0..3 {
        match store.load(&id, now).await {
            Ok(found) => {
                assert!(found.is_some(), "session lost");
                break;
            }
            Err(Error::Store(err)) => {
                println!("after pg_terminate_backend: {err}");
                failures += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(failures <= 1, "{failures} calls failed before reconnecting");
    must_have(&store, &id, "a").await;
}

/// SQLite: another process holds the write lock. Writes wait up to the
/// timeout (the busy timeout) and fail with `Error::Store`; reads go on
/// (WAL); once the lock is gone, writes succeed again.
async fn sqlite_locked_elsewhere() {
    use sqlx::Connection;
    let db = TestDatabase::sqlite("locked");
    let store = db.store().await.with_timeout(TIMEOUT);
    let now = Timestamp::from(SystemTime::now());
    let id = SessionId::generate();
    let record = record_at(now, None, &[("a", "1")]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );
    let mut other = sqlx::SqliteConnection::connect(db.url()).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let started = Instant::now();
    let update = update_at(now, &[("b", "2")], &[]);
    let result = store.update(&id, update.clone()).await;
    assert!(matches!(result, Err(Error::Store(_))), "{result:?}");
    assert!(
        started.elapsed() < TIMEOUT + MARGIN,
        "{:?}",
        started.elapsed()
    );
    must_have(&store, &id, "a").await;
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    assert_eq!(
        store.update(&id, update).await.unwrap(),
        WriteOutcome::Written
    );
    must_have(&store, &id, "b").await;
}

/// A row locked elsewhere (a long transaction of another program) and a
/// pool of one connection: one update waits on the lock, a second waits for
/// the connection (then on the lock); both give `Error::Store` within the
/// timeout, and once the lock is gone the store serves again.
async fn a_locked_row_and_an_exhausted_pool_time_out(kind: Kind) {
    use sqlx::Connection;
    if kind == Kind::Sqlite {
        return; // sqlite_locked_elsewhere covers SQLite's one writer
    }
    let Some(db) = TestDatabase::new(kind, "locked").await else {
        return;
    };
    let store = db
        .store()
        .await
        .with_timeout(TIMEOUT)
        .with_max_connections(1);
    let now = Timestamp::from(SystemTime::now());
    let id = SessionId::generate();
    let record = record_at(now, None, &[("a", "1")]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );
    let hex: String = id.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let lock = match kind {
        Kind::Postgres => format!(
            "SELECT 1 FROM {} WHERE id = '\\x{hex}'::bytea FOR UPDATE",
            store.table()
        ),
        _ => format!(
            "SELECT 1 FROM {} WHERE id = X'{hex}' FOR UPDATE",
            store.table()
        ),
    };
    macro_rules! hold_lock {
        ($conn:ty) => {{
            let mut other = <$conn>::connect(db.url()).await.unwrap();
            sqlx::raw_sql("BEGIN").execute(&mut other).await.unwrap();
            sqlx::raw_sql(&lock).execute(&mut other).await.unwrap();
            let started = Instant::now();
            let update = update_at(now, &[("b", "2")], &[]);
            let (first, second) = tokio::join!(store.update(&id, update.clone()), async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let started = Instant::now();
                let second = store.update(&id, update.clone()).await;
                (second, started.elapsed())
            });
            assert!(matches!(first, Err(Error::Store(_))), "{first:?}");
            assert!(matches!(second.0, Err(Error::Store(_))), "{second:?}");
            assert!(second.1 < TIMEOUT + MARGIN, "{:?}", second.1);
            assert!(
                started.elapsed() < TIMEOUT + MARGIN,
                "{:?}",
                started.elapsed()
            );
            must_have(&store, &id, "a").await;
            sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
            assert_eq!(
                store.update(&id, update).await.unwrap(),
                WriteOutcome::Written
            );
            must_have(&store, &id, "b").await;
        }};
    }
    match kind {
        Kind::Postgres => hold_lock!(sqlx::PgConnection),
        _ => hold_lock!(sqlx::MySqlConnection),
    }
}

/// Operations after a reset, each kind at least once, writes first (the
/// hardest case: a write whose pooled connection is dead): how many failed.
async fn operations_after_a_reset(store: &SqlStore, phase: &str) -> usize {
    let mut failed = 0;
    let mut check = |name: &str, result: Result<(), Error>| {
        if let Err(err) = result {
            println!("{phase}: {name} failed: {err}");
            failed += 1;
        }
    };
    let at = || Timestamp::from(SystemTime::now());
    let user = format!("reset-{}", SessionId::generate());
    let id = SessionId::generate();
    let record = record_at(at(), Some(&user), &[("a", "1")]);
    check(
        "create",
        match store.create(&id, &record).await {
            Ok(WriteOutcome::Written) => Ok(()),
            other => Err(Error::store(format!("{other:?}"))),
        },
    );
    tokio::time::sleep(Duration::from_millis(2)).await;
    let update = update_at(at(), &[("b", "2")], &["a"]);
    check(
        "update",
        match store.update(&id, update.clone()).await {
            Ok(WriteOutcome::Written) => Ok(()),
            other => Err(Error::store(format!("{other:?}"))),
        },
    );
    let new_id = SessionId::generate();
    check(
        "renew",
        match store.renew(&id, &new_id, &update).await {
            Ok(WriteOutcome::Written) => Ok(()),
            other => Err(Error::store(format!("{other:?}"))),
        },
    );
    check("load", store.load(&new_id, at()).await.map(drop));
    check(
        "user_sessions",
        store.user_sessions(&user, at()).await.map(drop),
    );
    check("delete", store.delete(&new_id).await.map(drop));
    check("delete_user", store.delete_user(&user).await.map(drop));
    check("sweep", store.sweep(at(), 10).await.map(drop));
    failed
}

/// The proxy cuts every connection while the database stays up (a
/// restart that was quick, a failover, a firewall forgetting idle
/// connections): no operation fails, whichever comes first, alone or many
/// at once, and nothing committed is lost.
async fn a_reset_with_the_database_up_costs_no_operation(kind: Kind) {
    if kind == Kind::Sqlite {
        return; // no wire
    }
    let Some(db) = TestDatabase::new(kind, "reset").await else {
        return;
    };
    db.store().await; // migrated directly
    let proxy = Proxy::start(db.server_addr().expect("server address"))
        .await
        .unwrap();
    let store = SqlStore::new(&db.url_via(&proxy))
        .unwrap()
        .with_timeout(Duration::from_secs(5))
        .with_max_connections(4);
    // Four pooled connections, each with its statements prepared.
    for _ in 0..3 {
        let rounds: Vec<_> = (0..4)
            .map(|_| operations_after_a_reset(&store, "warm-up"))
            .collect();
        for round in rounds {
            assert_eq!(round.await, 0);
        }
    }
    let mut lost = 0;
    for round in 0..5 {
        proxy.reset_connections();
        // Let the cut reach the pooled connections, as it would before a
        // request came.
        tokio::time::sleep(Duration::from_millis(20)).await;
        lost += if round % 2 == 0 {
            operations_after_a_reset(&store, "after a reset").await
        } else {
            let all = (0..4).map(|_| operations_after_a_reset(&store, "after a reset, at once"));
            let mut failed = 0;
            for one in all.collect::<Vec<_>>() {
                failed += one.await;
            }
            failed
        };
    }
    // An update whose first statement meets a dead connection, then at once
    // another for the same session: both land, once each.
    let now = Timestamp::from(SystemTime::now());
    let id = SessionId::generate();
    let record = record_at(now, None, &[("n", "0")]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );
    proxy.reset_connections();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let later = now.saturating_add(Duration::from_millis(5));
    let update = update_at(later, &[("n", "1")], &[]);
    assert_eq!(
        store.update(&id, update).await.unwrap(),
        WriteOutcome::Written
    );
    must_have(&store, &id, "n").await;
    println!("{kind:?}: {lost} operations failed after 5 resets");
    assert_eq!(lost, 0, "{kind:?}: a reset cost operations");
}

/// A store made (with the tables made on first use) while the database is
/// unreachable: its operations fail with `Error::Store` in time; once the
/// database answers, the same store makes the tables and serves, without a
/// restart.
async fn a_store_made_while_the_database_is_down_recovers(kind: Kind) {
    if kind == Kind::Sqlite {
        return; // no wire
    }
    let Some(db) = TestDatabase::new(kind, "down_at_start").await else {
        return;
    };
    let proxy = Proxy::start(db.server_addr().expect("server address"))
        .await
        .unwrap();
    proxy.set_mode(ProxyMode::Down);
    let store = SqlStore::new(&db.url_via(&proxy))
        .unwrap()
        .with_timeout(TIMEOUT)
        .with_migrate_on_first_use();
    assert!(matches!(store.migrate().await, Err(Error::Store(_))));
    let id = SessionId::generate();
    every_operation_fails_in_time(&store, &id, "down at start").await;
    proxy.set_mode(ProxyMode::Forward);
    println!(
        "{kind:?}: served {:?} after the database came back",
        until_back(&store, &id).await
    );
    let now = Timestamp::from(SystemTime::now());
    let record = record_at(now, Some("late"), &[("a", "1")]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );
    must_have(&store, &id, "a").await;
    // The tables are there for other stores too, at the schema's version.
    let direct = SqlStore::new(db.url()).unwrap();
    assert!(direct.load(&id, now).await.unwrap().is_some());
    direct.migrate().await.unwrap();
}

backend_tests!(
    outages_fail_in_time_and_the_store_recovers,
    terminated_connections_are_replaced,
    a_locked_row_and_an_exhausted_pool_time_out,
    a_reset_with_the_database_up_costs_no_operation,
    a_store_made_while_the_database_is_down_recovers
);
