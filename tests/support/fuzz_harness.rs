//! The fuzz harness: turns arbitrary bytes into a `lambda_http::Request`
//! (body, headers, request context) or a configuration, runs the real
//! handler or parser, and checks that the answer is a well-formed envelope
//! with no 5xx but the allowed ones.
//!
//! One source for two users: the cargo-fuzz targets in `fuzz/` include this
//! file by path, and `tests/e2e/fuzz_regressions.rs` replays the kept corpus
//! through it as an ordinary test. It needs only gatehouse, lambda_http,
//! http, serde_json and tokio.
//!
//! ## Input format (request targets)
//!
//! `[flags] [meta …] 0x00 [body …]`
//!
//! - `flags`: bit 0 = a request context is attached, bit 1 = the body is sent
//!   as binary (else as text when it is UTF-8), bits 2-3 = method (POST, GET,
//!   DELETE, PUT), bits 4-7 pick the route inside a target.
//! - `meta`: lines split by `\n`; the first is `sourceIp` (empty = none), the
//!   others `name:value` headers (invalid names or values are skipped), or
//!   `?query` (the request's query string).
//! - `body`: everything after the first 0x00 (no 0x00: empty body).

#![allow(dead_code)]

use std::sync::Arc;

use gatehouse::api::{Function, Services};
use gatehouse::captcha::{self, CaptchaService, CaptchaVerifier, Renderer};
use gatehouse::clock::Clock;
use gatehouse::guard::{Authorizer, AuthorizerRequest, Guard, GuardRoutes};
use gatehouse::options::ServiceOptions;
use gatehouse::ratelimit::RateLimitConfig;
use gatehouse::settings::Settings;
use gatehouse::sms::{SmsConfig, SmsSender, SmsVerifier};
use gatehouse::store::SessionStore;
use gatehouse::store::memory::MemoryStore;
use gatehouse::tencent::{TencentConfig, TicketService, verify_ticket};
use gatehouse::wechat::{LoginService, PhoneService, SessionService, WxConfig};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

/// A loopback port nothing listens on: upstream calls fail at once.
pub const UNREACHABLE: &str = "http://127.0.0.1:9";

/// A live session of the phone route's store: inputs that send
/// `Authorization: Bearer <this>` reach the phone route past its session
/// check.
pub const FUZZ_SESSION_TOKEN: &str = "FUZZ_SESSION_TOKEN_FOR_THE_PHONE_ROUTE_xxxx";

/// The paths the session target picks from (route bits of `flags`).
const SESSION_PATHS: [&str; 3] = ["/wx/session", "/wx/sessions", "/wx/session/refresh"];

/// How far the clock moves before each input: past the end of every window
/// the harness configures (rate limits: 1 s; the guarded scenes' failures:
/// 10 s). Every limit is 1 per window and each input is sent twice: the
/// first request is judged on its own, the second (when the first was
/// counted) hits the limit. So every input is independent of the ones before
/// it (a finding replays alone) and both sides of every limit are reached.
const WINDOW_MS: i64 = 10_000;

/// The services of every route, over one embedded store, with small rate
/// limits and a manual clock.
pub struct Rig {
    pub runtime: tokio::runtime::Runtime,
    pub captcha: CaptchaService,
    pub login: LoginService,
    pub sessions: SessionService,
    pub guard: Guard,
    pub authorizer: Authorizer,
    pub tickets: TicketService,
    pub phone: PhoneService,
    pub sms_sender: SmsSender,
    pub sms_verifier: SmsVerifier,
    /// The session and guard functions' services, for the targets that
    /// send requests through those functions' rows of the route table.
    pub services: Services,
    pub clock: Clock,
}

