//! The rig of the SPEC §10 tests (`wechat_phone.rs`, `wechat_sessions.rs`):
//! the WeChat emulator and every WeChat service over one store (embedded or
//! DynamoDB Local) and one manual clock, and requests shaped as API Gateway
//! hands them to the functions.

use std::net::SocketAddr;
use std::sync::Arc;

use gatehouse::api::{Function, Services};
use gatehouse::clock::Clock;
use gatehouse::guard::{Authorizer, AuthorizerRequest, AuthorizerResponse, Guard};
use gatehouse::options::ServiceOptions;
use gatehouse::ratelimit::RateLimitConfig;
use gatehouse::store::Store;
use gatehouse::wechat::{self, LoginService, PhoneService, SessionService, WxConfig};
use gatehouse_e2e::{NOW, status_and_json};
use gatehouse_local::wechat_emulator::WechatEmulator;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

pub const APPID: &str = "wx0123456789abcdef";
pub const SECRET: &str = "emu-secret-DO-NOT-LOG-42";

pub struct WxRig {
    pub emu: WechatEmulator,
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub config: WxConfig,
    pub login: LoginService,
    pub sessions: SessionService,
    pub phone: PhoneService,
}

/// A request as API Gateway hands it to a function (`routeKey` set), from
/// 203.0.113.7.
pub fn request(method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Request {
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.http.source_ip = Some("203.0.113.7".into());
    ctx.route_key = Some(format!("{method} {path}"));
    let mut builder = http::Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = body.map_or(Body::Empty, |b| Body::Text(b.to_string()));
    builder
        .body(body)
        .unwrap()
        .with_request_context(RequestContext::ApiGatewayV2(ctx))
}

/// An authorizer event of `GET /me` for bearer `token`, from 203.0.113.7.
pub fn authorizer_event(token: &str) -> AuthorizerRequest {
    let bearer = format!("Bearer {token}");
    gatehouse_e2e::authorizer_event("GET /me", "203.0.113.7", &[("authorization", &bearer)])
}

/// The WeChat emulator of [`APPID`] on a loopback port, its time on `clock`.
pub async fn emulator(clock: &Clock) -> WechatEmulator {
    WechatEmulator::start_with(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        APPID,
        SECRET,
        clock.clone(),
    )
    .await
    .unwrap()
}

/// `req` answered as the `session` function's Lambda answers it, over
/// `sessions`.
pub async fn session_answer(sessions: &SessionService, req: Request) -> Response<Body> {
    let services = Services {
        sessions: Some(Arc::new(sessions.clone())),
        ..Services::default()
    };
    Function::Session.lambda().answer(&services, req).await
}

/// Rate limits off (the rate-limit tests cover them), time on `clock`.
pub fn options(clock: &Clock) -> ServiceOptions {
    ServiceOptions::new(RateLimitConfig::disabled()).with_clock(clock.clone())
}

/// The authorizer over `sessions`, guarding no route: the plain session
/// check of protected routes.
pub async fn authorize_on(
    sessions: &SessionService,
    store: Arc<dyn Store>,
    event: AuthorizerRequest,
) -> AuthorizerResponse {
    let guard = Guard::new(
        Default::default(),
        store,
        &ServiceOptions::new(RateLimitConfig::disabled()),
    );
    let auth = Authorizer::new(sessions.clone(), guard, Default::default());
    gatehouse::guard::authorize(&auth, event).await
}

impl WxRig {
    /// The emulator and the services over `store`, the clock at the
    /// fixtures' [`NOW`], rate limits off (the rate-limit tests cover them).
    pub async fn new(store: Arc<dyn Store>) -> Self {
        let clock = Clock::manual(*NOW);
        let emu = emulator(&clock).await;
        let config = WxConfig::new(APPID, SECRET)
            .unwrap()
            .with_api_base(&emu.base_url());
        let login = LoginService::new(config.clone(), store.clone(), &options(&clock)).unwrap();
        let sessions = login.sessions().clone();
        let phone = PhoneService::new(config.clone(), store.clone(), &options(&clock)).unwrap();
        Self {
            emu,
            store,
            clock,
            config,
            login,
            sessions,
            phone,
        }
    }

    /// A new `wx-phone` instance (cold: nothing in memory) on the rig's
    /// store, clock and emulator.
    pub fn phone_instance(&self) -> PhoneService {
        self.phone_instance_on(self.store.clone())
    }

    /// A new `wx-phone` instance on another client of the same table.
    pub fn phone_instance_on(&self, store: Arc<dyn Store>) -> PhoneService {
        PhoneService::new(self.config.clone(), store, &options(&self.clock)).unwrap()
    }

    /// A new `wx-phone` instance on the rig's store counting at `limits`.
    pub fn phone_instance_limited(&self, limits: RateLimitConfig) -> PhoneService {
        let options = ServiceOptions::new(limits).with_clock(self.clock.clone());
        PhoneService::new(self.config.clone(), self.store.clone(), &options).unwrap()
    }

    /// `POST /wx/login` with `body`.
    pub async fn login_with(&self, body: Value) -> (u16, Value) {
        let resp =
            wechat::login(&self.login, request("POST", "/wx/login", None, Some(&body))).await;
        status_and_json(&resp)
    }

    /// A fresh login of `user`: its token.
    pub async fn login(&self, user: &str) -> String {
        let (status, body) = self
            .login_with(json!({"code": self.emu.issue_code(user)}))
            .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// A request to the `session` function, as its Lambda answers it.
    pub async fn session(&self, method: &str, path: &str, token: &str) -> (u16, Value) {
        let req = request(method, path, Some(token), None);
        status_and_json(&session_answer(&self.sessions, req).await)
    }

    /// `GET /wx/session`'s status for `token`.
    pub async fn status_of(&self, token: &str) -> u16 {
        self.session("GET", "/wx/session", token).await.0
    }

    /// `POST /wx/phone` through the warm instance with any `body`, bearing
    /// `token` if there is one.
    pub async fn phone_request(&self, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.phone_request_on(&self.phone, token, body).await
    }

    async fn phone_request_on(
        &self,
        svc: &PhoneService,
        token: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        let resp = wechat::phone(svc, request("POST", "/wx/phone", token, Some(body))).await;
        status_and_json(&resp)
    }

    /// `POST /wx/phone` through `svc`.
    pub async fn phone_on(&self, svc: &PhoneService, token: &str, code: &str) -> (u16, Value) {
        self.phone_request_on(svc, Some(token), &json!({ "code": code }))
            .await
    }

    /// `POST /wx/phone` through the rig's warm instance.
    pub async fn phone(&self, token: &str, code: &str) -> (u16, Value) {
        self.phone_on(&self.phone, token, code).await
    }

    /// `POST /wx/phone` through `svc` with a fresh code for `number`.
    pub async fn phone_number_on(
        &self,
        svc: &PhoneService,
        token: &str,
        number: &str,
    ) -> (u16, Value) {
        let code = self.emu.issue_phone_code(number);
        self.phone_on(svc, token, &code).await
    }

    /// `POST /wx/phone` through the warm instance with a fresh code for
    /// `number`.
    pub async fn phone_number(&self, token: &str, number: &str) -> (u16, Value) {
        self.phone_number_on(&self.phone, token, number).await
    }

    pub async fn authorize(&self, token: &str) -> AuthorizerResponse {
        authorize_on(&self.sessions, self.store.clone(), authorizer_event(token)).await
    }
}
