//! A minimal HTTP/1 server over hyper, shared by the dev server and the
//! WeChat and Tencent emulators: each hands it a function from a fully read
//! request to a response, and may say how to answer what never reaches
//! that function ([`Refusals`]).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Request bodies read at most this far; a larger one is answered by the
/// server's [`TooLarge`] (a plain-text 413 unless it says otherwise).
pub const MAX_SERVED_BODY_BYTES: usize = 1024 * 1024;

pub type HttpResponse = http::Response<Full<Bytes>>;

/// How a server answers the requests its handler never sees.
#[derive(Clone, Copy)]
pub struct Refusals {
    /// A body over [`MAX_SERVED_BODY_BYTES`], from the request's head.
    pub too_large: fn(&http::request::Parts) -> HttpResponse,
    /// A head hyper refused: `status` 400 (a malformed line, or a character
    /// HTTP does not allow in a header), 431 (headers over hyper's limit) or
    /// 414 (a URI too long), with the request's `Accept-Language` when it
    /// could be read. `None`: hyper's own bare answer.
    pub bad_head: Option<BadHead>,
}

/// See [`Refusals::bad_head`].
pub type BadHead = fn(http::StatusCode, Option<&str>) -> http::Response<Bytes>;

impl Refusals {
    /// Plain text for a body too large, hyper's own answer to a bad head.
    pub const PLAIN: Refusals = Refusals {
        too_large: |_| {
            plain(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            )
        },
        bad_head: None,
    };
}

/// A running server: its address, and the task to abort when done.
pub struct Served {
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `addr` (use port 0 for a free loopback port) and serves `handle`
/// for every request until the returned [`Served`] is dropped.
pub async fn serve<F, Fut>(addr: SocketAddr, handle: F) -> std::io::Result<Served>
where
    F: Fn(http::Request<Bytes>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    serve_with(addr, handle, Refusals::PLAIN).await
}

/// A server's state that answers its requests by itself.
pub trait Handle: Send + Sync + 'static {
    fn handle(&self, req: http::Request<Bytes>) -> impl Future<Output = HttpResponse> + Send;
}

/// [`serve`] with `state` answering every request.
pub async fn serve_state<S: Handle>(addr: SocketAddr, state: &Arc<S>) -> std::io::Result<Served> {
    let shared = Arc::clone(state);
    serve(addr, move |req, _peer| {
        let state = Arc::clone(&shared);
        async move { state.handle(req).await }
    })
    .await
}

/// [`serve`], answering what the handler never sees as `refusals` says.
pub async fn serve_with<F, Fut>(
    addr: SocketAddr,
    handle: F,
    refusals: Refusals,
) -> std::io::Result<Served>
where
    F: Fn(http::Request<Bytes>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let handle = Arc::new(handle);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let handle = Arc::clone(&handle);
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<Incoming>| {
                    let handle = Arc::clone(&handle);
                    async move {
                        let too_large = refusals.too_large;
                        Ok::<_, Infallible>(read_and_handle(req, peer, &*handle, too_large).await)
                    }
                });
                let builder = http1::Builder::new();
                // A client that hangs up mid-request is its own business.
                let _ = match refusals.bad_head {
                    Some(answer) => {
                        let io = TokioIo::new(AnswersBadHeads::new(stream, answer));
                        builder.serve_connection(io, service).await
                    }
                    None => {
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                };
            });
        }
    });
    Ok(Served { addr, task })
}

async fn read_and_handle<F, Fut>(
    req: http::Request<Incoming>,
    peer: SocketAddr,
    handle: &F,
    too_large: fn(&http::request::Parts) -> HttpResponse,
) -> HttpResponse
where
    F: Fn(http::Request<Bytes>, SocketAddr) -> Fut,
    Fut: Future<Output = HttpResponse>,
{
    let (parts, body) = req.into_parts();
    match Limited::new(body, MAX_SERVED_BODY_BYTES).collect().await {
        Ok(collected) => handle(http::Request::from_parts(parts, collected.to_bytes()), peer).await,
        Err(_) => too_large(&parts),
    }
}

/// Hyper answers a request head it cannot parse itself, with a bare status
/// and no body, and offers no hook for it (`hyper::proto::h1::role`,
/// `on_error`). This connection spots that answer as it is written (a 400,
/// 414 or 431 head with no `content-type` and no body, which no handler
/// here writes) and writes `answer`'s in its place, with the
/// `Accept-Language` of what was read since the last answer.
struct AnswersBadHeads<S> {
    io: S,
    answer: BadHead,
    /// The start of what was read since the last answer was written: the
    /// head hyper may refuse.
    read: Vec<u8>,
    /// The answer written in place of hyper's, how far it is written, and
    /// how many bytes of hyper's it stands for.
    rewrite: Option<(Vec<u8>, usize, usize)>,
}

