//! A TCP proxy that counts round trips and plays a hung or dead server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What a [`Proxy`] does with its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forwards both ways.
    Forward,
    /// Keeps every connection open but forwards nothing: a hung server.
    Hang,
    /// Cuts every connection and every new one at once: a dead server.
    Down,
}

/// A TCP proxy to a database server, on a port of its own on 127.0.0.1.
///
/// It counts round trips: each time a client sends after it has received
/// something (or for the first time) is one.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    /// Bumped to cut the connections open now (new ones are forwarded).
    epoch: watch::Sender<u64>,
    round_trips: Arc<AtomicU64>,
}

impl Proxy {
    /// Starts a proxy to `target`, forwarding. Must run in a Tokio runtime.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, watcher) = watch::channel(ProxyMode::Forward);
        let (epoch, epochs) = watch::channel(0u64);
        let round_trips = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&round_trips);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let watcher = watcher.clone();
                if *watcher.borrow() == ProxyMode::Down {
                    drop(client);
                    continue;
                }
                let counter = Arc::clone(&counter);
                let mut epochs = epochs.clone();
                epochs.mark_unchanged();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        tokio::select! {
                            () = relay(client, server, watcher, counter) => {}
                            _ = epochs.changed() => {}
                        }
                    }
                });
            }
        });
        Ok(Self {
            addr,
            mode,
            epoch,
            round_trips,
        })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes what the proxy does, for every connection at once. Ends
    /// with the proxy (dropping it cuts every connection).
    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    /// Cuts every connection open now (both ways: the client sees the
    /// server close it), as a database restart, a failover or a firewall
    /// that forgets idle connections does, while new connections are
    /// forwarded as before.
    pub fn reset_connections(&self) {
        self.epoch.send_modify(|epoch| *epoch += 1);
    }

    /// Round trips counted so far.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::SeqCst)
    }

    /// Starts counting afresh.
    pub fn reset_round_trips(&self) {
        self.round_trips.store(0, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set_mode(ProxyMode::Down);
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    watcher: watch::Receiver<ProxyMode>,
    counter: Arc<AtomicU64>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // Whether the server spoke last: the client's next send is a new
    // round trip.
    let server_spoke = Arc::new(AtomicBool::new(true));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(
        client_read,
        server_write,
        watcher.clone(),
        Some((Arc::clone(&server_spoke), counter)),
        Arc::clone(&server_spoke),
        false,
    );
    let down = pump(server_read, client_write, watcher, None, server_spoke, true);
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut watcher: watch::Receiver<ProxyMode>,
    count: Option<(Arc<AtomicBool>, Arc<AtomicU64>)>,
    server_spoke: Arc<AtomicBool>,
    from_server: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Wait while hung; stop when down.
        loop {
            let mode = *watcher.borrow_and_update();
            match mode {
                ProxyMode::Forward => break,
                ProxyMode::Down => return,
                ProxyMode::Hang => {
                    if watcher.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = watcher.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        // Data read while the mode changed to Hang waits for Forward.
        loop {
            let mode = *watcher.borrow_and_update();
            match mode {
                ProxyMode::Forward => break,
                ProxyMode::Down => return,
                ProxyMode::Hang => {
                    if watcher.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        if from_server {
            server_spoke.store(true, Ordering::SeqCst);
        } else if let Some((spoke, counter)) = &count
            && spoke.swap(false, Ordering::SeqCst)
        {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
