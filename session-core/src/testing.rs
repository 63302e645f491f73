//! The store contract as a test suite, for every [`SessionStore`].
//!
//! Enabled by the `testing` feature. A store's tests call
//! [`store_contract`] with a store, and [`block_on`] (or their own runtime)
//! to drive it. Every check uses fresh ids and user names, so the suite can
//! share a store with other tests. Time is passed in, never slept on.

use std::collections::HashMap;
use std::future::{Future, ready};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, SystemTime};

use crate::{
    Error, ExpiryOverrides, LimitPolicy, Metadata, Record, SessionId, SessionStore, Timestamp,
    Update, UserLimit, WriteOutcome,
};

/// Drives a future to completion on this thread (no runtime needed).
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// The environment variable that makes an absent test prerequisite (a
/// program such as `redis-server` or `chromium`, or a database server) a
/// failure instead of a skip. CI sets it to `1`.
pub const STRICT_VAR: &str = "SESSION_TEST_STRICT";

/// Whether the run is strict ([`STRICT_VAR`] is set to `1` or `true`).
pub fn strict() -> bool {
    std::env::var(STRICT_VAR).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Says that a test cannot run here because `what` is absent, and `why`.
///
/// In a strict run ([`strict`]) this panics, failing the test; otherwise it
/// writes one line to stderr, past the test harness's capture, naming the
/// test (its thread's name) and what was skipped, and returns so the caller
/// can `return` from the test:
///
/// ```
/// # fn redis_available() -> bool { true }
/// if !redis_available() {
///     return session_core::testing::skip("redis-server", "not on PATH; apt-get install redis-server");
/// }
/// ```
pub fn skip(what: &str, why: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    if strict() {
        panic!("{test}: {what} is required ({STRICT_VAR}=1) but absent: {why}");
    }
    // Straight to the process's stderr: the test harness captures what
    // `eprintln!` prints for a passing test, and this line must be seen.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: needs {what}, absent: {why} (set {STRICT_VAR}=1 to fail instead)"
    );
}

const HOUR: Duration = Duration::from_secs(3600);

/// A user name no other run of the suite uses.
fn unique_user(tag: &str) -> String {
    format!("{tag}-{}", SessionId::generate())
}

/// A record created at `now`, expiring an hour later.
pub fn record_at(now: Timestamp, user: Option<&str>, data: &[(&str, &str)]) -> Record {
    Record {
        meta: Metadata {
            created_at: now,
            last_activity: now,
            user: user.map(Arc::from),
            authenticated_at: user.map(|_| now),
            expiry: ExpiryOverrides::default(),
        },
        expires_at: now.saturating_add(HOUR),
        data: data.iter().copied().collect(),
    }
}

/// An update at `now` that sets and removes the given keys.
pub fn update_at(now: Timestamp, set: &[(&str, &str)], removed: &[&str]) -> Update {
    Update {
        set: set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        removed: removed.iter().map(|k| k.to_string()).collect(),
        last_activity: now,
        expires_at: now.saturating_add(HOUR),
        ..Update::default()
    }
}

fn data(record: &Record) -> HashMap<&str, &str> {
    record.data.iter().collect()
}

async fn must_load<S: SessionStore>(store: &S, id: &SessionId, now: Timestamp) -> Record {
    store
        .load(id, now)
        .await
        .expect("load failed")
        .expect("session should be live")
}

async fn must_create<S: SessionStore>(store: &S, record: &Record) -> SessionId {
    let id = SessionId::generate();
    assert_eq!(
        store.create(&id, record).await.unwrap(),
        WriteOutcome::Written
    );
    id
}

/// One test per point of the [`SessionStore`] contract, so that the first
/// broken rule does not hide the others.
///
/// Give it a test attribute that runs async tests (`#[tokio::test]`,
/// `#[actix_web::test]`, ...) and an `async fn() -> Option<S>` that makes the
/// store (`None` after [`skip`] when the store cannot run here); or
/// `block_on` and the function, for a store whose futures need no runtime.
///
/// ```ignore
/// async fn store() -> Option<MyStore> { Some(MyStore::connect().await.ok()?) }
/// session_core::store_contract_tests!(#[tokio::test], store);
/// ```
#[macro_export]
macro_rules! store_contract_tests {
    (#[$test:meta], $make:path) => {
        $crate::store_contract_tests!(@each [$test] $make;
            create_and_load, create_never_overwrites, concurrent_updates_keep_disjoint_keys,
            clear_then_set, expiry_is_exact, touch_extends_expiry, no_resurrection_after_delete,
            no_resurrection_after_expiry, renew_moves_and_kills_the_old_id,
            renew_refuses_a_taken_id, user_index, user_change_moves_the_index,
            size_limit_holds_at_the_merge, authenticated_at_is_kept, user_limit_ends_the_oldest,
            user_limit_refuses, operator_count_and_list, operator_delete_all);
    };
    (block_on, $make:path) => {
        $crate::store_contract_tests!(@blocking $make;
            create_and_load, create_never_overwrites, concurrent_updates_keep_disjoint_keys,
            clear_then_set, expiry_is_exact, touch_extends_expiry, no_resurrection_after_delete,
            no_resurrection_after_expiry, renew_moves_and_kills_the_old_id,
            renew_refuses_a_taken_id, user_index, user_change_moves_the_index,
            size_limit_holds_at_the_merge, authenticated_at_is_kept, user_limit_ends_the_oldest,
            user_limit_refuses, operator_count_and_list, operator_delete_all);
    };
    (@each [$test:meta] $make:path; $($point:ident),*) => {
        $(
            #[$test]
            async fn $point() {
                if let Some(store) = $make().await {
                    let now = $crate::Timestamp::from(::std::time::SystemTime::now());
                    $crate::testing::$point(&store, now).await;
                }
            }
        )*
    };
    (@blocking $make:path; $($point:ident),*) => {
        $(
            #[test]
            fn $point() {
                $crate::testing::block_on(async {
                    if let Some(store) = $make().await {
                        let now = $crate::Timestamp::from(::std::time::SystemTime::now());
                        $crate::testing::$point(&store, now).await;
                    }
                });
            }
        )*
    };
}

