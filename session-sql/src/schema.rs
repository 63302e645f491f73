//! The schema, its migrations, and every statement the store runs, for
//! each backend, with the table prefix filled in once when the store is
//! built (the statements' text is also their key in each connection's
//! prepared-statement cache).

use session_core::Error;

/// The schema version this crate writes and reads.
pub(crate) const LATEST: i64 = 2;

/// The backends, as the SQL dialects they speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

/// Checks a table prefix: ASCII letters, digits and `_`, not starting with
/// a digit, at most 32 characters (index names add 20 to it, and
/// PostgreSQL cuts identifiers at 63).
pub(crate) fn check_prefix(prefix: &str) -> Result<(), Error> {
    let ok = prefix.len() <= 32
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !prefix.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "invalid session table prefix {prefix:?}: use at most 32 ASCII letters, digits and \
             underscores, not starting with a digit"
        )))
    }
}

/// The error for a database whose schema is newer than this crate.
pub(crate) fn too_new(version: i64) -> Error {
    Error::Config(format!(
        "the session tables are at schema version {version}, newer than this session-sql knows \
         ({LATEST}): upgrade session-sql"
    ))
}

/// Every statement of one backend, for one table prefix.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) sessions: String,
    pub(crate) migrations: String,
    pub(crate) load: String,
    pub(crate) create: String,
    pub(crate) update: String,
    pub(crate) renew: String,
    /// The update, run again after its connection died: only where the
    /// row's `last_activity` is still before the update's, so that it can
    /// never apply twice (see `crate::retry`). PostgreSQL and MySQL (which
    /// binds the instant once more at the end); empty on SQLite.
    pub(crate) update_guarded: String,
    /// MySQL: reads a live row and locks it until the transaction ends, so
    /// that a size-limited update checks the values it merges into (empty
    /// elsewhere: their update statement checks the limit itself).
    pub(crate) lock: String,
    pub(crate) delete: String,
    pub(crate) user_sessions: String,
    /// PostgreSQL: one statement that deletes and counts the live ones;
    /// elsewhere the second of two (after [`Sql::delete_user_expired`]).
    pub(crate) delete_user: String,
    pub(crate) delete_user_expired: String,
    pub(crate) sweep: String,
    /// The operator's count: the live rows, through the expiry index.
    pub(crate) count: String,
    /// The operator's page: live rows after an id (`''` for the first),
    /// in id order, through the primary key; the id comes last.
    pub(crate) list: String,
    /// Every row.
    pub(crate) delete_all: String,
    pub(crate) create_migrations: String,
    pub(crate) schema_version: String,
    pub(crate) record_version: String,
}

const COLUMNS: &str = "created_at, last_activity, expires_at, user_name, idle_ms, lifetime_ms, \
                       persistent, authenticated_at";

