#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
// With only some backends, parts shared by the others go unused.
#![cfg_attr(
    not(all(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(dead_code, unused_variables, unused_imports)
)]

#[cfg(not(any(feature = "postgres", feature = "mysql", feature = "sqlite")))]
compile_error!("session-sql needs at least one of its features `postgres`, `mysql`, `sqlite`");

/// Runs `$body` (a future using the connection `$conn`) on a connection of
/// `$pool`, and gives the connection back unless the call failed on the
/// wire. Evaluates to the body's `Result<_, sqlx::Error>`.
///
/// A call the database rolled back as a deadlock's victim runs again (see
/// `pool::is_retryable`): it was rolled back whole.
///
/// A call whose connection turned out dead (`pool::is_dead_connection`:
/// most often one that a restart, a proxy or a firewall ended while it sat
/// in the pool) runs once more, on a new connection, so that a reset costs
/// no request. That is only right for a call that may run twice: a read, or
/// a write whose second run cannot apply it twice (`delete`, `delete_user`,
/// `delete_all` and `sweep` delete what is there; a second run finds less and counts
/// less, never more). `create`, `update` and `renew` use the `once` form,
/// which never runs the body again after a dead connection, and decide
/// their own second run (see `crate::retry`), with `fresh = true`: on a
/// new connection, never an idle one. A connection that cannot be
/// opened at all is not tried again: the database is down.
macro_rules! on_conn {
    (@run $pool:expr, $fresh:expr, $again_if_dead:expr, |$conn:ident| $body:expr) => {{
        let mut attempt = 0;
        let mut fresh: bool = $fresh;
        let mut again_if_dead: bool = $again_if_dead;
        loop {
            let result = match $pool.acquire(fresh).await {
                Ok(mut lease) => {
                    let result = {
                        let $conn = &mut *lease;
                        $body.await
                    };
                    lease.release(&result);
                    result
                }
                Err(err) => break Err(err),
            };
            match result {
                Err(err) if attempt < crate::pool::RETRIES && crate::pool::is_retryable(&err) => {
                    attempt += 1;
                }
                Err(err) if again_if_dead && crate::pool::is_dead_connection(&err) => {
                    again_if_dead = false;
                    fresh = true;
                }
                result => break result,
            }
        }
    }};
    ($pool:expr, |$conn:ident| $body:expr) => {
        on_conn!(@run $pool, false, true, |$conn| $body)
    };
    ($pool:expr, once, |$conn:ident| $body:expr) => {
        on_conn!(@run $pool, false, false, |$conn| $body)
    };
    ($pool:expr, fresh = $fresh:expr, |$conn:ident| $body:expr) => {
        on_conn!(@run $pool, $fresh, false, |$conn| $body)
    };
}

mod codec;
#[cfg(feature = "mysql")]
mod mysql;
mod pool;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod retry;
mod schema;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod user_limit;

#[cfg(feature = "testing")]
pub mod testing;

pub use store::{Backend, SqlStore};

/// The `sqlx` crate this store is built on, for its connection options
/// ([`SqlStore::postgres`] and its siblings).
pub use sqlx;
