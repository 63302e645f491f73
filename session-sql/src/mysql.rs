//! MySQL and MariaDB: every operation is one prepared statement, so one
//! round trip once the connection has prepared it; `delete_user` alone
//! takes two, and an update or renew that sets keys under a size limit four
//! (a transaction that locks the row, checks the limit, then writes).
//!
//! A write's affected-row count is the number of rows its `WHERE` matched,
//! not the number it changed: sqlx connects with `CLIENT_FOUND_ROWS`, so an
//! update that happens to change nothing still reads as written.

use std::time::Duration;

use session_core::{BoxFuture, Error, Record, SessionId, Timestamp, Update, WriteOutcome};
use sqlx::mysql::{MySqlConnectOptions, MySqlRow};
use sqlx::{Connection, MySqlConnection, Row};

use crate::codec::{self, Columns, column_error, millis};
use crate::pool::Pool;
use crate::retry;
use crate::schema::{Dialect, Sql};
use crate::store::{is_unique_violation, refusal, store_error, wall_clock, written};

pub(crate) type MySqlPool = Pool<MySqlConnection>;

pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 10;

/// A pool whose connections give up waiting for a row lock after about
/// the store's timeout (InnoDB's default is 50 seconds): a write whose
/// call timed out must not land long after.
pub(crate) fn pool(options: MySqlConnectOptions, max: usize, timeout: Duration) -> MySqlPool {
    let secs = timeout.as_secs_f64().ceil().max(1.0);
    Pool::new(options, max, false)
        .with_init(format!("SET SESSION innodb_lock_wait_timeout = {secs}"))
}

fn columns(row: &MySqlRow) -> Result<Columns, Error> {
    let user: Option<Vec<u8>> = row.try_get(3).map_err(column_error)?;
    let user = user
        .map(String::from_utf8)
        .transpose()
        .map_err(|_| Error::corrupt("column user_name is not UTF-8"))?;
    Ok(Columns {
        created_at: row.try_get(0).map_err(column_error)?,
        last_activity: row.try_get(1).map_err(column_error)?,
        expires_at: row.try_get(2).map_err(column_error)?,
        user,
        idle_ms: row.try_get(4).map_err(column_error)?,
        lifetime_ms: row.try_get(5).map_err(column_error)?,
        persistent: row.try_get(6).map_err(column_error)?,
        authenticated_at: row.try_get(7).map_err(column_error)?,
        // A binary collation: the driver sees bytes.
        data: String::from_utf8(row.try_get::<Vec<u8>, _>(8).map_err(column_error)?)
            .map_err(|_| Error::corrupt("column data is not UTF-8"))?,
    })
}

pub(crate) async fn load(
    pool: &MySqlPool,
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
    pool: &MySqlPool,
    sql: &Sql,
    id: &SessionId,
    record: &Record,
) -> Result<WriteOutcome, Error> {
    let (idle, lifetime, persistent) = codec::expiry_columns(&record.meta.expiry);
    retry::create(
        record,
        |fresh| async move {
            let result = on_conn!(pool, fresh = fresh, |conn| sqlx::query(&sql.create)
                .bind(&id.as_bytes()[..])
                .bind(millis(record.meta.created_at))
                .bind(millis(record.meta.last_activity))
                .bind(millis(record.expires_at))
                .bind(record.meta.user.as_deref().map(str::as_bytes))
                .bind(idle)
                .bind(lifetime)
                .bind(persistent)
                .bind(record.meta.authenticated_at.map(millis))
                .bind(codec::data_json(&record.data))
                .execute(conn));
            match result {
                Ok(_) => Ok(WriteOutcome::Written),
                Err(err) if is_unique_violation(&err) => Ok(WriteOutcome::IdTaken),
                Err(err) => Err(err),
            }
        },
        || load(pool, sql, id, record.meta.last_activity),
    )
    .await
}