impl Sql {
    pub(crate) fn new(dialect: Dialect, prefix: &str) -> Self {
        let t = format!("{prefix}sessions");
        let m = format!("{prefix}session_migrations");
        match dialect {
            Dialect::Postgres => Self {
                load: format!(
                    "SELECT {COLUMNS}, data::text FROM {t} WHERE id = $1 AND expires_at > $2"
                ),
                create: format!(
                    "INSERT INTO {t} (id, {COLUMNS}, data) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb) \
                     ON CONFLICT (id) DO NOTHING"
                ),
                update: pg_update(&t, false),
                renew: pg_update(&t, true),
                update_guarded: format!("{} AND last_activity < $5", pg_update(&t, false)),
                lock: String::new(),
                delete: format!("DELETE FROM {t} WHERE id = $1"),
                user_sessions: format!(
                    "SELECT id FROM {t} WHERE user_name = $1 AND expires_at > $2"
                ),
                delete_user: format!(
                    "WITH gone AS (DELETE FROM {t} WHERE user_name = $1 RETURNING expires_at) \
                     SELECT count(*) FROM gone WHERE expires_at > $2"
                ),
                delete_user_expired: String::new(),
                sweep: format!(
                    "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expires_at <= $1 \
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"
                ),
                count: format!("SELECT count(*) FROM {t} WHERE expires_at > $1"),
                list: format!(
                    "SELECT {COLUMNS}, data::text, id FROM {t} \
                     WHERE id > $1 AND expires_at > $2 ORDER BY id LIMIT $3"
                ),
                delete_all: format!("DELETE FROM {t}"),
                create_migrations: format!(
                    "CREATE TABLE IF NOT EXISTS {m} \
                     (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"
                ),
                schema_version: format!("SELECT coalesce(max(version), 0) FROM {m}"),
                record_version: format!("INSERT INTO {m} (version, applied_at) VALUES ($1, $2)"),
                sessions: t,
                migrations: m,
            },
            Dialect::MySql | Dialect::Sqlite => {
                let mysql = dialect == Dialect::MySql;
                let update = |renew: bool| {
                    if mysql {
                        mysql_update(&t, renew)
                    } else {
                        sqlite_update(&t, renew)
                    }
                };
                Self {
                    load: format!(
                        "SELECT {COLUMNS}, data FROM {t} WHERE id = ? AND expires_at > ?"
                    ),
                    // MySQL: a duplicate key is an error (which the store
                    // reads as IdTaken); `INSERT IGNORE` would also hide
                    // other errors.
                    create: if mysql {
                        format!(
                            "INSERT INTO {t} (id, {COLUMNS}, data) \
                             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        )
                    } else {
                        format!(
                            "INSERT INTO {t} (id, {COLUMNS}, data) \
                             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
                        )
                    },
                    update: update(false),
                    renew: update(true),
                    update_guarded: if mysql {
                        format!("{} AND last_activity < ?", update(false))
                    } else {
                        String::new()
                    },
                    lock: if mysql {
                        format!(
                            "SELECT {COLUMNS}, data FROM {t} \
                             WHERE id = ? AND expires_at > ? FOR UPDATE"
                        )
                    } else {
                        String::new()
                    },
                    delete: format!("DELETE FROM {t} WHERE id = ?"),
                    user_sessions: format!(
                        "SELECT id FROM {t} WHERE user_name = ? AND expires_at > ?"
                    ),
                    delete_user_expired: format!(
                        "DELETE FROM {t} WHERE user_name = ? AND expires_at <= ?"
                    ),
                    delete_user: format!("DELETE FROM {t} WHERE user_name = ?"),
                    sweep: if mysql {
                        format!("DELETE FROM {t} WHERE expires_at <= ? LIMIT ?")
                    } else {
                        format!(
                            "DELETE FROM {t} WHERE id IN \
                             (SELECT id FROM {t} WHERE expires_at <= ? LIMIT ?)"
                        )
                    },
                    count: format!("SELECT count(*) FROM {t} WHERE expires_at > ?"),
                    list: format!(
                        "SELECT {COLUMNS}, data, id FROM {t} \
                         WHERE id > ? AND expires_at > ? ORDER BY id LIMIT ?"
                    ),
                    delete_all: format!("DELETE FROM {t}"),
                    create_migrations: format!(
                        "CREATE TABLE IF NOT EXISTS {m} \
                         (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)"
                    ),
                    schema_version: format!("SELECT coalesce(max(version), 0) FROM {m}"),
                    record_version: format!("INSERT INTO {m} (version, applied_at) VALUES (?, ?)"),
                    sessions: t,
                    migrations: m,
                }
            }
        }
    }

    /// The statements of migration `version` (1-based).
    pub(crate) fn migration(&self, dialect: Dialect, prefix: &str, version: i64) -> Vec<String> {
        let t = &self.sessions;
        match (version, dialect) {
            (1, Dialect::Postgres) => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\
                     id BYTEA PRIMARY KEY, \
                     created_at BIGINT NOT NULL, \
                     last_activity BIGINT NOT NULL, \
                     expires_at BIGINT NOT NULL, \
                     user_name TEXT, \
                     idle_ms BIGINT, \
                     lifetime_ms BIGINT, \
                     persistent BOOLEAN, \
                     data JSONB NOT NULL CHECK (jsonb_typeof(data) = 'object'))"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS {prefix}sessions_user_idx ON {t} (user_name) \
                     WHERE user_name IS NOT NULL"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS {prefix}sessions_expires_idx ON {t} (expires_at)"
                ),
            ],
            (1, Dialect::MySql) => vec![format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 id BINARY(16) NOT NULL PRIMARY KEY, \
                 created_at BIGINT NOT NULL, \
                 last_activity BIGINT NOT NULL, \
                 expires_at BIGINT NOT NULL, \
                 user_name VARBINARY(1024) NULL, \
                 idle_ms BIGINT NULL, \
                 lifetime_ms BIGINT NULL, \
                 persistent BOOLEAN NULL, \
                 data LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                 INDEX {prefix}sessions_user_idx (user_name), \
                 INDEX {prefix}sessions_expires_idx (expires_at)\
                 ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            )],
            (1, Dialect::Sqlite) => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\
                     id BLOB NOT NULL PRIMARY KEY, \
                     created_at INTEGER NOT NULL, \
                     last_activity INTEGER NOT NULL, \
                     expires_at INTEGER NOT NULL, \
                     user_name TEXT, \
                     idle_ms INTEGER, \
                     lifetime_ms INTEGER, \
                     persistent INTEGER, \
                     data TEXT NOT NULL)"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS {prefix}sessions_user_idx ON {t} (user_name) \
                     WHERE user_name IS NOT NULL"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS {prefix}sessions_expires_idx ON {t} (expires_at)"
                ),
            ],
            // The login time (`authenticated_at`), added to tables that
            // version 1 made; NULL for their sessions, as for any session
            // without a user.
            (2, Dialect::Postgres) => vec![format!(
                "ALTER TABLE {t} ADD COLUMN IF NOT EXISTS authenticated_at BIGINT"
            )],
            (2, Dialect::MySql) => vec![format!(
                "ALTER TABLE {t} ADD COLUMN authenticated_at BIGINT NULL"
            )],
            (2, Dialect::Sqlite) => vec![format!(
                "ALTER TABLE {t} ADD COLUMN authenticated_at INTEGER"
            )],
            _ => Vec::new(),
        }
    }
}

