//! PostgreSQL: every operation is one statement, so one round trip once
//! the connection has prepared it.

use std::time::Duration;

use session_core::{BoxFuture, Error, Record, SessionId, Timestamp, Update, WriteOutcome};
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Connection, PgConnection, Row};

use crate::codec::{self, Columns, column_error, millis};
use crate::pool::Pool;
use crate::retry;
use crate::schema::{Dialect, Sql};
use crate::store::{is_unique_violation, limited, store_error, wall_clock, written};

pub(crate) type PgPool = Pool<PgConnection>;

pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 10;

/// A pool whose connections also ask the server to cancel a statement
/// that runs past the store's timeout (it holds row locks meanwhile).
pub(crate) fn pool(options: PgConnectOptions, max: usize, timeout: Duration) -> PgPool {
    let ms = timeout.as_millis().max(1).to_string();
    let options = options.options([("statement_timeout", ms.as_str())]);
    Pool::new(options, max, false)
}

fn columns(row: &PgRow) -> Result<Columns, Error> {
    Ok(Columns {
        created_at: row.try_get(0).map_err(column_error)?,
        last_activity: row.try_get(1).map_err(column_error)?,
        expires_at: row.try_get(2).map_err(column_error)?,
        user: row.try_get(3).map_err(column_error)?,
        idle_ms: row.try_get(4).map_err(column_error)?,
        lifetime_ms: row.try_get(5).map_err(column_error)?,
        persistent: row.try_get(6).map_err(column_error)?,
        authenticated_at: row.try_get(7).map_err(column_error)?,
        data: row.try_get(8).map_err(column_error)?,
    })
}

pub(crate) async fn load(
    pool: &PgPool,
    sql: &Sql,
    id: &SessionId,
    now: Timestamp,
) -> Result<Option<Record>, Error> {
    let row = on_conn!(pool, |conn| sqlx::query(&sql.load)
        .bind(&id.as_bytes()[..])
        .bind(millis(now))
        .fetch_optional(conn))
    .map_err(store_error)?;
    row.map(|row| codec::decode(columns(&row)?)).transpose()
}

pub(crate) async fn create(
    pool: &PgPool,
    sql: &Sql,
    id: &SessionId,
    record: &Record,
) -> Result<WriteOutcome, Error> {
    let (idle, lifetime, persistent) = codec::expiry_columns(&record.meta.expiry);
    retry::create(
        record,
        |fresh| async move {
            let done = on_conn!(pool, fresh = fresh, |conn| sqlx::query(&sql.create)
                .bind(&id.as_bytes()[..])
                .bind(millis(record.meta.created_at))
                .bind(millis(record.meta.last_activity))
                .bind(millis(record.expires_at))
                .bind(record.meta.user.as_deref())
                .bind(idle)
                .bind(lifetime)
                .bind(persistent)
                .bind(record.meta.authenticated_at.map(millis))
                .bind(codec::data_json(&record.data))
                .execute(conn))?;
            Ok(if done.rows_affected() > 0 {
                WriteOutcome::Written
            } else {
                WriteOutcome::IdTaken
            })
        },
        || load(pool, sql, id, record.meta.last_activity),
    )
    .await
}

/// The update statement with its first fourteen parameters bound.
fn bind_update<'q>(
    statement: &'q str,
    id: &'q SessionId,
    update: &'q Update,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let expiry = update.expiry.as_ref().map(codec::expiry_columns);
    let (idle, lifetime, persistent) = expiry.unwrap_or_default();
    let login = codec::authenticated_columns(update);
    sqlx::query(statement)
        .bind(&id.as_bytes()[..])
        .bind(update.cleared)
        .bind(&update.removed[..])
        .bind(codec::set_json(update))
        .bind(millis(update.last_activity))
        .bind(millis(update.expires_at))
        .bind(update.user.is_some())
        .bind(update.user.as_ref().and_then(|u| u.as_deref()))
        .bind(expiry.is_some())
        .bind(idle)
        .bind(lifetime)
        .bind(persistent)
        .bind(login.0)
        .bind(login.1)
}

pub(crate) async fn update(
    pool: &PgPool,
    sql: &Sql,
    id: &SessionId,
    update: &Update,
) -> Result<WriteOutcome, Error> {
    let limit = codec::limit(update);
    let read = || load(pool, sql, id, update.last_activity);
    limited(
        update,
        || {
            retry::update(
                update,
                async {
                    on_conn!(pool, once, |conn| bind_update(&sql.update, id, update)
                        .bind(limit)
                        .execute(conn))
                    .map(|done| written(done.rows_affected()))
                },
                || async {
                    on_conn!(pool, fresh = true, |conn| bind_update(
                        &sql.update_guarded,
                        id,
                        update
                    )
                    .bind(limit)
                    .execute(conn))
                    .map(|done| written(done.rows_affected()))
                },
                read,
            )
        },
        read,
    )
    .await
}