impl Rig {
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let clock = Clock::manual(1_700_000_000_000);
        let store = Arc::new(MemoryStore::new());
        let limits = r#"{"rateLimit": {"windowSeconds": 1, "createPerIp": 1, "createPerDevice": 1,
            "refreshPerIp": 1, "refreshPerDevice": 1, "verifyPerIp": 1, "wxLoginPerIp": 1,
            "ticketPerIp": 1, "wxPhonePerIp": 1, "smsSendPerIp": 1, "smsVerifyPerIp": 1},
            "sms": {"perMobilePerDay": 3, "countries": ["86", "852"]},
            "scene": {"login": {"size": 4},
            "math": {"mathExpr": true},
            "demo": {"guard": {"mode": "adaptive", "imageAfterFailures": 1,
                               "failureWindowSeconds": 10}},
            "signup": {"guard": {"mode": "always", "failureWindowSeconds": 10}}}}"#;
        let settings = Settings::from_json(limits).expect("harness config");
        // The captcha routes count at their scenes' limits, the others at
        // the root's.
        let options = ServiceOptions::new(settings.rate_limits.clone()).with_clock(clock.clone());
        let captcha = CaptchaService::new(
            settings.captcha_settings(),
            Renderer::builtin(),
            store.clone(),
            &options,
        );
        let wx = WxConfig::new("wxfuzz", "fuzz-secret")
            .expect("wx config")
            .with_api_base(UNREACHABLE);
        let login = LoginService::new(wx.clone(), store.clone(), &options).expect("login service");
        // The phone route has a store of its own, holding the one live
        // session of the harness: no other target may ever admit a fuzzed
        // request.
        let phone_store = Arc::new(MemoryStore::new());
        let phone = PhoneService::new(wx, phone_store.clone(), &options).expect("phone service");
        let tickets = TicketService::new(
            tencent_config(),
            settings.ticket_settings(),
            store.clone(),
            &options,
        )
        .expect("ticket service");
        let sms = SmsConfig::from_lookup(|key| match key {
            "TENCENT_SECRET_ID" => Some("AKIDfuzz".into()),
            "TENCENT_SECRET_KEY" => Some("fuzz-key".into()),
            "SMS_SDK_APP_ID" => Some("1400000001".into()),
            "SMS_SIGN_NAME" => Some("fuzz".into()),
            "SMS_TEMPLATE_ID" => Some("1".into()),
            "TENCENT_SMS_ENDPOINT" => Some(UNREACHABLE.into()),
            _ => None,
        })
        .expect("sms config");
        let sms_sender = SmsSender::new(sms, settings.sms_settings(), store.clone(), &options)
            .expect("sms sender");
        let sms_verifier = SmsVerifier::new(settings.sms_settings(), store.clone(), &options);
        // The doors judge the challenge itself too (SPEC §13), with services
        // of their own over the same store: an answer finds no captcha the
        // door target made, a ticket an unreachable Tencent.
        let judge = gatehouse::door::judge(
            Some(Arc::new(CaptchaVerifier::new(
                settings.captcha_settings(),
                store.clone(),
                &options,
            ))),
            Some(Arc::new(
                TicketService::new(
                    tencent_config(),
                    settings.ticket_settings(),
                    store.clone(),
                    &options,
                )
                .expect("ticket service"),
            )),
        );
        let guard = Guard::new(settings.guard.clone(), store.clone(), &options).with_judge(judge);
        let now = clock.now_ms();
        let session = gatehouse::store::SessionRecord {
            token_hash: gatehouse::wechat::crypto::token_hash(FUZZ_SESSION_TOKEN),
            openid: "o-fuzz".into(),
            unionid: None,
            phone: None,
            created_ms: now,
            // Ten years: the clock moves one window per input.
            expires_ms: now + 10 * 365 * 86_400_000,
        };
        runtime
            .block_on(phone_store.put_session(&session, None))
            .expect("the fuzz session");
        let sessions = SessionService::new(store, &options);
        // Every guarded route wants a pass or a session: no fuzzed event may
        // pass without one.
        let routes = GuardRoutes::from_json(
            r#"{"POST /demo/guarded": {"scene": "demo", "pass": "always"},
                "POST /signup": {"scene": "login", "pass": "auto", "session": true},
                "POST /bound": {"scene": "signup", "pass": "always",
                                "bindDevice": true, "bindIp": true}}"#,
        )
        .expect("harness guard routes");
        routes
            .check_scenes(&settings.guard)
            .expect("the harness routes' scenes are declared");
        let authorizer = Authorizer::new(sessions.clone(), guard.clone(), routes);
        let services = Services {
            sessions: Some(Arc::new(sessions.clone())),
            guard: Some(Arc::new(guard.clone())),
            ..Services::default()
        };
        Self {
            runtime,
            captcha,
            login,
            sessions,
            guard,
            authorizer,
            tickets,
            phone,
            sms_sender,
            sms_verifier,
            services,
            clock,
        }
    }

    fn tick(&self) {
        self.clock.advance(WINDOW_MS);
    }

    /// Sends the request `data` describes twice through `route`, checking
    /// both answers; returns the statuses (none when `data` builds no request).
    fn twice<F, Fut>(&self, data: &[u8], allowed: &[u16], route: F) -> Vec<u16>
    where
        F: Fn(u8, Request) -> Fut,
        Fut: std::future::Future<Output = Response<Body>>,
    {
        self.tick();
        let mut statuses = Vec::with_capacity(2);
        for _ in 0..2 {
            let Some((flags, req)) = request(data) else {
                return statuses;
            };
            let resp = self.runtime.block_on(route(flags, req));
            check(&resp, allowed);
            statuses.push(resp.status().as_u16());
        }
        statuses
    }

    /// The captcha routes: create, refresh, verify (route bits of `flags`).
    pub fn captcha(&self, data: &[u8]) -> Vec<u16> {
        self.twice(data, &[], |flags, req| async move {
            match (flags >> 4) % 3 {
                0 => captcha::create(&self.captcha, req).await,
                1 => captcha::refresh(&self.captcha, req).await,
                _ => captcha::verify(&self.captcha, req).await,
            }
        })
    }

    /// `POST /wx/login` against an unreachable WeChat: 502 is its answer.
    pub fn wx_login(&self, data: &[u8]) -> Vec<u16> {
        self.twice(data, &[502], |_, req| {
            gatehouse::wechat::login(&self.login, req)
        })
    }

    /// `POST /wx/phone` against an unreachable WeChat: 502 is its answer.
    pub fn wx_phone(&self, data: &[u8]) -> Vec<u16> {
        self.twice(data, &[502], |_, req| {
            gatehouse::wechat::phone(&self.phone, req)
        })
    }

    /// The session routes (`GET`/`DELETE /wx/session`, `DELETE /wx/sessions`,
    /// `POST /wx/session/refresh`, by the route bits of `flags`), and the
    /// authorizer on the body as its event.
    pub fn session(&self, data: &[u8]) -> Vec<u16> {
        self.tick();
        if let Some((_, body)) = split(data)
            && let Ok(event) = serde_json::from_slice::<AuthorizerRequest>(body)
        {
            let answer = self
                .runtime
                .block_on(gatehouse::guard::authorize(&self.authorizer, event));
            assert!(!answer.is_authorized, "a fuzzed event was authorized");
        }
        let path = data.first().map_or(SESSION_PATHS[0], |flags| {
            SESSION_PATHS[usize::from(flags >> 4) % 3]
        });
        let Some((_, req)) = request_at(data, path) else {
            return Vec::new();
        };
        let resp = self
            .runtime
            .block_on(Function::Session.lambda().answer(&self.services, req));
        check(&resp, &[]);
        vec![resp.status().as_u16()]
    }

    /// The guard's routes: `GET /guard/status`, `POST /guard/check`,
    /// `POST /guard/report`, `POST /demo/guarded` (route bits of `flags`),
    /// over the embedded store: no 5xx but 502 (a ticket in place of a
    /// pass meets the unreachable Tencent).
    pub fn guard(&self, data: &[u8]) -> Vec<u16> {
        self.twice(data, &[502], |flags, mut req| async move {
            let (method, path) = [
                ("GET", "/guard/status"),
                ("POST", "/guard/check"),
                ("POST", "/guard/report"),
                ("POST", "/demo/guarded"),
            ][usize::from(flags >> 4) % 4];
            *req.method_mut() = http::Method::from_bytes(method.as_bytes()).expect("a method");
            let query = req.uri().query().map(str::to_owned);
            *req.uri_mut() = match query {
                Some(query) => format!("{path}?{query}"),
                None => path.to_owned(),
            }
            .parse()
            .unwrap_or_else(|_| path.parse().expect("a path"));
            Function::Guard.lambda().answer(&self.services, req).await
        })
    }

    /// The authorizer on an arbitrary event (the input as JSON). No fuzzed
    /// event may be admitted: every route it guards wants a pass or a
    /// session, and the fuzzer holds neither.
    pub fn authorizer(&self, data: &[u8]) {
        self.tick();
        if let Ok(event) = serde_json::from_slice::<AuthorizerRequest>(data) {
            let answer = self
                .runtime
                .block_on(gatehouse::guard::authorize(&self.authorizer, event));
            assert!(!answer.is_authorized, "a fuzzed event was authorized");
        }
    }

    /// The challenge at the door (SPEC §13): the request `data` describes,
    /// its headers (any bytes: `X-Gatehouse-Captcha`, `-Ticket`, `-Randstr`,
    /// `X-Gatehouse-Pass`, `X-Device-Id` …) and source IP handed to the
    /// authorizer as an event of a guarded route (route bits of `flags`:
    /// `POST /demo/guarded`, `POST /bound`, `POST /signup`). Its headers'
    /// challenge is parsed on its own too. No fuzzed event may be admitted:
    /// no answer has a captcha in this store, Tencent is unreachable, and
    /// every route asks for one of them (or a session).
    pub fn door(&self, data: &[u8]) {
        self.tick();
        let Some((flags, req)) = request(data) else {
            return;
        };
        let _ = gatehouse::guard::challenge::from_headers(req.headers());
        let route =
            ["POST /demo/guarded", "POST /bound", "POST /signup"][usize::from(flags >> 4) % 3];
        let source_ip = split(data)
            .and_then(|(meta, _)| meta.split(|&b| b == b'\n').next())
            .filter(|ip| flags & 1 == 1 && !ip.is_empty())
            .map(|ip| String::from_utf8_lossy(ip).into_owned());
        let mut event: AuthorizerRequest = serde_json::from_value(serde_json::json!({
            "version": "2.0", "type": "REQUEST",
            "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/POST/x",
            "routeKey": route, "rawPath": "/x", "rawQueryString": "",
            "requestContext": {
                "http": {"method": "POST", "path": "/x", "protocol": "HTTP/1.1",
                         "sourceIp": source_ip, "userAgent": "fuzz"},
                "requestId": "r", "routeKey": route, "stage": "$default",
                "time": "01/Jan/2025:00:00:00 +0000", "timeEpoch": 1735689600000i64
            }
        }))
        .expect("an authorizer event");
        event.headers = req.headers().clone();
        let answer = self
            .runtime
            .block_on(gatehouse::guard::authorize(&self.authorizer, event));
        assert!(!answer.is_authorized, "a fuzzed challenge was admitted");
    }

    /// `POST /sms/send` against an unreachable Tencent SMS: 502 is its
    /// answer (and no code stays verifiable).
    pub fn sms_send(&self, data: &[u8]) -> Vec<u16> {
        self.twice(data, &[502], |_, req| {
            gatehouse::sms::routes::send(&self.sms_sender, req)
        })
    }

    /// `POST /sms/verify` over the embedded store: no 5xx at all.
    pub fn sms_verify(&self, data: &[u8]) -> Vec<u16> {
        self.twice(data, &[], |_, req| {
            gatehouse::sms::routes::verify(&self.sms_verifier, req)
        })
    }

    /// `POST /ticket/verify` against an unreachable Tencent: 502 is its answer.
    pub fn ticket(&self, data: &[u8]) -> Vec<u16> {
        self.twice(data, &[502], |_, req| verify_ticket(&self.tickets, req))
    }
}

