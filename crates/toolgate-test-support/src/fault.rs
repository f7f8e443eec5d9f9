//! [`FaultProxy`]: a TCP proxy on 127.0.0.1 between toolgate and a real dependency
//! (PostgreSQL, MariaDB, Redis, an HTTP upstream) that the test switches between
//! passing traffic and failing in the ways networks fail.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the proxy does with traffic, for open connections and new ones alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward both ways.
    Pass,
    /// Forward each chunk after this delay.
    Delay(Duration),
    /// Close every connection (FIN) and every new one at once.
    Drop,
    /// Accept and read, never forward, never answer, never close: only timeouts
    /// notice (a firewall that drops packets).
    BlackHole,
    /// Reset every connection (RST) and every new one.
    Reset,
}

/// A running proxy; stopped (all its connections cut) when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    mode: watch::Sender<Fault>,
    stop: CancellationToken,
}

impl FaultProxy {
    /// Listen on 127.0.0.1:0 and forward to `upstream`.
    ///
    /// # Errors
    /// The port cannot be bound.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, rx) = watch::channel(Fault::Pass);
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = token.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((client, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let (rx, token) = (rx.clone(), token.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = token.cancelled() => {}
                        () = serve(client, upstream, rx) => {}
                    }
                });
            }
        });
        Ok(Self { addr, mode, stop })
    }

    /// Switch to `fault`.
    pub fn set(&self, fault: Fault) {
        self.mode.send_replace(fault);
    }

    /// The address as `host:port`.
    #[must_use]
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn reset(stream: &TcpStream) {
    // Linger 0: closing sends RST instead of FIN.
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

async fn black_hole(mut client: TcpStream, mut mode: watch::Receiver<Fault>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            r = client.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { return },
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                match *mode.borrow() {
                    Fault::Reset => { reset(&client); return; }
                    Fault::Drop => return,
                    // Traffic swallowed so far is lost; the connection stays dead,
                    // as a real one whose packets were dropped would be.
                    _ => {}
                }
            }
        }
    }
}

async fn serve(client: TcpStream, upstream: SocketAddr, mode: watch::Receiver<Fault>) {
    let now = *mode.borrow();
    match now {
        Fault::Drop => return,
        Fault::Reset => {
            reset(&client);
            return;
        }
        Fault::BlackHole => return black_hole(client, mode).await,
        Fault::Pass | Fault::Delay(_) => {}
    }
    let Ok(upstream) = TcpStream::connect(upstream).await else {
        reset(&client);
        return;
    };
    relay(client, upstream, mode).await;
}

/// What ended a relayed connection.
#[derive(PartialEq, Eq)]
enum End {
    Closed,
    Reset,
}

async fn forward(
    read: std::io::Result<usize>,
    buf: &[u8],
    to: &mut tokio::net::tcp::WriteHalf<'_>,
    mode: &watch::Receiver<Fault>,
) -> Option<End> {
    let n = match read {
        Ok(0) | Err(_) => return Some(End::Closed),
        Ok(n) => n,
    };
    let now = *mode.borrow();
    match now {
        Fault::Pass => {}
        Fault::Delay(d) => tokio::time::sleep(d).await,
        Fault::BlackHole => return None,
        Fault::Drop => return Some(End::Closed),
        Fault::Reset => return Some(End::Reset),
    }
    if to.write_all(&buf[..n]).await.is_err() {
        return Some(End::Closed);
    }
    None
}

async fn relay(mut client: TcpStream, mut upstream: TcpStream, mut mode: watch::Receiver<Fault>) {
    let end = {
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        let mut up = vec![0u8; 16 * 1024];
        let mut down = vec![0u8; 16 * 1024];
        loop {
            let step = tokio::select! {
                r = cr.read(&mut up) => forward(r, &up, &mut uw, &mode).await,
                r = ur.read(&mut down) => forward(r, &down, &mut cw, &mode).await,
                changed = mode.changed() => {
                    if changed.is_err() {
                        Some(End::Closed)
                    } else {
                        match *mode.borrow() {
                            Fault::Reset => Some(End::Reset),
                            Fault::Drop => Some(End::Closed),
                            _ => None,
                        }
                    }
                }
            };
            if let Some(end) = step {
                break end;
            }
        }
    };
    if end == End::Reset {
        reset(&client);
        reset(&upstream);
    }
}
