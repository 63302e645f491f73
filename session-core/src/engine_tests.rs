//! The engine driven request by request on a virtual clock: exact expiry
//! instants and exact `Max-Age` values.

use std::future::Future;
use std::time::Duration;

use crate::driver::Engine;
use crate::testing::{BrokenStore, block_on};
use crate::*;

const T0: Timestamp = Timestamp::from_unix_secs(1_700_000_000);
const SECRET: &str = "a test secret that is comfortably over thirty-two bytes";

struct Harness {
    manager: SessionManager<MemoryStore>,
    clock: ManualClock,
}

/// What a response said about the cookie.
#[derive(Debug)]
struct Reply {
    headers: ResponseHeaders,
}

impl Reply {
    /// The cookie value the browser keeps after this response, if any.
    fn cookie(&self) -> Option<String> {
        let set = self.headers.set_cookie.as_deref()?;
        let value = set.split(';').next()?.split_once('=')?.1;
        (!value.is_empty()).then(|| value.to_owned())
    }

    fn set_cookie(&self) -> &str {
        self.headers
            .set_cookie
            .as_deref()
            .expect("expected a Set-Cookie")
    }

    fn max_age(&self) -> Option<u64> {
        self.set_cookie()
            .split("; ")
            .find_map(|a| a.strip_prefix("Max-Age="))
            .map(|v| v.parse().unwrap())
    }

    fn removes_cookie(&self) -> bool {
        self.headers
            .set_cookie
            .as_deref()
            .is_some_and(|c| c.contains("Max-Age=0"))
    }
}

impl Harness {
    fn new(config: SessionConfig) -> Self {
        let clock = ManualClock::new(T0);
        let manager =
            SessionManager::with_clock(MemoryStore::new(), config, clock.clone()).unwrap();
        Self { manager, clock }
    }

    fn default() -> Self {
        Self::new(SessionConfig::default())
    }

    fn persistent(idle: u64, lifetime: u64) -> Self {
        let mut config = SessionConfig::default();
        config.cookie.persistent = true;
        config.idle_timeout = Duration::from_secs(idle);
        config.lifetime = Duration::from_secs(lifetime);
        Self::new(config)
    }

    fn open(&self, cookie: Option<&str>) -> Session {
        let header = cookie.map(|c| format!("{}={c}", self.manager.cookie_name()));
        let presented = self.manager.read_id(header.iter().map(|h| h.as_bytes()));
        block_on(self.manager.load(presented)).unwrap()
    }

    fn commit(&self, session: &Session) -> Reply {
        Reply {
            headers: block_on(self.manager.commit(session)).unwrap(),
        }
    }

    fn request(&self, cookie: Option<&str>, handler: impl FnOnce(&Session)) -> Reply {
        let session = self.open(cookie);
        handler(&session);
        self.commit(&session)
    }

    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    fn store(&self) -> &MemoryStore {
        self.manager.store()
    }
}

fn write(key: &'static str) -> impl FnOnce(&Session) {
    move |s| s.insert(key, &1).unwrap()
}

fn read(s: &Session) -> Option<i32> {
    s.get("k").unwrap()
}

#[test]
fn an_empty_session_sets_no_cookie_and_writes_nothing() {
    let h = Harness::default();
    let reply = h.request(None, |s| {
        assert!(s.get::<i32>("k").unwrap().is_none());
    });
    assert_eq!(reply.headers.set_cookie, None);
    assert!(h.store().is_empty());
}

