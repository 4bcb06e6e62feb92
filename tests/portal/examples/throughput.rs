//! Throughput of the portal: starts one in-process on loopback (limits off),
//! sends a bounded number of `profile` calls over a few keep-alive
//! connections and prints requests per second. A benchmark, not a test:
//!
//! ```sh
//! cargo run --release -p b24-portal --example throughput
//! ```

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Requests in total.
const REQUESTS: usize = 20_000;
/// Keep-alive connections sending them.
const CONNECTIONS: usize = 4;
/// Stop early after this long, whatever is left.
const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let portal = b24_portal::serve(b24_portal::Config::default()).await?;
    let info = portal.info().clone();
    let path = format!(
        "{}profile",
        info.webhook.trim_start_matches(info.url.as_str())
    );
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\r\n",
        info.addr
    );
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        let request = request.clone();
        let addr = info.addr;
        clients.push(tokio::spawn(async move {
            send_all(addr, &request, REQUESTS / CONNECTIONS, started).await
        }));
    }
    let mut done = 0;
    for client in clients {
        done += client.await.map_err(std::io::Error::other)??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{done} requests over {CONNECTIONS} connections in {elapsed:.2} s: {:.0} requests/s",
        done as f64 / elapsed
    );
    portal.shutdown().await;
    Ok(())
}

/// Sends `count` requests one after another on one connection, reading
/// each answer fully; returns how many got a `200`.
async fn send_all(
    addr: std::net::SocketAddr,
    request: &str,
    count: usize,
    started: Instant,
) -> std::io::Result<usize> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut ok = 0;
    let mut line = String::new();
    for _ in 0..count {
        if started.elapsed() > DEADLINE {
            break;
        }
        write.write_all(request.as_bytes()).await?;
        line.clear();
        read.read_line(&mut line).await?;
        let status_ok = line.starts_with("HTTP/1.1 200");
        let mut length = 0usize;
        loop {
            line.clear();
            read.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        read.read_exact(&mut body).await?;
        ok += usize::from(status_ok);
    }
    Ok(ok)
}
