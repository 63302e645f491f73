//! The Cluster form of the operations that touch more than one slot.
//!
//! A session's hash and its user's index live in different slots, and so do
//! the old and new keys of a renew, so no script can write both. Each step
//! is still one atomic script on one key; the steps are ordered so that an
//! interruption between them never hides a live session from its user's
//! index and never brings an ended session back:
//!
//! - an id is added to a user's index *before* the session is written
//!   under that user, and removed only *after*;
//! - an index entry is only a hint: listing and deleting a user's sessions
//!   check each session's own expiry and user, so a stale entry (of a
//!   session that ended or changed user) is harmless and goes when its
//!   score passes;
//! - renew first takes the old session out (read and delete, atomically),
//!   then creates the new one only if its id is unused; if that fails, it
//!   puts the old session back.
//!
//! The per-user session limit is **best effort** on Cluster: a user's
//! sessions sit in many slots, so no script can count them and write one in
//! the same atomic step. The store counts the user's live sessions first
//! (through the index), then writes, then ends the least recently used
//! surplus. Logins of one user that race each other can all pass a
//! [`Refuse`](session_core::LimitPolicy::Refuse) check, or leave more than
//! the limit live until the user's next login; one login at a time is
//! limited exactly. A single node checks the limit atomically.

use futures_util::future::join_all;
use redis::Value;
use session_core::{Error, Record, SessionId, Timestamp, Update, UserLimit, WriteOutcome};

use crate::layout::{EXPIRES, USER, decode_record, hash_pairs, redis_millis};
use crate::scripts::{self, WRITTEN};
use crate::store::{RedisStore, int, items, outcome, status, user, write_outcome};

impl RedisStore {
    /// Adds `id` to `user`'s index with `score`, or raises its score.
    async fn index_add(&self, user: &str, id: &SessionId, score: u64) -> Result<(), Error> {
        let mut call = scripts::Call::new(&scripts::INDEX_ADD);
        call.key(self.user_key(user)).arg(score).arg(id.to_string());
        self.conn.invoke(&call).await.map(drop)
    }

    /// Removes `id` from the index of the user in `reply`, if any. A failure
    /// is ignored: the entry is only stale, and goes when its score passes.
    pub(crate) async fn cluster_unindex(&self, reply: Option<Value>, id: &SessionId) {
        if let Ok(Some(user)) = user(reply) {
            self.unindex(&user, id).await;
        }
    }

    async fn unindex(&self, user: &str, id: &SessionId) {
        let _stale_at_worst = self
            .conn
            .query(
                redis::cmd("ZREM")
                    .arg(self.user_key(user))
                    .arg(id.to_string()),
            )
            .await;
    }

    /// The per-user limit around a write, best effort (see the module
    /// docs): counts `user`'s live sessions but `except` at `now`, refuses
    /// or runs `write`, then ends the least recently used surplus.
    pub(crate) async fn cluster_within_limit(
        &self,
        user: &str,
        limit: UserLimit,
        now: Timestamp,
        except: &[SessionId],
        write: impl Future<Output = Result<WriteOutcome, Error>>,
    ) -> Result<WriteOutcome, Error> {
        session_core::write_within_limit(self, user, limit, now, except, write).await
    }

    /// [`cluster_within_limit`](Self::cluster_within_limit) around
    /// [`cluster_create`](Self::cluster_create).
    pub(crate) async fn cluster_create_limited(
        &self,
        id: &SessionId,
        record: &Record,
        limit: UserLimit,
    ) -> Result<WriteOutcome, Error> {
        let Some(user) = record.meta.user.as_deref() else {
            return self.cluster_create(id, record).await;
        };
        let now = record.meta.last_activity;
        let write = self.cluster_create(id, record);
        self.cluster_within_limit(user, limit, now, &[*id], write)
            .await
    }

    /// Index first, then the session.
    pub(crate) async fn cluster_create(
        &self,
        id: &SessionId,
        record: &Record,
    ) -> Result<WriteOutcome, Error> {
        if let Some(user) = &record.meta.user {
            self.index_add(user, id, redis_millis(record.expires_at))
                .await?;
        }
        let reply = self
            .conn
            .invoke(&self.create_call(id, record, false))
            .await?;
        outcome(int(&reply)?)
    }

    /// A new user's index first, then the session, then the index entry's
    /// new score (same user) or the old user's entry removed.
    pub(crate) async fn cluster_update(
        &self,
        id: &SessionId,
        update: &Update,
    ) -> Result<WriteOutcome, Error> {
        let score = redis_millis(update.expires_at);
        if let Some(Some(new_user)) = &update.user {
            self.index_add(new_user, id, score).await?;
        }
        let key = self.session_key(id);
        let call = self.update_call(&scripts::UPDATE, &[&key], update, false, (id, None));
        let (code, rest) = status(self.conn.invoke(&call).await?)?;
        if code != WRITTEN {
            return write_outcome(code, rest);
        }
        let mut rest = rest.into_iter();
        let before = user(rest.next())?;
        let after = user(rest.next())?;
        match (&update.user, &after) {
            // Same user, later expiry: the entry must not expire before
            // the session does.
            (None, Some(user)) => self.index_add(user, id, score).await?,
            (Some(_), _) => {
                if let Some(before) = before.filter(|b| Some(b) != after.as_ref()) {
                    self.unindex(&before, id).await;
                }
            }
            (None, None) => {}
        }
        Ok(WriteOutcome::Written)
    }