/// The harness's Tencent: its keys, at an unreachable endpoint.
fn tencent_config() -> TencentConfig {
    TencentConfig::from_lookup(|key| match key {
        "TENCENT_SECRET_ID" => Some("AKIDfuzz".into()),
        "TENCENT_SECRET_KEY" => Some("fuzz-key".into()),
        "CAPTCHA_APP_ID" => Some("190000001".into()),
        "CAPTCHA_APP_SECRET_KEY" => Some("fuzz-app-key".into()),
        "TENCENT_CAPTCHA_ENDPOINT" => Some(UNREACHABLE.into()),
        _ => None,
    })
    .expect("tencent config")
}

impl Default for Rig {
    fn default() -> Self {
        Self::new()
    }
}

fn split(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, rest) = data.split_first()?;
    Some(match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    })
}

/// Builds the request an input describes (see the module docs).
pub fn request(data: &[u8]) -> Option<(u8, Request)> {
    request_at(data, "/route")
}

/// As [`request`], to `path`.
pub fn request_at(data: &[u8], path: &str) -> Option<(u8, Request)> {
    let flags = *data.first()?;
    let (meta, body) = split(data)?;
    let mut lines = meta.split(|&b| b == b'\n');
    let source_ip = lines.next().unwrap_or(&[]);
    let method = ["POST", "GET", "DELETE", "PUT"][usize::from((flags >> 2) & 3)];
    let mut uri = String::from(path);
    let mut builder = http::Request::builder().method(method);
    for line in lines {
        if let Some(query) = line.strip_prefix(b"?") {
            uri = format!("{path}?{}", String::from_utf8_lossy(query));
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(&line[..colon]),
            http::HeaderValue::from_bytes(&line[colon + 1..]),
        ) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    let body = match std::str::from_utf8(body) {
        _ if body.is_empty() => Body::Empty,
        Ok(text) if flags & 2 == 0 => Body::Text(text.to_owned()),
        _ => Body::Binary(body.to_vec()),
    };
    let uri: http::Uri = uri
        .parse()
        .unwrap_or_else(|_| "/route".parse().expect("a path"));
    let mut req = builder.uri(uri).body(body).ok()?;
    if flags & 1 == 1 {
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.http.source_ip =
            (!source_ip.is_empty()).then(|| String::from_utf8_lossy(source_ip).into_owned());
        req = req.with_request_context(RequestContext::ApiGatewayV2(ctx));
    }
    Some((flags, req))
}

/// The answer is JSON in the uniCloud shape, with a status that goes with its
/// errCode, and no 5xx but 503 store-unavailable and the `allowed` ones.
pub fn check(resp: &Response<Body>, allowed: &[u16]) {
    let status = resp.status().as_u16();
    let Body::Text(text) = resp.body() else {
        panic!("status {status}: the body is not text");
    };
    let value: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("status {status}: {e}: {text}"));
    let code = &value["errCode"];
    assert!(value["errMsg"].is_string(), "no errMsg: {text}");
    if status == 200 {
        assert_eq!(code, 0, "{text}");
    } else {
        assert!(
            code.is_string(),
            "status {status} without an errCode: {text}"
        );
    }
    if status >= 500 {
        assert!(
            status == 503 || allowed.contains(&status),
            "status {status}: {text}"
        );
    }
    if status == 429 {
        let retry = resp
            .headers()
            .get("retry-after")
            .expect("Retry-After on 429");
        let secs: u64 = retry.to_str().unwrap().parse().unwrap();
        assert!((1..=86_400).contains(&secs), "Retry-After {secs}");
    }
}

