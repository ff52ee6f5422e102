//! The dev server: every Lambda handler mounted on one port, each request
//! turned into the very `lambda_http::Request` API Gateway would hand the
//! function, so the dev server runs the same code as Lambda.

use std::net::SocketAddr;
use std::sync::Arc;

use gatehouse::ApiError;
use gatehouse::api::{self, Access, Services};
use gatehouse::captcha::{CaptchaService, Renderer};
use gatehouse::config::CAPTCHA_CONFIG;
use gatehouse::config::blocks::SceneBlocks;
use gatehouse::guard::config::GUARD_ROUTES;
use gatehouse::guard::{Authorizer, AuthorizerRequest, Guard, GuardRoutes};
use gatehouse::http::error_response;
use gatehouse::lang::Lang;
use gatehouse::options::ServiceOptions;
use gatehouse::settings::{ConfigPart, Settings};
use gatehouse::sms::{SmsConfig, SmsSender, SmsVerifier};
use gatehouse::store::Store;
use gatehouse::tencent::{TencentConfig, TicketService};
use gatehouse::wechat::risk::RiskRanks;
use gatehouse::wechat::{LoginService, PhoneService, WxConfig};
use http_body_util::Full;
use hyper::body::Bytes;
use lambda_http::aws_lambda_events::apigw::ApiGatewayRequestAuthorizer;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};

use crate::demo::{self, DemoConfig};
use crate::emulators::{
    DEV_CAPTCHA_APP_ID, DEV_CAPTCHA_APP_SECRET_KEY, DEV_SMS_SDK_APP_ID, DEV_SMS_SIGN_NAME,
    DEV_SMS_TEMPLATE_ID, DEV_TENCENT_SECRET_ID, DEV_TENCENT_SECRET_KEY, DEV_WX_APPID,
    DEV_WX_SECRET, Emulators,
};
use crate::serve::{HttpResponse, Refusals, Served, allow_cors, serve_with};
use crate::sms_emulator::{SmsEmulator, SmsEmulatorConfig};
use crate::tencent_emulator::TencentEmulator;
use crate::wechat_emulator::WechatEmulator;

/// Every service of the route table, built once, and what the demo page
/// is told.
pub struct App {
    pub services: Services,
    pub demo: DemoConfig,
    /// How the `AWS_IAM` routes are guarded.
    pub iam: IamRoutes,
}

/// The dev server's `AWS_IAM` routes (`POST /guard/check`, `/guard/report`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamRoutes {
    /// Signed with the development credentials, as API Gateway checks
    /// SigV4 in AWS (see [`crate::sigv4`]): the default.
    Signed,
    /// Open to anyone: `GATEHOUSE_DEV_IAM=open`, for load tests, whose
    /// load generators cannot sign.
    Open,
}

/// The variable that opens the IAM routes (`open`).
pub const DEV_IAM: &str = "GATEHOUSE_DEV_IAM";

/// The dev server's `CAPTCHA_CONFIG` when none is set: every default, the
/// demo page's scene guarded in adaptive mode (an image captcha after two
/// failures, a Tencent one after four; WeChat's rank of a signed-in user
/// at its defaults, an image captcha from rank 2, a Tencent one from 3),
/// and its sign-in by phone guarded `always` (a captcha before every SMS; a
/// door that redeems the SMS pass).
pub const DEV_CAPTCHA_CONFIG: &str = r#"{"scene": {"demo": {"guard": {"mode": "adaptive",
    "imageAfterFailures": 2, "tencentAfterFailures": 4, "failureWindowSeconds": 600,
    "wxRisk": {"scene": "register"}}},
    "phone": {"guard": {"mode": "always"}}}}"#;

impl App {
    /// The services from the environment (`docs/deploy-and-operations.md`, "Configuration") over `store`. WeChat is
    /// emulated on loopback unless `WX_APPID` is set, the Tencent captcha
    /// unless `TENCENT_SECRET_ID` is, Tencent SMS unless `SMS_SDK_APP_ID`
    /// is.
    pub async fn from_env(
        store: Arc<dyn Store>,
    ) -> Result<(App, Emulators), Box<dyn std::error::Error>> {
        Self::from_lookup(store, |key| std::env::var(key).ok()).await
    }

