//! Session handles: what names a session in a "your devices" list and in
//! the request that ends one, without being (or leading to) its id.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::id::{BASE64URL, ID_LEN, SessionId};

/// Domain separation: a handle is a hash of the store key under this tag,
/// so it equals no other hash the engine takes of an id (ids hashed at
/// rest are SHA-256 of the id alone).
const TAG: &[u8] = b"session-core handle v1\0";

/// An opaque, stable name for one stored session, safe to show to its user
/// and to send back in a request ("end that session").
///
/// It is the first 128 bits of SHA-256 over a fixed tag and the session's
/// store key, written as 22 characters of unpadded base64url. So it is the
/// same in every process that shares the store (and the
/// [`hash_ids_at_rest`](crate::SessionConfig::hash_ids_at_rest) setting),
/// and the id cannot be found from it. A handle presented as a session id
/// names no stored session: it is never accepted as one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionHandle([u8; 16]);

impl SessionHandle {
    /// The handle of the session stored under `key` (the engine's
    /// [`store_key`](crate::driver::Engine::store_key) of its id).
    pub fn of_store_key(key: &SessionId) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(TAG);
        hasher.update(key.as_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(bytes)
    }

    /// Parses the 22-character text form, as strictly as
    /// [`SessionId::parse`]; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        SessionId::parse(text.as_bytes()).map(|id| Self(*id.as_bytes()))
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; ID_LEN];
        // 16 bytes are always exactly 22 unpadded characters.
        let _ = BASE64URL.encode_slice(self.0, &mut out);
        f.write_str(std::str::from_utf8(&out).unwrap_or_default())
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_stable_round_trip_and_are_not_the_id() {
        let key = SessionId::from_bytes([7; 16]);
        let handle = SessionHandle::of_store_key(&key);
        assert_eq!(handle, SessionHandle::of_store_key(&key), "stable");
        assert_ne!(handle.to_string(), key.to_string());
        assert_eq!(SessionHandle::parse(&handle.to_string()), Some(handle));
        assert_ne!(
            handle,
            SessionHandle::of_store_key(&SessionId::from_bytes([8; 16]))
        );
        // Not the hash the engine stores ids under when hashing at rest.
        let at_rest = Sha256::digest(key.as_bytes());
        assert_ne!(handle.0[..], at_rest[..16]);
        assert_eq!(SessionHandle::parse("not a handle"), None);
    }
}
