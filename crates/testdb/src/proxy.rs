//! A TCP proxy a test owns between the code under test and PostgreSQL, to
//! cut the database away for real: freeze it (the server hangs), stop it
//! (connections cut, port closed) and start it again on the same port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The proxy. Dropping it stops it.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    frozen: Arc<AtomicBool>,
    running: Option<JoinHandle<()>>,
}

impl TcpProxy {
    /// Listens on a free 127.0.0.1 port, forwarding to `upstream`.
    ///
    /// # Panics
    /// When no local port can be bound (a broken test machine).
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener =
            TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("cannot bind a proxy port: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("proxy has no address: {e}"));
        let frozen = Arc::new(AtomicBool::new(false));
        let running = Some(tokio::spawn(serve(listener, upstream, frozen.clone())));
        TcpProxy { addr, upstream, frozen, running }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Holds (or releases) every byte in both directions: the server seems to hang.
    pub fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::SeqCst);
    }

    /// Cuts every connection and closes the port.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
            let _ = running.await;
        }
    }

    /// Listens again on the same port.
    ///
    /// # Panics
    /// When the port was taken meanwhile.
    pub async fn restart(&mut self) {
        let listener =
            TcpListener::bind(self.addr).await.unwrap_or_else(|e| panic!("cannot re-bind {}: {e}", self.addr));
        self.running = Some(tokio::spawn(serve(listener, self.upstream, self.frozen.clone())));
    }

    /// `url` (a `postgres://user@host:port/db` URL) aimed at this proxy.
    ///
    /// # Panics
    /// When `url` is not of that form.
    pub fn url_via(&self, url: &str) -> String {
        let rest = url.strip_prefix("postgres://").unwrap_or_else(|| panic!("not a postgres:// URL: {url}"));
        let (user, after_at) = rest.split_once('@').unwrap_or_else(|| panic!("no user in {url}"));
        let (_, path) = after_at.split_once('/').unwrap_or_else(|| panic!("no database in {url}"));
        format!("postgres://{user}@{}/{path}", self.addr)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }
}

/// The TCP address of the server a `postgres://` URL names.
///
/// # Panics
/// When the URL does not parse or names a Unix socket.
pub fn upstream_of(url: &str) -> SocketAddr {
    let config: tokio_postgres::Config = url.parse().unwrap_or_else(|e| panic!("bad URL {url}: {e}"));
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        other => panic!("the test server must be reached over TCP, not {other:?}"),
    };
    let host = if host == "localhost" { "127.0.0.1".to_owned() } else { host };
    format!("{host}:{}", config.get_ports().first().copied().unwrap_or(5432))
        .parse()
        .unwrap_or_else(|e| panic!("bad address in {url}: {e}"))
}

async fn serve(listener: TcpListener, upstream: SocketAddr, frozen: Arc<AtomicBool>) {
    // Owned here, so aborting this task aborts every connection's pumps too.
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((client, _)) = listener.accept().await {
        let Ok(server) = TcpStream::connect(upstream).await else {
            continue;
        };
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        connections.spawn(pump(client_read, server_write, frozen.clone()));
        connections.spawn(pump(server_read, client_write, frozen.clone()));
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Frozen: the sockets stay open and the data waits.
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