/// Configuration parsing: `CAPTCHA_CONFIG` JSON (byte 0 even) or the
/// environment of the WeChat, Tencent and DynamoDB settings (byte 0 odd;
/// lines `KEY=value`). Never panics; an accepted config is within its ranges.
pub fn config(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if selector % 2 == 0 {
        if let Ok(settings) = Settings::from_json(&text) {
            for scene in settings.captcha.scene_names().chain(["any-other"]) {
                let s = settings.captcha.scene(scene);
                assert!(gatehouse::captcha::WIDTH_RANGE.contains(&s.width));
                assert!(gatehouse::captcha::HEIGHT_RANGE.contains(&s.height));
                assert!(s.math_min <= s.math_max);
                assert!(settings.rate_limits.scene(scene).window_seconds >= 1);
                let guard = settings.guard.scene(scene);
                assert!(guard.image_after_failures <= guard.tencent_after_failures);
                let sms = settings.sms.scene(scene);
                assert!(sms.resend_seconds <= sms.expires_seconds && !sms.countries.is_empty());
                // Velocity: each threshold in range, the ticket's past the
                // image's unless one is off, the window and factor in range.
                let (image, tencent) = (guard.image_after_requests, guard.tencent_after_requests);
                assert!(gatehouse::guard::config::REQUESTS_RANGE.contains(&image));
                assert!(gatehouse::guard::config::REQUESTS_RANGE.contains(&tencent));
                assert!(image == 0 || tencent == 0 || image < tencent);
                assert!(
                    gatehouse::guard::config::REQUEST_WINDOW_RANGE
                        .contains(&guard.request_window_seconds)
                );
                assert!(
                    gatehouse::guard::config::IP_REQUEST_FACTOR_RANGE
                        .contains(&guard.ip_request_factor)
                );
                if let Some(risk) = guard.wx_risk {
                    let set: Vec<u8> = [
                        risk.image_from_rank,
                        risk.tencent_from_rank,
                        risk.refuse_from_rank,
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    assert!(set.windows(2).all(|w| w[0] <= w[1]) && set.iter().all(|r| *r <= 4));
                    assert!(
                        gatehouse::guard::wx_risk::CACHE_SECONDS_RANGE
                            .contains(&risk.cache_seconds)
                    );
                }
            }
        }
        if let Ok(routes) = gatehouse::guard::GuardRoutes::from_json(&text) {
            for (key, route) in routes.iter() {
                assert!(
                    key.contains(' ')
                        && gatehouse::domain::Scene::is_valid(route.door.scene.as_str())
                );
            }
            // A route's scene is declared in a config, or the check names
            // a route and its scene.
            let declared = Settings::from_json(r#"{"scene": {"pay": {}, "demo": {}}}"#)
                .expect("a config")
                .guard;
            if let Err(err) = routes.check_scenes(&declared) {
                let err = err.to_string();
                assert!(
                    routes
                        .iter()
                        .any(|(key, r)| err.contains(key) && err.contains(r.door.scene.as_str())),
                    "{err}"
                );
            }
        }
        return;
    }
    let vars: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let lookup = |key: &str| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    if let Ok(wx) = WxConfig::from_lookup(lookup) {
        assert!(!wx.appid.is_empty());
        assert!(wx.api_base.to_ascii_lowercase().starts_with("http"));
        assert!(wx.api_base.bytes().all(|b| b.is_ascii_graphic()));
    }
    let _ = TencentConfig::from_lookup(lookup);
    let _ = SmsConfig::from_lookup(lookup);
    let _ = gatehouse::store::dynamo::DynamoSettings::from_lookup(lookup);
    let _ = RateLimitConfig::default().window(i64::from_le_bytes({
        let mut b = [0u8; 8];
        let n = rest.len().min(8);
        b[..n].copy_from_slice(&rest[..n]);
        b
    }));
}
