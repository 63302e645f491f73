//! A loopback TCP proxy in front of a Redis server, to play the network
//! failures a store must survive: a stall (connections kept open, nothing
//! forwarded), a reset (every open connection cut) and a refusal (nothing
//! listening).

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// What a [`Proxy`] does, for every connection at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forwards both ways.
    Forward,
    /// Keeps every connection open (and accepts new ones) but forwards
    /// nothing, either way: a partition, or a hung proxy. What was sent
    /// meanwhile is delivered, in order, once forwarding resumes.
    Stall,
    /// Cuts every connection and stops listening: new connections are
    /// refused.
    Refuse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Control {
    mode: ProxyMode,
    /// Connections opened under an older count are cut.
    cuts: u64,
}

/// A TCP proxy to one server, on a port of its own on 127.0.0.1 (kept when
/// it refuses and listens again). Dropping it cuts everything.
///
/// ```no_run
/// # async fn test(redis: &session_redis::testing::LocalRedis) -> std::io::Result<()> {
/// use session_redis::testing::{Proxy, ProxyMode};
///
/// let proxy = Proxy::start(redis.port()).await?;
/// let store = session_redis::RedisStore::new(proxy.url()).unwrap();
/// proxy.set_mode(ProxyMode::Stall);
/// # drop(store);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    control: watch::Sender<Control>,
}

impl Proxy {
    /// A proxy to the server on loopback port `target`, forwarding. Must
    /// be called in a Tokio runtime.
    pub async fn start(target: u16) -> io::Result<Self> {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let target = SocketAddr::from(([127, 0, 0, 1], target));
        let (control, watcher) = watch::channel(Control {
            mode: ProxyMode::Forward,
            cuts: 0,
        });
        tokio::spawn(accept(listener, addr, target, watcher));
        Ok(Self { addr, control })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its `redis://` URL.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// What the proxy does from now on.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.control.send_modify(|c| c.mode = mode);
    }

    /// What the proxy does now.
    pub fn mode(&self) -> ProxyMode {
        self.control.borrow().mode
    }

    /// Cuts every open connection (both ways); new ones are accepted as
    /// the mode says.
    pub fn cut(&self) {
        self.control.send_modify(|c| c.cuts += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set_mode(ProxyMode::Refuse);
    }
}

/// A listener on `addr`, which may have been ours a moment ago.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

/// Accepts connections while the mode is not [`ProxyMode::Refuse`]; ends
/// with the proxy.
async fn accept(
    listener: TcpListener,
    addr: SocketAddr,
    target: SocketAddr,
    mut watcher: watch::Receiver<Control>,
) {
    let mut listener = Some(listener);
    loop {
        let mode = watcher.borrow_and_update().mode;
        if mode == ProxyMode::Refuse {
            listener = None;
        } else if listener.is_none() {
            match listen(addr) {
                Ok(bound) => listener = Some(bound),
                Err(_) => {
                    // The port is still held by the closing socket.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                }
            }
        }
        let Some(open) = &listener else {
            if watcher.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            accepted = open.accept() => {
                if let Ok((client, _)) = accepted {
                    tokio::spawn(relay(client, target, watcher.clone()));
                }
            }
            changed = watcher.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Forwards one connection as the mode says, until either side closes,
/// the proxy refuses, or [`Proxy::cut`].
async fn relay(client: TcpStream, target: SocketAddr, watcher: watch::Receiver<Control>) {
    let cuts = watcher.borrow().cuts;
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // When one direction ends, the other is dropped: the whole connection
    // closes.
    tokio::select! {
        () = pump(client_read, server_write, watcher.clone(), cuts) => {}
        () = pump(server_read, client_write, watcher, cuts) => {}
    }
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut watcher: watch::Receiver<Control>,
    cuts: u64,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if !forwarding(&mut watcher, cuts).await {
            return;
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
        // Read just as the mode changed: held until forwarding resumes.
        if !forwarding(&mut watcher, cuts).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Waits while stalled; whether to go on forwarding (false: this
/// connection is to be cut).
async fn forwarding(watcher: &mut watch::Receiver<Control>, cuts: u64) -> bool {
    loop {
        let control = *watcher.borrow_and_update();
        if control.cuts != cuts || control.mode == ProxyMode::Refuse {
            return false;
        }
        if control.mode == ProxyMode::Forward {
            return true;
        }
        if watcher.changed().await.is_err() {
            return false;
        }
    }
}
