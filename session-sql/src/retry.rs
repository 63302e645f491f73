//! What `create`, `update` and `renew` do when their connection turns out
//! dead (`pool::is_dead_connection`): the write runs once more, on a new
//! connection, in a form that cannot apply it twice, and an outcome the
//! second run cannot tell by itself is read from the row.
//!
//! A dead connection leaves a write undecided: it may never have reached
//! the server (the common case: a connection that a restart, a proxy or a
//! firewall ended while it sat in the pool), or the server may have
//! committed it and lost the answer. The rule, per write:
//!
//! - `create` inserts only if the id is unused. A second run that finds
//!   the id taken reads the row: the very record this call wrote means the
//!   first run landed (`Written`); ids are 128 random bits drawn for this
//!   call, so any other row is a real `IdTaken`.
//! - `renew` moves the row only from the old id. A first run that landed
//!   left no row there, so the second cannot apply it again; if the second
//!   finds the old id missing, the new id (drawn for this call, unknown to
//!   anyone else yet) tells: live there means the first run landed.
//! - `update` merges, so running it again after another request's write
//!   could undo that write. Its second run is conditional on the row's
//!   `last_activity` being *before* the update's: every write sets
//!   `last_activity` to at least its own instant and never lowers it, so a
//!   row still before it has certainly not had this update applied. A row
//!   at or after it is read: if it holds everything the update sets
//!   (values, user, expiry settings) the update is `Written` (applied, or
//!   its effect is there anyway); otherwise whether it landed cannot be
//!   told, and the call fails with `Error::Store` rather than guess.
//!
//! One case stays open on every database: a statement the server received
//! just before the connection died may still be running (the server notices
//! the lost client only when it answers). It takes the row's lock before
//! the second run, which then sees its effect; only a statement delayed
//! past the reconnection could land after the second run.

use std::future::Future;

use session_core::{Error, Record, Update, WriteOutcome};

use crate::pool::is_dead_connection;
use crate::store::{LIMIT_ATTEMPTS, refusal, store_error};

/// `create`: `attempt(fresh)` inserts (a taken id is `Ok(IdTaken)`), `read`
/// reads the row under the id.
pub(crate) async fn create<A, R>(
    record: &Record,
    mut attempt: impl FnMut(bool) -> A,
    read: impl FnOnce() -> R,
) -> Result<WriteOutcome, Error>
where
    A: Future<Output = Result<WriteOutcome, sqlx::Error>>,
    R: Future<Output = Result<Option<Record>, Error>>,
{
    match attempt(false).await {
        Err(err) if is_dead_connection(&err) => {}
        result => return result.map_err(store_error),
    }
    match attempt(true).await.map_err(store_error)? {
        WriteOutcome::IdTaken => Ok(match read().await? {
            Some(found) if found == *record => WriteOutcome::Written,
            _ => WriteOutcome::IdTaken,
        }),
        outcome => Ok(outcome),
    }
}

/// `renew`: `attempt(fresh)` moves the row (no row moved is `Ok(Missing)`),
/// `read_new` reads the row under the new id.
pub(crate) async fn renew<A, R>(
    mut attempt: impl FnMut(bool) -> A,
    read_new: impl FnOnce() -> R,
) -> Result<WriteOutcome, Error>
where
    A: Future<Output = Result<WriteOutcome, sqlx::Error>>,
    R: Future<Output = Result<Option<Record>, Error>>,
{
    match attempt(false).await {
        Err(err) if is_dead_connection(&err) => {}
        result => return result.map_err(store_error),
    }
    match attempt(true).await.map_err(store_error)? {
        WriteOutcome::Missing if read_new().await?.is_some() => Ok(WriteOutcome::Written),
        outcome => Ok(outcome),
    }
}

/// `update`: `first` runs it as usual; after a dead connection `guarded`
/// runs it on a new connection only where the row's `last_activity` is
/// before the update's (no row matched is `Ok(Missing)`), and `read` reads
/// the row (live at the update's instant).
pub(crate) async fn update<F, G, R>(
    update: &Update,
    first: F,
    mut guarded: impl FnMut() -> G,
    mut read: impl FnMut() -> R,
) -> Result<WriteOutcome, Error>
where
    F: Future<Output = Result<WriteOutcome, sqlx::Error>>,
    G: Future<Output = Result<WriteOutcome, sqlx::Error>>,
    R: Future<Output = Result<Option<Record>, Error>>,
{
    match first.await {
        Err(err) if is_dead_connection(&err) => {}
        result => return result.map_err(store_error),
    }
    for _ in 0..LIMIT_ATTEMPTS {
        match guarded().await.map_err(store_error)? {
            WriteOutcome::Missing => {}
            outcome => return Ok(outcome),
        }
        let Some(now) = read().await? else {
            return Ok(WriteOutcome::Missing);
        };
        if now.meta.last_activity >= update.last_activity {
            return if reflects(update, &now) {
                Ok(WriteOutcome::Written)
            } else {
                Err(Error::store(
                    "the connection died during an update, and whether it was applied cannot \
                     be told: another write of the session came after it",
                ))
            };
        }
        // Certainly not applied, and not applied now either: the size
        // limit refused it, or a concurrent write made room since.
        if let Some(refused) = refusal(update, Some(&now)) {
            return Ok(refused);
        }
    }
    Err(Error::store(
        "a size-limited update was refused, then admitted, too many times in a row",
    ))
}

/// Whether `record` holds everything `update` sets: its values (and, when
/// it cleared, no others), its user, login time and expiry settings.
fn reflects(update: &Update, record: &Record) -> bool {
    let sets = |key: &str| update.set.iter().any(|(k, _)| k == key);
    let values = update
        .set
        .iter()
        .all(|(k, v)| record.data.get(k) == Some(v.as_str()))
        && update
            .removed
            .iter()
            .all(|k| sets(k) || !record.data.contains_key(k))
        && (!update.cleared || record.data.keys().all(sets));
    let user = update
        .user
        .as_ref()
        .is_none_or(|user| record.meta.user == *user);
    let expiry = update
        .expiry
        .is_none_or(|expiry| record.meta.expiry == expiry);
    let login = update
        .authenticated_at
        .is_none_or(|at| record.meta.authenticated_at == at);
    values && user && expiry && login
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use session_core::Timestamp;
    use session_core::testing::{record_at, update_at};

    use super::*;

    #[test]
    fn an_update_is_reflected_only_when_all_it_sets_is_there() {
        let now = Timestamp::from_unix_secs(1_000);
        let record = record_at(now, Some("u"), &[("a", "1"), ("b", "2")]);
        assert!(reflects(&update_at(now, &[("a", "1")], &["c"]), &record));
        assert!(!reflects(&update_at(now, &[("a", "9")], &[]), &record));
        assert!(!reflects(&update_at(now, &[], &["b"]), &record));
        let mut cleared = update_at(now, &[("a", "1")], &[]);
        cleared.cleared = true;
        assert!(!reflects(&cleared, &record), "b should be gone");
        let mut user = update_at(now, &[], &[]);
        user.user = Some(Some(Arc::from("v")));
        assert!(!reflects(&user, &record));
        user.user = Some(Some(Arc::from("u")));
        assert!(reflects(&user, &record));
    }
}
