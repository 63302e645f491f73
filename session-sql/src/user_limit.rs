//! The per-user session limit: a write that gives a session a user counts
//! that user's other live sessions, and refuses or ends the least recently
//! used, with every other limited write of the user held off meanwhile.
//!
//! The count, the write and the ending are separate statements, so they
//! are made one step by a lock that every limited write of the user takes:
//!
//! - PostgreSQL: a session-level advisory lock keyed by the table prefix
//!   and the user (`pg_advisory_lock`), held on a connection of its own;
//! - MySQL/MariaDB: a named lock (`GET_LOCK`), likewise;
//! - SQLite: one writer per database file; within a process the lock below
//!   alone orders the limited writes. Processes that share one SQLite file
//!   are each limited, not all together.
//!
//! Within a process, limited writes also take turns on one async lock
//! first, so that waiting for the database lock holds at most one pooled
//! connection per process (more would starve the holder, which needs
//! connections for its statements). Only logins (writes that set a user
//! with a limit configured) pay for this.

use session_core::{
    Error, Record, SessionId, SessionStore, Timestamp, Update, UserLimit, WriteOutcome,
};

use crate::store::{Pools, SqlStore, store_error};

/// A lock key for `user` under the table prefix: FNV-1a, stable across
/// processes and versions.
fn lock_key(prefix: &str, user: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = b"session-sql-user:"
        .iter()
        .chain(prefix.as_bytes())
        .chain(b":")
        .chain(user.as_bytes());
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl SqlStore {
    /// Runs `write` for a session of `user` within `limit` (see the module
    /// docs): refused if the user's other live sessions at `now` (all but
    /// `except`) fill the limit and the policy refuses; else written, then
    /// the least recently used of the others ended.
    pub(crate) async fn within_limit(
        &self,
        user: &str,
        limit: UserLimit,
        now: Timestamp,
        except: &[SessionId],
        write: impl Future<Output = Result<WriteOutcome, Error>>,
    ) -> Result<WriteOutcome, Error> {
        let _turn = tokio::time::timeout(self.timeout(), self.limit_turn().lock())
            .await
            .map_err(|_| {
                Error::store("timed out waiting for a turn to check the user's sessions")
            })?;
        let key = lock_key(self.table_prefix(), user);
        match self.pools() {
            #[cfg(feature = "postgres")]
            Pools::Postgres(pool) => {
                let mut lease = pool.acquire(false).await.map_err(store_error)?;
                let key = i64::from_ne_bytes(key.to_ne_bytes());
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(key)
                    .execute(&mut *lease)
                    .await
                    .map_err(store_error)?;
                let result = self.count_write_end(user, limit, now, except, write).await;
                let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(key)
                    .execute(&mut *lease)
                    .await;
                lease.release(&unlocked);
                result
            }
            #[cfg(feature = "mysql")]
            Pools::MySql(pool) => {
                let mut lease = pool.acquire(false).await.map_err(store_error)?;
                let name = format!("session-user-{key:016x}");
                let timeout = self.timeout().as_secs().max(1);
                let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
                    .bind(&name)
                    .bind(timeout)
                    .fetch_one(&mut *lease)
                    .await
                    .map_err(store_error)?;
                if got != Some(1) {
                    lease.release::<()>(&Ok(()));
                    return Err(Error::store(
                        "timed out waiting for the user's session lock",
                    ));
                }
                let result = self.count_write_end(user, limit, now, except, write).await;
                let unlocked = sqlx::query("SELECT RELEASE_LOCK(?)")
                    .bind(&name)
                    .execute(&mut *lease)
                    .await;
                lease.release(&unlocked);
                result
            }
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(_) => self.count_write_end(user, limit, now, except, write).await,
        }
    }

    async fn count_write_end(
        &self,
        user: &str,
        limit: UserLimit,
        now: Timestamp,
        except: &[SessionId],
        write: impl Future<Output = Result<WriteOutcome, Error>>,
    ) -> Result<WriteOutcome, Error> {
        session_core::write_within_limit(self, user, limit, now, except, write).await
    }

    /// [`within_limit`](Self::within_limit) around a create.
    pub(crate) async fn create_within(
        &self,
        id: &SessionId,
        record: &Record,
        limit: UserLimit,
    ) -> Result<WriteOutcome, Error> {
        let Some(user) = record.meta.user.as_deref() else {
            return self.create(id, record).await;
        };
        let now = record.meta.last_activity;
        self.within_limit(user, limit, now, &[*id], self.create(id, record))
            .await
    }

    /// An update's limit, if it sets a user: `Some` with what to pass to
    /// [`within_limit`](Self::within_limit).
    pub(crate) fn update_limit(update: &Update) -> Option<(String, UserLimit)> {
        update
            .limited_user()
            .map(|(user, limit)| (user.to_string(), limit))
    }
}
