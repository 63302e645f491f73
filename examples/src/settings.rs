//! The environment the example binaries read, and the engine it gives.

use std::net::SocketAddr;
use std::time::Duration;

use session_core::{
    CookiePrefix, DynStore, Error, LimitPolicy, MemoryStore, SessionConfig, SessionId,
    SessionManager, SigningKeys, Transport, UserLimit,
};

/// The example app's settings, from the environment (listed in the repository README).
#[derive(Clone, Debug)]
pub struct Settings {
    /// `ADDR`, default `127.0.0.1:3000`.
    pub addr: SocketAddr,
    /// `SESSION_STORE`: `memory` (default), `redis` or `sql`.
    pub store: String,
    /// `REDIS_URL`, default `redis://127.0.0.1:6379`.
    pub redis_url: String,
    /// `DATABASE_URL`, default `sqlite://sessions.db`: `sqlite://PATH`,
    /// `postgres://...` or `mysql://...`.
    pub database_url: String,
    /// `SESSION_SECRET`, default random per process.
    pub secret: String,
    /// `SESSION_IDLE_SECS`, default 3600.
    pub idle_secs: u64,
    /// `SESSION_TTL_SECS`, default 604800.
    pub ttl_secs: u64,
    /// `SESSION_SECURE`, default `true`.
    pub secure: bool,
    /// `SESSION_MAX_BYTES`, default 262144 (256 KiB).
    pub max_bytes: usize,
    /// `SESSION_REDIS_CACHE`: `true` or `false`, default `true` (the
    /// library's default: the client-side cache is on, with a hard
    /// staleness bound and a delivery check per connection).
    pub redis_cache: bool,
    /// `SESSION_TRANSPORT`: `cookie` (default), `header:NAME` (the id in
    /// header NAME both ways) or `bearer:NAME` (`Authorization: Bearer` in,
    /// header NAME out), for clients that keep no cookies.
    pub transport: Transport,
    /// `SESSION_STORE_ERROR_STATUS`, default 503: the status of every
    /// answer caused by a store failure (a 5xx status).
    pub store_error_status: u16,
    /// `SESSION_MAX_PER_USER` (a whole number greater than 0; unset:
    /// unlimited) and `SESSION_MAX_PER_USER_POLICY` (`end-oldest`, the
    /// default, or `refuse`: the new login gets 409).
    pub max_per_user: Option<UserLimit>,
}

