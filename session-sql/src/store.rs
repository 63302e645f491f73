//! `SqlStore`: its constructors, settings, migrations and sweeping, and the
//! `SessionStore` operations, each bounded by the timeout and sent to its
//! backend.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use session_core::{
    Error, Record, SessionId, SessionStore, Timestamp, Update, UserLimit, WriteOutcome,
};

use crate::codec;
use crate::schema::{self, Dialect, Sql};

#[cfg(feature = "mysql")]
use crate::mysql;
#[cfg(feature = "postgres")]
use crate::postgres;
#[cfg(feature = "sqlite")]
use crate::sqlite;

/// The database a [`SqlStore`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
    /// SQLite.
    Sqlite,
}

/// The pools of one backend (held once per store, behind an `Arc`).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Pools {
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgPool),
    #[cfg(feature = "mysql")]
    MySql(mysql::MySqlPool),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::SqlitePools),
}

impl Pools {
    fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "mysql")]
            Self::MySql(_) => Dialect::MySql,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// The same databases with new settings (fresh pools).
    fn rebuild(&self, max: Option<usize>, timeout: Duration) -> Self {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => Self::Postgres(postgres::pool(
                pool.options().clone(),
                max.unwrap_or(pool.max_connections()),
                timeout,
            )),
            #[cfg(feature = "mysql")]
            Self::MySql(pool) => Self::MySql(mysql::pool(
                pool.options().clone(),
                max.unwrap_or(pool.max_connections()),
                timeout,
            )),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pools) => Self::Sqlite(pools.rebuild(max, timeout)),
        }
    }
}

/// A [`SessionStore`] on PostgreSQL, MySQL/MariaDB or SQLite.
///
/// Build it from a URL with [`new`](Self::new) (or from sqlx connection
/// options with [`postgres`](Self::postgres), [`mysql`](Self::mysql) and
/// [`sqlite`](Self::sqlite)), adjust it with
/// [`with_table_prefix`](Self::with_table_prefix),
/// [`with_timeout`](Self::with_timeout) and
/// [`with_max_connections`](Self::with_max_connections), then create or
/// upgrade its table once with [`migrate`](Self::migrate) (or let it do so
/// on first use: [`with_migrate_on_first_use`](Self::with_migrate_on_first_use)).
/// Building connects nothing: connections open on first use and reopen by
/// themselves after a failure, and a pooled connection found dead costs no
/// call (see the crate docs on outages).
///
/// Clones share the connections. See the [crate docs](crate) for the
/// schema, the statements and round trips, sweeping and outages.
#[derive(Clone)]
pub struct SqlStore {
    pools: Arc<Pools>,
    sql: Arc<Sql>,
    prefix: Arc<str>,
    timeout: Duration,
    schema: Arc<SchemaOnFirstUse>,
    /// Limited writes take turns on it (see `user_limit`).
    limit_turn: Arc<tokio::sync::Mutex<()>>,
}

/// Whether the store makes its tables itself, on its first call that
/// reaches the database, and whether it has (once per store and prefix,
/// shared by clones).
#[derive(Debug, Default)]
struct SchemaOnFirstUse {
    enabled: bool,
    done: tokio::sync::OnceCell<()>,
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Connection options may carry a password: show only the shape.
        f.debug_struct("SqlStore")
            .field("backend", &self.backend())
            .field("table", &self.sql.sessions)
            .field("timeout", &self.timeout)
            .field("pools", &self.pools)
            .finish()
    }
}

/// A call to the database took longer than the store's timeout (or found no
/// free connection in that time).
#[derive(Debug)]
struct TimedOut(Duration);

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the database did not answer within {:?} (or no connection was free)",
            self.0
        )
    }
}

impl std::error::Error for TimedOut {}

/// How long [`SqlStore::migrate`] may take: it may wait for another
/// process that migrates the same database.
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(30);

impl SqlStore {
    /// The time one call to the database may take unless
    /// [`with_timeout`](Self::with_timeout) sets another.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    /// The table prefix unless [`with_table_prefix`](Self::with_table_prefix)
    /// sets another (none: the table is `sessions`).
    pub const DEFAULT_PREFIX: &'static str = "";