/// Runs every check of the [`SessionStore`] contract against `store`,
/// panicking with the broken rule's name on the first failure.
///
/// `now` should be close to the wall clock, for stores that also expire
/// records by their own clock (Redis TTLs); every check moves time by
/// passing later instants, never by sleeping.
pub async fn store_contract<S: SessionStore>(store: &S) {
    let now = Timestamp::from(SystemTime::now());
    // Each point boxed: one future holding every point's state inline
    // outgrows a test thread's stack in debug builds.
    Box::pin(create_and_load(store, now)).await;
    Box::pin(create_never_overwrites(store, now)).await;
    Box::pin(concurrent_updates_keep_disjoint_keys(store, now)).await;
    Box::pin(clear_then_set(store, now)).await;
    Box::pin(expiry_is_exact(store, now)).await;
    Box::pin(touch_extends_expiry(store, now)).await;
    Box::pin(no_resurrection_after_delete(store, now)).await;
    Box::pin(no_resurrection_after_expiry(store, now)).await;
    Box::pin(renew_moves_and_kills_the_old_id(store, now)).await;
    Box::pin(renew_refuses_a_taken_id(store, now)).await;
    Box::pin(user_index(store, now)).await;
    Box::pin(user_change_moves_the_index(store, now)).await;
    Box::pin(size_limit_holds_at_the_merge(store, now)).await;
    Box::pin(authenticated_at_is_kept(store, now)).await;
    Box::pin(user_limit_ends_the_oldest(store, now)).await;
    Box::pin(user_limit_refuses(store, now)).await;
    Box::pin(operator_count_and_list(store, now)).await;
    Box::pin(operator_delete_all(store, now)).await;
}

/// Whether `store` has the operator's calls (point 9 of the contract): a
/// store whose [`count`](SessionStore::count) answers "not supported" (the
/// trait's default, or Redis Cluster) skips their checks.
async fn has_operator_calls<S: SessionStore>(store: &S, now: Timestamp) -> bool {
    match store.count(now).await {
        Ok(_) => true,
        Err(crate::Error::Store(e)) if e.to_string().contains("not supported") => false,
        Err(e) => panic!("count failed: {e}"),
    }
}