/// The update statement with every parameter but the trailing id and
/// liveness instant bound (and, for renew, the new id).
fn bind_update<'q>(
    statement: &'q str,
    update: &'q Update,
) -> sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments> {
    let expiry = update.expiry.as_ref().map(codec::expiry_columns);
    let (idle, lifetime, persistent) = expiry.unwrap_or_default();
    let changed = expiry.is_some();
    let login = codec::authenticated_columns(update);
    sqlx::query(statement)
        .bind(update.cleared)
        .bind(codec::merge_patch(update))
        .bind(millis(update.last_activity))
        .bind(millis(update.expires_at))
        .bind(update.user.is_some())
        .bind(
            update
                .user
                .as_ref()
                .and_then(|u| u.as_deref())
                .map(str::as_bytes),
        )
        .bind(changed)
        .bind(idle)
        .bind(changed)
        .bind(lifetime)
        .bind(changed)
        .bind(persistent)
        .bind(login.0)
        .bind(login.1)
}

/// A size-limited write (`write`, an update or renew of `id`'s row) in one
/// transaction: the row is read under its lock first (`SELECT ... FOR
/// UPDATE`), so concurrent writers of the session take turns and the limit
/// is checked on the values the write merges into. Missing, expired or too
/// large: the transaction ends and nothing is written. Four round trips
/// (begin, read, write, commit) instead of one, for updates that set keys
/// under a limit. With `guarded` (an update run again after its connection
/// died), a row whose `last_activity` is not before the update's is left
/// alone and reads as `Missing`, as `Sql::update_guarded` does.
async fn limited<'q>(
    conn: &mut MySqlConnection,
    sql: &Sql,
    id: &SessionId,
    update: &Update,
    guarded: bool,
    write: sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments>,
) -> Result<WriteOutcome, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let row = sqlx::query(&sql.lock)
        .bind(&id.as_bytes()[..])
        .bind(millis(update.last_activity))
        .fetch_optional(&mut *tx)
        .await?;
    let now = row
        .map(|row| codec::decode(columns(&row)?))
        .transpose()
        .map_err(|corrupt| sqlx::Error::Decode(Box::new(corrupt)));
    let refused = match now {
        Ok(Some(now)) if guarded && now.meta.last_activity >= update.last_activity => {
            Some(Ok(WriteOutcome::Missing))
        }
        Ok(now) => refusal(update, now.as_ref()).map(Ok),
        Err(corrupt) => Some(Err(corrupt)),
    };
    if let Some(refused) = refused {
        tx.rollback().await?;
        return refused;
    }
    match write.execute(&mut *tx).await {
        Ok(done) => {
            tx.commit().await?;
            Ok(written(done.rows_affected()))
        }
        Err(err) => {
            // The write's own error says more than the rollback's (which
            // fails too if the connection is gone).
            let _ = tx.rollback().await;
            Err(err)
        }
    }
}

pub(crate) async fn update(
    pool: &MySqlPool,
    sql: &Sql,
    id: &SessionId,
    update: &Update,
) -> Result<WriteOutcome, Error> {
    let write = |statement| {
        bind_update(statement, update)
            .bind(&id.as_bytes()[..])
            .bind(millis(update.last_activity))
    };
    let read = || load(pool, sql, id, update.last_activity);
    if codec::limit(update).is_none() {
        return retry::update(
            update,
            async {
                on_conn!(pool, once, |conn| write(&sql.update).execute(conn))
                    .map(|done| written(done.rows_affected()))
            },
            || async {
                on_conn!(pool, fresh = true, |conn| write(&sql.update_guarded)
                    .bind(millis(update.last_activity))
                    .execute(conn))
                .map(|done| written(done.rows_affected()))
            },
            read,
        )
        .await;
    }
    retry::update(
        update,
        async {
            on_conn!(pool, once, |conn| limited(
                conn,
                sql,
                id,
                update,
                false,
                write(&sql.update)
            ))
        },
        || async {
            on_conn!(pool, fresh = true, |conn| limited(
                conn,
                sql,
                id,
                update,
                true,
                write(&sql.update)
            ))
        },
        read,
    )
    .await
}

pub(crate) async fn renew(
    pool: &MySqlPool,
    sql: &Sql,
    old_id: &SessionId,
    new_id: &SessionId,
    update: &Update,
) -> Result<WriteOutcome, Error> {
    let write = || {
        bind_update(&sql.renew, update)
            .bind(&new_id.as_bytes()[..])
            .bind(&old_id.as_bytes()[..])
            .bind(millis(update.last_activity))
    };
    let is_limited = codec::limit(update).is_some();
    retry::renew(
        |fresh| async move {
            let result = if is_limited {
                on_conn!(pool, fresh = fresh, |conn| limited(
                    conn,
                    sql,
                    old_id,
                    update,
                    false,
                    write()
                ))
            } else {
                on_conn!(pool, fresh = fresh, |conn| write().execute(conn))
                    .map(|done| written(done.rows_affected()))
            };
            match result {
                Err(err) if is_unique_violation(&err) => Ok(WriteOutcome::IdTaken),
                result => result,
            }
        },
        || load(pool, sql, new_id, update.last_activity),
    )
    .await
}