    /// A store for a database URL:
    ///
    /// - `postgres://user:password@host:port/database` (or `postgresql://`),
    /// - `mysql://user:password@host:port/database` (MySQL and MariaDB;
    ///   `mariadb://` is taken as a synonym),
    /// - `sqlite://PATH` (the file is created if missing) or
    ///   `sqlite::memory:` (one connection, for tests).
    ///
    /// Query parameters are sqlx's (`sslmode`, `ssl-mode`, ...).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the URL cannot be parsed, or names a backend
    /// this crate was built without. Nothing is connected yet.
    pub fn new(url: &str) -> Result<Self, Error> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "postgres" | "postgresql" => Self::from_postgres_url(url),
            "mysql" | "mariadb" => Self::from_mysql_url(url),
            "sqlite" => Self::from_sqlite_url(url),
            _ => Err(Error::Config(
                "unsupported database URL: use postgres://, mysql:// or sqlite://".into(),
            )),
        }
    }

    #[cfg(feature = "postgres")]
    fn from_postgres_url(url: &str) -> Result<Self, Error> {
        let options = url.parse().map_err(|e| url_error("PostgreSQL", &e))?;
        Ok(Self::postgres(options))
    }
    #[cfg(not(feature = "postgres"))]
    fn from_postgres_url(_: &str) -> Result<Self, Error> {
        Err(missing_feature("postgres"))
    }

    #[cfg(feature = "mysql")]
    fn from_mysql_url(url: &str) -> Result<Self, Error> {
        let url = match url.strip_prefix("mariadb:") {
            Some(rest) => format!("mysql:{rest}"),
            None => url.to_owned(),
        };
        let options = url.parse().map_err(|e| url_error("MySQL", &e))?;
        Ok(Self::mysql(options))
    }
    #[cfg(not(feature = "mysql"))]
    fn from_mysql_url(_: &str) -> Result<Self, Error> {
        Err(missing_feature("mysql"))
    }

    #[cfg(feature = "sqlite")]
    fn from_sqlite_url(url: &str) -> Result<Self, Error> {
        let options: sqlx::sqlite::SqliteConnectOptions =
            url.parse().map_err(|e| url_error("SQLite", &e))?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        Ok(Self::from_pools(Pools::Sqlite(sqlite::SqlitePools::new(
            options.create_if_missing(true),
            in_memory,
            None,
            Self::DEFAULT_TIMEOUT,
        ))))
    }
    #[cfg(not(feature = "sqlite"))]
    fn from_sqlite_url(_: &str) -> Result<Self, Error> {
        Err(missing_feature("sqlite"))
    }

    /// A store on PostgreSQL with these connection options.
    #[cfg(feature = "postgres")]
    pub fn postgres(options: sqlx::postgres::PgConnectOptions) -> Self {
        Self::from_pools(Pools::Postgres(postgres::pool(
            options,
            postgres::DEFAULT_MAX_CONNECTIONS,
            Self::DEFAULT_TIMEOUT,
        )))
    }

    /// A store on MySQL or MariaDB with these connection options.
    #[cfg(feature = "mysql")]
    pub fn mysql(options: sqlx::mysql::MySqlConnectOptions) -> Self {
        Self::from_pools(Pools::MySql(mysql::pool(
            options,
            mysql::DEFAULT_MAX_CONNECTIONS,
            Self::DEFAULT_TIMEOUT,
        )))
    }

    /// A store on SQLite with these connection options. The store sets WAL
    /// mode, `synchronous = NORMAL` and the busy timeout (its own timeout)
    /// on top of them. For an in-memory database (which lives only as long
    /// as its one connection) use [`new`](Self::new) with `sqlite::memory:`.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(options: sqlx::sqlite::SqliteConnectOptions) -> Self {
        Self::from_pools(Pools::Sqlite(sqlite::SqlitePools::new(
            options,
            false,
            None,
            Self::DEFAULT_TIMEOUT,
        )))
    }

    fn from_pools(pools: Pools) -> Self {
        let dialect = pools.dialect();
        Self {
            pools: Arc::new(pools),
            sql: Arc::new(Sql::new(dialect, Self::DEFAULT_PREFIX)),
            prefix: Arc::from(Self::DEFAULT_PREFIX),
            timeout: Self::DEFAULT_TIMEOUT,
            schema: Arc::default(),
            limit_turn: Arc::default(),
        }
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }

    pub(crate) fn limit_turn(&self) -> &tokio::sync::Mutex<()> {
        &self.limit_turn
    }

    /// Puts the tables under a prefix: `{prefix}sessions` and
    /// `{prefix}session_migrations` (indexes likewise), so that several
    /// applications can share one database. On PostgreSQL a schema can be
    /// chosen instead with the URL's `options=-c search_path=...`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] unless the prefix is at most 32 ASCII letters,
    /// digits and underscores, not starting with a digit.
    pub fn with_table_prefix(mut self, prefix: &str) -> Result<Self, Error> {
        schema::check_prefix(prefix)?;
        self.sql = Arc::new(Sql::new(self.pools.dialect(), prefix));
        self.prefix = Arc::from(prefix);
        self.schema = Arc::new(SchemaOnFirstUse {
            enabled: self.schema.enabled,
            ..SchemaOnFirstUse::default()
        });
        Ok(self)
    }

    /// Makes the store create or upgrade its tables itself, as
    /// [`migrate`](Self::migrate) does, before its first call that reaches
    /// the database, instead of needing `migrate` at start: an application
    /// can then start while its database is down, answer with store errors
    /// meanwhile, and serve once the database is back, without a restart.
    ///
    /// The migration runs once per store (clones share it): calls wait for
    /// the one in progress, and a migration that fails (the database is
    /// still down) is tried again by the next call. It counts against the
    /// call's timeout. A successful [`migrate`](Self::migrate) counts as
    /// done. Set it after [`with_table_prefix`](Self::with_table_prefix)
    /// or before, either works.
    pub fn with_migrate_on_first_use(mut self) -> Self {
        self.schema = Arc::new(SchemaOnFirstUse {
            enabled: true,
            done: self.schema.done.clone(),
        });
        self
    }

    /// Bounds every call to the database (default 2 seconds), waiting for a
    /// free connection included: a call that takes longer fails with
    /// [`Error::Store`], so a hung or unreachable database never hangs a
    /// request. On PostgreSQL it is also the server's `statement_timeout`,
    /// on SQLite the busy timeout. Set it before the first call: the store
    /// gets fresh connections.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.pools = Arc::new(self.pools.rebuild(None, timeout));
        self
    }

    /// The most connections the store opens (default 10 on PostgreSQL and
    /// MySQL; on SQLite, the readers beside the one writer, default 4). Set
    /// it before the first call: the store gets fresh connections.
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.pools = Arc::new(self.pools.rebuild(Some(max.max(1)), self.timeout));
        self
    }

    /// The database this store runs on.
    pub fn backend(&self) -> Backend {
        match self.pools.dialect() {
            Dialect::Postgres => Backend::Postgres,
            Dialect::MySql => Backend::MySql,
            Dialect::Sqlite => Backend::Sqlite,
        }
    }

    /// The timeout of each call to the database.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The table prefix.
    pub fn table_prefix(&self) -> &str {
        &self.prefix
    }

    /// The name of the sessions table (`{prefix}sessions`).
    pub fn table(&self) -> &str {
        &self.sql.sessions
    }

    /// The name of the table that records the schema's version
    /// (`{prefix}session_migrations`).
    pub fn migrations_table(&self) -> &str {
        &self.sql.migrations
    }

    /// Creates the tables and indexes, or brings them up to this version
    /// of the crate. Idempotent, and safe to run from several processes at
    /// once (they take turns under a lock: an advisory lock on PostgreSQL,
    /// `GET_LOCK` on MySQL, a write transaction on SQLite). Each version's
    /// changes are recorded in the migrations table. May take up to 30
    /// seconds while another process holds the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the database fails or is unreachable;
    /// [`Error::Config`] if the database's schema is of a later version
    /// than this crate knows.
    pub async fn migrate(&self) -> Result<(), Error> {
        match tokio::time::timeout(MIGRATE_TIMEOUT.max(self.timeout), self.migrate_now()).await {
            Ok(Ok(())) => {
                // Done: calls need not migrate on first use.
                let _ = self.schema.done.set(());
                Ok(())
            }
            Ok(Err(err)) => Err(err),
            Err(_) => Err(Error::store(TimedOut(MIGRATE_TIMEOUT))),
        }
    }

    async fn migrate_now(&self) -> Result<(), Error> {
        match &*self.pools {
            #[cfg(feature = "postgres")]
            Pools::Postgres(pool) => postgres::migrate(pool, &self.sql, &self.prefix).await,
            #[cfg(feature = "mysql")]
            Pools::MySql(pool) => mysql::migrate(pool, &self.sql, &self.prefix).await,
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(pools) => sqlite::migrate(pools, &self.sql, &self.prefix).await,
        }
    }

    /// With [`with_migrate_on_first_use`](Self::with_migrate_on_first_use),
    /// migrates unless done; at once otherwise.
    async fn schema_ready(&self) -> Result<(), Error> {
        if !self.schema.enabled || self.schema.done.initialized() {
            return Ok(());
        }
        self.schema
            .done
            .get_or_try_init(|| self.migrate_now())
            .await
            .map(drop)
    }

    /// Deletes up to `batch` sessions that expired at or before `now`, and
    /// returns how many it deleted. One bounded statement: call it again
    /// while it returns `batch` to empty a backlog. Nothing else deletes
    /// expired rows (reads and writes only ignore them), so schedule it;
    /// see the crate docs for a loop on Tokio.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the database fails or does not answer in time.
    pub async fn sweep(&self, now: Timestamp, batch: u32) -> Result<u64, Error> {
        self.timed(async {
            self.schema_ready().await?;
            match &*self.pools {
                #[cfg(feature = "postgres")]
                Pools::Postgres(pool) => postgres::sweep(pool, &self.sql, now, batch).await,
                #[cfg(feature = "mysql")]
                Pools::MySql(pool) => mysql::sweep(pool, &self.sql, now, batch).await,
                #[cfg(feature = "sqlite")]
                Pools::Sqlite(pools) => sqlite::sweep(pools, &self.sql, now, batch).await,
            }
        })
        .await
    }

    /// Connects if need be and checks that the database answers. For
    /// start-up and health checks.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the database cannot be reached in time.
    pub async fn ping(&self) -> Result<(), Error> {
        self.timed(async {
            match &*self.pools {
                #[cfg(feature = "postgres")]
                Pools::Postgres(pool) => postgres::ping(pool).await,
                #[cfg(feature = "mysql")]
                Pools::MySql(pool) => mysql::ping(pool).await,
                #[cfg(feature = "sqlite")]
                Pools::Sqlite(pools) => sqlite::ping(pools).await,
            }
        })
        .await
    }

    /// Runs one call within the timeout.
    async fn timed<T>(&self, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Error::store(TimedOut(self.timeout))),
        }
    }
}