/// All the live sessions, a page of `limit` at a time, checking that no
/// page repeats an id.
async fn list_all<S: SessionStore>(
    store: &S,
    now: Timestamp,
    limit: usize,
) -> Vec<(SessionId, Record)> {
    let mut all: Vec<(SessionId, Record)> = Vec::new();
    let mut after = None;
    loop {
        let page = store.list(now, after.as_ref(), limit).await.unwrap();
        assert!(page.len() <= limit, "a page longer than its limit");
        for (id, _) in &page {
            assert!(
                all.iter().all(|(seen, _)| seen != id),
                "list repeated a session"
            );
        }
        let last = page.last().map(|(id, _)| *id);
        let done = page.len() < limit;
        all.extend(page);
        match last {
            Some(last) if !done => after = Some(last),
            _ => return all,
        }
    }
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)):
/// `count` and `list` see exactly the live sessions, pages cover them all
/// once, and a page picks up after its cursor while sessions come and go.
/// Starts by ending every session of the store it is given.
pub async fn operator_count_and_list<S: SessionStore>(store: &S, now: Timestamp) {
    if !has_operator_calls(store, now).await {
        return;
    }
    store.delete_all().await.unwrap();
    assert_eq!(store.count(now).await.unwrap(), 0, "count after delete_all");
    assert!(store.list(now, None, 10).await.unwrap().is_empty());
    let user = unique_user("operator");
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(must_create(store, &record_at(now, Some(&user), &[("k", "1")])).await);
    }
    // One more, created half an hour earlier: it expires half an hour from now.
    let earlier = Timestamp::from_unix_millis(now.unix_millis() - 30 * 60 * 1000);
    let old = must_create(store, &record_at(earlier, None, &[])).await;
    assert_eq!(store.count(now).await.unwrap(), 5, "count");
    let later = now.saturating_add(Duration::from_secs(45 * 60));
    assert_eq!(
        store.count(later).await.unwrap(),
        4,
        "count left in an expired one"
    );

    for limit in [1, 2, 3, 5, 100] {
        let all = list_all(store, now, limit).await;
        assert_eq!(all.len(), 5, "pages of {limit}");
        let mut listed: Vec<SessionId> = all.iter().map(|(id, _)| *id).collect();
        listed.sort_unstable();
        let mut expected = ids.clone();
        expected.push(old);
        expected.sort_unstable();
        assert_eq!(listed, expected, "pages of {limit} listed other sessions");
    }
    let all = list_all(store, later, 2).await;
    assert_eq!(all.len(), 4, "list showed an expired session");
    assert!(all.iter().all(|(id, _)| *id != old));
    for (id, record) in &all {
        assert_eq!(record, &must_load(store, id, now).await, "listed record");
        assert_eq!(record.meta.user.as_deref(), Some(user.as_str()));
    }

    // Keyset paging: end the first page's session and start another while
    // paging; the next page still starts right after the cursor.
    let first = store.list(now, None, 1).await.unwrap();
    let cursor = first[0].0;
    assert!(store.delete(&cursor).await.unwrap());
    let fresh = must_create(store, &record_at(now, None, &[])).await;
    let rest = store.list(now, Some(&cursor), 100).await.unwrap();
    let mut expected: Vec<SessionId> = ids.iter().chain([&old, &fresh]).copied().collect();
    expected.retain(|id| *id != cursor);
    let full = list_all(store, now, 100).await;
    assert_eq!(full.len(), expected.len());
    // The page after the cursor is the tail of the full list from there.
    let position = full
        .iter()
        .position(|(id, _)| rest.first().is_some_and(|(first, _)| first == id))
        .unwrap_or(full.len());
    let tail: Vec<SessionId> = full[position..].iter().map(|(id, _)| *id).collect();
    let rest: Vec<SessionId> = rest.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        rest, tail,
        "the page after a cursor skipped or repeated a session"
    );
    let mut listed: Vec<SessionId> = full.iter().map(|(id, _)| *id).collect();
    listed.sort_unstable();
    expected.sort_unstable();
    assert_eq!(listed, expected);
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)):
/// `delete_all` ends every session and empties every user's index.
/// Starts by ending every session of the store it is given.
pub async fn operator_delete_all<S: SessionStore>(store: &S, now: Timestamp) {
    if !has_operator_calls(store, now).await {
        return;
    }
    store.delete_all().await.unwrap();
    let user = unique_user("all");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(must_create(store, &record_at(now, Some(&user), &[])).await);
    }
    ids.push(must_create(store, &record_at(now, None, &[("k", "1")])).await);
    assert_eq!(store.delete_all().await.unwrap(), 4, "delete_all's count");
    assert_eq!(store.count(now).await.unwrap(), 0);
    assert!(store.list(now, None, 10).await.unwrap().is_empty());
    assert!(store.user_sessions(&user, now).await.unwrap().is_empty());
    assert_eq!(store.delete_user(&user).await.unwrap(), 0, "index outlived");
    for id in &ids {
        assert!(store.load(id, now).await.unwrap().is_none());
    }
    // The store works on afterwards.
    let id = must_create(store, &record_at(now, Some(&user), &[])).await;
    assert_eq!(store.count(now).await.unwrap(), 1);
    assert_eq!(store.user_sessions(&user, now).await.unwrap(), vec![id]);
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)).
pub async fn create_and_load<S: SessionStore>(store: &S, now: Timestamp) {
    let record = record_at(
        now,
        Some(&unique_user("load")),
        &[("a", "1"), ("b", "\"x\"")],
    );
    let id = must_create(store, &record).await;
    assert_eq!(
        must_load(store, &id, now).await,
        record,
        "create_and_load: record changed"
    );
    let unknown = SessionId::generate();
    assert!(
        store.load(&unknown, now).await.unwrap().is_none(),
        "create_and_load: unknown id"
    );
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)).
pub async fn create_never_overwrites<S: SessionStore>(store: &S, now: Timestamp) {
    let first = record_at(now, None, &[("owner", "1")]);
    let id = must_create(store, &first).await;
    let second = record_at(now, None, &[("owner", "2")]);
    assert_eq!(
        store.create(&id, &second).await.unwrap(),
        WriteOutcome::IdTaken
    );
    assert_eq!(
        data(&must_load(store, &id, now).await)["owner"],
        "1",
        "create overwrote"
    );
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)).
pub async fn concurrent_updates_keep_disjoint_keys<S: SessionStore>(store: &S, now: Timestamp) {
    let id = must_create(
        store,
        &record_at(now, None, &[("shared", "0"), ("gone", "1")]),
    )
    .await;
    // Two requests loaded the same record; each commits its own change.
    let t = now.saturating_add(Duration::from_secs(1));
    let a = update_at(t, &[("a", "1")], &["gone"]);
    let b = update_at(t, &[("b", "2")], &[]);
    let (ra, rb) = (
        store.update(&id, a.clone()).await.unwrap(),
        store.update(&id, b.clone()).await.unwrap(),
    );
    assert_eq!((ra, rb), (WriteOutcome::Written, WriteOutcome::Written));
    let record = must_load(store, &id, t).await;
    let expected: HashMap<&str, &str> = [("shared", "0"), ("a", "1"), ("b", "2")].into();
    assert_eq!(data(&record), expected, "concurrent updates lost a change");
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)):
/// the size limit is checked on the record as the store holds it when it
/// merges the update, not as a request loaded it.
pub async fn size_limit_holds_at_the_merge<S: SessionStore>(store: &S, now: Timestamp) {
    const LIMIT: usize = 100;
    let limited = |mut update: Update| {
        update.max_bytes = LIMIT;
        update
    };
    let value = |len: usize| format!("\"{}\"", "x".repeat(len - 2));
    let t = now.saturating_add(Duration::from_secs(1));
    // 1 + 10 bytes held; two requests loaded that, and each adds 1 + 60:
    // each fits alone (72), not both (133).
    let id = must_create(store, &record_at(now, None, &[("k", &value(10))])).await;
    let (a, b) = (value(60), value(60));
    let first = limited(update_at(t, &[("a", &a)], &[]));
    let second = limited(update_at(t, &[("b", &b)], &[]));
    assert_eq!(
        store.update(&id, first).await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(
        store.update(&id, second).await.unwrap(),
        WriteOutcome::TooLarge { size: 133 },
        "size_limit_holds_at_the_merge: the second update went past the limit"
    );
    let record = must_load(store, &id, t).await;
    assert_eq!(record.data.bytes(), 72, "size_limit_holds_at_the_merge");
    assert!(!record.data.contains_key("b"), "a refused update wrote");
    // Replacing a value counts what it drops: 72 - 11 + 91 = 152 is over;
    // removing `a` in the same update brings it to 152 - 61 = 91.
    let replace = limited(update_at(t, &[("k", &value(90))], &[]));
    assert!(matches!(
        store.update(&id, replace).await.unwrap(),
        WriteOutcome::TooLarge { size: 152 }
    ));
    let swap = limited(update_at(t, &[("k", &value(90))], &["a"]));
    assert_eq!(
        store.update(&id, swap).await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(must_load(store, &id, t).await.data.bytes(), 91);
    // Renewing checks the same rule, and leaves the old id live when it
    // refuses.
    let new_id = SessionId::generate();
    let grow = limited(update_at(t, &[("z", &value(20))], &[]));
    assert_eq!(
        store.renew(&id, &new_id, &grow).await.unwrap(),
        WriteOutcome::TooLarge { size: 112 }
    );
    assert!(store.load(&new_id, t).await.unwrap().is_none());
    assert_eq!(must_load(store, &id, t).await.data.bytes(), 91);
    // A session over the limit (written under a larger one) may shrink,
    // and a cleared session counts only what is set.
    let big = must_create(store, &record_at(now, None, &[("big", &value(300))])).await;
    let shrink = limited(update_at(t, &[("big", &value(200))], &[]));
    assert_eq!(
        store.update(&big, shrink).await.unwrap(),
        WriteOutcome::Written
    );
    let mut cleared = limited(update_at(t, &[("c", &value(50))], &[]));
    cleared.cleared = true;
    assert_eq!(
        store.update(&big, cleared).await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(must_load(store, &big, t).await.data.bytes(), 51);
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)).
pub async fn clear_then_set<S: SessionStore>(store: &S, now: Timestamp) {
    let id = must_create(store, &record_at(now, None, &[("a", "1"), ("b", "2")])).await;
    let mut update = update_at(now, &[("c", "3")], &[]);
    update.cleared = true;
    assert_eq!(
        store.update(&id, update.clone()).await.unwrap(),
        WriteOutcome::Written
    );
    let expected: HashMap<&str, &str> = [("c", "3")].into();
    assert_eq!(
        data(&must_load(store, &id, now).await),
        expected,
        "clear_then_set"
    );
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)).
pub async fn expiry_is_exact<S: SessionStore>(store: &S, now: Timestamp) {
    let record = record_at(now, None, &[("a", "1")]);
    let id = must_create(store, &record).await;
    let last_live = Timestamp::from_unix_millis(record.expires_at.unix_millis() - 1);
    assert!(
        store.load(&id, last_live).await.unwrap().is_some(),
        "expired a millisecond early"
    );
    assert!(
        store.load(&id, record.expires_at).await.unwrap().is_none(),
        "live at expires_at"
    );
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)).
pub async fn touch_extends_expiry<S: SessionStore>(store: &S, now: Timestamp) {
    let id = must_create(store, &record_at(now, None, &[("a", "1")])).await;
    let later = now.saturating_add(Duration::from_secs(1800));
    let touch = Update {
        last_activity: later,
        expires_at: later.saturating_add(HOUR),
        ..Update::default()
    };
    assert!(touch.is_touch_only());
    assert_eq!(
        store.update(&id, touch.clone()).await.unwrap(),
        WriteOutcome::Written
    );
    let record = must_load(store, &id, now.saturating_add(HOUR)).await;
    assert_eq!(
        record.expires_at,
        later.saturating_add(HOUR),
        "touch did not move expires_at"
    );
    assert_eq!(
        record.meta.last_activity, later,
        "touch did not move last_activity"
    );
    assert_eq!(data(&record)["a"], "1", "touch lost a value");
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)).
pub async fn no_resurrection_after_delete<S: SessionStore>(store: &S, now: Timestamp) {
    let id = must_create(store, &record_at(now, None, &[("a", "1")])).await;
    assert!(store.delete(&id).await.unwrap());
    assert!(!store.delete(&id).await.unwrap(), "deleted twice");
    // A request that loaded the session before logout now commits.
    let late = update_at(now, &[("b", "2")], &[]);
    assert_eq!(
        store.update(&id, late.clone()).await.unwrap(),
        WriteOutcome::Missing
    );
    let renew_to = SessionId::generate();
    assert_eq!(
        store.renew(&id, &renew_to, &late).await.unwrap(),
        WriteOutcome::Missing
    );
    assert!(
        store.load(&id, now).await.unwrap().is_none(),
        "update resurrected a session"
    );
    assert!(
        store.load(&renew_to, now).await.unwrap().is_none(),
        "renew resurrected a session"
    );
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)).
pub async fn no_resurrection_after_expiry<S: SessionStore>(store: &S, now: Timestamp) {
    let record = record_at(now, None, &[("a", "1")]);
    let id = must_create(store, &record).await;
    let after = record.expires_at.saturating_add(Duration::from_secs(1));
    let late = update_at(after, &[("b", "2")], &[]);
    assert_eq!(
        store.update(&id, late.clone()).await.unwrap(),
        WriteOutcome::Missing
    );
    assert!(
        store.load(&id, after).await.unwrap().is_none(),
        "update revived an expired session"
    );
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)).
pub async fn renew_moves_and_kills_the_old_id<S: SessionStore>(store: &S, now: Timestamp) {
    let user = unique_user("renew");
    let id = must_create(store, &record_at(now, Some(&user), &[("a", "1")])).await;
    let new_id = SessionId::generate();
    let update = update_at(now, &[("b", "2")], &[]);
    assert_eq!(
        store.renew(&id, &new_id, &update).await.unwrap(),
        WriteOutcome::Written
    );
    assert!(
        store.load(&id, now).await.unwrap().is_none(),
        "old id alive after renew"
    );
    let record = must_load(store, &new_id, now).await;
    let expected: HashMap<&str, &str> = [("a", "1"), ("b", "2")].into();
    assert_eq!(data(&record), expected, "renew lost or missed values");
    assert_eq!(record.meta.user.as_deref(), Some(user.as_str()));
    assert_eq!(
        store.user_sessions(&user, now).await.unwrap(),
        [new_id],
        "index not moved"
    );
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)).
pub async fn renew_refuses_a_taken_id<S: SessionStore>(store: &S, now: Timestamp) {
    let id = must_create(store, &record_at(now, None, &[("a", "1")])).await;
    let other = must_create(store, &record_at(now, None, &[("other", "1")])).await;
    let update = update_at(now, &[], &[]);
    assert_eq!(
        store.renew(&id, &other, &update).await.unwrap(),
        WriteOutcome::IdTaken
    );
    assert_eq!(
        data(&must_load(store, &id, now).await)["a"],
        "1",
        "renew to a taken id lost data"
    );
    assert_eq!(
        data(&must_load(store, &other, now).await)["other"],
        "1",
        "renew overwrote"
    );
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)).
pub async fn user_index<S: SessionStore>(store: &S, now: Timestamp) {
    let (alice, bob) = (unique_user("alice"), unique_user("bob"));
    let mut alices = Vec::new();
    for _ in 0..3 {
        alices.push(must_create(store, &record_at(now, Some(&alice), &[])).await);
    }
    let bobs = must_create(store, &record_at(now, Some(&bob), &[])).await;
    let mut listed = store.user_sessions(&alice, now).await.unwrap();
    listed.sort();
    alices.sort();
    assert_eq!(listed, alices, "user_sessions");
    assert_eq!(
        store.delete_user(&alice).await.unwrap(),
        3,
        "delete_user count"
    );
    for id in &alices {
        assert!(
            store.load(id, now).await.unwrap().is_none(),
            "delete_user left a session"
        );
    }
    assert!(store.user_sessions(&alice, now).await.unwrap().is_empty());
    assert_eq!(
        store.user_sessions(&bob, now).await.unwrap(),
        [bobs],
        "delete_user hit another user"
    );
    assert_eq!(store.delete_user(&alice).await.unwrap(), 0);
    // Expired sessions are not listed.
    assert!(
        store
            .user_sessions(&bob, now.saturating_add(HOUR))
            .await
            .unwrap()
            .is_empty(),
        "listed expired"
    );
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)).
pub async fn user_change_moves_the_index<S: SessionStore>(store: &S, now: Timestamp) {
    let (before, after) = (unique_user("before"), unique_user("after"));
    let id = must_create(store, &record_at(now, Some(&before), &[])).await;
    let mut update = update_at(now, &[], &[]);
    update.user = Some(Some(Arc::from(after.as_str())));
    assert_eq!(
        store.update(&id, update.clone()).await.unwrap(),
        WriteOutcome::Written
    );
    assert!(
        store.user_sessions(&before, now).await.unwrap().is_empty(),
        "old user still indexed"
    );
    assert_eq!(store.user_sessions(&after, now).await.unwrap(), [id]);
    update.user = Some(None);
    assert_eq!(
        store.update(&id, update.clone()).await.unwrap(),
        WriteOutcome::Written
    );
    assert!(
        store.user_sessions(&after, now).await.unwrap().is_empty(),
        "cleared user still indexed"
    );
    assert_eq!(must_load(store, &id, now).await.meta.user, None);
}
/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)):
/// a session's login time round-trips to the millisecond, survives updates,
/// touches and renewals that do not change it, and changes (or goes) only
/// with an update that carries it.
pub async fn authenticated_at_is_kept<S: SessionStore>(store: &S, now: Timestamp) {
    let user = unique_user("auth");
    let login = Timestamp::from_unix_millis(now.unix_millis() - 1_234);
    let mut record = record_at(now, Some(&user), &[("a", "1")]);
    record.meta.authenticated_at = Some(login);
    let id = must_create(store, &record).await;
    let auth = |r: Record| r.meta.authenticated_at;
    assert_eq!(
        auth(must_load(store, &id, now).await),
        Some(login),
        "authenticated_at_is_kept: create"
    );
    let t = now.saturating_add(Duration::from_secs(1));
    // A write of values and a touch keep it.
    let write = update_at(t, &[("b", "2")], &["a"]);
    assert_eq!(
        store.update(&id, write).await.unwrap(),
        WriteOutcome::Written
    );
    let touch = update_at(t.saturating_add(Duration::from_secs(1)), &[], &[]);
    assert!(touch.is_touch_only());
    assert_eq!(
        store.update(&id, touch).await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(
        auth(must_load(store, &id, t).await),
        Some(login),
        "authenticated_at_is_kept: an update lost it"
    );
    // A renewal keeps it.
    let renewed = SessionId::generate();
    let renew = update_at(t, &[], &[]);
    assert_eq!(
        store.renew(&id, &renewed, &renew).await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(
        auth(must_load(store, &renewed, t).await),
        Some(login),
        "authenticated_at_is_kept: renew lost it"
    );
    // A login (with the same user, or another one, renewing) sets it.
    let again = Timestamp::from_unix_millis(t.unix_millis() + 7);
    let mut relogin = update_at(t, &[], &[]);
    relogin.authenticated_at = Some(Some(again));
    assert!(!relogin.is_touch_only());
    assert_eq!(
        store.update(&renewed, relogin).await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(auth(must_load(store, &renewed, t).await), Some(again));
    let other = unique_user("auth-other");
    let moved = SessionId::generate();
    let later = Timestamp::from_unix_millis(t.unix_millis() + 9);
    let mut switch = update_at(t, &[], &[]);
    switch.user = Some(Some(Arc::from(other.as_str())));
    switch.authenticated_at = Some(Some(later));
    assert_eq!(
        store.renew(&renewed, &moved, &switch).await.unwrap(),
        WriteOutcome::Written
    );
    let record = must_load(store, &moved, t).await;
    assert_eq!(
        (record.meta.user.as_deref(), record.meta.authenticated_at),
        (Some(other.as_str()), Some(later)),
        "authenticated_at_is_kept: renew with a login"
    );
    // A logout clears it.
    let mut logout = update_at(t, &[], &[]);
    logout.user = Some(None);
    logout.authenticated_at = Some(None);
    assert_eq!(
        store.update(&moved, logout).await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(auth(must_load(store, &moved, t).await), None);
    // A session that never had one has none.
    let anon = must_create(store, &record_at(now, None, &[])).await;
    assert_eq!(auth(must_load(store, &anon, now).await), None);
}

/// `at` plus `secs` seconds.
fn secs_after(at: Timestamp, secs: u64) -> Timestamp {
    at.saturating_add(Duration::from_secs(secs))
}

/// The live sessions of `user` at `now`, sorted.
async fn sorted_sessions<S: SessionStore>(store: &S, user: &str, now: Timestamp) -> Vec<SessionId> {
    let mut ids = store.user_sessions(user, now).await.unwrap();
    ids.sort();
    ids
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)):
/// a write that gives a session a user over its [`UserLimit`] with
/// [`LimitPolicy::EndOldest`] ends that user's least recently used
/// sessions (create, update and renew alike); expired sessions do not count.
pub async fn user_limit_ends_the_oldest<S: SessionStore>(store: &S, now: Timestamp) {
    let user = unique_user("limited");
    let limit = UserLimit::end_oldest(2);
    // An expired session of the user counts for nothing.
    let stale = must_create(store, &record_at(secs_after(now, 0), Some(&user), &[])).await;
    let t = |secs: u64| secs_after(now, 3600 + secs);
    let mut created = Vec::new();
    for secs in 1..=2 {
        let id = SessionId::generate();
        let outcome = store
            .create_limited(&id, &record_at(t(secs), Some(&user), &[]), limit)
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::Written, "under the limit");
        created.push(id);
    }
    assert!(store.load(&stale, t(2)).await.unwrap().is_none());
    // A third login ends the least recently used (the first).
    let third = SessionId::generate();
    let outcome = store
        .create_limited(&third, &record_at(t(3), Some(&user), &[]), limit)
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::WrittenEndingOldest { ended: 1 });
    assert!(
        store.load(&created[0], t(3)).await.unwrap().is_none(),
        "the oldest session is still live"
    );
    let mut expected = vec![created[1], third];
    expected.sort();
    assert_eq!(sorted_sessions(store, &user, t(3)).await, expected);
    // An update that gives a session the user: the oldest (created[1]) ends.
    let anonymous = must_create(store, &record_at(t(4), None, &[])).await;
    let mut update = update_at(t(5), &[], &[]);
    update.user = Some(Some(Arc::from(user.as_str())));
    update.max_per_user = Some(limit);
    let outcome = store.update(&anonymous, update.clone()).await.unwrap();
    assert_eq!(outcome, WriteOutcome::WrittenEndingOldest { ended: 1 });
    let mut expected = vec![third, anonymous];
    expected.sort();
    assert_eq!(sorted_sessions(store, &user, t(5)).await, expected);
    // A renew that sets the user again keeps its own session: it ends the
    // other one only if the limit is full without it (here, it is not).
    let renewed = SessionId::generate();
    let mut renew = update.clone();
    renew.last_activity = t(6);
    let outcome = store.renew(&anonymous, &renewed, &renew).await.unwrap();
    assert_eq!(outcome, WriteOutcome::Written);
    let mut expected = vec![third, renewed];
    expected.sort();
    assert_eq!(sorted_sessions(store, &user, t(6)).await, expected);
    // With a limit of one, the same renew ends the other session.
    let again = SessionId::generate();
    renew.max_per_user = Some(UserLimit::end_oldest(1));
    let outcome = store.renew(&renewed, &again, &renew).await.unwrap();
    assert_eq!(outcome, WriteOutcome::WrittenEndingOldest { ended: 1 });
    assert_eq!(sorted_sessions(store, &user, t(6)).await, [again]);
    store.delete_user(&user).await.unwrap();
}

/// One point of the contract (see [`store_contract_tests!`](crate::store_contract_tests)):
/// a write that gives a session a user over its [`UserLimit`] with
/// [`LimitPolicy::Refuse`] writes nothing and returns
/// [`WriteOutcome::UserLimitReached`]; a write that does not set the user
/// is never refused.
pub async fn user_limit_refuses<S: SessionStore>(store: &S, now: Timestamp) {
    let user = unique_user("refusing");
    let limit = UserLimit::refuse(2);
    let mut ids = Vec::new();
    for secs in 0..2 {
        let id = SessionId::generate();
        let record = record_at(secs_after(now, secs), Some(&user), &[]);
        assert_eq!(
            store.create_limited(&id, &record, limit).await.unwrap(),
            WriteOutcome::Written
        );
        ids.push(id);
    }
    let t = secs_after(now, 2);
    let refused = SessionId::generate();
    let outcome = store
        .create_limited(&refused, &record_at(t, Some(&user), &[]), limit)
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::UserLimitReached);
    assert!(
        store.load(&refused, t).await.unwrap().is_none(),
        "a refused create stored its session"
    );
    let anonymous = must_create(store, &record_at(t, None, &[("k", "1")])).await;
    let mut update = update_at(t, &[("k", "2")], &[]);
    update.user = Some(Some(Arc::from(user.as_str())));
    update.max_per_user = Some(limit);
    assert_eq!(
        store.update(&anonymous, update.clone()).await.unwrap(),
        WriteOutcome::UserLimitReached
    );
    let record = must_load(store, &anonymous, t).await;
    assert_eq!(record.meta.user, None, "a refused update set the user");
    assert_eq!(record.data.get("k"), Some("1"), "a refused update wrote");
    let renewed = SessionId::generate();
    assert_eq!(
        store.renew(&anonymous, &renewed, &update).await.unwrap(),
        WriteOutcome::UserLimitReached
    );
    assert!(store.load(&anonymous, t).await.unwrap().is_some());
    assert!(store.load(&renewed, t).await.unwrap().is_none());
    // The user's own sessions still update and renew.
    let mut touch = update_at(t, &[("x", "1")], &[]);
    touch.max_per_user = Some(limit);
    assert_eq!(
        store.update(&ids[0], touch.clone()).await.unwrap(),
        WriteOutcome::Written
    );
    let moved = SessionId::generate();
    assert_eq!(
        store.renew(&ids[0], &moved, &touch).await.unwrap(),
        WriteOutcome::Written
    );
    let mut expected = vec![moved, ids[1]];
    expected.sort();
    assert_eq!(sorted_sessions(store, &user, t).await, expected);
    // Once one ends, a login passes again.
    assert!(store.delete(&moved).await.unwrap());
    assert_eq!(
        store
            .create_limited(&refused, &record_at(t, Some(&user), &[]), limit)
            .await
            .unwrap(),
        WriteOutcome::Written
    );
    store.delete_user(&user).await.unwrap();
    store.delete(&anonymous).await.unwrap();
}

