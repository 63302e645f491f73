//! `GET /metrics` and `GET /readyz`, written once for every framework.
//!
//! Metrics: the engine and the adapters count through the `metrics` facade
//! (see `session_core::metrics` for the table); the app installs a
//! Prometheus recorder (its renderer only: no HTTP listener, no push
//! gateway) and answers `/metrics` with its text. The Redis client-side
//! cache keeps its own counts ([`RedisStore::cache_stats`]); they are
//! copied into the recorder when `/metrics` is read, so the cache's hot
//! path counts nothing twice.
//!
//! Readiness: `/readyz` asks the store for a session that does not exist,
//! within [`READY_TIMEOUT`]; `/healthz` (liveness) never touches the store.
//! Neither route reads or writes the visitor's session, so neither sets a
//! cookie.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use session_core::{DynStore, SessionId, SessionManager, SessionStore};
use session_redis::RedisStore;

use crate::app::Reply;

/// How long `/readyz` waits for the store.
pub const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// The `Content-Type` of `/metrics`: the Prometheus text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Histogram buckets of `session_store_seconds`: 50 µs to 5 s.
const STORE_SECONDS_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// Histogram buckets of `session_size_bytes`: 64 B to 1 MiB.
const SIZE_BYTES_BUCKETS: &[f64] = &[
    64.0,
    256.0,
    1024.0,
    4096.0,
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
];

/// How often the recorder folds recent histogram samples into its totals.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// What `/metrics` and `/readyz` need: the Prometheus handle and the
/// engine's store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Observability {
    handle: PrometheusHandle,
    manager: SessionManager<DynStore>,
}

impl Observability {
    /// For the app on `manager`; installs the process's Prometheus
    /// recorder on first use.
    pub fn new(manager: &SessionManager<DynStore>) -> Self {
        let handle = recorder().clone();
        zero_series(manager.store().kind());
        Self {
            handle,
            manager: manager.clone(),
        }
    }

    /// `GET /metrics`: every series, in the Prometheus text format (see
    /// [`METRICS_CONTENT_TYPE`]).
    pub fn metrics(&self) -> String {
        export_cache_stats();
        self.handle.render()
    }

    /// `GET /readyz`: 200 when the store answers within [`READY_TIMEOUT`],
    /// else 503 with a JSON error. The probe loads an id no one holds: a
    /// read, never a write.
    pub async fn readyz(&self) -> Reply {
        let store = self.manager.store();
        let nobody = SessionId::generate();
        let probe = store.load(&nobody, self.manager.now());
        let why = match tokio::time::timeout(READY_TIMEOUT, probe).await {
            Ok(Ok(_)) => {
                return Reply {
                    status: 200,
                    body: r#"{"status":"ready"}"#.into(),
                };
            }
            Ok(Err(_)) => "session store unavailable",
            Err(_) => "session store did not answer in time",
        };
        Reply {
            status: 503,
            body: serde_json::json!({ "error": why }).to_string(),
        }
    }
}

/// Registers the counters (at 0) and the store-latency histogram, so that
/// `/metrics` lists them before the first event: a scraper sees 0, not a
/// missing series, and a rate is defined from the start.
fn zero_series(store: &'static str) {
    metrics::counter!("session_created_total").increment(0);
    metrics::counter!("session_renewed_total").increment(0);
    for reason in ["logout", "expired", "user", "operator", "limit"] {
        metrics::counter!("session_ended_total", "reason" => reason).increment(0);
    }
    for status in ["400", "401", "403", "404", "409", "413", "415"] {
        metrics::counter!("session_refused_total", "status" => status).increment(0);
    }
    for op in ["load", "create", "update", "renew", "delete"] {
        metrics::counter!("session_store_errors_total", "op" => op, "store" => store).increment(0);
        // Registered with no sample yet: rendered with its buckets at 0.
        let _ = metrics::histogram!("session_store_seconds", "op" => op, "store" => store);
    }
}

/// The process's Prometheus recorder, installed as the global `metrics`
/// recorder on first use, with histograms for the store's latency and the
/// sessions' size, and a thread doing its upkeep. If another recorder is
/// installed already, this one renders only what is exported to it here.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("session_store_seconds".into()),
                STORE_SECONDS_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("session_size_bytes".into()),
                    SIZE_BYTES_BUCKETS,
                )
            })
            .expect("bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            eprintln!("warning: a metrics recorder is installed already; /metrics shows no counts");
        }
        session_core::metrics::describe();
        metrics::describe_counter!(
            "session_cache_hits_total",
            "Redis client-side cache: loads answered from memory."
        );
        metrics::describe_counter!(
            "session_cache_misses_total",
            "Redis client-side cache: loads that went to Redis."
        );
        metrics::describe_counter!(
            "session_cache_invalidations_total",
            "Redis client-side cache: entries dropped because Redis said they changed."
        );
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread for the metrics upkeep");
        handle
    })
}

/// The Redis store whose client-side cache `/metrics` reports.
static REDIS_CACHE: Mutex<Option<RedisStore>> = Mutex::new(None);

/// Has `/metrics` report `store`'s client-side cache (a no-op for a store
/// without one).
pub fn watch_redis_cache(store: &RedisStore) {
    if store.cache_stats().is_some() {
        *REDIS_CACHE.lock().unwrap_or_else(|e| e.into_inner()) = Some(store.clone());
    }
}

/// Copies the cache's own counts into the recorder.
fn export_cache_stats() {
    let stats = REDIS_CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(RedisStore::cache_stats);
    if let Some(stats) = stats {
        metrics::counter!("session_cache_hits_total").absolute(stats.hits);
        metrics::counter!("session_cache_misses_total").absolute(stats.misses);
        metrics::counter!("session_cache_invalidations_total").absolute(stats.invalidations);
    }
}