#[allow(dead_code)]
fn url_error(what: &str, err: &sqlx::Error) -> Error {
    Error::Config(format!("invalid {what} URL: {err}"))
}

#[allow(dead_code)]
fn missing_feature(feature: &str) -> Error {
    Error::Config(format!(
        "session-sql was built without its `{feature}` feature, so it cannot use this database URL"
    ))
}

/// A failure of sqlx as the store reports it: a column that would not
/// decode is a corrupt row, anything else the database's failure.
pub(crate) fn store_error(err: sqlx::Error) -> Error {
    match err {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => Error::corrupt(err),
        _ => Error::store(err),
    }
}

/// Whether an error is a unique-key violation (the new id is taken).
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether a write changed a row: written, or the session is missing.
pub(crate) fn written(rows: u64) -> WriteOutcome {
    if rows > 0 {
        WriteOutcome::Written
    } else {
        WriteOutcome::Missing
    }
}

/// How often a size-limited update whose statement matched no row reads
/// the row, finds that the update fits it after all (a concurrent write
/// shrank it in between), and runs again, before giving up with
/// [`Error::Store`].
pub(crate) const LIMIT_ATTEMPTS: usize = 8;

/// Why a size-limited update's statement matched no row, from the row as
/// read just after: `Missing` (gone or expired), `TooLarge` (the update
/// would grow its values past the limit), or `None` when the update fits
/// the row as it is now (a concurrent write shrank it): run it again.
pub(crate) fn refusal(update: &Update, now: Option<&Record>) -> Option<WriteOutcome> {
    match now {
        None => Some(WriteOutcome::Missing),
        Some(record) => update
            .admits(&record.data)
            .err()
            .map(|size| WriteOutcome::TooLarge { size }),
    }
}