/// `logins` logins of one user at once (each a
/// [`create_limited`](SessionStore::create_limited) with a limit of `max`
/// and `policy`), as a store's tests run on a multi-threaded runtime.
/// Asserts that at most `max` sessions of the user are live afterwards,
/// and that the outcomes agree: with [`LimitPolicy::Refuse`] exactly `max`
/// written and the rest refused; with [`LimitPolicy::EndOldest`] all
/// written, `max` left.
pub async fn racing_logins_stay_within_the_user_limit<S: SessionStore>(
    store: &S,
    now: Timestamp,
    logins: usize,
    max: usize,
    policy: LimitPolicy,
) {
    let user = unique_user("racing");
    let limit = UserLimit { max, policy };
    let ids: Vec<SessionId> = (0..logins).map(|_| SessionId::generate()).collect();
    let records: Vec<Record> = (0..logins)
        .map(|i| record_at(secs_after(now, i as u64), Some(&user), &[]))
        .collect();
    let creates = ids
        .iter()
        .zip(&records)
        .map(|(id, record)| store.create_limited(id, record, limit));
    let outcomes = join_all(creates.collect()).await;
    let t = secs_after(now, logins as u64);
    let live = store.user_sessions(&user, t).await.unwrap();
    let mut loaded = 0;
    for id in &ids {
        if store.load(id, t).await.unwrap().is_some() {
            loaded += 1;
        }
    }
    assert!(
        live.len() <= max && loaded <= max,
        "{} listed, {loaded} loadable, over the limit of {max}",
        live.len()
    );
    let written = outcomes
        .iter()
        .filter(|o| o.as_ref().expect("create failed").is_written())
        .count();
    match policy {
        LimitPolicy::Refuse => {
            assert_eq!(written, max, "refuse: {outcomes:?}");
            assert_eq!(live.len(), max);
        }
        LimitPolicy::EndOldest => {
            assert_eq!(written, logins, "end-oldest: {outcomes:?}");
            assert_eq!(live.len(), max);
        }
    }
    store.delete_user(&user).await.unwrap();
}

