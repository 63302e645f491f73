//! SQLite: WAL mode, one writer connection (SQLite lets one transaction
//! write at a time, so more writers would only wait on its lock), and a few
//! reader connections that read beside it. Each operation is one statement,
//! so one transaction; `delete_user` alone runs two.

use std::time::Duration;

use session_core::{BoxFuture, Error, Record, SessionId, Timestamp, Update, WriteOutcome};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteRow, SqliteSynchronous};
use sqlx::{Connection, Executor, Row, SqliteConnection};

use crate::codec::{self, Columns, column_error, millis};
use crate::pool::Pool;
use crate::schema::{Dialect, Sql};
use crate::store::{is_unique_violation, limited, store_error, wall_clock, written};

type SqlitePool = Pool<SqliteConnection>;

/// Reader connections beside the writer, unless set otherwise.
const DEFAULT_READERS: usize = 4;

/// The writer, and the readers (none for an in-memory database, which is
/// one connection's own).
#[derive(Debug)]
pub(crate) struct SqlitePools {
    write: SqlitePool,
    read: Option<SqlitePool>,
}

impl SqlitePools {
    pub(crate) fn new(
        options: SqliteConnectOptions,
        in_memory: bool,
        readers: Option<usize>,
        timeout: Duration,
    ) -> Self {
        let options = options.busy_timeout(timeout);
        if in_memory {
            return Self {
                write: Pool::new(options, 1, true),
                read: None,
            };
        }
        // WAL: readers never block the writer nor wait for it. NORMAL is
        // WAL's usual durability: a crash of the process loses nothing;
        // a power cut may lose the last commits, never corrupts.
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        Self {
            write: Pool::new(options.clone(), 1, false),
            read: Some(Pool::new(
                options,
                readers.unwrap_or(DEFAULT_READERS),
                false,
            )),
        }
    }

    pub(crate) fn rebuild(&self, readers: Option<usize>, timeout: Duration) -> Self {
        let in_memory = self.read.is_none();
        let readers = readers.or(self.read.as_ref().map(Pool::max_connections));
        Self::new(self.write.options().clone(), in_memory, readers, timeout)
    }

    fn read(&self) -> &SqlitePool {
        self.read.as_ref().unwrap_or(&self.write)
    }
}

fn columns(row: &SqliteRow) -> Result<Columns, Error> {
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
    pools: &SqlitePools,
    sql: &Sql,
    id: &SessionId,
    now: Timestamp,
) -> Result<Option<Record>, Error> {
    let row = on_conn!(pools.read(), |conn| sqlx::query(&sql.load)
        .bind(&id.as_bytes()[..])
        .bind(millis(now))
        .fetch_optional(conn))
    .map_err(store_error)?;
    row.map(|row| codec::decode(columns(&row)?)).transpose()
}

pub(crate) async fn create(
    pools: &SqlitePools,
    sql: &Sql,
    id: &SessionId,
    record: &Record,
) -> Result<WriteOutcome, Error> {
    let (idle, lifetime, persistent) = codec::expiry_columns(&record.meta.expiry);
    let done = on_conn!(pools.write, once, |conn| sqlx::query(&sql.create)
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
        .execute(conn))
    .map_err(store_error)?;
    Ok(if done.rows_affected() > 0 {
        WriteOutcome::Written
    } else {
        WriteOutcome::IdTaken
    })
}

fn bind_update<'q>(
    statement: &'q str,
    update: &'q Update,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
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
        .bind(update.user.as_ref().and_then(|u| u.as_deref()))
        .bind(changed)
        .bind(idle)
        .bind(changed)
        .bind(lifetime)
        .bind(changed)
        .bind(persistent)
        .bind(login.0)
        .bind(login.1)
}

pub(crate) async fn update(
    pools: &SqlitePools,
    sql: &Sql,
    id: &SessionId,
    update: &Update,
) -> Result<WriteOutcome, Error> {
    let limit = codec::limit(update);
    limited(
        update,
        || async {
            let done = on_conn!(pools.write, once, |conn| bind_update(&sql.update, update)
                .bind(&id.as_bytes()[..])
                .bind(millis(update.last_activity))
                .bind(limit)
                .execute(conn))
            .map_err(store_error)?;
            Ok(written(done.rows_affected()))
        },
        || load(pools, sql, id, update.last_activity),
    )
    .await
}