/// Runs a size-limited update or renew (`write` gives its outcome; its
/// statement's `WHERE` checks liveness and the limit in one atomic step)
/// until it is written, or refused for a reason the row confirms: a
/// statement that matched no row is `Missing` or `TooLarge`, told apart by
/// reading the row just after (`read`). A read that finds the update fits
/// after all (a concurrent write shrank the row in between) runs the
/// statement again. Unlimited updates take one statement, as before.
pub(crate) async fn limited<W, R>(
    update: &Update,
    mut write: impl FnMut() -> W,
    mut read: impl FnMut() -> R,
) -> Result<WriteOutcome, Error>
where
    W: Future<Output = Result<WriteOutcome, Error>>,
    R: Future<Output = Result<Option<Record>, Error>>,
{
    for _ in 0..LIMIT_ATTEMPTS {
        let outcome = write().await?;
        if outcome != WriteOutcome::Missing || codec::limit(update).is_none() {
            return Ok(outcome);
        }
        if let Some(refused) = refusal(update, read().await?.as_ref()) {
            return Ok(refused);
        }
    }
    Err(Error::store(
        "a size-limited update was refused, then admitted, too many times in a row",
    ))
}

/// The process's clock, for counting the live sessions `delete_user` ends.
pub(crate) fn wall_clock() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