pub(crate) async fn delete(pool: &MySqlPool, sql: &Sql, id: &SessionId) -> Result<bool, Error> {
    let done = on_conn!(pool, |conn| sqlx::query(&sql.delete)
        .bind(&id.as_bytes()[..])
        .execute(conn))
    .map_err(store_error)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn user_sessions(
    pool: &MySqlPool,
    sql: &Sql,
    user: &str,
    now: Timestamp,
) -> Result<Vec<SessionId>, Error> {
    let rows = on_conn!(pool, |conn| sqlx::query(&sql.user_sessions)
        .bind(user.as_bytes())
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

/// Two statements: the user's expired rows go first, uncounted, then the
/// rest are deleted and counted. (MySQL has no `DELETE ... RETURNING`.)
pub(crate) async fn delete_user(pool: &MySqlPool, sql: &Sql, user: &str) -> Result<usize, Error> {
    let done = on_conn!(pool, |conn| async {
        sqlx::query(&sql.delete_user_expired)
            .bind(user.as_bytes())
            .bind(millis(wall_clock()))
            .execute(&mut *conn)
            .await?;
        sqlx::query(&sql.delete_user)
            .bind(user.as_bytes())
            .execute(&mut *conn)
            .await
    })
    .map_err(store_error)?;
    Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
}

pub(crate) async fn count(pool: &MySqlPool, sql: &Sql, now: Timestamp) -> Result<usize, Error> {
    let count: i64 = on_conn!(pool, |conn| sqlx::query_scalar(&sql.count)
        .bind(millis(now))
        .fetch_one(conn))
    .map_err(store_error)?;
    Ok(usize::try_from(count).unwrap_or(0))
}

pub(crate) async fn list(
    pool: &MySqlPool,
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

pub(crate) async fn delete_all(pool: &MySqlPool, sql: &Sql) -> Result<usize, Error> {
    let done =
        on_conn!(pool, |conn| sqlx::query(&sql.delete_all).execute(conn)).map_err(store_error)?;
    Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
}

pub(crate) async fn sweep(
    pool: &MySqlPool,
    sql: &Sql,
    now: Timestamp,
    batch: u32,
) -> Result<u64, Error> {
    let done = on_conn!(pool, |conn| sqlx::query(&sql.sweep)
        .bind(millis(now))
        .bind(batch)
        .execute(conn))
    .map_err(store_error)?;
    Ok(done.rows_affected())
}

pub(crate) async fn ping(pool: &MySqlPool) -> Result<(), Error> {
    on_conn!(pool, |conn| conn.ping()).map_err(store_error)
}

pub(crate) fn migrate<'a>(
    pool: &'a MySqlPool,
    sql: &'a Sql,
    prefix: &'a str,
) -> BoxFuture<'a, Result<(), Error>> {
    // Boxed: the compiler cannot see that this future of many awaits on a
    // generic executor is `Send` for every lifetime.
    Box::pin(async move {
        // DDL commits on its own in MySQL, so a named lock (held by this
        // connection, released when it closes) makes processes take turns.
        let lock = format!("session-sql:{}", sql.sessions);
        let mut lease = pool.acquire(false).await.map_err(store_error)?;
        let conn = &mut *lease;
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 30)")
            .bind(&lock)
            .fetch_one(&mut *conn)
            .await
            .map_err(store_error)?;
        if got != Some(1) {
            return Err(Error::store("another process holds the migration lock"));
        }
        crate::schema::migrate_locked::<sqlx::MySql>(&mut *conn, sql, Dialect::MySql, prefix)
            .await?;
        sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(&lock)
            .execute(&mut *conn)
            .await
            .map_err(store_error)?;
        lease.release::<()>(&Ok(()));
        Ok(())
    })
}
