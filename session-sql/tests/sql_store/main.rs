//! `SqlStore` against real databases: the shared store contract, concurrent
//! writers, the resurrection race, corrupt rows, outages, round trips, and
//! the schema's migrations and sweeping, on PostgreSQL, MySQL/MariaDB and
//! SQLite. Each test makes a database of its own (see
//! `session_sql::testing`); PostgreSQL and MySQL tests skip, saying why,
//! when their server is absent (and fail under `SESSION_TEST_STRICT=1`).

/// Runs each named `async fn(Kind)` once per backend, as three tests.
macro_rules! backend_tests {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(session_sql::testing::Kind::Postgres).await
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(session_sql::testing::Kind::MySql).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(session_sql::testing::Kind::Sqlite).await
                }
            )*
        }
    };
}

mod concurrency;
mod contract;
mod corrupt;
mod outage;
mod round_trips;
mod schema;
mod size_limit;