macro_rules! dispatch {
    ($self:ident, $op:ident ( $($arg:expr),* )) => {
        $self.timed(async {
            $self.schema_ready().await?;
            match &*$self.pools {
                #[cfg(feature = "postgres")]
                Pools::Postgres(pool) => postgres::$op(pool, &$self.sql, $($arg),*).await,
                #[cfg(feature = "mysql")]
                Pools::MySql(pool) => mysql::$op(pool, &$self.sql, $($arg),*).await,
                #[cfg(feature = "sqlite")]
                Pools::Sqlite(pools) => sqlite::$op(pools, &$self.sql, $($arg),*).await,
            }
        })
        .await
    };
}

impl SessionStore for SqlStore {
    async fn load(&self, id: &SessionId, now: Timestamp) -> Result<Option<Record>, Error> {
        dispatch!(self, load(id, now))
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<WriteOutcome, Error> {
        dispatch!(self, create(id, record))
    }

    async fn create_limited(
        &self,
        id: &SessionId,
        record: &Record,
        limit: UserLimit,
    ) -> Result<WriteOutcome, Error> {
        self.create_within(id, record, limit).await
    }

    async fn update(&self, id: &SessionId, update: Update) -> Result<WriteOutcome, Error> {
        let write = async { dispatch!(self, update(id, &update)) };
        match Self::update_limit(&update) {
            Some((user, limit)) => {
                let now = update.last_activity;
                self.within_limit(&user, limit, now, &[*id], write).await
            }
            None => write.await,
        }
    }

    async fn renew(
        &self,
        old_id: &SessionId,
        new_id: &SessionId,
        update: &Update,
    ) -> Result<WriteOutcome, Error> {
        let write = async { dispatch!(self, renew(old_id, new_id, update)) };
        match Self::update_limit(update) {
            Some((user, limit)) => {
                let (now, except) = (update.last_activity, [*old_id, *new_id]);
                self.within_limit(&user, limit, now, &except, write).await
            }
            None => write.await,
        }
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, Error> {
        dispatch!(self, delete(id))
    }

    async fn user_sessions(&self, user: &str, now: Timestamp) -> Result<Vec<SessionId>, Error> {
        dispatch!(self, user_sessions(user, now))
    }

    async fn delete_user(&self, user: &str) -> Result<usize, Error> {
        dispatch!(self, delete_user(user))
    }

    /// `SELECT count(*) ... WHERE expires_at > now`, through the expiry
    /// index.
    async fn count(&self, now: Timestamp) -> Result<usize, Error> {
        dispatch!(self, count(now))
    }

    /// `... WHERE id > cursor AND expires_at > now ORDER BY id LIMIT n`,
    /// through the primary key (ids in byte order).
    async fn list(
        &self,
        now: Timestamp,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<(SessionId, Record)>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        dispatch!(self, list(now, after, limit))
    }

    /// One `DELETE` of every row (expired rows not yet swept count too).
    async fn delete_all(&self) -> Result<usize, Error> {
        dispatch!(self, delete_all())
    }
}