pub(crate) async fn renew(
    pools: &SqlitePools,
    sql: &Sql,
    old_id: &SessionId,
    new_id: &SessionId,
    update: &Update,
) -> Result<WriteOutcome, Error> {
    let limit = codec::limit(update);
    limited(
        update,
        || async {
            let result = on_conn!(pools.write, once, |conn| bind_update(&sql.renew, update)
                .bind(&new_id.as_bytes()[..])
                .bind(&old_id.as_bytes()[..])
                .bind(millis(update.last_activity))
                .bind(limit)
                .execute(conn));
            match result {
                Ok(done) => Ok(written(done.rows_affected())),
                Err(err) if is_unique_violation(&err) => Ok(WriteOutcome::IdTaken),
                Err(err) => Err(store_error(err)),
            }
        },
        || load(pools, sql, old_id, update.last_activity),
    )
    .await
}

pub(crate) async fn delete(pools: &SqlitePools, sql: &Sql, id: &SessionId) -> Result<bool, Error> {
    let done = on_conn!(pools.write, |conn| sqlx::query(&sql.delete)
        .bind(&id.as_bytes()[..])
        .execute(conn))
    .map_err(store_error)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn user_sessions(
    pools: &SqlitePools,
    sql: &Sql,
    user: &str,
    now: Timestamp,
) -> Result<Vec<SessionId>, Error> {
    let rows = on_conn!(pools.read(), |conn| sqlx::query(&sql.user_sessions)
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

/// Two statements in one transaction: the user's expired rows go first,
/// uncounted, then the rest are deleted and counted.
pub(crate) async fn delete_user(
    pools: &SqlitePools,
    sql: &Sql,
    user: &str,
) -> Result<usize, Error> {
    let done = on_conn!(pools.write, |conn| async {
        let mut tx = conn.begin().await?;
        sqlx::query(&sql.delete_user_expired)
            .bind(user)
            .bind(millis(wall_clock()))
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(&sql.delete_user)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done)
    })
    .map_err(store_error)?;
    Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
}

pub(crate) async fn count(pools: &SqlitePools, sql: &Sql, now: Timestamp) -> Result<usize, Error> {
    let count: i64 = on_conn!(pools.read(), |conn| sqlx::query_scalar(&sql.count)
        .bind(millis(now))
        .fetch_one(conn))
    .map_err(store_error)?;
    Ok(usize::try_from(count).unwrap_or(0))
}

pub(crate) async fn list(
    pools: &SqlitePools,
    sql: &Sql,
    now: Timestamp,
    after: Option<&SessionId>,
    limit: usize,
) -> Result<Vec<(SessionId, Record)>, Error> {
    let after: &[u8] = after.map_or(&[], |id| &id.as_bytes()[..]);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = on_conn!(pools.read(), |conn| sqlx::query(&sql.list)
        .bind(after)
        .bind(millis(now))
        .bind(limit)
        .fetch_all(conn))
    .map_err(store_error)?;
    codec::page(rows, columns)
}

pub(crate) async fn delete_all(pools: &SqlitePools, sql: &Sql) -> Result<usize, Error> {
    let done = on_conn!(pools.write, |conn| sqlx::query(&sql.delete_all)
        .execute(conn))
    .map_err(store_error)?;
    Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
}

pub(crate) async fn sweep(
    pools: &SqlitePools,
    sql: &Sql,
    now: Timestamp,
    batch: u32,
) -> Result<u64, Error> {
    let done = on_conn!(pools.write, |conn| sqlx::query(&sql.sweep)
        .bind(millis(now))
        .bind(i64::from(batch))
        .execute(conn))
    .map_err(store_error)?;
    Ok(done.rows_affected())
}

pub(crate) async fn ping(pools: &SqlitePools) -> Result<(), Error> {
    on_conn!(pools.write, |conn| conn.ping()).map_err(store_error)
}

pub(crate) fn migrate<'a>(
    pools: &'a SqlitePools,
    sql: &'a Sql,
    prefix: &'a str,
) -> BoxFuture<'a, Result<(), Error>> {
    // Boxed: the compiler cannot see that this future of many awaits on a
    // generic executor is `Send` for every lifetime.
    Box::pin(async move {
        let mut lease = pools.write.acquire(false).await.map_err(store_error)?;
        let conn = &mut *lease;
        // IMMEDIATE: take the write lock first, so that processes migrating
        // the same file take turns (waiting up to the busy timeout).
        (&mut *conn)
            .execute("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)?;
        crate::schema::migrate_locked::<sqlx::Sqlite>(&mut *conn, sql, Dialect::Sqlite, prefix)
            .await?;
        (&mut *conn).execute("COMMIT").await.map_err(store_error)?;
        lease.release::<()>(&Ok(()));
        Ok(())
    })
}
