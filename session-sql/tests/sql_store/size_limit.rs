//! The size limit is checked where the store merges (contract point 7): a
//! refused update writes nothing, a session over the limit can still
//! shrink, the database counts bytes as `Data::bytes` does, and 200
//! concurrent updates, each under the limit alone, never take the stored
//! session past it together.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use session_core::testing::{record_at, update_at};
use session_core::{Data, SessionId, SessionStore, Timestamp, Update, WriteOutcome};
use session_sql::SqlStore;
use session_sql::testing::{Kind, TestDatabase};
use tokio::sync::Barrier;

/// An update at `now` under `max_bytes`.
fn limited(now: Timestamp, set: &[(&str, &str)], removed: &[&str], max_bytes: usize) -> Update {
    Update {
        max_bytes,
        ..update_at(now, set, removed)
    }
}

/// A JSON string value whose text is `n` bytes long.
fn text_of(n: usize) -> String {
    format!("\"{}\"", "x".repeat(n - 2))
}

async fn stored(store: &SqlStore, id: &SessionId, now: Timestamp) -> Data {
    store
        .load(id, now)
        .await
        .unwrap()
        .expect("session gone")
        .data
}

async fn refused_updates_write_nothing_and_shrinking_passes(kind: Kind) {
    let Some(db) = TestDatabase::new(kind, "size_limit").await else {
        return;
    };
    let store = db.store().await;
    let now = Timestamp::from(SystemTime::now());
    let later = now.saturating_add(Duration::from_secs(5));
    let a = text_of(100);
    let id = SessionId::generate();
    let record = record_at(now, Some("limit"), &[("a", &a)]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );

    // 101 bytes held; 101 more would make 202 > 150: refused, nothing
    // written (not even the times).
    let b = text_of(100);
    let grow = limited(later, &[("b", &b)], &[], 150);
    assert_eq!(
        store.update(&id, grow.clone()).await.unwrap(),
        WriteOutcome::TooLarge { size: 202 },
        "{kind:?}"
    );
    assert_eq!(store.load(&id, now).await.unwrap().unwrap(), record);
    let new_id = SessionId::generate();
    assert_eq!(
        store.renew(&id, &new_id, &grow).await.unwrap(),
        WriteOutcome::TooLarge { size: 202 },
        "{kind:?}: renew"
    );
    assert_eq!(store.load(&id, now).await.unwrap().unwrap(), record);
    assert!(store.load(&new_id, now).await.unwrap().is_none());

    // Exactly at the limit passes; one byte over does not. Multi-byte
    // keys and escaped text count in UTF-8 bytes, as `Data::bytes` does.
    let key = "ключ";
    let value = "\"é\\n\\\"ü\"";
    let exact = 101 + key.len() + value.len();
    let over = limited(later, &[(key, value)], &[], exact - 1);
    assert_eq!(
        store.update(&id, over).await.unwrap(),
        WriteOutcome::TooLarge { size: exact },
        "{kind:?}"
    );
    let fits = limited(later, &[(key, value)], &[], exact);
    assert_eq!(
        store.update(&id, fits).await.unwrap(),
        WriteOutcome::Written,
        "{kind:?}"
    );
    assert_eq!(stored(&store, &id, later).await.bytes(), exact);

    // A session over the limit (the limit was lowered since): growth is
    // refused, shrinking passes even while still over, and clearing too.
    let big = SessionId::generate();
    let c = text_of(300);
    let record = record_at(now, None, &[("a", &a), ("c", &c)]);
    assert_eq!(
        store.create(&big, &record).await.unwrap(),
        WriteOutcome::Written
    );
    let one_more = limited(later, &[("d", "1")], &[], 150);
    assert_eq!(
        store.update(&big, one_more).await.unwrap(),
        WriteOutcome::TooLarge { size: 404 },
        "{kind:?}"
    );
    let smaller = text_of(250);
    let shrink = limited(later, &[("c", &smaller)], &[], 150);
    assert_eq!(
        store.update(&big, shrink).await.unwrap(),
        WriteOutcome::Written,
        "{kind:?}: a shrinking update over the limit"
    );
    assert_eq!(stored(&store, &big, later).await.bytes(), 101 + 251);
    let swap = limited(later, &[("e", "1")], &["c"], 150);
    assert_eq!(
        store.update(&big, swap).await.unwrap(),
        WriteOutcome::Written,
        "{kind:?}: removing and setting in one update"
    );
    assert_eq!(stored(&store, &big, later).await.bytes(), 101 + 2);
    let mut reset = limited(later, &[("z", &text_of(120))], &[], 150);
    reset.cleared = true;
    let moved = SessionId::generate();
    assert_eq!(
        store.renew(&big, &moved, &reset).await.unwrap(),
        WriteOutcome::Written,
        "{kind:?}: clear and set, renewed"
    );
    assert_eq!(stored(&store, &moved, later).await.bytes(), 121);

    // Gone sessions are still `Missing`, limit or not.
    assert!(store.delete(&moved).await.unwrap());
    let late = limited(later, &[("y", &text_of(500))], &[], 150);
    assert_eq!(
        store.update(&moved, late.clone()).await.unwrap(),
        WriteOutcome::Missing
    );
    assert_eq!(
        store
            .renew(&moved, &SessionId::generate(), &late)
            .await
            .unwrap(),
        WriteOutcome::Missing
    );
}