    /// [`App::from_env`] with the variables `var` gives (tests start servers
    /// of their own configuration; a process's environment is shared).
    pub async fn from_lookup(
        store: Arc<dyn Store>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<(App, Emulators), Box<dyn std::error::Error>> {
        let env = |key: &str| var(key).filter(|v| !v.trim().is_empty());
        let mut emulators = Emulators::default();

        let wx_config = if env("WX_APPID").is_some() {
            WxConfig::from_lookup(&var)?
        } else {
            let emulator = WechatEmulator::start(DEV_WX_APPID, DEV_WX_SECRET).await?;
            let config =
                WxConfig::new(DEV_WX_APPID, DEV_WX_SECRET)?.with_api_base(&emulator.base_url());
            emulators.wechat = Some(emulator);
            config
        };
        let tencent_config = if env("TENCENT_SECRET_ID").is_some() {
            TencentConfig::from_lookup(&var)?
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
        let sms_config = if env("SMS_SDK_APP_ID").is_some() {
            SmsConfig::from_lookup(&var)?
        } else {
            let emulator = SmsEmulator::start(SmsEmulatorConfig {
                secret_id: DEV_TENCENT_SECRET_ID.into(),
                secret_key: DEV_TENCENT_SECRET_KEY.into(),
                sdk_app_id: DEV_SMS_SDK_APP_ID.into(),
                sign_name: DEV_SMS_SIGN_NAME.into(),
                template_id: DEV_SMS_TEMPLATE_ID.into(),
                clock: gatehouse::clock::Clock::system(),
            })
            .await?;
            let endpoint = emulator.base_url();
            emulators.sms = Some(emulator);
            SmsConfig::from_lookup(|key| match key {
                "TENCENT_SECRET_ID" => Some(DEV_TENCENT_SECRET_ID.into()),
                "TENCENT_SECRET_KEY" => Some(DEV_TENCENT_SECRET_KEY.into()),
                "SMS_SDK_APP_ID" => Some(DEV_SMS_SDK_APP_ID.into()),
                "SMS_SIGN_NAME" => Some(DEV_SMS_SIGN_NAME.into()),
                "SMS_TEMPLATE_ID" => Some(DEV_SMS_TEMPLATE_ID.into()),
                "TENCENT_SMS_ENDPOINT" => Some(endpoint.clone()),
                _ => None,
            })?
        };
        let mut blocks = match env(CAPTCHA_CONFIG) {
            Some(source) => SceneBlocks::from_source(&source)?,
            None => SceneBlocks::from_json(DEV_CAPTCHA_CONFIG)?,
        };
        let guard_routes = match env(GUARD_ROUTES) {
            Some(routes) => GuardRoutes::from_json(&routes)?,
            None => {
                // The built-in demo route brings its scene, so that any
                // CAPTCHA_CONFIG starts.
                blocks.declare_scene(GuardRoutes::DEV_DEFAULT_SCENE);
                GuardRoutes::from_json(GuardRoutes::DEV_DEFAULT)?
            }
        };
        let settings = Settings::from_blocks(&blocks, ConfigPart::All)?;
        guard_routes.check_scenes(&settings.guard)?;
        let renderer = match env("CAPTCHA_FONT") {
            Some(path) => Renderer::from_path(&path)?,
            None => Renderer::builtin(),
        };
        // The captcha routes count at their scenes' `rateLimit` of
        // CAPTCHA_CONFIG; wx-login, wx-phone, ticket verify and the SMS
        // routes at the root's.
        let options = ServiceOptions::new(settings.rate_limits.clone());
        // WeChat's risk ranks, where a scene's guard block asks for them.
        let ranks = match settings.guard.all().any(|scene| scene.wx_risk.is_some()) {
            true => Some(RiskRanks::new(&wx_config, store.clone(), &options)?),
            false => None,
        };
        let guard =
            Guard::new(settings.guard.clone(), store.clone(), &options).with_risk_ranks(ranks);
        let phone = PhoneService::new(wx_config.clone(), store.clone(), &options)?;
        let app = App::new(
            LoginService::new(wx_config, store.clone(), &options)?,
            TicketService::new(
                tencent_config,
                settings.ticket_settings(),
                store.clone(),
                &options,
            )?,
            guard,
            guard_routes,
        )
        .with_captcha(CaptchaService::new(
            settings.captcha_settings(),
            renderer,
            store.clone(),
            &options,
        ))
        .with_sms(
            SmsSender::new(sms_config, settings.sms_settings(), store.clone(), &options)?,
            SmsVerifier::new(settings.sms_settings(), store, &options),
        )
        .with_phone(phone)
        .with_emulators(&emulators);
        let app = match env(DEV_IAM).as_deref() {
            None => app,
            Some("open") => {
                tracing::warn!(
                    "{DEV_IAM}=open: POST /guard/check and /guard/report need no signature"
                );
                App {
                    iam: IamRoutes::Open,
                    ..app
                }
            }
            Some(other) => {
                return Err(format!("{DEV_IAM}={other:?}: the one value is \"open\"").into());
            }
        };
        Ok((app, emulators))
    }

    /// Every route's service but the captcha's (see [`App::with_captcha`]):
    /// the session routes and the authorizer check the sessions `login`
    /// opens, the authorizer guards `routes` with `guard`, whose doors
    /// judge the tickets brought in place of a pass with `tickets`.
    pub fn new(
        login: LoginService,
        tickets: TicketService,
        guard: Guard,
        routes: GuardRoutes,
    ) -> Self {
        let sessions = login.sessions().clone();
        // The demo page's sign-up goes to the guarded example route.
        let scene = routes
            .get("POST /demo/guarded")
            .map_or("demo", |route| route.door.scene.as_str())
            .to_owned();
        let authorizer = Authorizer::new(sessions.clone(), guard.clone(), routes);
        App {
            iam: IamRoutes::Signed,
            demo: DemoConfig::new(&scene, &Emulators::default()),
            services: Services {
                captcha: None,
                login: Some(Arc::new(login)),
                sessions: Some(Arc::new(sessions)),
                tickets: Some(Arc::new(tickets)),
                guard: Some(Arc::new(guard)),
                authorizer: Some(Arc::new(authorizer)),
                phone: None,
                sms_sender: None,
                sms_verifier: None,
            },
        }
        .judging()
    }

    /// The same app with the demo page told where `emulators` are.
    pub fn with_emulators(mut self, emulators: &Emulators) -> Self {
        self.demo = DemoConfig::new(&self.demo.scene, emulators);
        self
    }

    /// The same app with the captcha routes; its doors (the authorizer,
    /// `/guard/check`) then also judge answers brought in place of a pass.
    pub fn with_captcha(mut self, captcha: CaptchaService) -> Self {
        self.services.captcha = Some(Arc::new(captcha));
        self.judging()
    }

    /// The app whose guard (the authorizer's, and the SMS send's door)
    /// judges the challenges its captcha and ticket services can (SPEC §13).
    fn judging(mut self) -> Self {
        let services = &mut self.services;
        let captcha = services.captcha.as_ref().map(|c| c.verifier().clone());
        let judge = gatehouse::door::judge(captcha, services.tickets.clone());
        if let Some(sender) = services.sms_sender.take() {
            // The send's own door (SPEC §13), as a guarded route's.
            let sender = Arc::try_unwrap(sender)
                .map(|sender| Arc::new(sender.with_judge(judge.clone())))
                .unwrap_or_else(|shared| shared);
            services.sms_sender = Some(sender);
        }
        if let Some(guard) = &services.guard {
            let guard = guard.as_ref().clone().with_judge(judge);
            if let Some(authorizer) = &services.authorizer {
                let authorizer = authorizer.as_ref().clone().with_guard(guard.clone());
                services.authorizer = Some(Arc::new(authorizer));
            }
            services.guard = Some(Arc::new(guard));
        }
        self
    }

    /// The same app serving `POST /sms/send` and `POST /sms/verify` (both
    /// on the store the guard reads).
    pub fn with_sms(mut self, sender: SmsSender, verifier: SmsVerifier) -> Self {
        self.services.sms_sender = Some(Arc::new(sender));
        self.services.sms_verifier = Some(Arc::new(verifier));
        self.judging()
    }

    /// The same app serving `POST /wx/phone` with `phone` (its sessions must
    /// be on the store the login writes to).
    pub fn with_phone(mut self, phone: PhoneService) -> Self {
        self.services.phone = Some(Arc::new(phone));
        self
    }
}

/// Serves `app` on `addr` until the returned [`Served`] is dropped.
pub async fn start(app: App, addr: SocketAddr) -> std::io::Result<Served> {
    let app = Arc::new(app);
    serve_with(
        addr,
        move |req, peer| {
            let app = Arc::clone(&app);
            async move { handle(&app, req, peer).await }
        },
        Refusals {
            too_large,
            bad_head: Some(bad_head),
        },
    )
    .await
}

/// A body over the dev server's read cap gets the answer any handler gives
/// a body over `http::MAX_BODY_BYTES` (`invalid-request`, 400), in the
/// envelope and language of every other error, with CORS headers.
fn too_large(parts: &http::request::Parts) -> HttpResponse {
    let accept = parts
        .headers
        .get(http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let err = ApiError::InvalidRequest(format!(
        "body is larger than {} bytes",
        gatehouse::http::MAX_BODY_BYTES
    ));
    refused(http::StatusCode::BAD_REQUEST, accept, &err).map(Full::new)
}

/// A request head hyper refused before any handler saw it (see
/// [`Refusals::bad_head`]): `invalid-request` with hyper's status, in the
/// envelope and language of every other error, with CORS headers.
fn bad_head(status: http::StatusCode, accept_language: Option<&str>) -> http::Response<Bytes> {
    let why = match status {
        http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "the request headers are too large",
        http::StatusCode::URI_TOO_LONG => "the request URI is too long",
        _ => "the request head is malformed (a header holds a character HTTP does not allow)",
    };
    refused(
        status,
        accept_language,
        &ApiError::InvalidRequest(why.into()),
    )
}

/// `err` in the envelope with `status`, in the language `accept_language`
/// prefers (a value over the header cap is not read), with CORS headers.
fn refused(
    status: http::StatusCode,
    accept_language: Option<&str>,
    err: &ApiError,
) -> http::Response<Bytes> {
    let accept = accept_language.filter(|v| v.len() <= gatehouse::http::MAX_HEADER_VALUE_BYTES);
    let mut resp = with_bytes(error_response(Lang::from_accept_language(accept), err));
    *resp.status_mut() = status;
    allow_cors(&mut resp, CORS_METHODS);
    resp
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
    if let Some(resp) = demo::handle(&req, &app.demo) {
        return resp;
    }
    if let Some(resp) = crate::test_hooks::handle(&req) {
        return with_cors(resp);
    }
    if let Some(iam_path) = demo::BACK_END_PATHS
        .iter()
        .find(|(path, _)| req.method() == http::Method::POST && req.uri().path() == *path)
        .map(|(_, iam_path)| *iam_path)
    {
        let route = api::find("POST", iam_path).expect("a route of the table");
        let lambda_req = to_lambda_request(with_user_ip(req, peer), peer);
        return with_cors(from_lambda_response(
            app.services.handle(route, lambda_req).await,
        ));
    }
    let lambda_req = to_lambda_request(req, peer);
    with_cors(from_lambda_response(route(app, lambda_req).await))
}

/// The page's back-end request with the user's IP as a back end sends it
/// (`userIp`, which WeChat's rank and the per-IP counters need), unless the
/// page sent one: the browser is the user. A body that is no JSON object is
/// left for the route to refuse.
fn with_user_ip(req: http::Request<Bytes>, peer: SocketAddr) -> http::Request<Bytes> {
    let (mut parts, bytes) = req.into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let body = match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes) {
        Ok(mut object) if !object.contains_key("userIp") => {
            object.insert("userIp".into(), peer.ip().to_string().into());
            Bytes::from(serde_json::to_vec(&object).expect("a JSON object serializes"))
        }
        _ => bytes,
    };
    http::Request::from_parts(parts, body)
}

/// Sends a request to the handler of its route in [`api::ROUTES`], as API
/// Gateway would: an IAM route only with a valid SigV4 signature (unless
/// [`IamRoutes::Open`]); a session route without `Authorization` (its
/// authorizer's identity source) answered 401 without asking the
/// authorizer; a protected route (a session route, or one `GUARD_ROUTES`
/// lists) through the authorizer, a denial answered with API Gateway's own
/// 403 and an admitted request handed the authorizer's context.
pub async fn route(app: &App, mut req: lambda_http::Request) -> lambda_http::Response<Body> {
    let route = match api::find(req.method().as_str(), req.uri().path()) {
        Ok(route) => route,
        Err(err) => return error_response(Lang::from_request(&req), &err),
    };
    if route.access == Access::Iam && app.iam == IamRoutes::Signed && !signed_by_gateway(&req) {
        let body: &[u8] = match req.body() {
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => b"",
        };
        let checked = crate::sigv4::check(
            req.method().as_str(),
            req.uri(),
            req.headers(),
            body,
            std::time::SystemTime::now(),
        );
        if let Err(refusal) = checked {
            return gateway_answer(
                http::StatusCode::FORBIDDEN,
                refusal.message(),
                Some(refusal.error_type()),
            );
        }
    }
    let identity_missing = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .is_none_or(|value| value.is_empty());
    if route.access == Access::Session && identity_missing {
        return gateway_answer(http::StatusCode::UNAUTHORIZED, "Unauthorized", None);
    }
    let route_key = format!("{} {}", route.method, route.path);
    let guarded = app
        .services
        .authorizer
        .as_ref()
        .is_some_and(|auth| auth.guarded(&route_key).is_some());
    if guarded || matches!(route.access, Access::Session | Access::Guard) {
        let verdict = app
            .services
            .authorize(authorizer_event(&req, &route_key), None)
            .await
            .response;
        if !verdict.is_authorized {
            return gateway_answer(http::StatusCode::FORBIDDEN, "Forbidden", None);
        }
        if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref().cloned() {
            let mut ctx = ctx;
            let mut authorizer = ApiGatewayRequestAuthorizer::default();
            if let serde_json::Value::Object(fields) = verdict.context {
                authorizer.fields = fields.into_iter().collect();
            }
            ctx.authorizer = Some(authorizer);
            req = req.with_request_context(RequestContext::ApiGatewayV2(ctx));
        }
    }
    app.services.handle(route, req).await
}

/// Whether API Gateway has already checked this request's SigV4 signature:
/// its context names the IAM caller, as in a replayed Lambda event. The dev
/// server's own requests never do ([`to_lambda_request`] builds their
/// context), so its callers cannot claim it.
fn signed_by_gateway(req: &lambda_http::Request) -> bool {
    matches!(
        req.request_context_ref(),
        Some(RequestContext::ApiGatewayV2(ctx))
            if ctx.authorizer.as_ref().is_some_and(|a| a.iam.is_some())
    )
}

/// An answer API Gateway gives itself, before any function runs:
/// `{"message": …}`, with its error type header when it sends one.
fn gateway_answer(
    status: http::StatusCode,
    message: &str,
    error_type: Option<&str>,
) -> lambda_http::Response<Body> {
    let mut answer = lambda_http::Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(error_type) = error_type {
        answer = answer.header("x-amzn-errortype", error_type);
    }
    answer
        .body(Body::Text(
            serde_json::json!({ "message": message }).to_string(),
        ))
        .expect("static response")
}

/// The event API Gateway would hand the authorizer for `req`.
fn authorizer_event(req: &lambda_http::Request, route_key: &str) -> AuthorizerRequest {
    let mut event = AuthorizerRequest::default();
    event.route_key = Some(route_key.to_owned());
    event.headers = req.headers().clone();
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() {
        event.request_context.http.source_ip = ctx.http.source_ip.clone();
        event.request_context.http.method = ctx.http.method.clone();
    }
    event
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
    ctx.route_key = Some(format!("{} {}", parts.method, parts.uri.path()));
    ctx.http.source_ip = Some(peer.ip().to_string());
    ctx.http.user_agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    http::Request::from_parts(parts, body).with_request_context(RequestContext::ApiGatewayV2(ctx))
}

pub fn from_lambda_response(resp: lambda_http::Response<Body>) -> HttpResponse {
    with_bytes(resp).map(Full::new)
}

fn with_bytes(resp: lambda_http::Response<Body>) -> http::Response<Bytes> {
    resp.map(|body| match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(raw) => Bytes::from(raw),
        _ => Bytes::new(),
    })
}

/// The methods the dev server serves, for CORS.
const CORS_METHODS: &str = "GET, POST, DELETE, OPTIONS";

fn with_cors(mut resp: HttpResponse) -> HttpResponse {
    allow_cors(&mut resp, CORS_METHODS);
    resp
}