/// A store that is down (every call fails with [`Error::Store`]), or that
/// holds only corrupt records (every call fails with [`Error::Corrupt`]):
/// for tests of what an engine or an adapter answers then.
#[derive(Clone, Copy, Debug)]
pub struct BrokenStore {
    corrupt: bool,
}

impl BrokenStore {
    /// A store that is down.
    pub fn down() -> Self {
        Self { corrupt: false }
    }

    /// A store whose every record is corrupt.
    pub fn corrupt() -> Self {
        Self { corrupt: true }
    }

    fn fail<T: Send>(&self) -> impl Future<Output = Result<T, Error>> + Send {
        ready(Err(if self.corrupt {
            Error::corrupt("bad record")
        } else {
            Error::store(std::io::Error::other("connection refused"))
        }))
    }
}

impl SessionStore for BrokenStore {
    fn load(
        &self,
        _: &SessionId,
        _: Timestamp,
    ) -> impl Future<Output = Result<Option<Record>, Error>> + Send {
        self.fail()
    }
    fn create(
        &self,
        _: &SessionId,
        _: &Record,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        self.fail()
    }
    fn update(
        &self,
        _: &SessionId,
        _: Update,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        self.fail()
    }
    fn renew(
        &self,
        _: &SessionId,
        _: &SessionId,
        _: &Update,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        self.fail()
    }
    fn delete(&self, _: &SessionId) -> impl Future<Output = Result<bool, Error>> + Send {
        self.fail()
    }
    fn user_sessions(
        &self,
        _: &str,
        _: Timestamp,
    ) -> impl Future<Output = Result<Vec<SessionId>, Error>> + Send {
        self.fail()
    }
    fn delete_user(&self, _: &str) -> impl Future<Output = Result<usize, Error>> + Send {
        self.fail()
    }
}

