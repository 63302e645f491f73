//! Arbitrary bytes through the strict id parser: no panic, and whatever it
//! accepts is the canonical text of that id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::SessionId;

fuzz_target!(|data: &[u8]| {
    if let Some(id) = SessionId::parse(data) {
        assert_eq!(id.to_string().as_bytes(), data);
        assert_eq!(SessionId::parse(id.to_string().as_bytes()), Some(id));
    }
});