impl Settings {
    /// Reads the environment; a malformed variable is an error naming it.
    pub fn from_env() -> Result<Self, String> {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        }
        /// The variable parsed as `T`, or `default`; `accepts` says what
        /// it takes, for the error.
        fn parsed<T: std::str::FromStr>(
            name: &str,
            default: T,
            accepts: &str,
        ) -> Result<T, String> {
            match var(name) {
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("{name}={v:?} is not valid: use {accepts}")),
                None => Ok(default),
            }
        }
        fn positive<T: std::str::FromStr + PartialOrd + Default>(
            name: &str,
            default: T,
            unit: &str,
        ) -> Result<T, String> {
            let accepts = format!("a whole number of {unit} greater than 0");
            let value = parsed(name, default, &accepts)?;
            if value > T::default() {
                Ok(value)
            } else {
                Err(format!("{name}=0 is not valid: use {accepts}"))
            }
        }
        let store = var("SESSION_STORE").unwrap_or_else(|| "memory".into());
        if store != "memory" && store != "redis" && store != "sql" {
            return Err(format!(
                "SESSION_STORE={store:?} is not valid: use memory, redis or sql"
            ));
        }
        let database_url = var("DATABASE_URL").unwrap_or_else(|| "sqlite://sessions.db".into());
        if store == "sql" && session_sql::SqlStore::new(&database_url).is_err() {
            return Err(format!(
                "DATABASE_URL={database_url:?} is not valid: use sqlite://PATH, \
                 postgres://USER@HOST/DB or mysql://USER@HOST/DB"
            ));
        }
        let secret = var("SESSION_SECRET").unwrap_or_else(random_secret);
        if secret.len() < 32 {
            return Err(format!(
                "SESSION_SECRET is too short ({} bytes): use at least 32 bytes",
                secret.len()
            ));
        }
        let transport = match var("SESSION_TRANSPORT").as_deref() {
            None | Some("cookie") => Transport::Cookie,
            Some(other) => match other.split_once(':') {
                Some(("header", name)) => Transport::Header(name.to_owned()),
                Some(("bearer", name)) => Transport::Bearer(name.to_owned()),
                _ => {
                    return Err(format!(
                        "SESSION_TRANSPORT={other:?} is not valid: use cookie, header:NAME or bearer:NAME"
                    ));
                }
            },
        };
        let policy = match var("SESSION_MAX_PER_USER_POLICY").as_deref() {
            None | Some("end-oldest") => LimitPolicy::EndOldest,
            Some("refuse") => LimitPolicy::Refuse,
            Some(other) => {
                return Err(format!(
                    "SESSION_MAX_PER_USER_POLICY={other:?} is not valid: use end-oldest or refuse"
                ));
            }
        };
        let max_per_user = match var("SESSION_MAX_PER_USER") {
            None => None,
            Some(_) => Some(UserLimit {
                max: positive("SESSION_MAX_PER_USER", 1usize, "sessions")?,
                policy,
            }),
        };
        Ok(Self {
            max_per_user,
            transport,
            addr: parsed(
                "ADDR",
                SocketAddr::from(([127, 0, 0, 1], 3000)),
                "an address and port such as 127.0.0.1:3000 or [::1]:3000",
            )?,
            store,
            redis_url: var("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            database_url,
            secret,
            idle_secs: positive("SESSION_IDLE_SECS", 3600, "seconds")?,
            ttl_secs: positive("SESSION_TTL_SECS", 604_800, "seconds")?,
            secure: parsed("SESSION_SECURE", true, "true or false")?,
            max_bytes: positive(
                "SESSION_MAX_BYTES",
                session_core::DEFAULT_MAX_SESSION_BYTES,
                "bytes",
            )?,
            redis_cache: parsed("SESSION_REDIS_CACHE", true, "true or false")?,
            store_error_status: {
                let accepts = "a 5xx status such as 500 or 503";
                let status = parsed("SESSION_STORE_ERROR_STATUS", 503u16, accepts)?;
                if !(500..=599).contains(&status) {
                    return Err(format!(
                        "SESSION_STORE_ERROR_STATUS={status:?} is not valid: use {accepts}"
                    ));
                }
                status
            },
        })
    }

    /// The session configuration these settings give.
    pub fn config(&self) -> SessionConfig {
        let mut config = SessionConfig {
            transport: self.transport.clone(),
            idle_timeout: Duration::from_secs(self.idle_secs),
            lifetime: Duration::from_secs(self.ttl_secs),
            max_session_bytes: self.max_bytes,
            store_error_status: self.store_error_status,
            max_sessions_per_user: self.max_per_user,
            ..SessionConfig::default()
        };
        config.cookie.secure = self.secure;
        if !self.secure {
            // Browsers refuse __Host- cookies without Secure: plain-HTTP
            // development drops the prefix.
            config.cookie.prefix = CookiePrefix::None;
        }
        config.cookie.signing_keys = SigningKeys::new([self.secret.clone()]);
        config
    }

    /// The store these settings name.
    pub async fn store(&self) -> Result<DynStore, Error> {
        match self.store.as_str() {
            "redis" => {
                let mut store = session_redis::RedisStore::new(self.redis_url.as_str())?;
                if !self.redis_cache {
                    store = store.without_cache();
                }
                // Connections are made on first use; say now if Redis is not
                // there, but start anyway: requests answer 503 until it is.
                if let Err(e) = store.ping().await {
                    let cause = std::error::Error::source(&e)
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    eprintln!(
                        "warning: Redis at {} is not answering yet: {cause}",
                        self.redis_url
                    );
                }
                Ok(DynStore::new(store))
            }
            "sql" => {
                // The file (SQLite) and the tables are made at start, or, if
                // the database is not answering yet, by the first request
                // that reaches it: requests answer 503 until then.
                let store =
                    session_sql::SqlStore::new(&self.database_url)?.with_migrate_on_first_use();
                match store.migrate().await {
                    Ok(()) => {}
                    Err(e @ Error::Store(_)) => {
                        let cause = std::error::Error::source(&e)
                            .map(ToString::to_string)
                            .unwrap_or_default();
                        eprintln!(
                            "warning: the database is not answering yet ({cause}); \
                             its tables will be made when it does"
                        );
                    }
                    Err(e) => return Err(e),
                }
                spawn_sql_sweeper(store.clone());
                Ok(DynStore::new(store))
            }
            _ => {
                let store = MemoryStore::new();
                spawn_sweeper(store.clone());
                Ok(DynStore::new(store))
            }
        }
    }

    /// The engine: the named store with this configuration.
    pub async fn manager(&self) -> Result<SessionManager<DynStore>, Error> {
        SessionManager::new(self.store().await?, self.config())
    }
}

/// Drops expired sessions from a memory store once a minute.
fn spawn_sweeper(store: MemoryStore) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            store.sweep(std::time::SystemTime::now().into());
        }
    });
}

/// Deletes expired sessions from a SQL store once a minute, in batches.
fn spawn_sql_sweeper(store: session_sql::SqlStore) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            let now = std::time::SystemTime::now().into();
            while let Ok(1000) = store.sweep(now, 1000).await {}
        }
    });
}

/// 256 random bits, as text.
fn random_secret() -> String {
    format!("{}{}", SessionId::generate(), SessionId::generate())
}

/// Loads the settings and engine for a binary, or exits with the reason.
pub async fn manager_from_env() -> (Settings, SessionManager<DynStore>) {
    let settings = Settings::from_env().unwrap_or_else(|e| crate::serve::exit_with(&e));
    let manager = settings.manager().await.unwrap_or_else(|e| {
        let source = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        crate::serve::exit_with(&format!("{e}{source}"))
    });
    (settings, manager)
}

/// Binds the settings' address for a binary, or exits saying why in words
/// a person can act on ("the address is already in use").
pub fn bind(settings: &Settings) -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind(settings.addr)
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .unwrap_or_else(|e| crate::serve::exit_with(&crate::serve::bind_error(settings.addr, &e)));
    let addr = listener.local_addr().map_or(settings.addr, |a| a);
    println!(
        "listening on http://{addr} (store: {}, secure cookie: {})",
        settings.store, settings.secure
    );
    listener
}