/// Any store made to behave like one that does IO: every future it returns
/// is pending on its first poll (after waking its task), then runs the
/// wrapped store's. It is not [immediate](SessionStore::is_immediate), so
/// wrapping a [`MemoryStore`](crate::MemoryStore) runs the engine and the
/// adapters down the path that Redis and SQL stores take, without a server.
#[derive(Clone, Debug, Default)]
pub struct Deferred<S>(pub S);

/// Pending once, then `inner`.
async fn yield_once<T>(inner: impl Future<Output = T>) -> T {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
    inner.await
}

impl<S: SessionStore> SessionStore for Deferred<S> {
    async fn load(&self, id: &SessionId, now: Timestamp) -> Result<Option<Record>, crate::Error> {
        yield_once(self.0.load(id, now)).await
    }
    async fn create(&self, id: &SessionId, record: &Record) -> Result<WriteOutcome, crate::Error> {
        yield_once(self.0.create(id, record)).await
    }
    async fn create_limited(
        &self,
        id: &SessionId,
        record: &Record,
        limit: UserLimit,
    ) -> Result<WriteOutcome, crate::Error> {
        yield_once(self.0.create_limited(id, record, limit)).await
    }
    async fn update(&self, id: &SessionId, update: Update) -> Result<WriteOutcome, crate::Error> {
        yield_once(self.0.update(id, update)).await
    }
    async fn renew(
        &self,
        old_id: &SessionId,
        new_id: &SessionId,
        update: &Update,
    ) -> Result<WriteOutcome, crate::Error> {
        yield_once(self.0.renew(old_id, new_id, update)).await
    }
    async fn delete(&self, id: &SessionId) -> Result<bool, crate::Error> {
        yield_once(self.0.delete(id)).await
    }
    async fn user_sessions(
        &self,
        user: &str,
        now: Timestamp,
    ) -> Result<Vec<SessionId>, crate::Error> {
        yield_once(self.0.user_sessions(user, now)).await
    }
    async fn delete_user(&self, user: &str) -> Result<usize, crate::Error> {
        yield_once(self.0.delete_user(user)).await
    }
    async fn count(&self, now: Timestamp) -> Result<usize, crate::Error> {
        yield_once(self.0.count(now)).await
    }
    async fn list(
        &self,
        now: Timestamp,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<(SessionId, Record)>, crate::Error> {
        yield_once(self.0.list(now, after, limit)).await
    }
    async fn delete_all(&self) -> Result<usize, crate::Error> {
        yield_once(self.0.delete_all()).await
    }
}

/// Runs every future to completion, polled together on this task, and
/// returns their outputs in order (a small `join_all`, so the suite needs
/// no runtime crate).
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(out) => *output = Some(out),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// `writes` updates of one session, all planned from the session as one
/// request loaded it (each adds its own key, under `limit` alone, far over
/// it together), sent to `store` at once. Asserts that the stored values
/// stay within `limit`, that each update was written or refused as
/// [`WriteOutcome::TooLarge`], and that exactly the written ones are kept.
/// Returns how many were written. Stores run it on their own runtime so
/// that the updates truly race (see the Redis and SQL stores' tests).
pub async fn racing_updates_stay_within_the_limit<S: SessionStore>(
    store: &S,
    now: Timestamp,
    writes: usize,
    limit: usize,
) -> usize {
    let id = must_create(store, &record_at(now, None, &[("seed", "1")])).await;
    let value = format!("\"{}\"", "v".repeat(limit / 8));
    let t = now.saturating_add(Duration::from_secs(1));
    let updates = (0..writes).map(|i| {
        let mut update = update_at(t, &[(&format!("k{i:04}"), &value)], &[]);
        update.max_bytes = limit;
        store.update(&id, update)
    });
    let outcomes = join_all(updates.collect()).await;
    let record = must_load(store, &id, t).await;
    assert!(
        record.data.bytes() <= limit,
        "racing updates took the session to {} bytes, over the limit of {limit}",
        record.data.bytes()
    );
    let mut written = 0;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let kept = record.data.contains_key(&format!("k{i:04}"));
        match outcome.expect("update failed") {
            WriteOutcome::Written => {
                assert!(kept, "update {i} was written but is not kept");
                written += 1;
            }
            WriteOutcome::TooLarge { .. } => assert!(!kept, "update {i} was refused but kept"),
            other => panic!("update {i}: {other:?}"),
        }
    }
    assert_eq!(
        record.data.len(),
        written + 1,
        "only the written keys and the seed"
    );
    assert!(
        written >= 1 && written < writes,
        "{written} of {writes} written"
    );
    written
}
