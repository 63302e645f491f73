//! Test databases and a TCP proxy, for this crate's tests, the conformance
//! suite and the benchmarks (feature `testing`).
//!
//! [`TestDatabase`] makes a database of its own for one test (a fresh
//! PostgreSQL or MySQL database with a unique name, or a fresh SQLite
//! file) and drops it when dropped, so runs never collide. The servers come
//! from `SESSION_TEST_POSTGRES_URL` and `SESSION_TEST_MYSQL_URL`, else the
//! machine's own (`postgres://postgres@127.0.0.1:5432/postgres`,
//! `mysql://root@127.0.0.1:3306/mysql`) when they answer; when neither is
//! there the constructor says so through [`session_core::testing::skip`]
//! and returns `None`.
//!
//! [`Proxy`] forwards TCP to a server and can hang or cut every
//! connection, for outage tests, and counts round trips.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use session_core::SessionId;
use sqlx::Connection;

use crate::SqlStore;

mod proxy;

pub use proxy::{Proxy, ProxyMode};

/// The variable naming the PostgreSQL server tests use.
pub const POSTGRES_URL_VAR: &str = "SESSION_TEST_POSTGRES_URL";
/// The variable naming the MySQL or MariaDB server tests use.
pub const MYSQL_URL_VAR: &str = "SESSION_TEST_MYSQL_URL";

const LOCAL_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const LOCAL_MYSQL: &str = "mysql://root@127.0.0.1:3306/mysql";

/// Which server a [`TestDatabase`] lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
    /// A SQLite file.
    Sqlite,
}

/// A database of one test's own, dropped (or its file deleted) on drop.
#[derive(Debug)]
pub struct TestDatabase {
    kind: Kind,
    url: String,
    /// The server's admin URL and the database's name (servers only).
    admin: Option<(String, String)>,
    /// The SQLite file.
    file: Option<PathBuf>,
}

/// A name no other test run uses: `tag` plus random hex.
pub fn unique_name(tag: &str) -> String {
    let id = SessionId::generate();
    let hex: String = id.as_bytes()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    format!("st_{tag}_{hex}")
}

/// The URL of the same server with another database.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// The server URL for `kind` if one answers, or why not.
fn server_url(kind: Kind) -> Result<String, String> {
    let (var, local) = match kind {
        Kind::Postgres => (POSTGRES_URL_VAR, LOCAL_POSTGRES),
        Kind::MySql => (MYSQL_URL_VAR, LOCAL_MYSQL),
        Kind::Sqlite => return Ok(String::new()),
    };
    if let Ok(url) = std::env::var(var) {
        return Ok(url);
    }
    let addr: SocketAddr = match kind {
        Kind::Postgres => "127.0.0.1:5432",
        _ => "127.0.0.1:3306",
    }
    .parse()
    .map_err(|_| "bad address".to_owned())?;
    match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
        Ok(_) => Ok(local.to_owned()),
        Err(e) => Err(format!(
            "{var} is not set and nothing answers on {addr} ({e})"
        )),
    }
}

/// Whether tests can run on `kind` here: `Err` says why not (neither the
/// variable is set nor the local server answers).
pub fn server_available(kind: Kind) -> Result<(), String> {
    server_url(kind).map(drop)
}

async fn admin_execute(kind: Kind, admin_url: &str, statement: &str) -> Result<(), sqlx::Error> {
    match kind {
        Kind::Postgres => {
            let mut conn = sqlx::PgConnection::connect(admin_url).await?;
            sqlx::raw_sql(statement).execute(&mut conn).await?;
            conn.close().await
        }
        Kind::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(admin_url).await?;
            sqlx::raw_sql(statement).execute(&mut conn).await?;
            conn.close().await
        }
        Kind::Sqlite => Ok(()),
    }
}

impl TestDatabase {
    /// A fresh database on the PostgreSQL server, or `None` (after
    /// [`skip`](session_core::testing::skip)) if there is none.
    pub async fn postgres(tag: &str) -> Option<Self> {
        Self::on_server(Kind::Postgres, "PostgreSQL", tag).await
    }