pub(crate) async fn renew(
    pool: &PgPool,
    sql: &Sql,
    old_id: &SessionId,
    new_id: &SessionId,
    update: &Update,
) -> Result<WriteOutcome, Error> {
    let limit = codec::limit(update);
    limited(
        update,
        || {
            retry::renew(
                |fresh| async move {
                    let result = on_conn!(pool, fresh = fresh, |conn| bind_update(
                        &sql.renew, old_id, update
                    )
                    .bind(&new_id.as_bytes()[..])
                    .bind(limit)
                    .execute(conn));
                    match result {
                        Ok(done) => Ok(written(done.rows_affected())),
                        Err(err) if is_unique_violation(&err) => Ok(WriteOutcome::IdTaken),
                        Err(err) => Err(err),
                    }
                },
                || load(pool, sql, new_id, update.last_activity),
            )
        },
        || load(pool, sql, old_id, update.last_activity),
    )
    .await
}

pub(crate) async fn delete(pool: &PgPool, sql: &Sql, id: &SessionId) -> Result<bool, Error> {
    let done = on_conn!(pool, |conn| sqlx::query(&sql.delete)
        .bind(&id.as_bytes()[..])
        .execute(conn))
    .map_err(store_error)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn user_sessions(
    pool: &PgPool,
    sql: &Sql,
    user: &str,
    now: Timestamp,
) -> Result<Vec<SessionId>, Error> {
    let rows = on_conn!(pool, |conn| sqlx::query(&sql.user_sessions)
        .bind(user)
        .bind(millis(now))
        .fetch_all(conn))
    .map_err(store_error)?;
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let bytes: Vec<u8> = row.try_get(0).map_err(column_error)?;
        ids.extend(codec::id_from_bytes(&bytes));
    }
    Ok(ids)
}

pub(crate) async fn delete_user(pool: &PgPool, sql: &Sql, user: &str) -> Result<usize, Error> {
    let ended: i64 = on_conn!(pool, |conn| sqlx::query_scalar(&sql.delete_user)
        .bind(user)
        .bind(millis(wall_clock()))
        .fetch_one(conn))
    .map_err(store_error)?;
    Ok(usize::try_from(ended).unwrap_or(0))
}

pub(crate) async fn count(pool: &PgPool, sql: &Sql, now: Timestamp) -> Result<usize, Error> {
    let count: i64 = on_conn!(pool, |conn| sqlx::query_scalar(&sql.count)
        .bind(millis(now))
        .fetch_one(conn))
    .map_err(store_error)?;
    Ok(usize::try_from(count).unwrap_or(0))
}

pub(crate) async fn list(
    pool: &PgPool,
    sql: &Sql,
    now: Timestamp,
    after: Option<&SessionId>,
    limit: usize,
) -> Result<Vec<(SessionId, Record)>, Error> {
    let after: &[u8] = after.map_or(&[], |id| &id.as_bytes()[..]);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = on_conn!(pool, |conn| sqlx::query(&sql.list)
        .bind(after)
        .bind(millis(now))
        .bind(limit)
        .fetch_all(conn))
    .map_err(store_error)?;
    codec::page(rows, columns)
}

pub(crate) async fn delete_all(pool: &PgPool, sql: &Sql) -> Result<usize, Error> {
    let done =
        on_conn!(pool, |conn| sqlx::query(&sql.delete_all).execute(conn)).map_err(store_error)?;
    Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
}

pub(crate) async fn sweep(
    pool: &PgPool,
    sql: &Sql,
    now: Timestamp,
    batch: u32,
) -> Result<u64, Error> {
    let done = on_conn!(pool, |conn| sqlx::query(&sql.sweep)
        .bind(millis(now))
        .bind(i64::from(batch))
        .execute(conn))
    .map_err(store_error)?;
    Ok(done.rows_affected())
}

pub(crate) async fn ping(pool: &PgPool) -> Result<(), Error> {
    on_conn!(pool, |conn| conn.ping()).map_err(store_error)
}

/// A lock id per table prefix, so that concurrent migrations of the same
/// tables take turns.
fn lock_key(prefix: &str) -> i64 {
    // FNV-1a: stable across processes and versions, unlike `Hasher`s.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"session-sql:".iter().chain(prefix.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

pub(crate) fn migrate<'a>(
    pool: &'a PgPool,
    sql: &'a Sql,
    prefix: &'a str,
) -> BoxFuture<'a, Result<(), Error>> {
    // Boxed: the compiler cannot see that this future of many awaits on a
    // generic executor is `Send` for every lifetime.
    Box::pin(async move {
        let mut lease = pool.acquire(false).await.map_err(store_error)?;
        let mut tx = lease.begin().await.map_err(store_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_key(prefix))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        crate::schema::migrate_locked::<sqlx::Postgres>(&mut *tx, sql, Dialect::Postgres, prefix)
            .await?;
        tx.commit().await.map_err(store_error)?;
        lease.release::<()>(&Ok(()));
        Ok(())
    })
}
