//! The environment the example binaries read, and the engine it gives.

use std::net::SocketAddr;
use std::time::Duration;

use session_core::{
    ClearSiteData, CookiePrefix, DynStore, Error, LimitPolicy, MemoryStore, SessionConfig,
    SessionId, SessionManager, SigningKeys, Transport, UserLimit,
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
    /// `SESSION_COOKIE_NAME`: the cookie's full name; a `__Host-`,
    /// `__Host-Http-` or `__Secure-` prefix brings its rules. `None`: the
    /// default, `__Host-id` (plain `id` with `SESSION_SECURE=false`).
    pub cookie_name: Option<String>,
    /// `SESSION_PARTITIONED`, default `false`: the cookie is `Partitioned`
    /// (CHIPS); needs `SESSION_SECURE=true`.
    pub partitioned: bool,
    /// `SESSION_CLEAR_SITE_DATA`: comma-separated `cache`, `cookies`,
    /// `storage`, sent as `Clear-Site-Data` on answers that end the
    /// session. Default none.
    pub clear_site_data: Vec<ClearSiteData>,
    /// `REDIS_SENTINELS`, `REDIS_SENTINEL_MASTER` and `SESSION_REDIS_WAIT`.
    pub redis_failover: RedisFailover,
    /// `SESSION_MAX_PER_USER` (a whole number greater than 0; unset:
    /// unlimited) and `SESSION_MAX_PER_USER_POLICY` (`end-oldest`, the
    /// default, or `refuse`: the new login gets 409).
    pub max_per_user: Option<UserLimit>,
    /// `SESSION_ADMIN_TOKEN` (at least 16 bytes; unset: the `/admin/`
    /// routes are 404): the bearer token of the operator's routes.
    pub admin_token: Option<String>,
}

/// The default cookie name, and the one used when `SESSION_SECURE=false`
/// and `SESSION_COOKIE_NAME` is unset.
const DEFAULT_COOKIE_NAME: &str = "__Host-id";
const PLAIN_COOKIE_NAME: &str = "id";

/// The prefix a full cookie name starts with, and the rest.
fn split_prefix(full: &str) -> (CookiePrefix, &str) {
    for prefix in [
        CookiePrefix::HostHttp,
        CookiePrefix::Host,
        CookiePrefix::Secure,
    ] {
        if let Some(rest) = full.strip_prefix(prefix.as_str()) {
            return (prefix, rest);
        }
    }
    (CookiePrefix::None, full)
}

/// `SESSION_COOKIE_NAME` and `SESSION_PARTITIONED` against
/// `SESSION_SECURE`: browsers drop in silence a prefixed or partitioned
/// cookie without `Secure`, so the app refuses to start instead.
fn check_cookie(name: Option<&str>, secure: bool, partitioned: bool) -> Result<(), String> {
    const ACCEPTS: &str = "a cookie name (letters, digits and !#$%&'*+-.^_`|~), \
         optionally starting with __Host- or __Host-Http-";
    if let Some(name) = name {
        let (_, rest) = split_prefix(name);
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if rest.is_empty() || !name.bytes().all(token) {
            return Err(format!(
                "SESSION_COOKIE_NAME={name:?} is not valid: use {ACCEPTS}"
            ));
        }
        let lower = name.to_ascii_lowercase();
        let needs_secure = ["__host-", "__secure-", "__http-"]
            .iter()
            .any(|p| lower.starts_with(p));
        if needs_secure && !secure {
            return Err(format!(
                "SESSION_COOKIE_NAME={name:?} needs SESSION_SECURE=true: browsers drop a \
                 cookie with this prefix unless it is Secure; set SESSION_SECURE=true or \
                 use a name without the prefix"
            ));
        }
    }
    if partitioned && !secure {
        return Err(
            "SESSION_PARTITIONED=true needs SESSION_SECURE=true: browsers drop a \
             Partitioned cookie unless it is Secure; set SESSION_SECURE=true or \
             SESSION_PARTITIONED=false"
                .to_owned(),
        );
    }
    Ok(())
}