/// PostgreSQL's update (and renew, which also moves the row to `$15`):
/// one statement that checks the session is live and merges the changes
/// into the row as it is now, under the row's lock.
///
/// The size limit (`$15` for update, `$16` for renew; `NULL` when the
/// update cannot grow the values) is part of the `WHERE`: the merged values
/// may not hold more bytes (keys plus JSON text, as
/// [`Data::bytes`](session_core::Data::bytes) counts) than the limit, or
/// than the row holds now (only growth is refused). PostgreSQL evaluates a
/// `WHERE` again on the row's newest version after waiting for a concurrent
/// writer's lock, so the check always sees the values it merges into.
fn pg_update(t: &str, renew: bool) -> String {
    let limit = if renew { "$16" } else { "$15" };
    let merged = "(CASE WHEN $2 THEN '{}'::jsonb ELSE data - $3::text[] END) || $4::jsonb";
    let size = |json: &str| {
        format!(
            "(SELECT coalesce(sum(octet_length(key) + octet_length(value)), 0) \
             FROM jsonb_each_text({json}))"
        )
    };
    format!(
        "UPDATE {t} SET \
         data = {merged}, \
         last_activity = GREATEST(last_activity, $5), \
         expires_at = $6, \
         user_name = CASE WHEN $7 THEN $8 ELSE user_name END, \
         idle_ms = CASE WHEN $9 THEN $10 ELSE idle_ms END, \
         lifetime_ms = CASE WHEN $9 THEN $11 ELSE lifetime_ms END, \
         persistent = CASE WHEN $9 THEN $12 ELSE persistent END, \
         authenticated_at = CASE WHEN $13 THEN $14 ELSE authenticated_at END{} \
         WHERE id = $1 AND expires_at > $5 \
         AND CASE WHEN {limit}::bigint IS NULL THEN TRUE \
         ELSE {} <= GREATEST({limit}::bigint, {}) END",
        if renew { ", id = $15" } else { "" },
        size(merged),
        size("data"),
    )
}

