//! The conformance suite against each adapter, on the memory store, on
//! Redis (each Redis test starts its own `redis-server`), on Redis Cluster
//! (one Cluster for the whole run, each test under a key prefix of its
//! own), and on SQLite, PostgreSQL and MariaDB/MySQL through session-sql
//! (each test makes a database of its own).

use session_conformance::{Adapter, Backend, Framework, Target, checks, conformance_suite};
use session_core::driver::Engine;

conformance_suite!(axum_memory, Target::memory(&Framework::Axum));
conformance_suite!(actix_memory, Target::memory(&Framework::Actix));
conformance_suite!(hyper_memory, Target::memory(&Framework::Hyper));
conformance_suite!(
    axum_deferred,
    Target::on(&Framework::Axum, session_conformance::Backend::Deferred)
);
conformance_suite!(
    actix_deferred,
    Target::on(&Framework::Actix, session_conformance::Backend::Deferred)
);
conformance_suite!(
    hyper_deferred,
    Target::on(&Framework::Hyper, session_conformance::Backend::Deferred)
);
conformance_suite!(axum_redis, Target::redis(&Framework::Axum));
conformance_suite!(actix_redis, Target::redis(&Framework::Actix));
conformance_suite!(hyper_redis, Target::redis(&Framework::Hyper));
conformance_suite!(
    axum_redis_cluster,
    Target::on(&Framework::Axum, session_conformance::Backend::RedisCluster)
);
conformance_suite!(
    actix_redis_cluster,
    Target::on(
        &Framework::Actix,
        session_conformance::Backend::RedisCluster
    )
);
conformance_suite!(
    hyper_redis_cluster,
    Target::on(
        &Framework::Hyper,
        session_conformance::Backend::RedisCluster
    )
);
conformance_suite!(
    axum_sqlite,
    Target::on(&Framework::Axum, session_conformance::Backend::Sqlite)
);
conformance_suite!(
    actix_sqlite,
    Target::on(&Framework::Actix, session_conformance::Backend::Sqlite)
);
conformance_suite!(
    hyper_sqlite,
    Target::on(&Framework::Hyper, session_conformance::Backend::Sqlite)
);
conformance_suite!(
    axum_postgres,
    Target::on(&Framework::Axum, session_conformance::Backend::Postgres)
);
conformance_suite!(
    actix_postgres,
    Target::on(&Framework::Actix, session_conformance::Backend::Postgres)
);
conformance_suite!(
    hyper_postgres,
    Target::on(&Framework::Hyper, session_conformance::Backend::Postgres)
);
conformance_suite!(
    axum_mysql,
    Target::on(&Framework::Axum, session_conformance::Backend::MySql)
);
conformance_suite!(
    actix_mysql,
    Target::on(&Framework::Actix, session_conformance::Backend::MySql)
);
conformance_suite!(
    hyper_mysql,
    Target::on(&Framework::Hyper, session_conformance::Backend::MySql)
);

const AXUM: &dyn Adapter = &Framework::Axum;
const ACTIX: &dyn Adapter = &Framework::Actix;
const HYPER: &dyn Adapter = &Framework::Hyper;
const ORDERS: [[&dyn Adapter; 3]; 3] = [
    [AXUM, ACTIX, HYPER],
    [HYPER, AXUM, ACTIX],
    [ACTIX, HYPER, AXUM],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_move_between_adapters_sharing_a_memory_store() {
    for order in ORDERS {
        checks::sessions_move_between_adapters(order, Backend::Memory).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_move_between_adapters_sharing_redis() {
    for backend in [Backend::Redis, Backend::RedisCluster] {
        if backend.available() {
            for order in ORDERS {
                checks::sessions_move_between_adapters(order, backend).await;
            }
        }
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
    for backend in [Backend::Redis, Backend::RedisCluster] {
        if backend.available() {
            for framework in [AXUM, ACTIX, HYPER] {
                checks::a_corrupt_record_is_no_session(Target::on(framework, backend)).await;
            }
        }
    }
}

/// A row session-sql cannot decode, planted under a live cookie's id, is
/// "no session" (401), never a 5xx; a real session keeps working beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_row_in_sql_is_no_session() {
    use serde_json::json;
    use session_conformance::TestServer;
    use session_core::SessionId;
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
        if !backend.available() {
            continue;
        }
        for framework in [AXUM, ACTIX, HYPER] {
            let server = TestServer::start(Target::on(framework, backend)).await;
            let mut victim = server.browser();
            victim.login("ada", json!({ "a": 1 })).await;
            let mut bystander = server.browser();
            bystander.login("bob", json!({ "b": 2 })).await;
            let cookie = victim.cookie.clone().unwrap();
            let id =
                SessionId::parse(&cookie.as_bytes()[44..]).expect("signed cookie ends with the id");
            let key = server.manager.store_key(&id);
            let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
            let (store, db) = server.store.as_ref().and_then(|s| s.sql.as_ref()).unwrap();
            let id_literal = match backend {
                Backend::Postgres => format!("'\\x{hex}'::bytea"),
                _ => format!("X'{hex}'"),
            };
            let corruptions: &[&str] = match backend {
                Backend::Postgres => &["created_at = -1", r#"data = '{"a": 1}'"#],
                _ => &["created_at = -1", "data = 'not json'"],
            };
            for corruption in corruptions {
                db.execute(&format!(
                    "UPDATE {} SET {corruption} WHERE id = {id_literal}",
                    store.table()
                ))
                .await
                .unwrap();
                let res = victim.clone().get("/session/profile").await;
                assert_eq!(res.status, 401, "{backend:?} {framework:?}: {corruption}");
            }
            assert_eq!(
                bystander.get("/session/profile").await.json()["data"],
                json!({ "b": 2 })
            );
        }
    }
}
