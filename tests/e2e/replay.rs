//! Replays every event in `events/` through `lambda_http::request::from_str`
//! and the function's own handler, and checks each response against
//! `tests/replay.json`. An event without an expectation fails the test, so
//! every new event is checked.

use std::collections::BTreeMap;
use std::sync::Arc;

use gatehouse::api::ROUTES;
use gatehouse::captcha::Renderer;
use gatehouse::captcha::service::CaptchaService;
use gatehouse::clock::Clock;
use gatehouse::guard::pass::PassToken;
use gatehouse::guard::{AuthorizerRequest, Guard, GuardRoutes};
use gatehouse::options::ServiceOptions;
use gatehouse::settings::Settings;
use gatehouse::sms::{SmsSender, SmsVerifier};
use gatehouse::store::memory::MemoryStore;
use gatehouse::store::{
    CaptchaRecord, CaptchaStore, PassGrant, PassStore, SessionStore, SmsCodeStore, SmsIssue,
};
use gatehouse::tencent::{TencentConfig, TicketService};
use gatehouse::wechat::{LoginService, PhoneService, WxConfig};
use gatehouse_e2e::sms::{SmsRig, sms_record};
use gatehouse_e2e::{captcha as fixture_captcha, live_session, repo_path, seed_session_key};
use gatehouse_local::server::{App, route};
use gatehouse_local::tencent_emulator::TencentEmulator;
use gatehouse_local::wechat_emulator::WechatEmulator;
use lambda_http::Body;
use serde_json::Value;

async fn seed(store: &MemoryStore, seed: &Value) {
    let now = Clock::system().now_ms();
    if let Some(session) = seed.get("session") {
        let record = live_session(
            session["token"].as_str().unwrap(),
            session["openid"].as_str().unwrap(),
            3_600_000,
        );
        store
            .put_session(&record, Some(&seed_session_key()))
            .await
            .unwrap();
    }
    if let Some(captcha) = seed.get("captcha") {
        store
            .create_captcha(&CaptchaRecord {
                ip: "203.0.113.10".into(),
                created_date: now,
                expired_date: now + 180_000,
                ..fixture_captcha(
                    captcha["scene"].as_str().unwrap(),
                    captcha["deviceId"].as_str().unwrap(),
                    captcha["code"].as_str().unwrap(),
                )
            })
            .await
            .unwrap();
    }
    if let Some(code) = seed.get("smsCode") {
        // A code sent to the number in the scene, as a send leaves it.
        let record = sms_record(
            code["scene"].as_str().unwrap(),
            code["mobile"].as_str().unwrap(),
            code["code"].as_str().unwrap(),
            now,
        );
        assert_eq!(
            store.issue_sms_code(&record, &[], now).await.unwrap(),
            SmsIssue::Written
        );
    }
    if let Some(pass) = seed.get("pass") {
        // A solved captcha's pass, whose token is the event's.
        let token = PassToken::parse(pass["token"].as_str().unwrap()).expect("a pass token");
        let (scene, device) = (
            pass["scene"].as_str().unwrap(),
            pass["deviceId"].as_str().unwrap(),
        );
        let grant = PassGrant {
            created_ms: now,
            expires_ms: now + 300_000,
            ..gatehouse_e2e::pass_grant(&token, scene, Some(device), "203.0.113.10")
        };
        store.grant_pass(&grant).await.unwrap();
    }
}

/// Whether every field of `expected` is in `actual` with the same value
/// (objects compared field by field, the rest as is).
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => expected
            .iter()
            .all(|(key, want)| actual.get(key).is_some_and(|got| contains(got, want))),
        _ => actual == expected,
    }
}

/// `CAPTCHA_CONFIG` of the replay: `demo` guarded in adaptive mode (as the
/// dev server has it), `signup` always; `register` lets a client choose the
/// image size (`clientSize`), `login` does not.
const REPLAY_CONFIG: &str = r#"{"scene": {
    "demo": {"guard": {"mode": "adaptive", "imageAfterFailures": 2, "tencentAfterFailures": 4}},
    "signup": {"guard": {"mode": "always"}},
    "register": {"clientSize": true}}}"#;

/// `GUARD_ROUTES` of the replay, one route per `pass` rule.
const REPLAY_GUARD_ROUTES: &str = r#"{
    "POST /demo/guarded": {"scene": "demo", "pass": "auto", "session": false},
    "POST /signup": {"scene": "signup", "pass": "always", "session": false},
    "POST /pay": {"scene": "signup", "pass": "always", "session": true},
    "GET /profile": {"scene": "signup", "pass": "never", "session": true}}"#;

