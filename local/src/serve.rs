//! A minimal HTTP/1 server over hyper, shared by the dev server and the
//! WeChat and Tencent emulators: each hands it a function from a fully read
//! request to a response.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Request bodies read at most this far; a larger one is answered by the
/// server's [`TooLarge`] (a plain-text 413 unless it says otherwise).
pub const MAX_SERVED_BODY_BYTES: usize = 1024 * 1024;

pub type HttpResponse = http::Response<Full<Bytes>>;

/// The answer to a request whose body is over [`MAX_SERVED_BODY_BYTES`],
/// from its head (the dev server answers in the API's JSON envelope, in the
/// request's language).
pub type TooLarge = fn(&http::request::Parts) -> HttpResponse;

fn plain_too_large(_: &http::request::Parts) -> HttpResponse {
    plain(
        http::StatusCode::PAYLOAD_TOO_LARGE,
        "request body too large",
    )
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
    serve_with(addr, handle, plain_too_large).await
}

/// [`serve`], answering an oversized body with `too_large`.
pub async fn serve_with<F, Fut>(
    addr: SocketAddr,
    handle: F,
    too_large: TooLarge,
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
                        Ok::<_, Infallible>(read_and_handle(req, peer, &*handle, too_large).await)
                    }
                });
                // A client that hangs up mid-request is its own business.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Served { addr, task })
}

async fn read_and_handle<F, Fut>(
    req: http::Request<Incoming>,
    peer: SocketAddr,
    handle: &F,
    too_large: TooLarge,
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
pub fn allow_cors(response: &mut HttpResponse, methods: &'static str) {
    let headers = response.headers_mut();
    headers.insert(
        "access-control-allow-origin",
        http::HeaderValue::from_static("*"),
    );
    headers.insert(
        "access-control-allow-headers",
        http::HeaderValue::from_static(
            "content-type, authorization, x-device-id, accept-language, x-gatehouse-pass",
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
