//! A TCP proxy that breaks a fixed share of the connections it carries, chosen by a seeded RNG: resets
//! mid-body (either direction), `500` answers, truncated bodies and stalls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// How long a stalled connection hangs before the proxy drops it; longer than the clients' read timeout.
const STALL: Duration = Duration::from_secs(3);

/// What the proxy does to one connection.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Carries it faithfully.
    None,
    /// Answers the first request with 500 and closes.
    ServerError,
    /// Resets the client after this many response bytes.
    ResetDown(usize),
    /// Resets the client after this many request bytes (mid-upload).
    ResetUp(usize),
    /// Closes cleanly after this many response bytes: a truncated body.
    Truncate(usize),
    /// Stops forwarding after this many response bytes, then closes after [`STALL`].
    Stall(usize),
}

/// A running proxy; it stops with the test's runtime.
pub struct FaultyProxy {
    /// `127.0.0.1:PORT` to point clients at.
    pub addr: String,
    faults: Arc<AtomicUsize>,
}

impl FaultyProxy {
    /// Proxies to `upstream`, breaking about `share` of connections, at most `max_faults` in all (so every
    /// operation finishes within a bounded number of retries).
    pub async fn start(upstream: String, seed: u64, share: f64, max_faults: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
        let faults = Arc::new(AtomicUsize::new(0));
        let counter = faults.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                let fault = {
                    let mut rng = rng.lock().unwrap();
                    if counter.load(Ordering::SeqCst) >= max_faults || !rng.random_bool(share) {
                        Fault::None
                    } else {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let after = rng.random_range(512..256 << 10);
                        match rng.random_range(0..5) {
                            0 => Fault::ServerError,
                            1 => Fault::ResetDown(after),
                            2 => Fault::ResetUp(after),
                            3 => Fault::Truncate(after),
                            _ => Fault::Stall(after),
                        }
                    }
                };
                tokio::spawn(carry(client, upstream.clone(), fault));
            }
        });
        Self { addr, faults }
    }

    /// How many connections were broken so far.
    pub fn faults(&self) -> usize {
        self.faults.load(Ordering::SeqCst)
    }
}

async fn carry(mut client: TcpStream, upstream: String, fault: Fault) {
    if let Fault::ServerError = fault {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && client.read(&mut byte).await.unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let _ = client
            .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return;
    }
    let Ok(server) = TcpStream::connect(&upstream).await else { return };
    let (up_limit, down_limit) = match fault {
        Fault::ResetUp(n) => (n, usize::MAX),
        Fault::ResetDown(n) | Fault::Truncate(n) | Fault::Stall(n) => (usize::MAX, n),
        Fault::None | Fault::ServerError => (usize::MAX, usize::MAX),
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let tripped = tokio::select! {
        tripped = pump(&mut client_read, &mut server_write, up_limit) => tripped,
        tripped = pump(&mut server_read, &mut client_write, down_limit) => tripped,
    };
    if !tripped {
        return;
    }
    let client = client_read.reunite(client_write).unwrap();
    match fault {
        Fault::ResetUp(_) | Fault::ResetDown(_) => {
            // Zero linger turns the close into a RST.
            let _ = client.set_zero_linger();
        }
        Fault::Stall(_) => tokio::time::sleep(STALL).await,
        Fault::Truncate(_) | Fault::None | Fault::ServerError => {}
    }
    drop(client);
}

/// Copies until EOF (false) or until `limit` bytes went through (true).
async fn pump(from: &mut (impl AsyncRead + Unpin), to: &mut (impl AsyncWrite + Unpin), limit: usize) -> bool {
    let mut buffer = vec![0u8; 64 << 10];
    let mut left = limit;
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let n = n.min(left);
        if to.write_all(&buffer[..n]).await.is_err() {
            return false;
        }
        left -= n;
        if left == 0 {
            return true;
        }
    }
}
