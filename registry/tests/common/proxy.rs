//! A TCP proxy that breaks a fixed share of the HTTP/1.1 requests it carries, chosen by a seeded RNG: resets
//! mid-body (either direction), `500` answers, truncated bodies and stalls. It spots requests by their request
//! line at the start of a read from the client, which is where hyper's separate head writes land.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// How long a stalled connection hangs before the proxy drops it; longer than the clients' read timeout.
const STALL: Duration = Duration::from_secs(3);

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Answers 500 instead of forwarding, and closes.
    ServerError,
    /// Resets the client after this many more request bytes (mid-upload).
    ResetUp(usize),
    /// Resets the client after this many more response bytes.
    ResetDown(usize),
    /// Closes cleanly after this many more response bytes: a truncated body.
    Truncate(usize),
    /// Stops forwarding after this many more response bytes, then closes after [`STALL`].
    Stall(usize),
}

/// The seeded dice and the count of faults so far, shared by all connections.
struct Dice {
    rng: Mutex<StdRng>,
    share: f64,
    max_faults: usize,
    faults: AtomicUsize,
}

impl Dice {
    fn roll(&self) -> Option<Fault> {
        let mut rng = self.rng.lock().unwrap();
        if self.faults.load(Ordering::SeqCst) >= self.max_faults || !rng.random_bool(self.share) {
            return None;
        }
        self.faults.fetch_add(1, Ordering::SeqCst);
        let after = rng.random_range(256..512 << 10);
        Some(match rng.random_range(0..5) {
            0 => Fault::ServerError,
            1 => Fault::ResetUp(after),
            2 => Fault::ResetDown(after),
            3 => Fault::Truncate(after),
            _ => Fault::Stall(after),
        })
    }
}

/// A running proxy; it stops with the test's runtime.
pub struct FaultyProxy {
    /// `127.0.0.1:PORT` to point clients at.
    pub addr: String,
    dice: Arc<Dice>,
}

impl FaultyProxy {
    /// Proxies to `upstream`, breaking about `share` of requests, at most `max_faults` in all (so every
    /// operation finishes within a bounded number of retries).
    pub async fn start(upstream: String, seed: u64, share: f64, max_faults: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let dice = Arc::new(Dice {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            share,
            max_faults,
            faults: AtomicUsize::new(0),
        });
        let shared = dice.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(carry(client, upstream.clone(), shared.clone()));
            }
        });
        Self { addr, dice }
    }

    /// How many requests were broken so far.
    pub fn faults(&self) -> usize {
        self.dice.faults.load(Ordering::SeqCst)
    }
}

/// Whether a read from the client starts a new request.
fn starts_request(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    ["GET ", "HEAD ", "POST ", "PUT ", "PATCH ", "DELETE "].iter().any(|m| head.starts_with(m.as_bytes()))
        && head.windows(11).any(|w| w == b" HTTP/1.1\r\n")
}

async fn carry(mut client: TcpStream, upstream: String, dice: Arc<Dice>) {
    let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let (mut up, mut down) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    // Bytes left before the pending fault trips, in the direction it applies to.
    let (mut up_left, mut down_left) = (usize::MAX, usize::MAX);
    let mut pending = None;
    let tripped = loop {
        tokio::select! {
            read = client_read.read(&mut up) => {
                let Ok(n @ 1..) = read else { return };
                if pending.is_none() && starts_request(&up[..n]) {
                    pending = dice.roll();
                    match pending {
                        Some(Fault::ServerError) => break Fault::ServerError,
                        Some(Fault::ResetUp(after)) => up_left = after,
                        Some(Fault::ResetDown(after) | Fault::Truncate(after) | Fault::Stall(after)) => down_left = after,
                        None => {}
                    }
                }
                let n = n.min(up_left);
                if server_write.write_all(&up[..n]).await.is_err() { return }
                if up_left != usize::MAX { up_left -= n }
                if up_left == 0 { break pending.expect("a limit is set only with a fault") }
            }
            read = server_read.read(&mut down) => {
                let Ok(n @ 1..) = read else { return };
                let n = n.min(down_left);
                if client_write.write_all(&down[..n]).await.is_err() { return }
                if down_left != usize::MAX { down_left -= n }
                if down_left == 0 { break pending.expect("a limit is set only with a fault") }
            }
        }
    };
    drop(server);
    match tripped {
        Fault::ServerError => {
            let _ = client
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
        // Zero linger turns the close into a RST.
        Fault::ResetUp(_) | Fault::ResetDown(_) => drop(client.set_zero_linger()),
        Fault::Stall(_) => tokio::time::sleep(STALL).await,
        Fault::Truncate(_) => {}
    }
}
