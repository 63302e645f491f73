//! The engine's metrics, counted exactly: each test runs requests under a
//! recorder of its own (thread-local) and reads every series back.

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};

use crate::driver::Engine;
use crate::engine::Step;
use crate::testing::{BrokenStore, block_on};
use crate::*;

const T0: Timestamp = Timestamp::from_unix_secs(1_700_000_000);
const SECRET: &str = "a test secret that is comfortably over thirty-two bytes";

/// Every series recorded while `run` ran: `name{label=value,...}` (labels
/// sorted) to its count, or to the number of samples for a histogram.
fn recorded(run: impl FnOnce()) -> HashMap<String, u64> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    ::metrics::with_local_recorder(&recorder, run);
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let n = match value {
                DebugValue::Counter(n) => n,
                DebugValue::Histogram(samples) => samples.len() as u64,
                DebugValue::Gauge(g) => g.into_inner() as u64,
            };
            (series(&key), n)
        })
        .collect()
}

fn series(key: &CompositeKey) -> String {
    let mut labels: Vec<String> = key
        .key()
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    let suffix = if matches!(key.kind(), MetricKind::Histogram) {
        "#samples"
    } else {
        ""
    };
    format!("{}{{{}}}{suffix}", key.key().name(), labels.join(","))
}

fn config() -> SessionConfig {
    let mut config = SessionConfig::default();
    config.cookie.signing_keys = SigningKeys::new([SECRET]);
    config
}

fn manager_with(config: SessionConfig, store: MemoryStore) -> SessionManager<MemoryStore> {
    SessionManager::with_clock(store, config, ManualClock::new(T0)).unwrap()
}

/// One request: loads the session `cookie` names, runs `handler`, commits
/// as the driver does; the cookie the browser keeps after it, or the
/// engine's refusal.
fn request<S: SessionStore>(
    manager: &SessionManager<S>,
    cookie: Option<&str>,
    handler: impl FnOnce(&Session),
) -> Result<Option<String>, Answer> {
    let header = cookie.map(|c| format!("{}={c}", manager.cookie_name()));
    let presented = manager.read_id(header.iter().map(|h| h.as_bytes()));
    let mut session = match manager.begin(presented) {
        Step::Ready(session) => session?,
        Step::Pending(load) => block_on(load)?,
    };
    handler(&session);
    let headers = match manager.finish(&mut session) {
        Step::Ready(headers) => headers?,
        Step::Pending(commit) => block_on(commit)?,
    };
    Ok(headers.set_cookie.and_then(|set| {
        let value = set.split(';').next()?.split_once('=')?.1;
        (!value.is_empty()).then(|| value.to_owned())
    }))
}

fn login(user: &str) -> impl FnOnce(&Session) + '_ {
    move |s| {
        s.set_user(user);
        s.insert("k", "value").unwrap();
    }
}

#[test]
fn create_renew_and_logout_are_counted_once_each_with_their_store_calls() {
    let counts = recorded(|| {
        let manager = manager_with(config(), MemoryStore::new());
        let cookie = request(&manager, None, login("ada")).unwrap().unwrap();
        let renewed = request(&manager, Some(&cookie), |s| s.renew())
            .unwrap()
            .unwrap();
        // A read of a fresh session writes nothing.
        request(&manager, Some(&renewed), |s| drop(s.get::<String>("k"))).unwrap();
        request(&manager, Some(&renewed), |s| s.destroy()).unwrap();
        // No session, nothing written: nothing counted.
        request(&manager, None, |_| {}).unwrap();
    });
    let expected = [
        ("session_created_total{}", 1),
        ("session_renewed_total{}", 1),
        ("session_ended_total{reason=logout}", 1),
        ("session_store_seconds{op=create,store=memory}#samples", 1),
        ("session_store_seconds{op=renew,store=memory}#samples", 1),
        ("session_store_seconds{op=load,store=memory}#samples", 3),
        ("session_store_seconds{op=delete,store=memory}#samples", 1),
        // Written at creation ("k" + "\"value\"" = 8 bytes); the renewal
        // changed no value.
        ("session_size_bytes{}#samples", 1),
    ];
    let expected: HashMap<String, u64> = expected
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(counts, expected);
}

