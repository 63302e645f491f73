//! Random requests of one visitor through the engine against the memory
//! store, on a virtual clock, checked against a model of what the session
//! must hold: every committed write is kept, a refused write (over the size
//! limit) changes nothing, an ended or renewed id never comes back, expiry
//! happens exactly at the idle timeout, and the store's byte count returns
//! to zero when every session is gone.
#![no_main]

use session_core::driver::Engine;
use std::collections::HashMap;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use session_core::testing::block_on;
use session_core::{
    Clock, CookiePrefix, Error, ManualClock, MemoryStore, Presented, SessionConfig, SessionManager,
    Timestamp,
};

const IDLE: u64 = 600;
const LIMIT: usize = 200;
const KEYS: [&str; 4] = ["a", "b", "cart", "_flash.note"];

#[derive(Arbitrary, Debug)]
enum Action {
    Insert { key: u8, len: u8 },
    Remove { key: u8 },
    Clear,
    SetUser { user: u8 },
    Renew,
    Destroy,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// A request carrying the browser's cookie (or a stale one it kept).
    Request { actions: Vec<Action>, stale: bool },
    /// Time passes.
    Wait { secs: u16 },
}

/// What the visitor's session must hold.
#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    data: HashMap<String, String>,
    user: Option<String>,
}

fn cookie_value(set_cookie: &str) -> Option<String> {
    let pair = set_cookie.split(';').next()?;
    let value = pair.split_once('=')?.1;
    (!value.is_empty() && !set_cookie.contains("Max-Age=0")).then(|| value.to_owned())
}

fuzz_target!(|steps: Vec<Step>| {
    let clock = ManualClock::new(Timestamp::from_unix_secs(1_000_000));
    let mut config = SessionConfig::default();
    config.cookie.prefix = CookiePrefix::None;
    config.idle_timeout = Duration::from_secs(IDLE);
    config.lifetime = Duration::from_secs(10 * 365 * 24 * 3600);
    config.touch_interval = Duration::ZERO;
    config.max_session_bytes = LIMIT;
    let store = MemoryStore::new();
    let manager = SessionManager::with_clock(store.clone(), config, clock.clone()).unwrap();
    let name = manager.cookie_name().to_owned();

    let mut cookie: Option<String> = None;
    let mut dead: Vec<String> = Vec::new();
    let mut model: Option<Model> = None;
    let mut last_active = clock.now();

    for step in steps.into_iter().take(64) {
        match step {
            Step::Wait { secs } => clock.advance(Duration::from_secs(u64::from(secs))),
            Step::Request { actions, stale } => {
                // Expiry is exact: live before the idle timeout, gone at it.
                if model.is_some() && clock.now().since(last_active) >= Duration::from_secs(IDLE) {
                    model = None;
                }
                let presented_text = if stale {
                    dead.last().cloned()
                } else {
                    cookie.clone()
                };
                let header = presented_text.map(|v| format!("{name}={v}"));
                let presented = manager.read_id(header.iter().map(|h| h.as_bytes()));
                let session = block_on(manager.load(presented)).unwrap();
                let live = if stale { None } else { model.clone() };
                assert_eq!(
                    session.is_new(),
                    live.is_none(),
                    "load disagrees with the model"
                );
                let mut expect = live.clone().unwrap_or_default();
                if let Some(live) = &live {
                    for (k, v) in &live.data {
                        assert_eq!(session.get_raw(k).as_deref(), Some(v.as_str()), "lost {k}");
                    }
                    // Flash values are not listed.
                    let listed = live.data.keys().filter(|k| !k.starts_with("_flash.")).count();
                    assert_eq!(session.len(), listed);
                    assert_eq!(session.user().as_deref(), live.user.as_deref());
                }
                let old_cookie = if stale { None } else { cookie.clone() };
                let mut destroyed = false;
                for action in actions.into_iter().take(16) {
                    match action {
                        Action::Insert { key, len } => {
                            let key = KEYS[usize::from(key) % KEYS.len()];
                            let json = format!("\"{}\"", "x".repeat(usize::from(len)));
                            let before = session.size();
                            match session.insert_raw(key, json.clone()) {
                                Ok(()) => {
                                    expect.data.insert(key.to_owned(), json);
                                }
                                Err(Error::TooLarge { size, limit }) => {
                                    assert_eq!(limit, LIMIT);
                                    assert!(size > LIMIT && size > before);
                                    assert_eq!(session.size(), before, "refused write counted");
                                }
                                Err(e) => panic!("unexpected {e}"),
                            }
                            assert!(session.size() <= LIMIT.max(before));
                        }
                        Action::Remove { key } => {
                            let key = KEYS[usize::from(key) % KEYS.len()];
                            session.remove(key);
                            expect.data.remove(key);
                        }
                        Action::Clear => {
                            session.clear();
                            expect.data.clear();
                        }
                        Action::SetUser { user } => {
                            let user = format!("user{}", user % 4);
                            session.set_user(user.as_str());
                            expect.user = Some(user);
                        }
                        Action::Renew => {
                            session.renew();
                        }
                        Action::Destroy => {
                            session.destroy();
                            expect = Model::default();
                            destroyed = true;
                        }
                    }
                }
                let size: usize = expect.data.iter().map(|(k, v)| k.len() + v.len()).sum();
                assert_eq!(session.size(), size, "size accounting");
                let headers = block_on(manager.commit(&session)).unwrap();
                if stale {
                    // A stale cookie's request may start a new session, but
                    // never brings the dead one back; the browser keeps it.
                    continue;
                }
                let stored = !expect.data.is_empty() || expect.user.is_some();
                match headers.set_cookie.as_deref().and_then(cookie_value) {
                    Some(new) => {
                        if let Some(old) = &old_cookie
                            && *old != new
                        {
                            dead.push(old.clone());
                        }
                        cookie = Some(new);
                    }
                    None if headers.set_cookie.is_some() => {
                        if let Some(old) = cookie.take() {
                            dead.push(old);
                        }
                    }
                    None => {}
                }
                if destroyed && !stored {
                    if let Some(old) = &old_cookie {
                        if !dead.contains(old) {
                            dead.push(old.clone());
                        }
                    }
                }
                model = if stored || (live.is_some() && !destroyed) {
                    Some(expect)
                } else {
                    None
                };
                if model.is_none() {
                    cookie = None;
                }
                last_active = clock.now();
                // A dead id never loads again.
                for old in &dead {
                    let header = format!("{name}={old}");
                    let presented = manager.read_id([header.as_bytes()]);
                    if let Presented::Id(_) = presented {
                        let s = block_on(manager.load(presented)).unwrap();
                        assert!(s.is_new(), "a dead id came back");
                    }
                }
            }
        }
    }
    // Every byte is given back once every session is gone.
    store.sweep(
        clock
            .now()
            .saturating_add(Duration::from_secs(30 * 24 * 3600)),
    );
    assert_eq!(store.len(), 0);
    assert_eq!(store.bytes(), 0, "byte accounting leaked");
});
