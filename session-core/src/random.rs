//! Where fresh ids and tokens get their randomness: the operating system's
//! CSPRNG, or, in tests, a fixed sequence.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of random bytes for session ids (and other secrets the engine
/// makes). The engine takes one as it takes a [`Clock`](crate::Clock), so
/// tests can fix the ids it issues; production uses [`OsRandom`].
pub trait RandomSource: Send + Sync + fmt::Debug + 'static {
    /// Fills `bytes` with random bytes.
    ///
    /// # Panics
    ///
    /// A source that cannot produce secure randomness must panic rather
    /// than return predictable bytes: ids from it could be guessed.
    fn fill(&self, bytes: &mut [u8]);
}

/// The operating system's CSPRNG (`getrandom`): the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&self, bytes: &mut [u8]) {
        getrandom::fill(bytes).expect("the operating system's random source failed");
    }
}

/// A fixed, repeatable sequence of bytes from a seed (SplitMix64), for
/// tests that want to know the ids the engine will issue. **Not secure**:
/// anyone who knows the seed knows every id; never use it to serve.
#[derive(Debug)]
pub struct SeededRandom(AtomicU64);

impl SeededRandom {
    /// A sequence starting from `seed`.
    pub const fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }
}

impl RandomSource for SeededRandom {
    fn fill(&self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let mut z = self
                .0
                .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
                .wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_bytes_and_another_seed_others() {
        let (a, b, c) = (
            SeededRandom::new(7),
            SeededRandom::new(7),
            SeededRandom::new(8),
        );
        let mut x = [0u8; 20];
        let mut y = [0u8; 20];
        let mut z = [0u8; 20];
        a.fill(&mut x);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        let mut next = [0u8; 20];
        a.fill(&mut next);
        assert_ne!(x, next, "the sequence moves on");
    }
}