#[test]
fn a_destroy_of_a_session_ended_meanwhile_is_not_a_second_end() {
    let counts = recorded(|| {
        let manager = manager_with(config(), MemoryStore::new());
        let cookie = request(&manager, None, login("ada")).unwrap().unwrap();
        // Two requests in flight with the same session both log out.
        let presented = manager.read_id([format!("{}={cookie}", manager.cookie_name()).as_bytes()]);
        let first = block_on(manager.load(presented)).unwrap();
        let second = block_on(manager.load(presented)).unwrap();
        first.destroy();
        second.destroy();
        block_on(manager.commit(&first)).unwrap();
        block_on(manager.commit(&second)).unwrap();
        // Logout everywhere of a user with two sessions.
        request(&manager, None, login("bob")).unwrap();
        request(&manager, None, login("bob")).unwrap();
        assert_eq!(block_on(manager.end_user_sessions("bob")).unwrap(), 2);
    });
    assert_eq!(counts["session_created_total{}"], 3);
    assert_eq!(counts["session_ended_total{reason=logout}"], 1);
    assert_eq!(counts["session_ended_total{reason=user}"], 2);
    assert_eq!(
        counts["session_store_seconds{op=delete_user,store=memory}#samples"],
        1
    );
}

#[test]
fn a_session_past_the_engines_idle_timeout_is_counted_expired() {
    let counts = recorded(|| {
        let store = MemoryStore::new();
        let clock = ManualClock::new(T0);
        let long = SessionManager::with_clock(store.clone(), config(), clock.clone()).unwrap();
        let cookie = request(&long, None, login("ada")).unwrap().unwrap();
        // The idle timeout shortened (a new deployment), on the same store.
        let mut short = config();
        short.idle_timeout = Duration::from_secs(60);
        let short = SessionManager::with_clock(store, short, clock.clone()).unwrap();
        clock.advance(Duration::from_secs(120));
        request(&short, Some(&cookie), |_| {}).unwrap();
    });
    assert_eq!(counts["session_ended_total{reason=expired}"], 1);
}

#[test]
fn refusals_count_their_status_and_store_failures_count_as_errors() {
    let counts = recorded(|| {
        // An id presented twice through a header transport: 401.
        let mut by_header = config();
        by_header.transport = Transport::Header("x-session".into());
        let manager = manager_with(by_header, MemoryStore::new());
        let presented = manager.read_id(["a".as_bytes(), "b".as_bytes()]);
        assert!(matches!(presented, Presented::Ambiguous));
        let Step::Ready(Err(answer)) = manager.begin(presented) else {
            panic!("an ambiguous id is refused at once");
        };
        assert_eq!(answer.status(), 401);

        // Two requests each under the size limit, over it together: the
        // store refuses the second at its merge, 413.
        let mut small = config();
        small.max_session_bytes = 100;
        let manager = manager_with(small, MemoryStore::new());
        let cookie = request(&manager, None, login("ada")).unwrap().unwrap();
        let presented = manager.read_id([format!("{}={cookie}", manager.cookie_name()).as_bytes()]);
        let mut first = block_on(manager.load(presented)).unwrap();
        let mut second = block_on(manager.load(presented)).unwrap();
        first.insert("a", &"x".repeat(60)).unwrap();
        second.insert("b", &"y".repeat(60)).unwrap();
        assert!(matches!(manager.finish(&mut first), Step::Ready(Ok(_))));
        let Step::Ready(Err(answer)) = manager.finish(&mut second) else {
            panic!("the second write is over the limit");
        };
        assert_eq!(answer.status(), 413);

        // A store that is down: an error, not a refusal.
        let down = SessionManager::with_clock(BrokenStore::down(), config(), ManualClock::new(T0))
            .unwrap();
        let answer = request(&down, Some(&cookie), |_| {}).unwrap_err();
        assert_eq!(answer.status(), 503);
    });
    assert_eq!(counts["session_refused_total{status=401}"], 1);
    assert_eq!(counts["session_refused_total{status=413}"], 1);
    assert_eq!(
        counts["session_store_errors_total{op=load,store=custom}"],
        1
    );
    assert!(
        !counts.keys().any(|k| k.contains("status=503")),
        "{counts:?}"
    );
}

#[test]
fn the_free_functions_count_with_static_labels() {
    let counts = recorded(|| {
        metrics::refused(415);
        metrics::refused(415);
        metrics::refused(418);
        metrics::ended(metrics::EndReason::Limit, 3);
    });
    assert_eq!(counts["session_refused_total{status=415}"], 2);
    assert_eq!(counts["session_refused_total{status=other}"], 1);
    assert_eq!(counts["session_ended_total{reason=limit}"], 3);
}