const RACERS: usize = 200;
const LIMIT: usize = 256 * 1024;
/// Each racer's value: 4 KiB, so about 64 fit and 200 would be 800 KiB.
const VALUE_BYTES: usize = 4096;

/// 200 updates of one session, released at once by a barrier, each under
/// the limit alone and together three times over it.
async fn two_hundred_racing_updates_stay_under_the_limit(kind: Kind) {
    let Some(db) = TestDatabase::new(kind, "size_race").await else {
        return;
    };
    // A generous timeout: 200 writers take turns on one row through ten
    // connections, on a shared machine.
    let store = Arc::new(db.store().await.with_timeout(Duration::from_secs(30)));
    let now = Timestamp::from(SystemTime::now());
    let id = SessionId::generate();
    let record = record_at(now, Some("racer"), &[("start", "0")]);
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        WriteOutcome::Written
    );
    let barrier = Arc::new(Barrier::new(RACERS));
    let started = Instant::now();
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            tokio::spawn(async move {
                let key = format!("k{i:03}");
                let value = text_of(VALUE_BYTES);
                let update = limited(now, &[(key.as_str(), value.as_str())], &[], LIMIT);
                barrier.wait().await;
                (i, store.update(&id, update).await)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (i, outcome) = task.await.unwrap();
        match outcome {
            Ok(WriteOutcome::Written) => accepted.push(i),
            Ok(WriteOutcome::TooLarge { size }) => {
                assert!(size > LIMIT, "{kind:?}: refused at {size} bytes");
                refused += 1;
            }
            other => panic!("{kind:?}: update {i} gave {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    let data = stored(&store, &id, now).await;
    let size = data.bytes();
    println!(
        "{kind:?}: {} of {RACERS} updates written, {refused} refused as too large, \
         stored {size} bytes (limit {LIMIT}) in {elapsed:?}",
        accepted.len()
    );
    assert!(size <= LIMIT, "{kind:?}: {size} bytes stored");
    let missing: Vec<_> = accepted
        .iter()
        .filter(|i| !data.contains_key(&format!("k{i:03}")))
        .collect();
    assert!(
        missing.is_empty(),
        "{kind:?}: accepted yet lost: {missing:?}"
    );
    assert_eq!(data.len(), accepted.len() + 1, "{kind:?}: keys");
    // Writes that fit were never refused: the session is full.
    assert!(
        size + "k000".len() + VALUE_BYTES > LIMIT,
        "{kind:?}: refused while room was left"
    );
}

backend_tests!(
    refused_updates_write_nothing_and_shrinking_passes,
    two_hundred_racing_updates_stay_under_the_limit
);
