//! A small connection pool of our own, so that a store call costs exactly
//! its statement's round trip.
//!
//! `sqlx::Pool` pings every connection when it goes back to the pool (and,
//! by default, before it is handed out): one or two more round trips per
//! call. This pool does no IO of its own. A connection goes back to the pool
//! only after a call that finished (successfully, or with an error the
//! database reported); one whose call failed on the wire, or was cut off by
//! the timeout mid-statement, is closed, and so are all idle ones, since
//! they most likely lost the same server. The next call connects afresh, so
//! the store recovers by itself once the database is back.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::{ConnectOptions, Connection, Executor};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Idle connections older than this are closed rather than reused: servers
/// and firewalls drop connections that stay silent for long.
const MAX_IDLE: Duration = Duration::from_secs(300);

/// A bounded pool of connections of one kind.
pub(crate) struct Pool<C: Connection> {
    options: C::Options,
    idle: Mutex<Vec<(C, Instant)>>,
    permits: Semaphore,
    max: usize,
    /// Keep connections however long they idle (an in-memory SQLite
    /// database lives only as long as its connection).
    keep_forever: bool,
    /// A statement each new connection runs first (session settings that
    /// connection options cannot carry).
    init: Option<String>,
}

impl<C: Connection> fmt::Debug for Pool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The options may carry a password: show only the shape.
        f.debug_struct("Pool")
            .field("max_connections", &self.max)
            .field(
                "idle",
                &self.idle.lock().map(|idle| idle.len()).unwrap_or(0),
            )
            .finish()
    }
}

impl<C: Connection> Pool<C> {
    pub(crate) fn new(options: C::Options, max: usize, keep_forever: bool) -> Self {
        let max = max.max(1);
        Self {
            options,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(max),
            max,
            keep_forever,
            init: None,
        }
    }

    /// Runs `statement` on each new connection before its first use.
    pub(crate) fn with_init(mut self, statement: String) -> Self {
        self.init = Some(statement);
        self
    }

    pub(crate) fn max_connections(&self) -> usize {
        self.max
    }

    pub(crate) fn options(&self) -> &C::Options {
        &self.options
    }
}

impl<C> Pool<C>
where
    C: Connection,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    /// A connection: an idle one, or a new one (always a new one when
    /// `fresh`, to run a call again after its pooled connection turned out
    /// dead). Waits for a free slot; the caller bounds the wait with its
    /// timeout.
    pub(crate) async fn acquire(&self, fresh: bool) -> Result<Lease<'_, C>, sqlx::Error> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = if fresh { None } else { self.take_idle() };
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let mut conn = self.options.connect().await?;
                if let Some(init) = &self.init {
                    (&mut conn).execute(init.as_str()).await?;
                }
                conn
            }
        };
        Ok(Lease {
            pool: self,
            conn: Some(conn),
            _permit: permit,
        })
    }
}

impl<C: Connection> Pool<C> {
    fn take_idle(&self) -> Option<C> {
        let mut idle = self.idle.lock().ok()?;
        while let Some((conn, since)) = idle.pop() {
            if self.keep_forever || since.elapsed() < MAX_IDLE {
                return Some(conn);
            }
            // Too old: dropping closes its socket.
            drop(conn);
        }
        None
    }

    /// Closes every idle connection.
    pub(crate) fn clear(&self) {
        if self.keep_forever {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

/// A connection taken from the pool. Dropped without [`Lease::release`]
/// (an error on the wire, or a timeout that dropped the call mid-way), its
/// connection is closed, never reused.
pub(crate) struct Lease<'a, C: Connection> {
    pool: &'a Pool<C>,
    conn: Option<C>,
    _permit: SemaphorePermit<'a>,
}

impl<C: Connection> Lease<'_, C> {
    /// Ends the lease after a call that gave `result`: the connection goes
    /// back to the pool unless the call failed on the wire, in which case
    /// it and the idle ones are closed.
    pub(crate) fn release<T>(mut self, result: &Result<T, sqlx::Error>) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if result.as_ref().is_err_and(|e| !connection_usable(e)) {
            drop(conn);
            self.pool.clear();
            return;
        }
        if let Ok(mut idle) = self.pool.idle.lock() {
            idle.push((conn, Instant::now()));
        }
    }
}

/// Whether a call failed only because the database chose it as the victim
/// of a deadlock (or a serialization failure): the statement was rolled
/// back whole, so running it again is safe. InnoDB can pick a single-row
/// update racing a delete of the same row.
pub(crate) fn is_retryable(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("40001" | "40P01")))
}

/// How often a call the database rolled back as a deadlock's victim is run
/// again (within the store's timeout) before its error is returned.
pub(crate) const RETRIES: usize = 3;

/// Whether a call failed because its connection was dead: the socket
/// failed or was closed (an I/O error, end of stream: a connection the
/// server, a proxy or a firewall ended while it sat in the pool), or the
/// server said it is ending the connection (SQLSTATE class 08, or
/// PostgreSQL's 57P01-57P03: terminated by an administrator, a crash, a
/// restart). A fresh connection may well succeed; whether the call may run
/// again on it is the caller's rule (see `on_conn!` and the writes).
pub(crate) fn is_dead_connection(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or_default();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        _ => false,
    }
}

/// Whether a connection whose call failed with `err` can serve again: the
/// database answered (a constraint, a decoding problem), as opposed to a
/// broken socket or protocol.
fn connection_usable(err: &sqlx::Error) -> bool {
    if let sqlx::Error::Database(db) = err {
        // SQLSTATE classes 08 (connection exception) and 57 (operator
        // intervention: the server is shutting down or ended this
        // connection) mean the connection is gone.
        let code = db.code();
        let code = code.as_deref().unwrap_or_default();
        return !(code.starts_with("08") || code.starts_with("57"));
    }
    matches!(
        err,
        sqlx::Error::RowNotFound
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. }
    )
}

impl<C: Connection> Deref for Lease<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.conn
            .as_ref()
            .expect("a lease holds its connection until released")
    }
}

impl<C: Connection> DerefMut for Lease<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until released")
    }
}
