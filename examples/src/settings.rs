//! The environment the example binaries read, and the engine it gives.

use std::net::SocketAddr;
use std::time::Duration;

use session_core::{
    CookiePrefix, DynStore, Error, MemoryStore, SessionConfig, SessionId, SessionManager,
    SigningKeys,
};

/// The example app's settings, from the environment (see `shared/DESIGN.md`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// `ADDR`, default `127.0.0.1:3000`.
    pub addr: SocketAddr,
    /// `SESSION_STORE`: `memory` (default) or `redis`.
    pub store: String,
    /// `REDIS_URL`, default `redis://127.0.0.1:6379`.
    pub redis_url: String,
    /// `SESSION_SECRET`, default random per process.
    pub secret: String,
    /// `SESSION_IDLE_SECS`, default 3600.
    pub idle_secs: u64,
    /// `SESSION_TTL_SECS`, default 604800.
    pub ttl_secs: u64,
    /// `SESSION_SECURE`, default `true`.
    pub secure: bool,
    /// `SESSION_REDIS_CACHE`: `true` or `false`, default `false` (the
    /// library's default: the client-side cache is opt-in).
    pub redis_cache: bool,
}

impl Settings {
    /// Reads the environment; a malformed variable is an error naming it.
    pub fn from_env() -> Result<Self, String> {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        }
        fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
            match var(name) {
                Some(v) => v.parse().map_err(|_| format!("{name}={v:?} is not valid")),
                None => Ok(default),
            }
        }
        let store = var("SESSION_STORE").unwrap_or_else(|| "memory".into());
        if store != "memory" && store != "redis" {
            return Err(format!(
                "SESSION_STORE={store:?}: use \"memory\" or \"redis\""
            ));
        }
        Ok(Self {
            addr: parsed("ADDR", SocketAddr::from(([127, 0, 0, 1], 3000)))?,
            store,
            redis_url: var("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            secret: var("SESSION_SECRET").unwrap_or_else(random_secret),
            idle_secs: parsed("SESSION_IDLE_SECS", 3600)?,
            ttl_secs: parsed("SESSION_TTL_SECS", 604_800)?,
            secure: parsed("SESSION_SECURE", true)?,
            redis_cache: match var("SESSION_REDIS_CACHE").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(v) => {
                    return Err(format!(
                        "SESSION_REDIS_CACHE={v:?}: use \"true\" or \"false\""
                    ));
                }
            },
        })
    }

    /// The session configuration these settings give.
    pub fn config(&self) -> SessionConfig {
        let mut config = SessionConfig {
            idle_timeout: Duration::from_secs(self.idle_secs),
            lifetime: Duration::from_secs(self.ttl_secs),
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
                if self.redis_cache {
                    store = store.with_cache(session_redis::CacheConfig::default())?;
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

/// 256 random bits, as text.
fn random_secret() -> String {
    format!("{}{}", SessionId::generate(), SessionId::generate())
}

/// Loads the settings and engine for a binary, or exits with the reason.
pub async fn manager_from_env() -> (Settings, SessionManager<DynStore>) {
    let fail = |why: String| -> ! {
        eprintln!("error: {why}");
        std::process::exit(2)
    };
    let settings = Settings::from_env().unwrap_or_else(|e| fail(e));
    let manager = settings.manager().await.unwrap_or_else(|e| {
        let source = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        fail(format!("{e}{source}"))
    });
    (settings, manager)
}
