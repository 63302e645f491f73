//! The commit plan: what a request's changes ask of the store when its
//! response is sent.

use super::State;
use crate::data::Data;
use crate::id::SessionId;
use crate::record::{Metadata, Record, Update};
use crate::time::Timestamp;

/// What committing a session asks of the store. The record and the update
/// are boxed: a plan that writes nothing (most requests) is then small to
/// move, and one that writes pays one allocation beside the store's work.
#[derive(Debug)]
pub(crate) enum Write {
    Nothing,
    Create(Box<Record>),
    Update {
        id: SessionId,
        update: Box<Update>,
        cookie: bool,
    },
    Renew {
        old: SessionId,
        update: Box<Update>,
    },
}

#[derive(Debug)]
pub(crate) struct Plan {
    /// A session ended by `destroy`, to delete first.
    pub(crate) delete: Option<SessionId>,
    pub(crate) write: Write,
    /// Whether, if nothing is written, the browser's cookie must be removed.
    pub(crate) remove_cookie: bool,
    pub(crate) vary: bool,
    pub(crate) persistent: bool,
    /// The instant the plan was made at, if a write needed one (the cookie's
    /// `Max-Age` counts from it); else the epoch.
    pub(crate) now: Timestamp,
    /// The bytes of the values an update or renewal that changes them
    /// leaves, as this request saw them (`session_size_bytes`).
    #[cfg(feature = "metrics")]
    pub(crate) size: Option<usize>,
}

impl State {
    /// What committing asks of the store, at the instant `now` gives (asked
    /// only if something may be written: an untouched new session, the
    /// anonymous visitor's, costs no clock read). It takes this request's
    /// changes and the loaded values out of the handle (so the store can
    /// update its copy in place rather than copy it): the handle is spent.
    pub(super) fn take_plan(&mut self, now: impl FnOnce() -> Timestamp) -> Plan {
        let persistent = self.defaults.persistent(&self.meta);
        // Measured before the changes are taken out (usually counted by the
        // write already, and kept).
        #[cfg(feature = "metrics")]
        let size = (!self.spent && self.id.is_some() && (self.cleared || !self.changes.is_empty()))
            .then(|| self.size());
        let delete = self.destroyed.take();
        let (write, now, remove_cookie) = if std::mem::replace(&mut self.spent, true) {
            // Committed already: nothing more to send.
            self.changes.clear();
            self.base = None;
            (Write::Nothing, Timestamp::default(), false)
        } else {
            let (write, now) = self.take_write(now, persistent);
            (write, now, delete.is_some() || self.stale_cookie)
        };
        // Built once, in place: a plan assembled early and moved out at each
        // return stalled on reading back its own fresh stores.
        Plan {
            delete,
            write,
            remove_cookie,
            vary: self.accessed,
            persistent,
            now,
            #[cfg(feature = "metrics")]
            size,
        }
    }

    /// The write a commit asks for, and the instant it was planned at (the
    /// epoch if nothing is written).
    fn take_write(
        &mut self,
        now: impl FnOnce() -> Timestamp,
        persistent: bool,
    ) -> (Write, Timestamp) {
        if self.id.is_none() && self.changes.is_empty() && self.meta.user.is_none() {
            // A new session that holds nothing (lazy creation): nothing to
            // store, no clock to read.
            return (Write::Nothing, Timestamp::default());
        }
        let changes = std::mem::take(&mut self.changes);
        let base = self.base.take();
        let Some(id) = self.id else {
            let now = now();
            if self.unstamped.take().is_some() {
                // Opened without a clock read: created now, as it is stored.
                self.stamp(now);
            }
            let data: Data = changes
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect();
            if data.is_empty() && self.meta.user.is_none() {
                return (Write::Nothing, now);
            }
            // Created when the request opened it (what the handler saw);
            // active as of now, so a new cookie's Max-Age is exactly the
            // idle timeout.
            let meta = Metadata {
                last_activity: now,
                ..self.meta.clone()
            };
            let record = Box::new(Record {
                expires_at: self.defaults.expires_at(&meta),
                data,
                meta,
            });
            return (Write::Create(record), now);
        };
        // Let go of the loaded values before the store applies the update.
        drop(base);
        let now = now();
        let changed = self.cleared
            || !changes.is_empty()
            || self.user_changed
            || self.auth_changed
            || self.expiry_changed;
        if !changed && !self.renew && !self.defaults.touch_due(&self.meta, now) {
            return (Write::Nothing, now);
        }
        let meta = Metadata {
            last_activity: now,
            ..self.meta.clone()
        };
        let mut set = Vec::new();
        let mut removed = Vec::new();
        for (key, value) in changes {
            match value {
                Some(value) => set.push((key, value)),
                None => removed.push(key),
            }
        }
        let update = Box::new(Update {
            cleared: self.cleared,
            set,
            removed,
            last_activity: now,
            expires_at: self.defaults.expires_at(&meta),
            user: self.user_changed.then(|| self.meta.user.clone()),
            authenticated_at: self.auth_changed.then_some(self.meta.authenticated_at),
            expiry: self.expiry_changed.then_some(self.meta.expiry),
            max_bytes: self.defaults.max_bytes,
            max_per_user: None,
        });
        let write = if self.renew {
            Write::Renew { old: id, update }
        } else {
            // A persistent cookie's Max-Age moves with the expiry; a
            // browser-session cookie needs resending only if its kind changed.
            Write::Update {
                id,
                update,
                cookie: persistent || self.expiry_changed,
            }
        };
        (write, now)
    }
}