/// `SESSION_CLEAR_SITE_DATA`: a comma-separated list of directives.
fn clear_site_data(value: Option<&str>) -> Result<Vec<ClearSiteData>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(|d| match d.trim() {
            "cache" => Ok(ClearSiteData::Cache),
            "cookies" => Ok(ClearSiteData::Cookies),
            "storage" => Ok(ClearSiteData::Storage),
            _ => Err(format!(
                "SESSION_CLEAR_SITE_DATA={value:?} is not valid: use a comma-separated \
                 list of cache, cookies and storage"
            )),
        })
        .collect()
}

/// How the Redis store survives a master's failure: the master found
/// through Sentinel, and writes acknowledged only once replicas have them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisFailover {
    /// `REDIS_SENTINELS` (`host:port,host:port,...`) and
    /// `REDIS_SENTINEL_MASTER` (the master's name), set together: the
    /// Sentinels' `redis://` addresses and the name. Unset: `REDIS_URL`.
    pub sentinel: Option<(Vec<String>, String)>,
    /// `SESSION_REDIS_WAIT`, default 0 (off): how many replicas must have
    /// a write before it is acknowledged (each write waits at most
    /// [`REDIS_WAIT_TIMEOUT`](Self::REDIS_WAIT_TIMEOUT) for them).
    pub wait_replicas: usize,
}

impl RedisFailover {
    /// How long a write waits for `SESSION_REDIS_WAIT` replicas before its
    /// request is answered with the store-error status.
    pub const REDIS_WAIT_TIMEOUT: Duration = Duration::from_secs(1);

    /// Reads the three variables; an invalid one is an error naming it.
    fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let sentinel = match (var("REDIS_SENTINELS"), var("REDIS_SENTINEL_MASTER")) {
            (None, None) => None,
            (Some(list), Some(name)) => {
                let addresses = list
                    .split(',')
                    .map(|entry| {
                        let entry = entry.trim();
                        match entry.rsplit_once(':') {
                            Some((host, port))
                                if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) =>
                            {
                                Ok(format!("redis://{entry}"))
                            }
                            _ => Err(format!(
                                "REDIS_SENTINELS={list:?} is not valid: use host:port,host:port,... \
                                 (the Sentinels' addresses)"
                            )),
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some((addresses, name))
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err("REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together: \
                     set both (the Sentinels' host:port list and the master's name) or neither"
                    .into());
            }
        };
        let wait_replicas = match var("SESSION_REDIS_WAIT") {
            None => 0,
            Some(v) => v.parse().map_err(|_| {
                format!(
                    "SESSION_REDIS_WAIT={v:?} is not valid: use a whole number of replicas \
                     (0 turns it off)"
                )
            })?,
        };
        Ok(Self {
            sentinel,
            wait_replicas,
        })
    }

    /// The Redis store: on the master Sentinel names, or at `url`; writes
    /// acknowledged once replicated if asked.
    fn store(&self, url: &str) -> Result<session_redis::RedisStore, Error> {
        let store = match &self.sentinel {
            Some((sentinels, name)) => {
                session_redis::RedisStore::sentinel(sentinels.iter().map(String::as_str), name)?
            }
            None => session_redis::RedisStore::new(url)?,
        };
        store.with_replicated_writes(self.wait_replicas, Self::REDIS_WAIT_TIMEOUT)
    }

    /// Where the store looks for Redis, for messages.
    fn describe(&self, url: &str) -> String {
        match &self.sentinel {
            Some((sentinels, name)) => {
                format!("master {name:?} of Sentinels {}", sentinels.join(","))
            }
            None => url.to_owned(),
        }
    }
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
        let secure = parsed("SESSION_SECURE", true, "true or false")?;
        let cookie_name = var("SESSION_COOKIE_NAME");
        let partitioned = parsed("SESSION_PARTITIONED", false, "true or false")?;
        check_cookie(cookie_name.as_deref(), secure, partitioned)?;
        let clear_site_data = clear_site_data(var("SESSION_CLEAR_SITE_DATA").as_deref())?;
        let admin_token = match var("SESSION_ADMIN_TOKEN") {
            Some(token) if token.len() < 16 || token.bytes().any(|b| !b.is_ascii_graphic()) => {
                return Err(
                    "SESSION_ADMIN_TOKEN is not valid: use at least 16 printable ASCII \
                     characters (no spaces), or leave it unset to turn the /admin/ routes off"
                        .to_owned(),
                );
            }
            token => token,
        };
        let settings = Self {
            admin_token,
            redis_failover: RedisFailover::from_env(var)?,
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
            secure,
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
            cookie_name,
            partitioned,
            clear_site_data,
        };
        // Anything the checks above missed is still refused before serving.
        settings.config().validate().map_err(|e| {
            format!(
                "{e} (from SESSION_COOKIE_NAME, SESSION_SECURE, SESSION_PARTITIONED \
                 or SESSION_TRANSPORT)"
            )
        })?;
        Ok(settings)
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
        // Browsers refuse __Host- cookies without Secure: plain-HTTP
        // development drops the default's prefix (a name given with one is
        // refused by `from_env` instead).
        let full = match (&self.cookie_name, self.secure) {
            (Some(name), _) => name.as_str(),
            (None, true) => DEFAULT_COOKIE_NAME,
            (None, false) => PLAIN_COOKIE_NAME,
        };
        let (prefix, name) = split_prefix(full);
        config.cookie.prefix = prefix;
        name.clone_into(&mut config.cookie.name);
        config.cookie.partitioned = self.partitioned;
        config.clear_site_data.clone_from(&self.clear_site_data);
        config.cookie.signing_keys = SigningKeys::new([self.secret.clone()]);
        config
    }