/// A clock that counts how often it is read.
#[derive(Debug, Clone, Default)]
struct CountingClock {
    inner: ManualClock,
    reads: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Clock for CountingClock {
    fn now(&self) -> Timestamp {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.now()
    }
}

impl CountingClock {
    fn reads(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn a_request_with_no_id_reads_the_clock_only_when_its_times_are_used() {
    let clock = CountingClock {
        inner: ManualClock::new(T0),
        ..CountingClock::default()
    };
    let manager =
        SessionManager::with_clock(MemoryStore::new(), SessionConfig::default(), clock.clone())
            .unwrap();
    let anonymous = |handler: &dyn Fn(&Session)| {
        let session = block_on(manager.load(Presented::Nothing)).unwrap();
        handler(&session);
        block_on(manager.commit(&session)).unwrap()
    };

    // Anonymous traffic that only reads values: no clock read at all.
    let headers = anonymous(&|s| assert_eq!(s.get::<i32>("k").unwrap(), None));
    assert_eq!(clock.reads(), 0);
    assert!(headers.vary_cookie && headers.set_cookie.is_none());

    // The handler asks for the times: stamped once, at that instant, and
    // the same on every later ask.
    clock.inner.advance(Duration::from_secs(5));
    anonymous(&|s| {
        let opened = T0.saturating_add(Duration::from_secs(5));
        assert_eq!(s.created_at(), opened);
        clock.inner.advance(Duration::from_secs(1));
        assert_eq!(s.last_activity(), opened);
        assert_eq!(
            s.expires_at(),
            opened.saturating_add(SessionConfig::default().idle_timeout)
        );
    });
    assert_eq!(clock.reads(), 1);

    // Stored without the handler asking: created when it is stored.
    clock.inner.set(T0);
    let before = clock.reads();
    let headers = anonymous(&|s| s.insert("k", &1).unwrap());
    assert_eq!(clock.reads(), before + 1);
    let cookie = headers.set_cookie.expect("a new session sets its cookie");
    let id = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    let presented = manager.read_id([format!("{}={id}", manager.cookie_name()).as_bytes()]);
    let session = block_on(manager.load(presented)).unwrap();
    assert_eq!(session.created_at(), T0);
    assert_eq!(session.last_activity(), T0);
}

#[test]
fn a_new_session_gets_a_browser_session_cookie_with_secure_defaults() {
    let h = Harness::default();
    let reply = h.request(None, write("k"));
    let id = reply.cookie().unwrap();
    assert_eq!(
        reply.set_cookie(),
        format!("__Host-id={id}; Path=/; HttpOnly; Secure; SameSite=Lax")
    );
    assert_eq!(h.store().len(), 1);
    let mut headers = Vec::new();
    reply.headers.clone().into_each(
        &mut headers,
        |_| false,
        |h, header| h.push((header.name().to_owned(), header.value().to_owned())),
    );
    assert_eq!(headers[0], ("cache-control".into(), "no-store".into()));
    assert_eq!(headers[1].0, "set-cookie");
    assert_eq!(headers[2], ("vary".into(), "cookie".into()));
    let mut headers = Vec::new();
    reply.headers.clone().into_each(
        &mut headers,
        |_| true,
        |h, header| h.push(header.name().to_owned()),
    );
    assert_eq!(
        headers,
        ["set-cookie", "vary"],
        "an app's own Cache-Control is kept"
    );
}

#[test]
fn persistent_max_age_is_the_exact_time_left() {
    let h = Harness::persistent(3600, 7200);
    let first = h.request(None, write("k"));
    assert_eq!(first.max_age(), Some(3600));
    let id = first.cookie().unwrap();
    // A write 1000 s later moves the idle expiry: Max-Age is the idle timeout again.
    h.advance(1000);
    assert_eq!(h.request(Some(&id), write("j")).max_age(), Some(3600));
    // At T0+5000 the absolute lifetime (T0+7200) comes first: 2200 s left.
    h.advance(4000 - 3599);
    h.request(Some(&id), write("a"));
    h.advance(3599);
    let late = h.request(Some(&id), write("b"));
    assert_eq!(h.clock.now(), T0.saturating_add(Duration::from_secs(5000)));
    assert_eq!(late.max_age(), Some(2200));
}

#[test]
fn remember_me_is_a_per_session_persistent_cookie_with_its_own_idle_timeout() {
    // Browser-session cookies by default; one visitor asks to be remembered.
    let h = Harness::default();
    let forgetful = h.request(None, |s| s.set_user("bob"));
    assert_eq!(forgetful.max_age(), None);
    let reply = h.request(None, |s| {
        s.set_user("ada");
        s.set_persistent(Some(true));
        s.set_idle_timeout(Some(Duration::from_secs(30 * 86_400)));
    });
    // Thirty idle days, capped by the seven-day absolute lifetime.
    assert_eq!(reply.max_age(), Some(604_800));
    let cookie = reply.cookie().unwrap();
    h.advance(2 * 86_400);
    // Two days later, past the default one-hour idle timeout: still alive,
    // and the persistent cookie is refreshed with the time left.
    let later = h.request(Some(&cookie), |s| {
        assert_eq!(s.user().as_deref(), Some("ada"))
    });
    assert_eq!(later.max_age(), Some(5 * 86_400));
    let session = h.open(Some(&cookie));
    assert_eq!(session.expiry().persistent, Some(true));
    assert_eq!(
        session.expires_at(),
        T0.saturating_add(Duration::from_secs(604_800))
    );
}

#[test]
fn idle_timeout_ends_the_session_at_the_exact_instant() {
    let h = Harness::default();
    let id = h.request(None, write("k")).cookie().unwrap();
    h.clock.set(Timestamp::from_unix_millis(
        T0.unix_millis() + 3_600_000 - 1,
    ));
    let session = h.open(Some(&id));
    assert_eq!(
        session.expires_at(),
        T0.saturating_add(Duration::from_secs(3600))
    );
    assert_eq!(
        read(&session),
        Some(1),
        "alive one millisecond before the idle timeout"
    );
    // That request touched the session (60 s touch interval passed): expiry moved.
    let reply = h.commit(&session);
    assert_eq!(
        reply.headers.set_cookie, None,
        "a browser-session cookie is not resent"
    );
    h.clock.set(T0.saturating_add(Duration::from_secs(7200)));
    let session = h.open(Some(&id));
    assert_eq!(
        read(&session),
        None,
        "dead exactly at last activity + idle timeout"
    );
    assert!(
        h.commit(&session).removes_cookie(),
        "the stale cookie is removed"
    );
}

#[test]
fn absolute_lifetime_ends_an_active_session() {
    let h = Harness::persistent(3600, 3 * 3600);
    let id = h.request(None, write("k")).cookie().unwrap();
    for _ in 0..5 {
        h.advance(1800);
        let reply = h.request(Some(&id), |s| assert_eq!(read(s), Some(1)));
        let left = 3 * 3600 - (h.clock.now().unix_secs() - T0.unix_secs());
        assert_eq!(reply.max_age(), Some(left.min(3600)));
    }
    h.advance(1800);
    assert_eq!(
        h.clock.now(),
        T0.saturating_add(Duration::from_secs(3 * 3600))
    );
    h.request(Some(&id), |s| {
        assert_eq!(read(s), None, "alive past its lifetime")
    });
}

#[test]
fn read_only_requests_touch_the_store_only_after_the_touch_interval() {
    let h = Harness::default();
    let id = h.request(None, write("k")).cookie().unwrap();
    let key = SessionId::parse(id.as_bytes()).unwrap();
    let last = |h: &Harness| {
        block_on(h.store().load(&key, h.clock.now()))
            .unwrap()
            .unwrap()
            .meta
            .last_activity
    };
    h.advance(59);
    h.request(Some(&id), |s| assert_eq!(read(s), Some(1)));
    assert_eq!(last(&h), T0, "touched before the interval");
    h.advance(1);
    h.request(Some(&id), |s| assert_eq!(read(s), Some(1)));
    assert_eq!(last(&h), T0.saturating_add(Duration::from_secs(60)));
}

#[test]
fn forged_and_expired_ids_are_never_adopted() {
    let h = Harness::default();
    let forged = SessionId::generate().to_string();
    let reply = h.request(Some(&forged), write("k"));
    let issued = reply.cookie().unwrap();
    assert_ne!(issued, forged, "a forged id was adopted");
    assert!(h.open(Some(&forged)).is_empty());

    h.advance(3600);
    let reply = h.request(Some(&issued), write("k"));
    assert_ne!(reply.cookie().unwrap(), issued, "an expired id was adopted");
}

#[test]
fn renew_keeps_values_and_kills_the_old_id() {
    let h = Harness::default();
    let old = h.request(None, write("k")).cookie().unwrap();
    let created = h.open(Some(&old)).created_at();
    h.advance(10);
    let new = h.request(Some(&old), |s| s.renew()).cookie().unwrap();
    assert_ne!(new, old);
    let session = h.open(Some(&new));
    assert_eq!(read(&session), Some(1));
    assert_eq!(
        session.created_at(),
        created,
        "renew must not stretch the lifetime"
    );
    assert!(h.open(Some(&old)).is_empty(), "old id still alive");
    assert_eq!(h.store().len(), 1);
}

#[test]
fn login_renews_and_logout_everywhere_ends_only_that_users_sessions() {
    let h = Harness::default();
    let anon = h.request(None, write("cart")).cookie().unwrap();
    let ada1 = h
        .request(Some(&anon), |s| s.set_user("ada"))
        .cookie()
        .unwrap();
    assert_ne!(ada1, anon, "login must issue a new id");
    let ada2 = h.request(None, |s| s.set_user("ada")).cookie().unwrap();
    let bob = h.request(None, |s| s.set_user("bob")).cookie().unwrap();
    assert_eq!(block_on(h.manager.end_user_sessions("ada")).unwrap(), 2);
    assert!(h.open(Some(&ada1)).user().is_none());
    assert!(h.open(Some(&ada2)).user().is_none());
    assert_eq!(h.open(Some(&bob)).user().as_deref(), Some("bob"));
}

#[test]
fn the_operator_counts_pages_and_ends_sessions() {
    let h = Harness::default();
    for user in ["ada", "ada", "bob"] {
        h.request(None, |s| s.set_user(user)).cookie().unwrap();
    }
    h.request(None, write("anonymous")).cookie().unwrap();
    let m = &h.manager;
    assert_eq!(block_on(m.count_sessions()).unwrap(), 4);
    let (first, next) = block_on(m.list_sessions(None, 3)).unwrap();
    assert_eq!(first.len(), 3);
    let next = next.expect("a cursor after a full page");
    let (rest, last) = block_on(m.list_sessions(Some(&next), 3)).unwrap();
    assert_eq!((rest.len(), last), (1, None));
    let mut users: Vec<Option<String>> = first
        .iter()
        .chain(&rest)
        .map(|s| s.username.clone())
        .collect();
    users.sort();
    let expected = [None, Some("ada"), Some("ada"), Some("bob")];
    assert_eq!(users, expected.map(|u| u.map(str::to_owned)));
    let handles: std::collections::HashSet<_> =
        first.iter().chain(&rest).map(|s| s.handle).collect();
    assert_eq!(handles.len(), 4);
    for s in first.iter().chain(&rest) {
        assert_eq!((s.created_at, s.last_activity), (T0, T0));
        assert_eq!(s.expires_at, T0.saturating_add(Duration::from_secs(3600)));
    }
    // A cursor that is no store key: an empty last page.
    assert_eq!(
        block_on(m.list_sessions(Some("not a cursor"), 3)).unwrap(),
        (Vec::new(), None)
    );
    assert_eq!(block_on(m.end_user_sessions_as_operator("ada")).unwrap(), 2);
    assert_eq!(block_on(m.count_sessions()).unwrap(), 2);
    // Past the idle timeout nothing is live: not counted, not listed.
    h.advance(3600);
    assert_eq!(block_on(m.count_sessions()).unwrap(), 0);
    assert_eq!(
        block_on(m.list_sessions(None, 10)).unwrap(),
        (Vec::new(), None)
    );
    assert_eq!(
        block_on(m.end_all_sessions()).unwrap(),
        2,
        "expired, not swept"
    );
    assert!(h.store().is_empty());
}

#[test]
fn destroy_deletes_and_sends_a_matching_removal_cookie() {
    let mut config = SessionConfig::default();
    config.cookie.prefix = CookiePrefix::Secure;
    config.cookie.path = "/app".into();
    config.cookie.domain = Some("example.com".into());
    let h = Harness::new(config);
    let id = h.request(None, write("k")).cookie().unwrap();
    let reply = h.request(Some(&id), |s| s.destroy());
    assert_eq!(
        reply.set_cookie(),
        "__Secure-id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/app; Domain=example.com; HttpOnly; Secure; SameSite=Lax"
    );
    assert!(h.store().is_empty());
    assert!(h.open(Some(&id)).is_empty());
}

#[test]
fn clear_site_data_goes_only_on_responses_that_end_the_session() {
    let h = Harness::new(SessionConfig {
        clear_site_data: vec![ClearSiteData::Cookies, ClearSiteData::Cache],
        ..SessionConfig::default()
    });
    let clear = |reply: &Reply| {
        let sent = sent(&reply.headers);
        let values: Vec<_> = sent
            .iter()
            .filter(|(name, _)| name == "clear-site-data")
            .map(|(_, value)| value.clone())
            .collect();
        assert_eq!(values.len(), reply.headers.clear_site_data.iter().count());
        values.into_iter().next()
    };
    // Created, read, written, renewed, touched: nothing to clear.
    let created = h.request(None, |s| s.set_user("ada"));
    assert_eq!(clear(&created), None);
    let id = created.cookie().unwrap();
    assert_eq!(
        clear(&h.request(Some(&id), |s| {
            let _ = read(s);
        })),
        None
    );
    assert_eq!(clear(&h.request(Some(&id), write("k"))), None);
    let renewed = h.request(Some(&id), |s| s.renew());
    assert_eq!(clear(&renewed), None);
    let id = renewed.cookie().unwrap();
    h.advance(120);
    assert_eq!(
        clear(&h.request(Some(&id), |s| {
            let _ = read(s);
        })),
        None
    );
    // An unknown id's cookie is removed, but no session of it ended here.
    let stale = h.request(Some(&SessionId::generate().to_string()), write("k"));
    assert_eq!(clear(&stale), None);
    let stale = h.request(Some(&SessionId::generate().to_string()), |s| s.destroy());
    assert!(stale.removes_cookie());
    assert_eq!(clear(&stale), None);

    // Ended: the configured directives, quoted, after the removal cookie.
    let logout = h.request(Some(&id), |s| s.destroy());
    assert!(logout.removes_cookie());
    assert_eq!(clear(&logout).as_deref(), Some(r#""cache", "cookies""#));
    assert_eq!(
        sent(&logout.headers).last().unwrap().0,
        "clear-site-data",
        "appended last"
    );
    // Ended, and a new session started in the same response (a "signed
    // out" flash): the new cookie must survive, so "cookies" is left out.
    let id = h.request(None, |s| s.set_user("bob")).cookie().unwrap();
    let flashed = h.request(Some(&id), |s| {
        s.destroy();
        s.insert("flash", &"signed out").unwrap();
    });
    assert!(flashed.cookie().is_some());
    assert_eq!(clear(&flashed).as_deref(), Some(r#""cache""#));

    // Nothing configured: never sent.
    let h = Harness::default();
    let id = h.request(None, write("k")).cookie().unwrap();
    assert_eq!(clear(&h.request(Some(&id), |s| s.destroy())), None);
}

#[test]
fn clear_site_data_of_cookies_alone_is_dropped_when_a_new_session_starts() {
    let h = Harness::new(SessionConfig {
        clear_site_data: vec![ClearSiteData::Cookies],
        ..SessionConfig::default()
    });
    let id = h.request(None, write("k")).cookie().unwrap();
    let reply = h.request(Some(&id), |s| {
        s.destroy();
        s.insert("flash", &1).unwrap();
    });
    assert_eq!(reply.headers.clear_site_data, None);
    let id = reply.cookie().unwrap();
    let reply = h.request(Some(&id), |s| s.destroy());
    assert_eq!(
        reply.headers.clear_site_data.as_deref(),
        Some(r#""cookies""#)
    );
}

#[test]
fn a_request_in_flight_cannot_resurrect_a_destroyed_session() {
    let h = Harness::default();
    let id = h.request(None, write("k")).cookie().unwrap();
    let slow = h.open(Some(&id));
    h.request(Some(&id), |s| s.destroy());
    slow.insert("late", &true).unwrap();
    let reply = h.commit(&slow);
    assert!(
        reply.removes_cookie(),
        "the late writer is told the session is gone"
    );
    assert!(h.store().is_empty(), "the session came back");
    assert!(h.open(Some(&id)).is_empty());
}

#[test]
fn interleaved_requests_on_disjoint_keys_both_keep_their_change() {
    let h = Harness::default();
    let id = h.request(None, write("k")).cookie().unwrap();
    let a = h.open(Some(&id));
    let b = h.open(Some(&id));
    a.insert("a", &1).unwrap();
    b.insert("b", &2).unwrap();
    b.remove("k");
    h.commit(&a);
    h.commit(&b);
    let mut keys = h.open(Some(&id)).keys();
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
}

#[test]
fn hostile_cookies_give_a_fresh_session() {
    let h = Harness::new({
        let mut c = SessionConfig::default();
        c.cookie.prefix = CookiePrefix::None;
        c.cookie.signing_keys = SigningKeys::new([SECRET]);
        c
    });
    let good = h.request(None, write("k")).cookie().unwrap();
    let huge = "A".repeat(8192);
    let headers: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"id=".to_vec(),
        b"id=\xff\xfe".to_vec(),
        format!("id={huge}").into_bytes(),
        format!("id={}", &good[..good.len() - 1]).into_bytes(),
        format!("id={}", SessionId::generate()).into_bytes(),
        "id=x; ".repeat(300).into_bytes(),
    ];
    for header in headers {
        let presented = h.manager.read_id([header.as_slice()]);
        let session = block_on(h.manager.load(presented)).unwrap();
        assert!(session.is_new() && session.is_empty());
    }
    // The real session still works beside them, and duplicates resolve to it.
    let dup = format!("id=junk; id={good}");
    let presented = h.manager.read_id([dup.as_bytes()]);
    assert_eq!(read(&block_on(h.manager.load(presented)).unwrap()), Some(1));
}

#[test]
fn ids_hashed_at_rest_never_reach_the_store() {
    let h = Harness::new(SessionConfig {
        hash_ids_at_rest: true,
        ..SessionConfig::default()
    });
    let cookie = h.request(None, write("k")).cookie().unwrap();
    let id = SessionId::parse(cookie.as_bytes()).unwrap();
    assert!(
        block_on(h.store().load(&id, T0)).unwrap().is_none(),
        "the raw id is a store key"
    );
    assert!(
        block_on(h.store().load(&h.manager.store_key(&id), T0))
            .unwrap()
            .is_some()
    );
    assert_eq!(
        h.request(Some(&cookie), |s| assert_eq!(read(s), Some(1)))
            .headers
            .set_cookie,
        None
    );
}

#[test]
fn a_store_that_is_down_is_an_error_and_a_corrupt_record_is_no_session() {
    let id = SessionId::generate().to_string();
    let header = format!("__Host-id={id}");
    let down =
        SessionManager::new(DynStore::new(BrokenStore::down()), SessionConfig::default()).unwrap();
    let presented = down.read_id([header.as_bytes()]);
    assert!(matches!(
        block_on(down.load(presented)),
        Err(Error::Store(_))
    ));
    assert_eq!(down.store_error_status(), 503);
    let fresh = block_on(down.load(Presented::Nothing)).unwrap();
    fresh.insert("k", &1).unwrap();
    assert!(matches!(
        block_on(down.commit(&fresh)),
        Err(Error::Store(_))
    ));

    let corrupt = SessionManager::new(BrokenStore::corrupt(), SessionConfig::default()).unwrap();
    let presented = corrupt.read_id([header.as_bytes()]);
    let session = block_on(corrupt.load(presented)).unwrap();
    assert!(session.is_new() && session.is_empty());
}

#[test]
fn lifecycle_events_carry_hashed_ids_and_reasons() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<SessionEvent>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let clock = ManualClock::new(T0);
    let mut config = SessionConfig::default();
    config.cookie.signing_keys = SigningKeys::new([SECRET]);
    let manager =
        SessionManager::with_event_hook(MemoryStore::new(), config, clock.clone(), move |e| {
            sink.lock().unwrap().push(e.clone())
        })
        .unwrap();
    let h = Harness { manager, clock };
    let take = || std::mem::take(&mut *seen.lock().unwrap());

    let cookie = h.request(None, write("k")).cookie().unwrap();
    let id = SessionId::parse(&cookie.as_bytes()[44..]).unwrap();
    assert_eq!(take(), [SessionEvent::Created { id: id.log_hash() }]);

    h.request(Some("forged"), |_| {});
    assert_eq!(
        take(),
        [SessionEvent::Rejected {
            id: None,
            reason: RejectReason::Malformed
        }]
    );
    let mut tampered = cookie.clone();
    tampered.replace_range(0..4, "AAAA");
    h.request(Some(&tampered), |_| {});
    assert_eq!(
        take(),
        [SessionEvent::Rejected {
            id: None,
            reason: RejectReason::BadSignature
        }]
    );

    let renewed = h.request(Some(&cookie), |s| s.renew()).cookie().unwrap();
    let new_id = SessionId::parse(&renewed.as_bytes()[44..]).unwrap();
    assert_eq!(
        take(),
        [SessionEvent::Renewed {
            old: id.log_hash(),
            id: new_id.log_hash()
        }]
    );
    h.request(Some(&cookie), |_| {});
    assert_eq!(
        take(),
        [SessionEvent::Rejected {
            id: Some(id.log_hash()),
            reason: RejectReason::Unknown
        }]
    );

    let slow = h.open(Some(&renewed));
    h.request(Some(&renewed), |s| s.destroy());
    assert_eq!(
        take(),
        [SessionEvent::Destroyed {
            id: new_id.log_hash()
        }]
    );
    slow.insert("late", &1).unwrap();
    h.commit(&slow);
    assert_eq!(
        take(),
        [SessionEvent::WriteDropped {
            id: new_id.log_hash()
        }]
    );

    // The store still holds the session, but a shorter idle timeout (a
    // config change) has ended it: the engine reports it as expired.
    let live = h.request(None, write("k")).cookie().unwrap();
    take();
    h.advance(1800);
    let sink = Arc::clone(&seen);
    let mut shorter = h.manager.config().clone();
    shorter.idle_timeout = Duration::from_secs(1800);
    let stricter =
        SessionManager::with_event_hook(h.store().clone(), shorter, h.clock.clone(), move |e| {
            sink.lock().unwrap().push(e.clone())
        })
        .unwrap();
    let presented = stricter.read_id([format!("__Host-id={live}").as_bytes()]);
    assert!(block_on(stricter.load(presented)).unwrap().is_new());
    let live_id = SessionId::parse(&live.as_bytes()[44..]).unwrap();
    assert_eq!(
        take(),
        [SessionEvent::Expired {
            id: live_id.log_hash()
        }]
    );
}

#[test]
fn end_other_sessions_keeps_only_the_current_one() {
    let h = Harness::default();
    let mine = h.request(None, |s| s.set_user("ada")).cookie().unwrap();
    let others: Vec<_> = (0..3)
        .map(|_| h.request(None, |s| s.set_user("ada")).cookie().unwrap())
        .collect();
    let bob = h.request(None, |s| s.set_user("bob")).cookie().unwrap();
    let current = h.open(Some(&mine));
    assert_eq!(block_on(h.manager.end_other_sessions(&current)).unwrap(), 3);
    assert_eq!(h.open(Some(&mine)).user().as_deref(), Some("ada"));
    for other in &others {
        assert!(h.open(Some(other)).is_new());
    }
    assert!(!h.open(Some(&bob)).is_new());
    assert_eq!(
        block_on(h.manager.end_other_sessions(&Session::detached())).unwrap(),
        0
    );
}

#[test]
fn user_sessions_lists_the_devices_newest_first_with_this_one_marked() {
    let h = Harness::default();
    let laptop = h
        .request(None, |s| {
            s.set_user("ada");
            s.insert("device", "laptop").unwrap();
        })
        .cookie()
        .unwrap();
    h.clock.advance(Duration::from_secs(60));
    let phone = h
        .request(None, |s| {
            s.set_user("ada");
            s.set_persistent(Some(true));
            s.insert("device", "phone").unwrap();
        })
        .cookie()
        .unwrap();
    h.request(None, |s| s.set_user("bob"));
    let current = h.open(Some(&laptop));
    let listed = block_on(h.manager.user_sessions(&current)).unwrap();
    let seen: Vec<_> = listed
        .iter()
        .map(|s| (s.data.get("device").unwrap(), s.current, s.persistent))
        .collect();
    assert_eq!(
        seen,
        [("\"phone\"", false, true), ("\"laptop\"", true, false)],
        "newest activity first, this one marked, bob's left out"
    );
    assert_eq!(listed[1].created_at, T0);
    assert_eq!(
        listed[1].expires_at,
        T0.saturating_add(Duration::from_secs(3600))
    );
    let _ = phone;
    assert!(
        block_on(h.manager.user_sessions(&Session::detached()))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn devices_are_ended_by_handle_only_within_their_user() {
    let h = Harness::new(SessionConfig {
        hash_ids_at_rest: true,
        ..SessionConfig::default()
    });
    let laptop = h.request(None, |s| s.set_user("ada")).cookie().unwrap();
    let phone = h.request(None, |s| s.set_user("ada")).cookie().unwrap();
    let bob = h.request(None, |s| s.set_user("bob")).cookie().unwrap();
    let handles = |cookie: &str| -> Vec<(SessionHandle, bool)> {
        let listed = block_on(h.manager.user_sessions(&h.open(Some(cookie)))).unwrap();
        listed.iter().map(|s| (s.handle, s.current)).collect()
    };
    let from_laptop = handles(&laptop);
    assert_eq!(from_laptop.len(), 2);
    let phone_handle = from_laptop.iter().find(|(_, current)| !current).unwrap().0;
    // The same handles from the other device, and from another process
    // sharing the store (a second engine on it).
    let mut from_phone = handles(&phone);
    from_phone
        .iter_mut()
        .for_each(|(_, current)| *current = !*current);
    from_phone.sort_by_key(|(h, _)| h.to_string());
    let mut sorted = from_laptop.clone();
    sorted.sort_by_key(|(h, _)| h.to_string());
    assert_eq!(from_phone, sorted, "handles differ between devices");
    let other = SessionManager::with_clock(
        h.store().clone(),
        h.manager.config().clone(),
        h.clock.clone(),
    )
    .unwrap();
    let again = block_on(other.user_sessions(&h.open(Some(&laptop)))).unwrap();
    assert!(again.iter().any(|s| s.handle == phone_handle));
    // A handle is neither the id nor its key, and is no session as a cookie.
    let phone_id = SessionId::parse(phone.as_bytes()).unwrap();
    assert_ne!(phone_handle.to_string(), phone);
    assert_ne!(
        phone_handle.to_string(),
        h.manager.store_key(&phone_id).to_string()
    );
    let as_cookie = h.open(Some(&phone_handle.to_string()));
    assert!(as_cookie.is_new() && as_cookie.user().is_none());

    // Bob cannot end ada's phone; an unknown handle ends nothing.
    let bobs = h.open(Some(&bob));
    assert!(!block_on(h.manager.end_session_by_handle(&bobs, &phone_handle)).unwrap());
    let unknown = SessionHandle::of_store_key(&SessionId::generate());
    let laptop_session = h.open(Some(&laptop));
    assert!(!block_on(h.manager.end_session_by_handle(&laptop_session, &unknown)).unwrap());
    assert_eq!(h.open(Some(&phone)).user().as_deref(), Some("ada"));
    // The laptop ends the phone: gone at once; the laptop keeps its cookie.
    assert!(
        block_on(
            h.manager
                .end_session_by_handle(&laptop_session, &phone_handle)
        )
        .unwrap()
    );
    assert_eq!(h.commit(&laptop_session).headers.set_cookie, None);
    assert!(h.open(Some(&phone)).is_new());
    assert!(
        !block_on(
            h.manager
                .end_session_by_handle(&h.open(Some(&laptop)), &phone_handle)
        )
        .unwrap()
    );
    // Its own handle: the session ends and the response removes the cookie.
    let laptop_handle = handles(&laptop)[0].0;
    let session = h.open(Some(&laptop));
    assert!(block_on(h.manager.end_session_by_handle(&session, &laptop_handle)).unwrap());
    assert!(h.commit(&session).removes_cookie());
    assert!(h.open(Some(&laptop)).is_new());
    assert_eq!(h.open(Some(&bob)).user().as_deref(), Some("bob"));
    // Without a user, nothing to end.
    assert!(
        !block_on(
            h.manager
                .end_session_by_handle(&Session::detached(), &laptop_handle)
        )
        .unwrap()
    );
}

#[test]
fn authenticated_at_is_the_login_instant_and_later_requests_keep_it() {
    let h = Harness::default();
    let anon = h.request(None, write("cart")).cookie().unwrap();
    assert_eq!(h.open(Some(&anon)).authenticated_at(), None);
    h.advance(5);
    let login = T0.saturating_add(Duration::from_secs(5));
    let id = h
        .request(Some(&anon), |s| {
            s.set_user("ada");
            assert_eq!(s.authenticated_at(), Some(login));
        })
        .cookie()
        .unwrap();
    // Updates, touches and renewals keep it.
    h.advance(100);
    h.request(Some(&id), write("k"));
    h.advance(100);
    h.request(Some(&id), |s| assert_eq!(read(s), Some(1)));
    h.advance(100);
    let id = h.request(Some(&id), |s| s.renew()).cookie().unwrap();
    h.advance(100);
    let session = h.open(Some(&id));
    assert_eq!(session.authenticated_at(), Some(login));
    assert_eq!(session.user().as_deref(), Some("ada"));
    // 400 s after the login: fresh within 400 s, not within 399 s.
    let now = h.clock.now();
    assert_eq!(now, login.saturating_add(Duration::from_secs(400)));
    assert!(session.authenticated_within(Duration::from_secs(400), now));
    assert!(!session.authenticated_within(Duration::from_secs(399), now));
    let just_after = Timestamp::from_unix_millis(now.unix_millis() + 1);
    assert!(!session.authenticated_within(Duration::from_secs(400), just_after));
    assert!(
        !session.authenticated_within(Duration::from_secs(1), Timestamp::from_unix_secs(1)),
        "a login after now"
    );
    // The guard form: the engine's answer for a stale login is 401 with
    // its own body.
    assert!(
        session
            .require_authenticated_within(Duration::from_secs(400), now)
            .is_ok()
    );
    let stale = session
        .require_authenticated_within(Duration::from_secs(399), now)
        .unwrap_err();
    let answer = h.manager.failure_answer(&stale);
    assert_eq!(
        (answer.status(), answer.body()),
        (401, r#"{"error":"re-authentication required"}"#)
    );
    let listed = block_on(h.manager.user_sessions(&session)).unwrap();
    assert_eq!(listed[0].authenticated_at, Some(login));
    // The same user logging in again (a password asked again) records the
    // new time, keeping the id; logging out forgets it.
    let relogin = h.clock.now();
    let reply = h.request(Some(&id), |s| s.set_user("ada"));
    assert_eq!(reply.headers.set_cookie, None, "same id");
    assert_eq!(h.open(Some(&id)).authenticated_at(), Some(relogin));
    let anon = h.request(Some(&id), |s| {
        s.clear_user();
        s.insert("k", &2).unwrap();
    });
    let session = h.open(Some(&anon.cookie().unwrap()));
    assert_eq!((session.user(), session.authenticated_at()), (None, None));
    assert!(!session.authenticated_within(Duration::MAX, h.clock.now()));
    // A fresh visitor's login on a request with no cookie: the request's
    // instant.
    h.advance(1);
    let fresh = h.request(None, |s| s.set_user("bob")).cookie().unwrap();
    assert_eq!(h.open(Some(&fresh)).authenticated_at(), Some(h.clock.now()));
}

#[test]
fn a_handler_shortens_one_sessions_idle_timeout_and_lifetime() {
    // The defaults: an hour idle, a week in all. One session is cut to ten
    // minutes idle and half an hour in all, enforced by the server.
    let h = Harness::default();
    let id = h
        .request(None, |s| {
            s.set_user("ada");
            s.set_idle_timeout(Some(Duration::from_secs(600)));
            s.set_lifetime(Some(Duration::from_secs(1800)));
        })
        .cookie()
        .unwrap();
    assert_eq!(
        h.open(Some(&id)).expires_at(),
        T0.saturating_add(Duration::from_secs(600))
    );
    // Idle: alive a millisecond before ten idle minutes, dead at them.
    h.clock
        .set(Timestamp::from_unix_millis(T0.unix_millis() + 600_000 - 1));
    h.request(Some(&id), write("k"));
    let last = h.clock.now();
    h.clock.set(last.saturating_add(Duration::from_secs(600)));
    assert!(
        h.open(Some(&id)).is_new(),
        "alive past its own idle timeout"
    );

    // Lifetime: used every five minutes, it still ends half an hour after
    // its creation, to the millisecond.
    h.clock.set(T0);
    let id = h
        .request(None, |s| {
            s.set_user("ada");
            s.set_idle_timeout(Some(Duration::from_secs(600)));
            s.set_lifetime(Some(Duration::from_secs(1800)));
        })
        .cookie()
        .unwrap();
    for _ in 0..5 {
        h.advance(300);
        h.request(Some(&id), |s| assert_eq!(s.user().as_deref(), Some("ada")));
    }
    let session = h.open(Some(&id));
    assert_eq!(
        session.expires_at(),
        T0.saturating_add(Duration::from_secs(1800))
    );
    h.clock.set(Timestamp::from_unix_millis(
        T0.unix_millis() + 1_800_000 - 1,
    ));
    assert!(!h.open(Some(&id)).is_new(), "ended early");
    h.clock.set(T0.saturating_add(Duration::from_secs(1800)));
    assert!(h.open(Some(&id)).is_new(), "alive past its own lifetime");
    // Other sessions keep the defaults.
    h.clock.set(T0);
    let other = h.request(None, |s| s.set_user("bob")).cookie().unwrap();
    assert_eq!(
        h.open(Some(&other)).expires_at(),
        T0.saturating_add(Duration::from_secs(3600))
    );
}

mod model {
    //! Random request sequences against a model: after every request, what
    //! the browser's session holds is exactly what a plain map says, and
    //! expiry, renewal and destruction behave as documented.

    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, u8),
        Remove(u8),
        Clear,
        Renew,
        Destroy,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..6, any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
            2 => (0u8..6).prop_map(Op::Remove),
            1 => Just(Op::Clear),
            1 => Just(Op::Renew),
            1 => Just(Op::Destroy),
        ]
    }

    /// A request: seconds waited before it (up to 1.5 idle timeouts), then
    /// what its handler does.
    fn request() -> impl Strategy<Value = (u16, Vec<Op>)> {
        (
            prop_oneof![3 => 0u16..120, 1 => 0u16..5400],
            proptest::collection::vec(op(), 0..4),
        )
    }

    fn contents(session: &Session) -> HashMap<String, u8> {
        session
            .keys()
            .into_iter()
            .map(|k| {
                let v = session.get(&k).unwrap().unwrap();
                (k, v)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn the_session_always_holds_what_the_model_says(requests in proptest::collection::vec(request(), 1..12)) {
            let h = Harness::default();
            let mut cookie: Option<String> = None;
            let mut model: HashMap<String, u8> = HashMap::new();
            let mut stored = false;
            let mut last_refresh = h.clock.now();
            for (wait, ops) in requests {
                h.advance(u64::from(wait));
                if stored && h.clock.now() >= last_refresh.saturating_add(Duration::from_secs(3600)) {
                    // Idle timeout: the session is gone.
                    model.clear();
                    stored = false;
                }
                let session = h.open(cookie.as_deref());
                prop_assert_eq!(session.is_new(), !stored);
                let (mut renewed, mut destroyed) = (false, false);
                for op in ops {
                    match op {
                        Op::Insert(k, v) => {
                            session.insert(format!("k{k}"), &v).unwrap();
                            model.insert(format!("k{k}"), v);
                        }
                        Op::Remove(k) => {
                            session.remove(&format!("k{k}"));
                            model.remove(&format!("k{k}"));
                        }
                        Op::Clear => {
                            session.clear();
                            model.clear();
                        }
                        Op::Renew => {
                            session.renew();
                            renewed |= !session.is_new();
                        }
                        Op::Destroy => {
                            session.destroy();
                            model.clear();
                            destroyed = true;
                            renewed = false;
                        }
                    }
                    prop_assert_eq!(&contents(&session), &model, "the handle disagrees mid-request");
                }
                let before = cookie.clone();
                let reply = h.commit(&session);
                if reply.headers.set_cookie.is_some() {
                    cookie = reply.cookie();
                }
                // A session is stored once it holds something, and stays
                // stored (even emptied) until destroyed or expired.
                stored = !model.is_empty() || (stored && !destroyed);
                prop_assert_eq!(cookie.is_some(), stored, "cookie and store disagree");
                if renewed && stored {
                    prop_assert_ne!(&before, &cookie, "renew kept the old id");
                }
                let check = h.open(cookie.as_deref());
                prop_assert_eq!(&contents(&check), &model, "the store disagrees with the model");
                prop_assert_eq!(check.is_new(), !stored);
                if stored {
                    last_refresh = check.last_activity();
                    prop_assert!(last_refresh <= h.clock.now());
                    // Read-only requests refresh at least every 60 s.
                    prop_assert!(h.clock.now().since(last_refresh) < Duration::from_secs(60));
                }
                if let Some(old) = before.filter(|old| Some(old) != cookie.as_ref()) {
                    prop_assert!(h.open(Some(&old)).is_new(), "a replaced id still works");
                }
            }
        }
    }
}

/// Claims to be immediate, but never answers.
#[derive(Debug)]
struct StallingStore;

impl SessionStore for StallingStore {
    fn load(
        &self,
        _: &SessionId,
        _: Timestamp,
    ) -> impl Future<Output = Result<Option<Record>, Error>> + Send {
        std::future::pending()
    }
    fn create(
        &self,
        _: &SessionId,
        _: &Record,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        std::future::pending()
    }
    fn update(
        &self,
        _: &SessionId,
        _: Update,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        std::future::pending()
    }
    fn renew(
        &self,
        _: &SessionId,
        _: &SessionId,
        _: &Update,
    ) -> impl Future<Output = Result<WriteOutcome, Error>> + Send {
        std::future::pending()
    }
    fn delete(&self, _: &SessionId) -> impl Future<Output = Result<bool, Error>> + Send {
        std::future::pending()
    }
    fn user_sessions(
        &self,
        _: &str,
        _: Timestamp,
    ) -> impl Future<Output = Result<Vec<SessionId>, Error>> + Send {
        std::future::pending()
    }
    fn delete_user(&self, _: &str) -> impl Future<Output = Result<usize, Error>> + Send {
        std::future::pending()
    }
    fn is_immediate(&self) -> bool {
        true
    }
}

#[test]
fn immediate_stores_run_in_place_and_a_broken_promise_is_a_store_error() {
    // The memory store: begin and finish are ready without a runtime.
    let h = Harness::default();
    let crate::engine::Step::Ready(Ok(mut session)) = h.manager.begin(Presented::Nothing) else {
        panic!("a request with no id is opened in place");
    };
    session.insert("k", &1).unwrap();
    let crate::engine::Step::Ready(Ok(headers)) = h.manager.finish(&mut session) else {
        panic!("the memory store commits in place");
    };
    assert!(headers.set_cookie.is_some());
    // Boxed in a DynStore, the promise still holds.
    assert!(DynStore::new(MemoryStore::new()).is_immediate());

    let liar = SessionManager::new(StallingStore, SessionConfig::default()).unwrap();
    let id = SessionId::generate().to_string();
    let presented = liar.read_id([format!("__Host-id={id}").as_bytes()]);
    fn refused_in_place<T>(step: crate::engine::Step<T>) -> u16 {
        match step {
            crate::engine::Step::Ready(Err(status)) => status.status(),
            _ => panic!("a broken promise is answered in place, with a store error's status"),
        }
    }
    assert_eq!(refused_in_place(liar.begin(presented)), 503);
    let crate::engine::Step::Ready(Ok(mut fresh)) = liar.begin(Presented::Nothing) else {
        panic!("a request with no id asks no store");
    };
    fresh.insert("k", &1).unwrap();
    assert_eq!(refused_in_place(liar.finish(&mut fresh)), 503);
}

#[test]
fn ids_come_from_the_injected_random_source() {
    let mut config = SessionConfig::default();
    config.cookie.prefix = CookiePrefix::None;
    let manager = SessionManager::with_random(
        MemoryStore::new(),
        config,
        ManualClock::new(T0),
        SeededRandom::new(42),
    )
    .unwrap();
    let expected = SessionId::generate_from(&SeededRandom::new(42));
    let session = block_on(manager.load(Presented::Nothing)).unwrap();
    session.insert("k", &1).unwrap();
    let headers = block_on(manager.commit(&session)).unwrap();
    let cookie = headers.set_cookie.unwrap();
    assert!(
        cookie.starts_with(&format!("id={expected};")),
        "{cookie} is not the seeded id {expected}"
    );
}

/// The headers a response sends, as (name, value) pairs.
fn sent(headers: &ResponseHeaders) -> Vec<(String, String)> {
    let mut out = Vec::new();
    headers.clone().into_each(
        &mut out,
        |_| false,
        |out, header| out.push((header.name().to_owned(), header.value().to_owned())),
    );
    out
}

#[test]
fn a_header_transport_hands_out_the_id_and_takes_it_back_with_the_same_rules() {
    for signed in [false, true] {
        let mut config = SessionConfig {
            transport: Transport::Header("X-Session".into()),
            ..SessionConfig::default()
        };
        if signed {
            config.cookie.signing_keys = SigningKeys::new([SECRET]);
        }
        let h = Harness::new(config);
        assert_eq!(h.manager.id_header(), Some("x-session"));
        let ask = |value: Option<&str>| {
            let presented = h.manager.read_id(value.iter().map(|v| v.as_bytes()));
            block_on(h.manager.load(presented)).unwrap()
        };

        // Created: the id alone in the transport's header, not cacheable,
        // and the response varies with that header.
        let session = ask(None);
        session.set_user("ada");
        let headers = block_on(h.manager.commit(&session)).unwrap();
        let sent = sent(&headers);
        assert_eq!(sent[0], ("cache-control".into(), "no-store".into()));
        assert_eq!(sent[1].0, "x-session");
        let token = sent[1].1.clone();
        assert_eq!(token.len(), if signed { 66 } else { 22 });
        assert!(!token.contains(';'), "the id alone: {token}");

        // Sent back, it loads the session; tampered or unknown, it does not.
        assert_eq!(ask(Some(&token)).user().as_deref(), Some("ada"));
        assert_eq!(
            ask(Some(&format!("  {token} "))).user().as_deref(),
            Some("ada")
        );
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(ask(Some(&tampered)).is_new());
        assert!(ask(Some("not an id")).is_new());

        // Ended: the header comes back empty, so the client drops its id.
        let session = ask(Some(&token));
        session.destroy();
        let headers = block_on(h.manager.commit(&session)).unwrap();
        assert!(sent_has(&headers, "x-session", ""));
        assert!(ask(Some(&token)).is_new());

        // Idle expiry holds as for the cookie.
        let session = ask(None);
        session.set_user("bob");
        let headers = block_on(h.manager.commit(&session)).unwrap();
        let token = headers.set_cookie.clone().unwrap();
        h.advance(3600);
        assert!(ask(Some(&token)).is_new(), "idle timeout ended it");
    }
}

fn sent_has(headers: &ResponseHeaders, name: &str, value: &str) -> bool {
    sent(headers).iter().any(|(n, v)| n == name && v == value)
}

#[test]
fn a_bearer_transport_reads_authorization_and_ignores_other_schemes() {
    let config = SessionConfig {
        transport: Transport::Bearer("Session-Token".into()),
        ..SessionConfig::default()
    };
    let h = Harness::new(config);
    assert_eq!(h.manager.id_header(), Some("authorization"));
    let session = block_on(h.manager.load(Presented::Nothing)).unwrap();
    session.insert("k", &1).unwrap();
    let headers = block_on(h.manager.commit(&session)).unwrap();
    let token = headers.set_cookie.clone().unwrap();
    assert!(sent_has(&headers, "session-token", &token));
    assert!(sent_has(&headers, "vary", "authorization"));

    let read = |value: &str| h.manager.read_id([value.as_bytes()]);
    for value in [format!("Bearer {token}"), format!("bearer  {token}")] {
        assert!(matches!(read(&value), Presented::Id(_)), "{value}");
    }
    assert_eq!(read(&format!("Basic {token}")), Presented::Nothing);
    assert_eq!(read(&token), Presented::Nothing, "the scheme is required");
    assert!(matches!(read("Bearer nope"), Presented::Rejected(_)));
    // Unlike cookies, a second Authorization header is never skipped over.
    let presented = h.manager.read_id([
        "Bearer nope".as_bytes(),
        format!("Bearer {token}").as_bytes(),
    ]);
    assert_eq!(presented, Presented::Ambiguous);
}

#[test]
fn an_ambiguous_header_id_is_refused_with_401_without_the_store() {
    use std::sync::{Arc, Mutex};
    let config = SessionConfig {
        transport: Transport::Header("X-Session".into()),
        ..SessionConfig::default()
    };
    let live = Harness::new(config.clone());
    let session = block_on(live.manager.load(Presented::Nothing)).unwrap();
    session.set_user("ada");
    let token = block_on(live.manager.commit(&session))
        .unwrap()
        .set_cookie
        .unwrap();
    let twice = [token.as_bytes(), token.as_bytes()];
    assert_eq!(live.manager.read_id(twice), Presented::Ambiguous);

    // A store that fails every call: a refusal that asked it would be a 503.
    let seen: Arc<Mutex<Vec<SessionEvent>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let down = SessionManager::with_event_hook(
        BrokenStore::down(),
        config,
        ManualClock::new(T0),
        move |e| sink.lock().unwrap().push(e.clone()),
    )
    .unwrap();
    let crate::engine::Step::Ready(Err(answer)) = down.begin(Presented::Ambiguous) else {
        panic!("an ambiguous id is answered at once");
    };
    assert_eq!(answer.status(), 401);
    assert_eq!(answer.body(), AMBIGUOUS_ID_BODY);
    assert_eq!(
        *seen.lock().unwrap(),
        [SessionEvent::Rejected {
            id: None,
            reason: RejectReason::Ambiguous
        }]
    );
    // Through the step API as well.
    let refused = block_on(down.load(Presented::Ambiguous));
    assert!(matches!(refused, Err(Error::AmbiguousId)), "{refused:?}");
    assert_eq!(down.failure_status(&Error::AmbiguousId), 401);
    // The session is as it was.
    let presented = live.manager.read_id([token.as_bytes()]);
    let again = block_on(live.manager.load(presented)).unwrap();
    assert_eq!(again.user().as_deref(), Some("ada"));
}

#[test]
fn a_header_transport_response_that_used_the_session_is_not_cacheable() {
    let header = Harness::new(SessionConfig {
        transport: Transport::Header("X-Session".into()),
        ..SessionConfig::default()
    });
    let session = block_on(header.manager.load(Presented::Nothing)).unwrap();
    session.set_user("ada");
    let token = block_on(header.manager.commit(&session))
        .unwrap()
        .set_cookie
        .unwrap();
    let read = |touch: bool| {
        let presented = header.manager.read_id([token.as_bytes()]);
        let session = block_on(header.manager.load(presented)).unwrap();
        if touch {
            assert_eq!(session.user().as_deref(), Some("ada"));
            let _ = session.get::<u32>("k");
        }
        block_on(header.manager.commit(&session)).unwrap()
    };
    // A read hands nothing out, yet depends on the id: no-store and Vary.
    let headers = read(true);
    assert_eq!(headers.set_cookie, None);
    assert_eq!(
        sent(&headers),
        [
            ("cache-control".to_owned(), "no-store".to_owned()),
            ("vary".to_owned(), "x-session".to_owned())
        ]
    );
    // An application's own Cache-Control is kept.
    let mut names = Vec::new();
    headers.into_each(&mut names, |_| true, |n, h| n.push(h.name().to_owned()));
    assert_eq!(names, ["vary"]);
    // A handler that never used the session: nothing to add.
    assert_eq!(sent(&read(false)), []);

    // The cookie, unchanged: a read sends Vary alone.
    let cookie = Harness::default();
    let id = cookie.request(None, write("k")).cookie().unwrap();
    let reply = cookie.request(Some(&id), |s| {
        let _ = s.get::<u32>("k");
    });
    assert_eq!(reply.headers.set_cookie, None);
    assert_eq!(
        sent(&reply.headers),
        [("vary".to_owned(), "cookie".to_owned())]
    );
}

#[test]
fn transport_header_names_are_checked() {
    for name in [
        "",
        "with space",
        "Cookie",
        "set-cookie",
        "Authorization",
        "vary",
        "Clear-Site-Data",
    ] {
        let config = SessionConfig {
            transport: Transport::Header(name.into()),
            ..SessionConfig::default()
        };
        assert!(
            matches!(config.validate(), Err(Error::Config(_))),
            "{name:?}"
        );
    }
    let config: SessionConfig =
        serde_json::from_str(r#"{"transport": {"bearer": "x-token"}}"#).unwrap();
    assert_eq!(config.transport, Transport::Bearer("x-token".into()));
    let config: SessionConfig = serde_json::from_str(r#"{"transport": "cookie"}"#).unwrap();
    assert_eq!(config.transport, Transport::Cookie);
}

/// Two requests of one visitor load the same session, and each adds a value
/// that fits alone but not beside the other's: the first commits, the
/// second is refused by the store where it merges (the request's own check
/// saw only what it loaded) and answered 413 with the too-large body,
/// through the same path as any refusal; the session keeps the first's
/// value only.
#[test]
fn a_commit_over_the_size_limit_found_at_the_merge_is_answered_413() {
    let h = Harness::new(SessionConfig {
        max_session_bytes: 100,
        ..SessionConfig::default()
    });
    let cookie = h
        .request(None, |s| s.insert("seed", &1).unwrap())
        .cookie()
        .unwrap();
    let (a, b) = (h.open(Some(&cookie)), h.open(Some(&cookie)));
    a.insert("a", &"x".repeat(50)).unwrap();
    b.insert("b", &"y".repeat(50)).unwrap();
    h.commit(&a);
    let refused = block_on(h.manager.commit(&b)).unwrap_err();
    assert!(
        matches!(
            refused,
            Error::TooLarge {
                size: 111,
                limit: 100
            }
        ),
        "{refused:?}"
    );
    let answer = h.manager.failure_answer(&refused);
    assert_eq!(
        (answer.status(), answer.body()),
        (413, r#"{"error":"session too large"}"#)
    );
    let after = h.open(Some(&cookie));
    assert_eq!(after.keys(), ["a", "seed"]);

    // The request future answers it in place of the handler's response.
    let cookie = h
        .request(None, |s| s.insert("seed", &2).unwrap())
        .cookie()
        .unwrap();
    let c = h.open(Some(&cookie));
    c.insert("c", &"z".repeat(50)).unwrap();
    let mut d = h.open(Some(&cookie));
    d.insert("d", &"w".repeat(50)).unwrap();
    h.commit(&c);
    let crate::engine::Step::Ready(Err(answer)) = h.manager.finish(&mut d) else {
        panic!("an immediate store's refusal is answered in place");
    };
    assert_eq!(answer.status(), 413);
}

#[test]
fn the_per_user_limit_ends_the_oldest_session_or_refuses_the_login() {
    let mut config = SessionConfig {
        max_sessions_per_user: Some(UserLimit::end_oldest(2)),
        ..SessionConfig::default()
    };
    let h = Harness::new(config.clone());
    let first = h.request(None, |s| s.set_user("ada")).cookie().unwrap();
    h.advance(1);
    let second = h.request(None, |s| s.set_user("ada")).cookie().unwrap();
    h.advance(1);
    // A login that renews an anonymous session counts as one more.
    let anon = h.request(None, write("cart")).cookie().unwrap();
    let third = h
        .request(Some(&anon), |s| s.set_user("ada"))
        .cookie()
        .unwrap();
    assert!(h.open(Some(&first)).user().is_none(), "the oldest ended");
    assert_eq!(h.open(Some(&second)).user().as_deref(), Some("ada"));
    assert_eq!(h.open(Some(&third)).user().as_deref(), Some("ada"));
    assert_eq!(h.store().len(), 2);

    config.max_sessions_per_user = Some(UserLimit::refuse(2));
    let h = Harness::new(config);
    for _ in 0..2 {
        h.request(None, |s| s.set_user("ada")).cookie().unwrap();
    }
    let session = h.open(None);
    session.set_user("ada");
    let err = block_on(h.manager.commit(&session)).unwrap_err();
    assert!(matches!(err, Error::TooManySessions { limit: 2 }), "{err}");
    let answer = h.manager.failure_answer(&err);
    assert_eq!(answer.status(), 409);
    assert_eq!(answer.body(), TOO_MANY_SESSIONS_BODY);
    assert_eq!(h.store().len(), 2, "the refused login stored nothing");
    // Another user is not limited by ada's sessions.
    assert!(h.request(None, |s| s.set_user("bob")).cookie().is_some());
}
