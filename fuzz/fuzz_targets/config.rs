//! Arbitrary JSON into `SessionConfig`: it must never panic, a config that
//! passes `validate` must build an engine, and that engine's cookies must
//! carry the configured name and flags.
#![no_main]

use session_core::driver::Engine;
use libfuzzer_sys::fuzz_target;
use session_core::testing::block_on;
use session_core::{MemoryStore, Presented, SessionConfig, SessionManager};

fuzz_target!(|data: &[u8]| {
    let Ok(config) = serde_json::from_slice::<SessionConfig>(data) else {
        return;
    };
    let valid = config.validate().is_ok();
    let manager = SessionManager::new(MemoryStore::new(), config.clone());
    assert_eq!(valid, manager.is_ok(), "validate and the engine disagree");
    let Ok(manager) = manager else {
        return;
    };
    // One request that stores a value: its cookie follows the config.
    let session = block_on(manager.load(Presented::Nothing)).expect("memory store");
    if session.insert("k", &1).is_err() {
        assert!(config.max_session_bytes < 2, "a 2-byte value refused");
        return;
    }
    let headers = block_on(manager.commit(&session)).expect("memory store");
    let cookie = headers.set_cookie.expect("a new session sets a cookie");
    assert!(cookie.starts_with(&format!("{}=", config.cookie_name())));
    assert_eq!(cookie.contains("; Secure"), config.cookie.secure);
    assert_eq!(cookie.contains("; HttpOnly"), config.cookie.http_only);
    assert!(!cookie.contains('\n') && !cookie.contains('\r'));
});