    /// The store these settings name.
    pub async fn store(&self) -> Result<DynStore, Error> {
        match self.store.as_str() {
            "redis" => {
                let mut store = self.redis_failover.store(&self.redis_url)?;
                store = match (self.redis_cache, store.is_cached()) {
                    (true, false) => store.with_cache(session_redis::CacheConfig::default())?,
                    (false, true) => store.without_cache(),
                    _ => store,
                };
                // Connections are made on first use; say now if Redis is not
                // there, but start anyway: requests answer 503 until it is.
                if let Err(e) = store.ping().await {
                    let cause = std::error::Error::source(&e)
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    eprintln!(
                        "warning: Redis at {} is not answering yet: {cause}",
                        self.redis_failover.describe(&self.redis_url)
                    );
                }
                crate::observability::watch_redis_cache(&store);
                Ok(DynStore::new(store).with_kind("redis"))
            }
            "sql" => {
                // The file (SQLite) and the tables are made at start, or, if
                // the database is not answering yet, by the first request
                // that reaches it: requests answer 503 until then.
                let store =
                    session_sql::SqlStore::new(&self.database_url)?.with_migrate_on_first_use();
                // Bounded by the store's timeout: a database that accepts
                // connections but does not answer (stalled) must not keep the
                // app from starting; the first request that reaches it
                // migrates then.
                let migrated = tokio::time::timeout(STARTUP_MIGRATE_WAIT, store.migrate())
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::store("the database did not answer within 2 s"))
                    });
                match migrated {
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
                Ok(DynStore::new(store).with_kind("sql"))
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

/// How long the app waits at start for the database's tables before it
/// serves anyway (answering 503 until the database answers).
const STARTUP_MIGRATE_WAIT: Duration = Duration::from_secs(2);

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

impl Settings {
    /// The operator's token, if `SESSION_ADMIN_TOKEN` is set.
    pub fn admin(&self) -> Option<crate::app::AdminToken> {
        self.admin_token.as_deref().map(crate::app::AdminToken::new)
    }
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