/// One replayed event and what its route answered (authorizer events,
/// which are not HTTP requests, are left out).
pub(crate) struct Replayed {
    pub name: String,
    pub method: String,
    /// Path and query, as the route saw them.
    pub uri: http::Uri,
    /// The request body as the route read it (base64 bodies decoded).
    pub request_body: Option<String>,
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

#[tokio::test]
async fn every_event_replays_to_its_expected_response() {
    let (_, failures) = replay_every_event().await;
    assert!(
        failures.is_empty(),
        "replay failures:\n{}",
        failures.join("\n")
    );
}

/// Replays every event of `events/` in order; returns the HTTP answers
/// (`tests/e2e/openapi.rs` holds them to `openapi.yaml`) and where they
/// differ from `tests/replay.json`.
pub(crate) async fn replay_every_event() -> (Vec<Replayed>, Vec<String>) {
    let expectations: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(repo_path("tests/replay.json")).unwrap())
            .unwrap();
    let mut files: Vec<_> = std::fs::read_dir(repo_path("events"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();

    let store = Arc::new(MemoryStore::new());
    let wechat_emulator = WechatEmulator::start("wxreplay", "replay-secret")
        .await
        .unwrap();
    let tencent_emulator =
        TencentEmulator::start("AKIDreplay", "replay-key", 190000001, "replay-app-key")
            .await
            .unwrap();
    let tencent_config = TencentConfig::from_lookup(|key| {
        Some(match key {
            "TENCENT_SECRET_ID" => "AKIDreplay".into(),
            "TENCENT_SECRET_KEY" => "replay-key".into(),
            "CAPTCHA_APP_ID" => "190000001".into(),
            "CAPTCHA_APP_SECRET_KEY" => "replay-app-key".into(),
            "TENCENT_CAPTCHA_ENDPOINT" => tencent_emulator.base_url(),
            _ => return None,
        })
    })
    .unwrap();
    let sms = SmsRig::start().await;
    // The replayed guard events run against these scenes and routes.
    let settings = Settings::from_json(REPLAY_CONFIG).unwrap();
    let routes = GuardRoutes::from_json(REPLAY_GUARD_ROUTES).unwrap();
    let wx_config = WxConfig::new("wxreplay", "replay-secret")
        .unwrap()
        .with_api_base(&wechat_emulator.base_url());
    let options = ServiceOptions::new(settings.rate_limits.clone());
    let app = App::new(
        LoginService::new(wx_config.clone(), store.clone(), &options).unwrap(),
        TicketService::new(
            tencent_config,
            settings.ticket_settings(),
            store.clone(),
            &options,
        )
        .unwrap(),
        Guard::new(settings.guard.clone(), store.clone(), &options),
        routes,
    )
    .with_captcha(CaptchaService::new(
        settings.captcha_settings(),
        Renderer::builtin(),
        store.clone(),
        &options,
    ))
    .with_phone(PhoneService::new(wx_config, store.clone(), &options).unwrap())
    .with_sms(
        SmsSender::new(
            sms.config(),
            settings.sms_settings(),
            store.clone(),
            &options,
        )
        .unwrap(),
        SmsVerifier::new(settings.sms_settings(), store.clone(), &options),
    );

    let mut failures = Vec::new();
    let mut replayed = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let Some(expected) = expectations.get(name) else {
            failures.push(format!("{name}: no expectation in tests/replay.json"));
            continue;
        };
        if let Some(seed_spec) = expected.get("seed") {
            seed(&store, seed_spec).await;
        }
        let raw = std::fs::read_to_string(path).unwrap();
        if expected.get("authorizer").is_some() {
            let event: AuthorizerRequest = serde_json::from_str(&raw).unwrap();
            let verdict =
                serde_json::to_value(app.services.authorize(event, None).await.response).unwrap();
            if verdict != expected["authorizer"] {
                failures.push(format!("{name}: authorizer answered {verdict}"));
            }
            continue;
        }
        let request = match lambda_http::request::from_str(&raw) {
            Ok(request) => request,
            Err(err) => {
                failures.push(format!(
                    "{name}: does not parse as an API Gateway event: {err}"
                ));
                continue;
            }
        };
        let (method, uri) = (request.method().to_string(), request.uri().clone());
        let request_body = match request.body() {
            Body::Text(text) => Some(text.clone()),
            Body::Binary(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        };
        let response = route(&app, request).await;
        let status = response.status().as_u16();
        let body: Value = match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("{name}: unexpected body {other:?}"),
        };
        if Some(u64::from(status)) != expected["status"].as_u64() {
            failures.push(format!("{name}: status {status}, body {body}"));
        }
        if body["errCode"] != expected["errCode"] {
            failures.push(format!(
                "{name}: errCode {}, want {}",
                body["errCode"], expected["errCode"]
            ));
        }
        if let Some(msg) = expected.get("errMsg")
            && &body["errMsg"] != msg
        {
            failures.push(format!("{name}: errMsg {}, want {msg}", body["errMsg"]));
        }
        if let Some(want) = expected.get("body")
            && !contains(&body, want)
        {
            failures.push(format!("{name}: body {body} does not hold {want}"));
        }
        for field in expected["fields"].as_array().into_iter().flatten() {
            if body.get(field.as_str().unwrap()).is_none() {
                failures.push(format!("{name}: no field {field} in {body}"));
            }
        }
        replayed.push(Replayed {
            name: name.to_owned(),
            method,
            uri,
            request_body,
            status,
            headers: response.headers().clone(),
            body,
        });
    }
    // Every route of the table is replayed by an HTTP event of its own.
    for route in ROUTES {
        let replays = |r: &Replayed| r.method == route.method && r.uri.path() == route.path;
        if !replayed.iter().any(replays) {
            failures.push(format!(
                "{} {}: no event in events/ replays it",
                route.method, route.path
            ));
        }
    }
    for name in expectations.keys() {
        if !files
            .iter()
            .any(|p| p.file_name().unwrap() == name.as_str())
        {
            failures.push(format!(
                "{name}: expected in tests/replay.json but not in events/"
            ));
        }
    }
    (replayed, failures)
}
