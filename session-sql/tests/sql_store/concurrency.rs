//! Concurrent requests of one visitor: disjoint writes all land, and a
//! write racing a logout never brings the session back.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use session_core::testing::{record_at, update_at};
use session_core::{LimitPolicy, SessionId, SessionStore, Timestamp, WriteOutcome};
use session_sql::testing::{Kind, TestDatabase};

const WRITERS: usize = 32;
const ROUNDS: usize = 3;

async fn thirty_two_writers_lose_nothing(kind: Kind) {
    let Some(db) = TestDatabase::new(kind, "writers").await else {
        return;
    };
    let store = Arc::new(db.store().await);
    let now = Timestamp::from(SystemTime::now());
    let id = SessionId::generate();
    let record = record_at(now, Some("writer"), &[("start", "0")]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );
    // Each writer sets its own key, round after round, all at once: each
    // update was computed from a stale view, as concurrent requests are.
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for round in 0..ROUNDS {
                    let key = format!("k{i}");
                    let value = format!("{round}");
                    let at = now.saturating_add(Duration::from_millis(round as u64));
                    let update = update_at(at, &[(key.as_str(), value.as_str())], &[]);
                    assert_eq!(
                        store.update(&id, update).await.unwrap(),
                        WriteOutcome::Written
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let loaded = store.load(&id, now).await.unwrap().expect("session gone");
    let lost: Vec<usize> = (0..WRITERS)
        .filter(|i| loaded.data.get(&format!("k{i}")) != Some("2"))
        .collect();
    assert!(lost.is_empty(), "{kind:?}: lost the writes of {lost:?}");
    assert_eq!(loaded.data.len(), WRITERS + 1);
    assert_eq!(store.user_sessions("writer", now).await.unwrap(), [id]);
}

/// An update or a renew racing a delete: whichever runs first, the
/// session ends up gone, and a write that lost the race says `Missing`.
async fn writes_racing_a_logout_never_resurrect(kind: Kind) {
    let Some(db) = TestDatabase::new(kind, "race").await else {
        return;
    };
    let store = Arc::new(db.store().await);
    let now = Timestamp::from(SystemTime::now());
    let mut missing = 0;
    for round in 0..40 {
        let id = SessionId::generate();
        let record = record_at(now, None, &[("a", "1")]);
        assert_eq!(
            store.create(&id, &record).await.unwrap(),
            WriteOutcome::Written
        );
        let new_id = SessionId::generate();
        let writer = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let update = update_at(now, &[("late", "1")], &[]);
                if round % 2 == 0 {
                    store.update(&id, update).await.unwrap()
                } else {
                    store.renew(&id, &new_id, &update).await.unwrap()
                }
            })
        };
        let deleter = {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.delete(&id).await.unwrap() })
        };
        let (outcome, deleted) = (writer.await.unwrap(), deleter.await.unwrap());
        assert!(
            store.load(&id, now).await.unwrap().is_none(),
            "{kind:?}: resurrected"
        );
        let renewed_alive = store.load(&new_id, now).await.unwrap().is_some();
        match outcome {
            WriteOutcome::Missing => {
                missing += 1;
                assert!(deleted, "{kind:?}: nothing deleted, yet the write missed");
                assert!(!renewed_alive, "{kind:?}: a missing renew wrote the new id");
            }
            WriteOutcome::Written if round % 2 == 1 => {
                // The renew won: the delete of the old id found nothing,
                // and the session lives on under its new id.
                assert!(!deleted && renewed_alive, "{kind:?}: renew half done");
            }
            WriteOutcome::Written => assert!(deleted),
            other => panic!("{kind:?}: {other:?}"),
        }
    }
    println!("{kind:?}: {missing} of 40 late writes lost the race and wrote nothing");
}

/// 12 logins of one user with a limit of 2, raced on a multi-threaded
/// runtime, with each policy: at most 2 are left live.
async fn twelve_racing_logins_stay_within_the_user_limit(kind: Kind) {
    let Some(db) = TestDatabase::new(kind, "login_race").await else {
        return;
    };
    let store = Arc::new(db.store().await);
    for policy in [LimitPolicy::EndOldest, LimitPolicy::Refuse] {
        let store = Arc::clone(&store);
        let now = Timestamp::from(SystemTime::now());
        tokio::spawn(async move {
            session_core::testing::racing_logins_stay_within_the_user_limit(
                &*store, now, 12, 2, policy,
            )
            .await
        })
        .await
        .unwrap();
    }
}

backend_tests!(
    thirty_two_writers_lose_nothing,
    writes_racing_a_logout_never_resurrect,
    twelve_racing_logins_stay_within_the_user_limit
);
