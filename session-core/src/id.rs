//! Session ids: 128 bits from the operating system's CSPRNG, written as 22
//! characters of unpadded base64url, parsed strictly.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::OnceLock;

/// How many random bytes an id carries (128 bits).
const ID_BYTES: usize = 16;
/// How many characters the text form of an id has.
pub(crate) const ID_LEN: usize = 22;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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
    /// base64url, or a non-canonical final character give `None`.
    pub fn parse(text: &[u8]) -> Option<Self> {
        let text: &[u8; ID_LEN] = text.try_into().ok()?;
        let mut bytes = [0u8; ID_BYTES];
        // Five groups of four characters make fifteen bytes...
        for group in 0..5 {
            let c = &text[group * 4..group * 4 + 4];
            let sextets = [
                DECODE[c[0] as usize],
                DECODE[c[1] as usize],
                DECODE[c[2] as usize],
                DECODE[c[3] as usize],
            ];
            if (sextets[0] | sextets[1] | sextets[2] | sextets[3]) & INVALID != 0 {
                return None;
            }
            let n = u32::from(sextets[0]) << 18
                | u32::from(sextets[1]) << 12
                | u32::from(sextets[2]) << 6
                | u32::from(sextets[3]);
            bytes[group * 3..group * 3 + 3].copy_from_slice(&n.to_be_bytes()[1..]);
        }
        // ...and the last two carry the sixteenth byte and four bits that
        // must be zero, so that each id has exactly one spelling.
        let (a, b) = (DECODE[text[20] as usize], DECODE[text[21] as usize]);
        if (a | b) & INVALID != 0 || b & 0x0f != 0 {
            return None;
        }
        bytes[15] = a << 2 | b >> 4;
        Some(Self(bytes))
    }

    /// Writes the text form into a stack buffer and returns it.
    pub fn encode(&self) -> EncodedId {
        let b = &self.0;
        let mut out = [0u8; ID_LEN];
        for group in 0..5 {
            let n = u32::from(b[group * 3]) << 16
                | u32::from(b[group * 3 + 1]) << 8
                | u32::from(b[group * 3 + 2]);
            for (k, shift) in [18, 12, 6, 0].into_iter().enumerate() {
                out[group * 4 + k] = ALPHABET[(n >> shift & 63) as usize];
            }
        }
        out[20] = ALPHABET[usize::from(b[15] >> 2)];
        out[21] = ALPHABET[usize::from((b[15] & 3) << 4)];
        EncodedId(out)
    }

    /// A keyed hash of the id, for logs and events: stable within this
    /// process, useless for finding or forging the id.
    pub fn log_hash(&self) -> LogHash {
        static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
        LogHash(KEY.get_or_init(Default::default).hash_one(self.0))
    }
}

/// Marks a byte outside the alphabet in [`DECODE`].
const INVALID: u8 = 0x80;

/// Each byte's value in base64url, or [`INVALID`].
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

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
        // Only ALPHABET bytes are ever written.
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
        fn every_id_round_trips(raw in any::<[u8; 16]>()) {
            let id = SessionId::from_bytes(raw);
            prop_assert_eq!(SessionId::parse(id.to_string().as_bytes()), Some(id));
        }
    }
}
