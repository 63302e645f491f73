//! Starting an example app on a loopback port, in-process.

use std::net::SocketAddr;
use std::time::Duration;

use session_core::{DynStore, ManualClock, MemoryStore, SessionConfig, SessionManager, Timestamp};
use session_examples::Settings;

/// The adapters under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framework {
    /// session-axum.
    Axum,
    /// session-actix.
    Actix,
    /// session-hyper.
    Hyper,
}

impl Framework {
    /// All three.
    pub const ALL: [Framework; 3] = [Framework::Axum, Framework::Actix, Framework::Hyper];
}

/// A signing secret shared by the servers of one test.
pub const SECRET: &str = "conformance-suite secret, well over thirty-two bytes";

/// The instant test clocks start at.
pub const T0: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

/// An example app serving on a loopback port.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The engine's clock.
    pub clock: ManualClock,
    /// The engine.
    pub manager: SessionManager<DynStore>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The example's configuration as the binaries build it, with the test secret.
pub fn example_config() -> SessionConfig {
    Settings {
        addr: ([127, 0, 0, 1], 0).into(),
        store: "memory".into(),
        redis_url: String::new(),
        secret: SECRET.into(),
        idle_secs: 3600,
        ttl_secs: 604_800,
        secure: true,
    }
    .config()
}

impl TestServer {
    /// The example app on `framework`, a fresh memory store, the example's
    /// configuration and a manual clock at [`T0`].
    pub async fn start(framework: Framework) -> Self {
        Self::start_with(
            framework,
            example_config(),
            DynStore::new(MemoryStore::new()),
        )
        .await
    }

    /// As [`start`](Self::start), with a given configuration and store.
    pub async fn start_with(framework: Framework, config: SessionConfig, store: DynStore) -> Self {
        let clock = ManualClock::new(T0);
        let manager =
            SessionManager::with_clock(store, config, clock.clone()).expect("valid config");
        Self::start_manager(framework, manager, clock).await
    }

    /// The example app on `framework` with this engine.
    pub async fn start_manager(
        framework: Framework,
        manager: SessionManager<DynStore>,
        clock: ManualClock,
    ) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let addr = match framework {
            Framework::Axum | Framework::Hyper => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let app = manager.clone();
                tokio::spawn(async move {
                    let serve = async {
                        match framework {
                            Framework::Axum => {
                                session_examples::axum_app::serve(listener, app).await
                            }
                            _ => session_examples::hyper_app::serve(listener, app).await,
                        }
                    };
                    tokio::select! {
                        _ = serve => {}
                        _ = stopped => {}
                    }
                });
                addr
            }
            Framework::Actix => {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let app = manager.clone();
                std::thread::spawn(move || {
                    actix_web::rt::System::new().block_on(async move {
                        let server = session_examples::actix_app::server(listener, app, 1).unwrap();
                        let handle = server.handle();
                        actix_web::rt::spawn(async move {
                            let _ = stopped.await;
                            handle.stop(false).await;
                        });
                        let _ = server.await;
                    });
                });
                addr
            }
        };
        wait_until_listening(addr).await;
        Self {
            addr,
            clock,
            manager,
            stop: Some(stop),
        }
    }

    /// A browser that talks to this server.
    pub fn browser(&self) -> crate::Browser {
        crate::Browser::new(self.addr)
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }
}

async fn wait_until_listening(addr: SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("server on {addr} did not start");
}
