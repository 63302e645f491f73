//! Session ids: 128 bits from the operating system's CSPRNG, written as 22
//! characters of unpadded base64url, parsed strictly.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// How many random bytes an id carries (128 bits).
const ID_BYTES: usize = 16;
/// How many characters the text form of an id has.
pub(crate) const ID_LEN: usize = 22;

/// Unpadded base64url with exactly one spelling per value: padding is
/// refused, and so are set bits below the last byte in the final character
/// (`…w` and `…x` would otherwise both decode to a final `0xff`).
pub(crate) const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// A session id: 128 random bits from the operating system's CSPRNG.
///
/// Its text form is 22 characters of unpadded base64url. [`SessionId::parse`]
/// accepts exactly that form (and only its canonical spelling); anything else
/// is "no id", never an error.
///
/// `Debug` shows a keyed hash, not the id, so ids do not end up in logs by
/// accident. `Display` writes the real id: use it only where the id must go
/// (a cookie, a store key).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
// Aligned to 8: an `Option<SessionId>` then keeps its 16 bytes at an
// aligned offset, and moving one (plans and session state hold two) is two
// plain 8-byte moves instead of unaligned ones that stall on the store
// just made (measured with perf on the commit path).
#[repr(align(8))]
pub struct SessionId([u8; ID_BYTES]);

impl SessionId {
    /// A fresh id from the operating system's CSPRNG.
    ///
    /// # Panics
    ///
    /// Only if the operating system has no random source at all, in which
    /// case no secure id can exist and the process cannot serve sessions.
    pub fn generate() -> Self {
        Self::generate_from(&crate::random::OsRandom)
    }

    /// A fresh id from `source` (the engine's
    /// [`RandomSource`](crate::RandomSource)).
    pub fn generate_from(source: &dyn crate::random::RandomSource) -> Self {
        let mut bytes = [0u8; ID_BYTES];
        source.fill(&mut bytes);
        Self(bytes)
    }

    /// The id with these raw bytes (for stores and tests).
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses the 22-character text form. Wrong length, a character outside
    /// base64url, padding, or a non-canonical final character give `None`.
    pub fn parse(text: &[u8]) -> Option<Self> {
        // The length first: 21 or 23 characters may be valid base64url too.
        if text.len() != ID_LEN {
            return None;
        }
        let mut bytes = [0u8; ID_BYTES];
        match BASE64URL.decode_slice(text, &mut bytes) {
            Ok(ID_BYTES) => Some(Self(bytes)),
            _ => None,
        }
    }

    /// Writes the text form into a stack buffer and returns it.
    pub fn encode(&self) -> EncodedId {
        let mut out = [0u8; ID_LEN];
        // 16 bytes are always exactly 22 unpadded characters.
        let written = BASE64URL.encode_slice(self.0, &mut out);
        debug_assert_eq!(written, Ok(ID_LEN));
        EncodedId(out)
    }

    /// A keyed hash of the id, for logs and events: stable within this
    /// process, useless for finding or forging the id.
    pub fn log_hash(&self) -> LogHash {
        static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
        LogHash(KEY.get_or_init(Default::default).hash_one(self.0))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encode().as_str())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.log_hash())
    }
}

/// The text form of a [`SessionId`], on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EncodedId([u8; ID_LEN]);

impl EncodedId {
    /// The 22 characters.
    pub fn as_str(&self) -> &str {
        // Only base64url characters are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for EncodedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncodedId(..)")
    }
}

/// A keyed hash of a session id, safe to log. Shown as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogHash(u64);

impl fmt::Display for LogHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for LogHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_round_trip_and_differ() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(text.len(), ID_LEN);
        assert_eq!(SessionId::parse(text.as_bytes()), Some(a));
    }

    #[test]
    fn known_vectors() {
        assert_eq!(
            SessionId::from_bytes([0; 16]).to_string(),
            "AAAAAAAAAAAAAAAAAAAAAA"
        );
        assert_eq!(
            SessionId::from_bytes([0xff; 16]).to_string(),
            "_____________________w"
        );
    }

    #[test]
    fn rejects_wrong_length_alphabet_and_non_canonical_forms() {
        let good = SessionId::generate().to_string();
        assert!(SessionId::parse(b"").is_none());
        assert!(SessionId::parse(&good.as_bytes()[..21]).is_none());
        assert!(SessionId::parse(format!("{good}A").as_bytes()).is_none());
        assert!(SessionId::parse(b"AAAAAAAAAAAAAAAAAAAAA=").is_none());
        assert!(SessionId::parse(b"AAAAAAAAAAAAAAAAAAAA+A").is_none());
        assert!(SessionId::parse(b"AAAAAAAAAAAAAAAAAAAA\xffA").is_none());
        // Same 128 bits, but the unused low bits of the last character set.
        assert!(SessionId::parse(b"_____________________x").is_none());
        assert!(SessionId::parse(b"_____________________w").is_some());
    }

    #[test]
    fn debug_does_not_show_the_id() {
        let id = SessionId::generate();
        let debug = format!("{id:?}");
        assert!(!debug.contains(&id.to_string()));
        assert_eq!(id.log_hash(), id.log_hash());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_canonical_text(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(id) = SessionId::parse(&bytes) {
                let text = id.to_string();
                prop_assert_eq!(text.as_bytes(), &bytes[..]);
            }
        }

        #[test]
        fn alphabet_text_is_accepted_exactly_when_canonical(text in "[A-Za-z0-9_-]{22}") {
            // The last character carries two bits of the sixteenth byte and
            // four that must be zero: only A (0), Q (16), g (32), w (48).
            let canonical = matches!(text.as_bytes()[21], b'A' | b'Q' | b'g' | b'w');
            let parsed = SessionId::parse(text.as_bytes());
            prop_assert_eq!(parsed.is_some(), canonical);
            if let Some(id) = parsed {
                prop_assert_eq!(id.to_string(), text);
            }
        }

        #[test]
        fn every_id_round_trips(raw in any::<[u8; 16]>()) {
            let id = SessionId::from_bytes(raw);
            prop_assert_eq!(SessionId::parse(id.to_string().as_bytes()), Some(id));
        }
    }
}