    /// A fresh database on the MySQL or MariaDB server, or `None` (after
    /// [`skip`](session_core::testing::skip)) if there is none.
    pub async fn mysql(tag: &str) -> Option<Self> {
        Self::on_server(Kind::MySql, "MySQL/MariaDB", tag).await
    }

    /// A fresh SQLite file in the temporary directory.
    pub fn sqlite(tag: &str) -> Self {
        let file = std::env::temp_dir().join(format!("{}.db", unique_name(tag)));
        Self {
            kind: Kind::Sqlite,
            url: format!("sqlite://{}", file.display()),
            admin: None,
            file: Some(file),
        }
    }

    /// A fresh database of `kind` (see [`postgres`](Self::postgres) and
    /// [`mysql`](Self::mysql) for `None`).
    pub async fn new(kind: Kind, tag: &str) -> Option<Self> {
        match kind {
            Kind::Postgres => Self::postgres(tag).await,
            Kind::MySql => Self::mysql(tag).await,
            Kind::Sqlite => Some(Self::sqlite(tag)),
        }
    }

    async fn on_server(kind: Kind, what: &str, tag: &str) -> Option<Self> {
        let admin = match server_url(kind) {
            Ok(url) => url,
            Err(why) => {
                session_core::testing::skip(what, &why);
                return None;
            }
        };
        let name = unique_name(tag);
        let create = match kind {
            Kind::MySql => format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"),
            _ => format!("CREATE DATABASE \"{name}\""),
        };
        if let Err(e) = admin_execute(kind, &admin, &create).await {
            session_core::testing::skip(what, &format!("cannot create a test database: {e}"));
            return None;
        }
        Some(Self {
            kind,
            url: with_database(&admin, &name),
            admin: Some((admin, name)),
            file: None,
        })
    }

    /// The database's URL, for [`SqlStore::new`] or the example apps.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The database's name on its server (`None` for SQLite).
    pub fn name(&self) -> Option<&str> {
        self.admin.as_ref().map(|(_, name)| name.as_str())
    }

    /// The URL of this database reached through `proxy` instead.
    pub fn url_via(&self, proxy: &Proxy) -> String {
        let url = &self.url;
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let rest = &url[after_scheme..];
        let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let host = &rest[..host_end];
        let userinfo = host.rfind('@').map_or("", |at| &host[..=at]);
        format!(
            "{}{userinfo}{}{}",
            &url[..after_scheme],
            proxy.addr(),
            &rest[host_end..]
        )
    }

    /// The address of the database server (`None` for SQLite).
    pub fn server_addr(&self) -> Option<SocketAddr> {
        use std::net::ToSocketAddrs;
        self.admin.as_ref()?;
        let url = &self.url;
        let rest = &url[url.find("://")? + 3..];
        let host = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        let host = host.rsplit('@').next()?;
        let default_port = if self.kind == Kind::Postgres {
            5432
        } else {
            3306
        };
        let host = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:{default_port}")
        };
        host.to_socket_addrs().ok()?.next()
    }

    /// A store on this database, migrated.
    pub async fn store(&self) -> SqlStore {
        let store = SqlStore::new(&self.url).expect("test database URL");
        store.migrate().await.expect("migrate the test database");
        store
    }

    /// Runs one SQL statement on this database (to plant rows, or end
    /// connections).
    pub async fn execute(&self, statement: &str) -> Result<(), sqlx::Error> {
        match self.kind {
            Kind::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await?;
                sqlx::raw_sql(statement).execute(&mut conn).await?;
                conn.close().await
            }
            kind => admin_execute(kind, &self.url, statement).await,
        }
    }

    /// Runs one SQL statement on the server's admin database.
    pub async fn execute_as_admin(&self, statement: &str) -> Result<(), sqlx::Error> {
        match &self.admin {
            Some((admin, _)) => admin_execute(self.kind, admin, statement).await,
            None => self.execute(statement).await,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = file.clone().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
        }
        let Some((admin, name)) = self.admin.take() else {
            return;
        };
        let kind = self.kind;
        let statement = match kind {
            Kind::MySql => format!("DROP DATABASE IF EXISTS `{name}`"),
            _ => format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        };
        // Drop runs outside any runtime's reach: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime
                .block_on(admin_execute(kind, &admin, &statement))
                .ok()
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database {name}");
        }
    }
}
