//! The dev server: every Lambda handler mounted on one port, each request
//! turned into the very `lambda_http::Request` API Gateway would hand the
//! function, so the dev server runs the same code as Lambda.

use std::net::SocketAddr;
use std::sync::Arc;

use gatehouse::ApiError;
use gatehouse::captcha::service::{self as captcha, CaptchaService};
use gatehouse::clock::Clock;
use gatehouse::http::{Lang, error_response};
use gatehouse::store::Store;
use gatehouse::tencent::{self, TencentConfig, TicketService};
use gatehouse::wechat::{self, AuthorizerRequest, LoginService, WxConfig};
use http_body_util::Full;
use hyper::body::Bytes;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};

use crate::serve::{HttpResponse, Served, allow_cors, serve, with_body};
use crate::tencent_emulator::TencentEmulator;
use crate::wechat_emulator::WechatEmulator;

/// The demo page served at `/`.
pub const DEMO_PAGE: &str = include_str!("demo.html");

/// Every service the routes need, built once.
pub struct App {
    pub captcha: CaptchaService,
    pub login: LoginService,
    pub tickets: TicketService,
}

/// The emulators the dev server started in place of WeChat and Tencent;
/// they stop when this is dropped.
#[derive(Default)]
pub struct Emulators {
    pub wechat: Option<WechatEmulator>,
    pub tencent: Option<TencentEmulator>,
}

/// App id and credentials the dev server gives its emulators.
pub const DEV_WX_APPID: &str = "wxdevgatehouse0001";
const DEV_WX_SECRET: &str = "dev-wechat-secret";
const DEV_TENCENT_SECRET_ID: &str = "AKIDdevgatehouse";
const DEV_TENCENT_SECRET_KEY: &str = "dev-tencent-secret-key";
pub const DEV_CAPTCHA_APP_ID: u64 = 190000001;
const DEV_CAPTCHA_APP_SECRET_KEY: &str = "dev-app-secret-key";

impl App {
    /// The services from the environment (SPEC §6) over `store`. WeChat is
    /// emulated on loopback unless `WX_APPID` is set, Tencent unless
    /// `TENCENT_SECRET_ID` is.
    pub async fn from_env(
        store: Arc<dyn Store>,
    ) -> Result<(App, Emulators), Box<dyn std::error::Error>> {
        let env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
        let mut emulators = Emulators::default();

        let wx_config = if env("WX_APPID").is_some() {
            WxConfig::from_env()?
        } else {
            let emulator = WechatEmulator::start(DEV_WX_APPID, DEV_WX_SECRET).await?;
            let config =
                WxConfig::new(DEV_WX_APPID, DEV_WX_SECRET)?.with_api_base(&emulator.base_url());
            emulators.wechat = Some(emulator);
            config
        };
        let tencent_config = if env("TENCENT_SECRET_ID").is_some() {
            TencentConfig::from_env()?
        } else {
            let emulator = TencentEmulator::start(
                DEV_TENCENT_SECRET_ID,
                DEV_TENCENT_SECRET_KEY,
                DEV_CAPTCHA_APP_ID,
                DEV_CAPTCHA_APP_SECRET_KEY,
            )
            .await?;
            let endpoint = emulator.base_url();
            emulators.tencent = Some(emulator);
            TencentConfig::from_lookup(|key| match key {
                "TENCENT_SECRET_ID" => Some(DEV_TENCENT_SECRET_ID.into()),
                "TENCENT_SECRET_KEY" => Some(DEV_TENCENT_SECRET_KEY.into()),
                "CAPTCHA_APP_ID" => Some(DEV_CAPTCHA_APP_ID.to_string()),
                "CAPTCHA_APP_SECRET_KEY" => Some(DEV_CAPTCHA_APP_SECRET_KEY.into()),
                "TENCENT_CAPTCHA_ENDPOINT" => Some(endpoint.clone()),
                _ => None,
            })?
        };
        let captcha = CaptchaService::from_env(Arc::clone(&store))?;
        // wx-login and ticket verify keep the root `rateLimit` of CAPTCHA_CONFIG.
        let rate_limit = captcha.config.root().rate_limit;
        let app = App {
            captcha,
            login: LoginService::new(wx_config, Arc::clone(&store), Clock::system())?
                .with_rate_limit(rate_limit),
            tickets: TicketService::new(tencent_config, store, Clock::system())?
                .with_rate_limit(rate_limit),
        };
        Ok((app, emulators))
    }
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
    if let Some(resp) = crate::test_hooks::handle(&req) {
        return with_cors(resp);
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
        ("POST", "/wx/login") => wechat::login(&app.login, req).await,
        (_, "/wx/session") => wechat::session(app.login.sessions(), req).await,
        ("GET", "/me") => protected(app, req).await,
        ("POST", "/ticket/verify") => tencent::verify_ticket(&app.tickets, req).await,
        _ => not_found(&req),
    }
}

/// `GET /me`, the protected example route: the authorizer runs first, as
/// API Gateway would run it, and a denied request gets API Gateway's 403.
async fn protected(app: &App, req: lambda_http::Request) -> lambda_http::Response<Body> {
    let mut event = AuthorizerRequest::default();
    event.headers = req.headers().clone();
    let verdict = wechat::authorize(app.login.sessions(), event).await;
    if !verdict.is_authorized {
        return lambda_http::Response::builder()
            .status(http::StatusCode::FORBIDDEN)
            .header("content-type", "application/json")
            .body(Body::Text(r#"{"message":"Forbidden"}"#.into()))
            .expect("static response");
    }
    wechat::session(app.login.sessions(), req).await
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

fn with_cors(mut resp: HttpResponse) -> HttpResponse {
    allow_cors(&mut resp, "GET, POST, DELETE, OPTIONS");
    resp
}