/// MySQL's update (and renew, which also sets `id`). The size limit is
/// checked by the store in a transaction that locks the row first
/// ([`Sql::lock`]): MySQL has no way to walk a JSON object's members in
/// SQL on every version this crate supports.
fn mysql_update(t: &str, renew: bool) -> String {
    format!(
        "UPDATE {t} SET \
         data = JSON_MERGE_PATCH(CASE WHEN ? THEN '{{}}' ELSE data END, ?), \
         last_activity = GREATEST(last_activity, ?), \
         expires_at = ?, \
         user_name = CASE WHEN ? THEN ? ELSE user_name END, \
         idle_ms = CASE WHEN ? THEN ? ELSE idle_ms END, \
         lifetime_ms = CASE WHEN ? THEN ? ELSE lifetime_ms END, \
         persistent = CASE WHEN ? THEN ? ELSE persistent END, \
         authenticated_at = CASE WHEN ? THEN ? ELSE authenticated_at END{} \
         WHERE id = ? AND expires_at > ?",
        if renew { ", id = ?" } else { "" }
    )
}

/// SQLite's update (and renew, which also sets `id`), with numbered
/// parameters in the order MySQL's takes them, then the size limit (`NULL`
/// when the update cannot grow the values), checked in the `WHERE` as on
/// PostgreSQL. One statement is one write transaction, so the check sees
/// the values it merges into.
fn sqlite_update(t: &str, renew: bool) -> String {
    let (new_id, id, live, limit) = if renew {
        (", id = ?15", "?16", "?17", "?18")
    } else {
        ("", "?15", "?16", "?17")
    };
    let merged = "json_patch(CASE WHEN ?1 THEN '{}' ELSE data END, ?2)";
    let size = |json: &str| {
        format!(
            "(SELECT coalesce(sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0) \
             FROM json_each({json}))"
        )
    };
    format!(
        "UPDATE {t} SET \
         data = {merged}, \
         last_activity = max(last_activity, ?3), \
         expires_at = ?4, \
         user_name = CASE WHEN ?5 THEN ?6 ELSE user_name END, \
         idle_ms = CASE WHEN ?7 THEN ?8 ELSE idle_ms END, \
         lifetime_ms = CASE WHEN ?9 THEN ?10 ELSE lifetime_ms END, \
         persistent = CASE WHEN ?11 THEN ?12 ELSE persistent END, \
         authenticated_at = CASE WHEN ?13 THEN ?14 ELSE authenticated_at END{new_id} \
         WHERE id = {id} AND expires_at > {live} \
         AND CASE WHEN {limit} IS NULL THEN 1 \
         ELSE {} <= max({limit}, {}) END",
        size(merged),
        size("data"),
    )
}

/// Brings the schema from the version it records up to [`LATEST`], each
/// version's statements followed by its row in the migrations table. The
/// caller holds the migration lock (its transaction, or a named lock) on
/// `conn`, so processes starting together take turns.
pub(crate) async fn migrate_locked<DB>(
    conn: &mut DB::Connection,
    sql: &Sql,
    dialect: Dialect,
    prefix: &str,
) -> Result<(), Error>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    use sqlx::Executor as _;

    use crate::codec::millis;
    use crate::store::{store_error, wall_clock};

    (&mut *conn)
        .execute(sql.create_migrations.as_str())
        .await
        .map_err(store_error)?;
    let version: i64 = sqlx::query_scalar(&sql.schema_version)
        .fetch_one(&mut *conn)
        .await
        .map_err(store_error)?;
    if version > LATEST {
        return Err(too_new(version));
    }
    for next in version + 1..=LATEST {
        for statement in sql.migration(dialect, prefix, next) {
            (&mut *conn)
                .execute(statement.as_str())
                .await
                .map_err(store_error)?;
        }
        sqlx::query(&sql.record_version)
            .bind(next)
            .bind(millis(wall_clock()))
            .execute(&mut *conn)
            .await
            .map_err(store_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_plain_identifiers() {
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("app_1_").is_ok());
        for bad in ["1app", "a-b", "a.b", "a b", "x\"", &"a".repeat(33)] {
            assert!(matches!(check_prefix(bad), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn every_dialect_has_a_first_migration() {
        for d in [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite] {
            let sql = Sql::new(d, "p_");
            assert!(!sql.migration(d, "p_", 1).is_empty());
            assert!(sql.migration(d, "p_", LATEST + 1).is_empty());
            assert!(sql.update.contains("p_sessions"));
        }
    }
}
