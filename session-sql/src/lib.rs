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
/// wire. A call the database rolled back as a deadlock's victim runs again
/// (see `pool::is_retryable`). Evaluates to the body's
/// `Result<_, sqlx::Error>`.
macro_rules! on_conn {
    ($pool:expr, |$conn:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            let result = match $pool.acquire().await {
                Ok(mut lease) => {
                    let result = {
                        let $conn = &mut *lease;
                        $body.await
                    };
                    lease.release(&result);
                    result
                }
                Err(err) => Err(err),
            };
            match result {
                Err(err) if attempt < crate::pool::RETRIES && crate::pool::is_retryable(&err) => {
                    attempt += 1;
                }
                result => break result,
            }
        }
    }};
}

mod codec;
#[cfg(feature = "mysql")]
mod mysql;
mod pool;
#[cfg(feature = "postgres")]
mod postgres;
mod schema;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;

#[cfg(feature = "testing")]
pub mod testing;

pub use store::{Backend, SqlStore};

/// The `sqlx` crate this store is built on, for its connection options
/// ([`SqlStore::postgres`] and its siblings).
pub use sqlx;
