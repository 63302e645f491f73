//! Round trips per operation, counted by a proxy on the wire: one per
//! statement once a connection has prepared it.

use std::time::SystemTime;

use session_core::testing::{record_at, update_at};
use session_core::{SessionId, SessionStore, Timestamp, WriteOutcome};
use session_sql::SqlStore;
use session_sql::testing::{Kind, Proxy, TestDatabase};

async fn one_round_trip_per_operation(kind: Kind) {
    if kind == Kind::Sqlite {
        return; // no wire
    }
    let Some(db) = TestDatabase::new(kind, "round_trips").await else {
        return;
    };
    db.store().await;
    let proxy = Proxy::start(db.server_addr().unwrap()).await.unwrap();
    // One connection, so that every statement is prepared on it once.
    let store = SqlStore::new(&db.url_via(&proxy))
        .unwrap()
        .with_max_connections(1);
    let now = Timestamp::from(SystemTime::now());
    let user = format!("rt-{}", SessionId::generate());
    let mut counts = Vec::new();
    for pass in 0..2 {
        let (id, new_id) = (SessionId::generate(), SessionId::generate());
        let record = record_at(now, Some(&user), &[("a", "1")]);
        let update = update_at(now, &[("b", "2")], &["a"]);
        let count = |name: &'static str, counts: &mut Vec<(&str, u64)>| {
            if pass == 1 {
                counts.push((name, proxy.round_trips()));
            }
            proxy.reset_round_trips();
        };
        proxy.reset_round_trips();
        assert!(store.load(&id, now).await.unwrap().is_none());
        count("load (none)", &mut counts);
        assert_eq!(
            store.create(&id, &record).await.unwrap(),
            WriteOutcome::Written
        );
        count("create", &mut counts);
        assert!(store.load(&id, now).await.unwrap().is_some());
        count("load", &mut counts);
        assert_eq!(
            store.update(&id, update.clone()).await.unwrap(),
            WriteOutcome::Written
        );
        count("update", &mut counts);
        assert_eq!(
            store.renew(&id, &new_id, &update).await.unwrap(),
            WriteOutcome::Written
        );
        count("renew", &mut counts);
        assert_eq!(store.user_sessions(&user, now).await.unwrap(), [new_id]);
        count("user_sessions", &mut counts);
        assert!(store.delete(&new_id).await.unwrap());
        count("delete", &mut counts);
        assert_eq!(store.delete_user(&user).await.unwrap(), 0);
        count("delete_user", &mut counts);
    }
    println!("{kind:?} round trips: {counts:?}");
    for (name, trips) in counts {
        let expected = if name == "delete_user" && kind == Kind::MySql {
            2
        } else {
            1
        };
        assert_eq!(trips, expected, "{kind:?} {name}");
    }
}

backend_tests!(one_round_trip_per_operation);
