//! The dev server: every Lambda handler mounted on one port, each request
//! turned into the very `lambda_http::Request` API Gateway would hand the
//! function, so the dev server runs the same code as Lambda.

use std::net::SocketAddr;
use std::sync::Arc;

use gatehouse::captcha::service::{self as captcha, CaptchaService};
use gatehouse::http::{Lang, error_response};
use gatehouse::ApiError;
use http_body_util::Full;
use hyper::body::Bytes;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};

use crate::serve::{HttpResponse, Served, serve, with_body};

/// The demo page served at `/`.
pub const DEMO_PAGE: &str = include_str!("demo.html");

/// Every service the routes need, built once.
pub struct App {
    pub captcha: CaptchaService,
}

/// Serves `app` on `addr` until the returned [`Served`] is dropped.
pub async fn start(app: App, addr: SocketAddr) -> std::io::Result<Served> {
    let app = Arc::new(app);
    serve(addr, move |req, peer| {
        let app = Arc::clone(&app);
        async move { handle(&app, req, peer).await }
    })
    .await
}

async fn handle(app: &App, req: http::Request<Bytes>, peer: SocketAddr) -> HttpResponse {
    if req.method() == http::Method::OPTIONS {
        return with_cors(
            http::Response::builder()
                .status(http::StatusCode::NO_CONTENT)
                .body(Full::new(Bytes::new()))
                .expect("static response"),
        );
    }
    if req.method() == http::Method::GET && req.uri().path() == "/" {
        return with_body(http::StatusCode::OK, "text/html; charset=utf-8", DEMO_PAGE);
    }
    let lambda_req = to_lambda_request(req, peer);
    with_cors(from_lambda_response(route(app, lambda_req).await))
}

/// Sends a request to the handler of its route, as API Gateway would.
pub async fn route(app: &App, req: lambda_http::Request) -> lambda_http::Response<Body> {
    let method = req.method().clone();
    match (method.as_str(), req.uri().path()) {
        ("POST", "/captcha/create") => captcha::create(&app.captcha, req).await,
        ("POST", "/captcha/refresh") => captcha::refresh(&app.captcha, req).await,
        ("POST", "/captcha/verify") => captcha::verify(&app.captcha, req).await,
        _ => not_found(&req),
    }
}

fn not_found(req: &lambda_http::Request) -> lambda_http::Response<Body> {
    let mut resp = error_response(
        Lang::from_request(req),
        &ApiError::InvalidRequest(format!("no route {} {}", req.method(), req.uri().path())),
    );
    *resp.status_mut() = http::StatusCode::NOT_FOUND;
    resp
}

/// The request as a Lambda function behind an HTTP API would receive it:
/// body as text when it is UTF-8, the peer's address as `sourceIp`.
pub fn to_lambda_request(req: http::Request<Bytes>, peer: SocketAddr) -> lambda_http::Request {
    let (parts, bytes) = req.into_parts();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(raw) => Body::Binary(raw.into_bytes()),
        }
    };
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.http.method = parts.method.clone();
    ctx.http.path = Some(parts.uri.path().to_owned());
    ctx.http.source_ip = Some(peer.ip().to_string());
    ctx.http.user_agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    http::Request::from_parts(parts, body).with_request_context(RequestContext::ApiGatewayV2(ctx))
}

pub fn from_lambda_response(resp: lambda_http::Response<Body>) -> HttpResponse {
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(raw) => Bytes::from(raw),
        _ => Bytes::new(),
    };
    http::Response::from_parts(parts, Full::new(bytes))
}

/// Lets a uni-app H5 dev server on another port call the dev server.
fn with_cors(mut resp: HttpResponse) -> HttpResponse {
    let headers = resp.headers_mut();
    headers.insert("access-control-allow-origin", http::HeaderValue::from_static("*"));
    headers.insert(
        "access-control-allow-headers",
        http::HeaderValue::from_static("content-type, authorization, x-device-id, accept-language"),
    );
    headers.insert(
        "access-control-allow-methods",
        http::HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    resp
}
