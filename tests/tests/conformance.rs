//! The conformance suite against each adapter, on the memory store, on
//! Redis (each Redis test starts its own `redis-server`), and on SQLite,
//! PostgreSQL and MariaDB/MySQL through session-sql (each test makes a
//! database of its own).

use session_conformance::{Backend, Framework, Target, checks, conformance_suite};

conformance_suite!(axum_memory, Target::memory(Framework::Axum));
conformance_suite!(actix_memory, Target::memory(Framework::Actix));
conformance_suite!(hyper_memory, Target::memory(Framework::Hyper));
conformance_suite!(axum_redis, Target::redis(Framework::Axum));
conformance_suite!(actix_redis, Target::redis(Framework::Actix));
conformance_suite!(hyper_redis, Target::redis(Framework::Hyper));
conformance_suite!(
    axum_sqlite,
    Target::on(Framework::Axum, session_conformance::Backend::Sqlite)
);
conformance_suite!(
    actix_sqlite,
    Target::on(Framework::Actix, session_conformance::Backend::Sqlite)
);
conformance_suite!(
    hyper_sqlite,
    Target::on(Framework::Hyper, session_conformance::Backend::Sqlite)
);
conformance_suite!(
    axum_postgres,
    Target::on(Framework::Axum, session_conformance::Backend::Postgres)
);
conformance_suite!(
    actix_postgres,
    Target::on(Framework::Actix, session_conformance::Backend::Postgres)
);
conformance_suite!(
    hyper_postgres,
    Target::on(Framework::Hyper, session_conformance::Backend::Postgres)
);
conformance_suite!(
    axum_mysql,
    Target::on(Framework::Axum, session_conformance::Backend::MySql)
);
conformance_suite!(
    actix_mysql,
    Target::on(Framework::Actix, session_conformance::Backend::MySql)
);
conformance_suite!(
    hyper_mysql,
    Target::on(Framework::Hyper, session_conformance::Backend::MySql)
);

const ORDERS: [[Framework; 3]; 3] = [
    [Framework::Axum, Framework::Actix, Framework::Hyper],
    [Framework::Hyper, Framework::Axum, Framework::Actix],
    [Framework::Actix, Framework::Hyper, Framework::Axum],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_move_between_adapters_sharing_a_memory_store() {
    for order in ORDERS {
        checks::sessions_move_between_adapters(order, Backend::Memory).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_move_between_adapters_sharing_redis() {
    if !Backend::Redis.available() {
        return;
    }
    for order in ORDERS {
        checks::sessions_move_between_adapters(order, Backend::Redis).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_move_between_adapters_sharing_sql() {
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
        if backend.available() {
            for order in ORDERS {
                checks::sessions_move_between_adapters(order, backend).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_record_on_redis_is_no_session() {
    if !Backend::Redis.available() {
        return;
    }
    for framework in [Framework::Axum, Framework::Actix, Framework::Hyper] {
        checks::a_corrupt_record_is_no_session(Target::redis(framework)).await;
    }
}
