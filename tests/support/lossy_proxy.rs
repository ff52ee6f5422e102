//! A loopback HTTP/1.1 proxy in front of DynamoDB Local that loses the
//! response of chosen requests: it forwards the request, reads DynamoDB's
//! whole answer (so the write has been applied), and then never answers the
//! client, which times out and retries. What a Lambda sees when a response
//! is lost on the way back.
//!
//! ```no_run
//! # async fn demo() {
//! let local = gatehouse_e2e::dynamodb_local().await;
//! let proxy = gatehouse_e2e::lossy_proxy::LossyProxy::start(local.endpoint()).await;
//! proxy.lose_next("UpdateItem", 1);
//! # }
//! ```

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to lose: the responses of the next `count` requests of `operation`
/// (the `X-Amz-Target` action, `UpdateItem`, `PutItem` …).
#[derive(Debug, Default)]
struct Plan {
    operation: String,
    count: usize,
    /// `(operation, lost)` of every request forwarded.
    seen: Vec<(String, bool)>,
}

#[derive(Debug, Clone)]
pub struct LossyProxy {
    url: String,
    plan: Arc<Mutex<Plan>>,
}

impl LossyProxy {
    /// Starts the proxy in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// endpoint")
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let plan = Arc::new(Mutex::new(Plan::default()));
        let shared = plan.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let plan = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, plan).await;
                });
            }
        });
        Self { url, plan }
    }

    /// The proxy's endpoint, for the client's `endpoint_url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Loses the responses of the next `count` requests of `operation`.
    pub fn lose_next(&self, operation: &str, count: usize) {
        let mut plan = self.plan.lock().unwrap();
        plan.operation = operation.to_owned();
        plan.count = count;
    }

    /// The operations forwarded since the last call, and whether each
    /// response was lost.
    pub fn take_seen(&self) -> Vec<(String, bool)> {
        std::mem::take(&mut self.plan.lock().unwrap().seen)
    }
}

/// One client connection: each request forwarded on a fresh upstream
/// connection, its answer relayed or lost (then the client connection is
/// held open, silent, until the client gives up on it).
async fn serve(
    mut client: TcpStream,
    upstream: &str,
    plan: Arc<Mutex<Plan>>,
) -> std::io::Result<()> {
    loop {
        let Some(request) = read_message(&mut client, false).await? else {
            return Ok(());
        };
        let operation = header(&request, "x-amz-target")
            .and_then(|t| t.rsplit('.').next().map(str::to_owned))
            .unwrap_or_default();
        let lose = {
            let mut plan = plan.lock().unwrap();
            let lose = plan.count > 0 && plan.operation == operation;
            if lose {
                plan.count -= 1;
            }
            plan.seen.push((operation, lose));
            lose
        };
        let mut server = TcpStream::connect(upstream).await?;
        server.write_all(&request).await?;
        let response = read_message(&mut server, true)
            .await?
            .ok_or_else(|| std::io::Error::other("upstream closed"))?;
        if lose {
            // Applied, never answered: hold the connection until the client
            // drops it (its attempt time-out).
            let mut sink = [0u8; 1024];
            while client.read(&mut sink).await? > 0 {}
            return Ok(());
        }
        client.write_all(&response).await?;
    }
}

/// The value of header `name` in the head of `message`.
fn header(message: &[u8], name: &str) -> Option<String> {
    let end = find(message, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&message[..end]).ok()?;
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one HTTP/1.1 message (head and a `Content-Length` or chunked
/// body); `None` when the peer closed before sending one.
async fn read_message(
    stream: &mut (impl AsyncRead + Unpin),
    response: bool,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let chunked = header(&buf, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length: usize = header(&buf, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    loop {
        let body = &buf[head_end..];
        let complete = if chunked {
            find(body, b"0\r\n\r\n").is_some_and(|at| at == 0 || body[..at].ends_with(b"\r\n"))
        } else {
            body.len() >= length
        };
        if complete {
            return Ok(Some(buf));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            // A response without a length ends with the connection.
            return if response && !chunked {
                Ok(Some(buf))
            } else {
                Err(std::io::Error::other("truncated message"))
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