/// How much of a request head [`AnswersBadHeads`] keeps to find its
/// `Accept-Language`.
const KEPT_HEAD_BYTES: usize = 64 * 1024;

impl<S> AnswersBadHeads<S> {
    fn new(io: S, answer: BadHead) -> Self {
        Self {
            io,
            answer,
            read: Vec::new(),
            rewrite: None,
        }
    }
}

impl<S: AsyncWrite + Unpin> AnswersBadHeads<S> {
    /// Writes the answer standing in for hyper's; done, it reports hyper's
    /// bytes as written.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some((bytes, written, replaces)) = &mut self.rewrite else {
            return Poll::Ready(Ok(0));
        };
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        let replaces = *replaces;
        self.rewrite = None;
        Poll::Ready(Ok(replaces))
    }

    /// Whether `buf`, about to be written, is hyper's bare answer to a bad
    /// head (then the answer to write instead is set up).
    fn replaces(&mut self, buf: &[u8]) -> bool {
        let Some(status) = bare_refusal(buf) else {
            return false;
        };
        let answer = (self.answer)(status, accept_language(&self.read));
        self.rewrite = Some((http1_bytes(&answer), 0, buf.len()));
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AnswersBadHeads<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        let new = &buf.filled()[before..];
        let room = KEPT_HEAD_BYTES.saturating_sub(this.read.len());
        this.read.extend_from_slice(&new[..new.len().min(room)]);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AnswersBadHeads<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.rewrite.is_none() && !this.replaces(buf) {
            // An answer of the handler's: the request it answers is done.
            this.read.clear();
            return Pin::new(&mut this.io).poll_write(cx, buf);
        }
        this.poll_rewrite(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Hyper writes a bare answer as one buffer.
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &**b);
        if this.rewrite.is_none() && !this.replaces(first) {
            this.read.clear();
            return Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        }
        this.poll_rewrite(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The status of hyper's bare answer to a bad head, if `buf` is one: a
/// whole head of status 400, 414 or 431 with `content-length: 0` and no
/// `content-type`.
fn bare_refusal(buf: &[u8]) -> Option<http::StatusCode> {
    let head = buf.strip_suffix(b"\r\n\r\n")?;
    let head = std::str::from_utf8(head).ok()?.to_ascii_lowercase();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("http/1.1 ")?.get(..3)?;
    let status = http::StatusCode::from_bytes(status.as_bytes()).ok()?;
    let fields: Vec<&str> = lines.collect();
    let bare = fields.contains(&"content-length: 0")
        && !fields.iter().any(|f| f.starts_with("content-type:"));
    (bare && matches!(status.as_u16(), 400 | 414 | 431)).then_some(status)
}

/// The `Accept-Language` of a (possibly malformed or cut) request head.
fn accept_language(head: &[u8]) -> Option<&str> {
    head.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
            name.eq_ignore_ascii_case(b"accept-language")
                .then(|| std::str::from_utf8(&value[1..]).ok())
                .flatten()
        })
        .map(str::trim)
}

/// `resp` as HTTP/1.1 bytes, closing the connection (as hyper does after a
/// bad head).
fn http1_bytes(resp: &http::Response<Bytes>) -> Vec<u8> {
    let status = resp.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in resp.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let body = resp.body();
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    out
}

/// A plain-text response, for the emulators' and the server's own errors.
pub fn plain(status: http::StatusCode, text: &str) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(text.to_owned())))
        .expect("static headers are valid")
}

/// A response with the given content type and body.
pub fn with_body(
    status: http::StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("content type is a valid header value")
}

/// Opens `response` to browsers on any origin for `methods` (a page on
/// another port, such as a uni-app H5 dev server, may call us).
pub fn allow_cors<B>(response: &mut http::Response<B>, methods: &'static str) {
    let headers = response.headers_mut();
    headers.insert(
        "access-control-allow-origin",
        http::HeaderValue::from_static("*"),
    );
    headers.insert(
        "access-control-allow-headers",
        http::HeaderValue::from_static(
            "content-type, authorization, x-device-id, accept-language, x-gatehouse-pass, \
             x-gatehouse-captcha, x-gatehouse-ticket, x-gatehouse-randstr",
        ),
    );
    // Browsers hide response headers from scripts unless listed here.
    headers.insert(
        "access-control-expose-headers",
        http::HeaderValue::from_static("retry-after"),
    );
    headers.insert(
        "access-control-allow-methods",
        http::HeaderValue::from_static(methods),
    );
}
