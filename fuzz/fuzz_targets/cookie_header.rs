//! Arbitrary `Cookie` header bytes, split into one or more headers, through
//! the engine's cookie reading with and without signing keys. Whatever it
//! gets, it must not panic, and an id it accepts must be one it could have
//! issued.
#![no_main]

use session_core::driver::Engine;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use session_core::{
    CookiePrefix, MemoryStore, Presented, SessionConfig, SessionManager, SigningKeys,
};

fn managers() -> &'static [SessionManager<MemoryStore>; 2] {
    static MANAGERS: OnceLock<[SessionManager<MemoryStore>; 2]> = OnceLock::new();
    MANAGERS.get_or_init(|| {
        let mut plain = SessionConfig::default();
        plain.cookie.prefix = CookiePrefix::None;
        let mut signed = plain.clone();
        signed.cookie.signing_keys = SigningKeys::new([
            "fuzzing secret number one, more than thirty-two bytes",
            "fuzzing secret number two, more than thirty-two bytes",
        ]);
        [
            SessionManager::new(MemoryStore::new(), plain).unwrap(),
            SessionManager::new(MemoryStore::new(), signed).unwrap(),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    // A 0xff byte splits the input into separate header values.
    let headers: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    for manager in managers() {
        if let Presented::Id(id) = manager.read_id(headers.iter().copied()) {
            // Only text of the exact id form, present in the input, is accepted.
            let text = id.to_string();
            assert!(data.windows(text.len()).any(|w| w == text.as_bytes()));
        }
    }
});