    /// Take the old session out, write it under the new id, and put it
    /// back if that fails.
    pub(crate) async fn cluster_renew(
        &self,
        old_id: &SessionId,
        new_id: &SessionId,
        update: &Update,
    ) -> Result<WriteOutcome, Error> {
        let mut take = scripts::Call::new(&scripts::TAKE);
        take.key(self.session_key(old_id))
            .arg(update.last_activity.unix_millis());
        let (code, rest) = status(self.conn.invoke(&take).await?)?;
        if code != WRITTEN {
            return outcome(code);
        }
        // From here the old id is dead; the record is only in our hands.
        let fields = hash_pairs(rest.into_iter().next().unwrap_or(Value::Nil))?;
        let Some(original) = decode_record(fields)? else {
            return Ok(WriteOutcome::Missing);
        };
        // The record is out of Redis, so no other write can merge into it
        // meanwhile: the size limit is checked here, on it.
        if let Err(size) = update.admits(&original.data) {
            self.put_back(old_id, &original).await?;
            return Ok(WriteOutcome::TooLarge { size });
        }
        let mut record = original.clone();
        update.apply_to(&mut record);
        match self.cluster_create(new_id, &record).await {
            Ok(WriteOutcome::Written) => {
                if let Some(old_user) = &original.meta.user {
                    self.unindex(old_user, old_id).await;
                }
                Ok(WriteOutcome::Written)
            }
            Ok(outcome) => {
                self.put_back(old_id, &original).await?;
                Ok(outcome)
            }
            Err(err) => {
                // If this fails too, the session is lost (its user is
                // logged out); it is never duplicated under a live id.
                let _ = self.put_back(old_id, &original).await;
                Err(err)
            }
        }
    }

    async fn put_back(&self, id: &SessionId, record: &Record) -> Result<(), Error> {
        let reply = self
            .conn
            .invoke(&self.create_call(id, record, false))
            .await?;
        outcome(int(&reply)?).map(drop)
    }

    /// Of a user's candidate ids, those whose session is live at `now` and
    /// still belongs to the user (one command per session, concurrently).
    pub(crate) async fn cluster_live_sessions(
        &self,
        user: &str,
        candidates: Vec<SessionId>,
        now: Timestamp,
    ) -> Result<Vec<SessionId>, Error> {
        let checks = candidates.iter().map(|id| async move {
            let reply = self
                .conn
                .query(
                    redis::cmd("HMGET")
                        .arg(self.session_key(id))
                        .arg(EXPIRES)
                        .arg(USER),
                )
                .await;
            match reply {
                Ok(reply) => Ok(is_live_for(reply, user, now)),
                // Not a session hash: not a live session.
                Err(Error::Corrupt(_)) => Ok(false),
                Err(err) => Err(err),
            }
        });
        let live = join_all(checks).await;
        let mut ids = Vec::with_capacity(candidates.len());
        for (id, live) in candidates.into_iter().zip(live) {
            if live? {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Deletes each indexed session that belongs to the user (one script
    /// per session, concurrently), then their index entries.
    pub(crate) async fn cluster_delete_user(&self, user: &str) -> Result<usize, Error> {
        let index = self.user_key(user);
        let members = crate::store::ids(
            self.conn
                .query(redis::cmd("ZRANGE").arg(&index).arg(0).arg(-1))
                .await?,
        )?;
        let deletes = members.iter().map(|id| async move {
            let mut call = scripts::Call::new(&scripts::DELETE_IF_OWNED);
            call.key(self.session_key(id)).arg(user);
            int(&self.conn.invoke(&call).await?)
        });
        let results = join_all(deletes).await;
        let mut ended = Vec::new();
        let mut failure = None;
        for (id, result) in members.iter().zip(results) {
            match result {
                Ok(1) => ended.push(id.to_string()),
                Ok(_) => {}
                Err(err) => {
                    failure.get_or_insert(err);
                }
            }
        }
        // Entries of sessions not found stay: such a session may be being
        // created right now (index first), and they go with their score.
        if !ended.is_empty() {
            let _stale_at_worst = self
                .conn
                .query(redis::cmd("ZREM").arg(&index).arg(&ended))
                .await;
        }
        match failure {
            Some(err) => Err(err),
            None => Ok(ended.len()),
        }
    }
}

/// Whether an `HMGET m:exp m:user` reply is a session live at `now` of
/// `user`.
fn is_live_for(reply: Value, user: &str, now: Timestamp) -> bool {
    let Ok(fields) = items(reply) else {
        return false;
    };
    let mut fields = fields.into_iter().map(|f| match f {
        Value::BulkString(bytes) => Some(bytes),
        _ => None,
    });
    let expires = fields
        .next()
        .flatten()
        .and_then(|b| std::str::from_utf8(&b).ok()?.parse::<u64>().ok());
    let owner = fields.next().flatten();
    expires.is_some_and(|exp| exp > now.unix_millis()) && owner.as_deref() == Some(user.as_bytes())
}
