//! The demo users, checked against real Argon2id password hashes.
//!
//! The hashes are PHC strings computed once, offline, and kept as constants:
//! the passwords appear nowhere in the program but the login page's hint.
//! A password changed with "change password" is kept in this process's
//! memory only (a real app writes it to its user database): another
//! process, or a restart, knows the original password.
//!
//! They use a small memory cost (4 MiB, 2 passes) so that a login costs a
//! few milliseconds in a release build and tests stay fast; a real app
//! would use OWASP's current parameters (19 MiB, 2 passes, or more).

use std::collections::HashMap;
use std::sync::{LazyLock, PoisonError, RwLock};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use session_core::{OsRandom, RandomSource};

/// A demo account: its username, display name and password hash.
#[derive(Clone, Copy, Debug)]
pub struct User {
    /// What the login form takes.
    pub username: &'static str,
    /// What pages call the user.
    pub name: &'static str,
    /// Argon2id, PHC string format.
    hash: &'static str,
}

/// The demo users (the passwords are the users' surnames, in lower case:
/// `ada`/`lovelace`, `grace`/`hopper`, `alan`/`turing`).
pub const USERS: [User; 3] = [
    User {
        username: "ada",
        name: "Ada Lovelace",
        hash: "$argon2id$v=19$m=4096,t=2,p=1$wgQucXSfBeBQS5kNqQzCAQ$/PmiFkBDJ6Q1nT4CeKTpc+eQMQ2tZ7OVbrSzMpbjOB4",
    },
    User {
        username: "grace",
        name: "Grace Hopper",
        hash: "$argon2id$v=19$m=4096,t=2,p=1$wwKYwA1BQKBY88L+lChOmQ$VvVnbkzLYj0jzXSyjd9K2qbgAZcjmEP9vx2EaO7EvSA",
    },
    User {
        username: "alan",
        name: "Alan Turing",
        hash: "$argon2id$v=19$m=4096,t=2,p=1$T1XGMgce5pObKC/NlCib0g$v2SlteKVkS4KWtSRzibO3Gj/IxOaZ+i4UUGj+PKfGkE",
    },
];

/// Checked for an unknown username, so that it costs what a known one
/// does and the timing does not tell which usernames exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=4096,t=2,p=1$KoYkYPUPFazk3HQvKduyNg$3NGIVpFZl7DwaNhiQK5/SDsY4nzXNnkz9Kb7z1Wb+1Y";

/// Passwords changed since the process started: username to PHC string.
static CHANGED: LazyLock<RwLock<HashMap<&'static str, String>>> = LazyLock::new(Default::default);

/// The shortest new password accepted.
pub const MIN_PASSWORD: usize = 8;

/// The user with this username.
pub fn find(username: &str) -> Option<&'static User> {
    USERS.iter().find(|u| u.username == username)
}

/// The user whose username and password these are. CPU-bound (a few
/// milliseconds): call it off the async threads.
pub fn authenticate(username: &str, password: &str) -> Option<&'static User> {
    let user = find(username);
    let changed = user.and_then(|u| {
        let changed = CHANGED.read().unwrap_or_else(PoisonError::into_inner);
        changed.get(u.username).cloned()
    });
    let hash = changed
        .as_deref()
        .unwrap_or_else(|| user.map_or(DUMMY_HASH, |u| u.hash));
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok();
    user.filter(|_| ok)
}

/// Gives `user` a new password: an Argon2id hash with a fresh random salt
/// and the same cost as the demo hashes. `false` if it could not be hashed.
/// CPU-bound: call it off the async threads.
pub fn set_password(user: &User, password: &str) -> bool {
    let Ok(params) = Params::new(4096, 2, 1, None) else {
        return false;
    };
    let mut salt = [0u8; 16];
    OsRandom.fill(&mut salt);
    let Ok(hash) = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_with_salt(password.as_bytes(), &salt)
    else {
        return false;
    };
    CHANGED
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(user.username, hash.to_string());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_password_signs_in_and_nothing_else_does() {
        assert_eq!(
            authenticate("ada", "lovelace").unwrap().name,
            "Ada Lovelace"
        );
        assert!(authenticate("grace", "hopper").is_some());
        assert!(authenticate("ada", "hopper").is_none());
        assert!(authenticate("ada", "").is_none());
        assert!(authenticate("nobody", "a dummy password no user has").is_none());
    }

    #[test]
    fn a_changed_password_replaces_the_old_one() {
        let alan = find("alan").unwrap();
        assert!(set_password(alan, "enigma machine"));
        assert!(authenticate("alan", "turing").is_none());
        assert!(authenticate("alan", "enigma machine").is_some());
        assert!(
            authenticate("ada", "lovelace").is_some(),
            "others keep theirs"
        );
    }
}
