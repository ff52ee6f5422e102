//! End-to-end WeChat login: the handlers of `wx-login`, `session` and
//! `authorizer` against the WeChat emulator over loopback, driven by the
//! events in `events/`.

use std::sync::Arc;
use std::time::Duration;

use gatehouse::clock::Clock;
use gatehouse::guard::{AuthorizerRequest, AuthorizerResponse};
use gatehouse::options::ServiceOptions;
use gatehouse::ratelimit::RateLimitConfig;
use gatehouse::store::SessionStore;
use gatehouse::store::memory::MemoryStore;
use gatehouse::wechat::{self, LoginService, WxConfig, crypto};
use gatehouse_local::wechat_emulator::WechatEmulator;

use crate::wechat_rig::{APPID, SECRET, authorize_on, emulator, session_answer};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

const TOKEN_PLACEHOLDER: &str = "REPLACE_WITH_TOKEN_FROM_WX_LOGIN_xxxxxxxxxx";
const START_MS: i64 = 1_700_000_000_000;

struct Rig {
    emu: WechatEmulator,
    svc: LoginService,
    store: Arc<MemoryStore>,
    clock: Clock,
}

async fn rig_with(appid: &str, secret: &str, timeout: Duration) -> Rig {
    let clock = Clock::manual(START_MS);
    let emu = emulator(&clock).await;
    let config = WxConfig::new(appid, secret)
        .unwrap()
        .with_api_base(&emu.base_url());
    let store = Arc::new(MemoryStore::new());
    // These tests count the store's rows: no rate-limit counters among them
    // (e2e/ratelimit.rs and e2e/faults.rs cover the limits).
    let options = ServiceOptions::new(RateLimitConfig::disabled())
        .with_clock(clock.clone())
        .with_timeout(timeout);
    let svc = LoginService::new(config, store.clone(), &options).unwrap();
    Rig {
        emu,
        svc,
        store,
        clock,
    }
}

async fn rig() -> Rig {
    rig_with(APPID, SECRET, Duration::from_secs(5)).await
}

fn event_text(name: &str) -> String {
    let path = gatehouse_e2e::repo_path("events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `events/wx-login.json` with its body replaced.
fn login_event(body: &Value) -> Request {
    let mut event: Value = serde_json::from_str(&event_text("wx-login.json")).unwrap();
    event["body"] = Value::from(body.to_string());
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// A session event with the placeholder token replaced.
fn session_event(name: &str, token: &str) -> Request {
    let text = event_text(name).replace(TOKEN_PLACEHOLDER, token);
    lambda_http::request::from_str(&text).unwrap()
}

/// A session event answered as the session function's Lambda answers it.
async fn session(rig: &Rig, event: Request) -> Response<Body> {
    session_answer(rig.svc.sessions(), event).await
}

/// The authorizer over the rig's sessions, guarding no route: the plain
/// session check.
async fn authorize(rig: &Rig, event: AuthorizerRequest) -> AuthorizerResponse {
    authorize_on(rig.svc.sessions(), rig.store.clone(), event).await
}

fn authorizer_event(token: &str) -> AuthorizerRequest {
    let text = event_text("authorizer-request.json").replace(TOKEN_PLACEHOLDER, token);
    serde_json::from_str(&text).unwrap()
}

fn json_of(resp: &Response<Body>) -> Value {
    match resp.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

async fn login(rig: &Rig, body: Value) -> (u16, Value) {
    let resp = wechat::login(&rig.svc, login_event(&body)).await;
    (resp.status().as_u16(), json_of(&resp))
}

#[test]
fn every_event_parses_as_its_route() {
    let routes = [
        ("wx-login.json", "POST", "/wx/login"),
        ("wx-login-code-used.json", "POST", "/wx/login"),
        ("wx-login-no-code.json", "POST", "/wx/login"),
        ("session-get.json", "GET", "/wx/session"),
        ("session-get-no-token.json", "GET", "/wx/session"),
        ("session-delete.json", "DELETE", "/wx/session"),
    ];
    for (name, method, path) in routes {
        let req = lambda_http::request::from_str(&event_text(name)).unwrap();
        assert_eq!(req.method().as_str(), method, "{name}");
        assert_eq!(req.uri().path(), path, "{name}");
        assert_eq!(gatehouse::http::source_ip(&req), Some("203.0.113.7"));
    }
    let auth = authorizer_event(TOKEN_PLACEHOLDER);
    assert_eq!(auth.route_key.as_deref(), Some("GET /me"));
    assert_eq!(auth.identity_source.unwrap().len(), 1);
}

#[tokio::test]
async fn login_check_authorize_and_logout() {
    let rig = rig().await;
    let code = rig.emu.issue_code("alice");
    let (status, body) = login(&rig, json!({ "code": code })).await;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["errCode", "errMsg", "token", "tokenExpired"]);
    assert_eq!(body["errCode"], 0);
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(crypto::token_looks_valid(&token), "{token}");
    assert_eq!(body["tokenExpired"], START_MS + 3 * 24 * 3600 * 1000);

    // Stored under the token's SHA-256 only, with the emulator's session_key.
    assert_eq!(rig.store.session_count(), 1);
    let row = rig
        .store
        .get_session(&crypto::token_hash(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.openid, rig.emu.openid_for("alice"));
    assert_eq!(row.unionid, Some(rig.emu.unionid_for("alice")));
    let key = rig
        .store
        .session_key(&row.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Some(key.expose()),
        rig.emu.session_key_for_code(&code).as_deref()
    );
    assert!(rig.store.get_session(&token).await.unwrap().is_none());

    let resp = session(&rig, session_event("session-get.json", &token)).await;
    assert_eq!(resp.status(), 200);
    let me = json_of(&resp);
    assert_eq!(me["openid"], rig.emu.openid_for("alice").as_str());
    assert_eq!(me["unionid"], rig.emu.unionid_for("alice").as_str());
    assert_eq!(me["tokenExpired"], body["tokenExpired"]);
    assert!(me.get("session_key").is_none() && me.get("sessionKey").is_none());

    let allowed = authorize(&rig, authorizer_event(&token)).await;
    assert!(allowed.is_authorized);
    assert_eq!(
        allowed.context,
        json!({"openid": rig.emu.openid_for("alice"), "unionid": rig.emu.unionid_for("alice")})
    );

    let resp = session(&rig, session_event("session-delete.json", &token)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(&resp)["errCode"], 0);
    assert_eq!(rig.store.session_count(), 0);
    let resp = session(&rig, session_event("session-get.json", &token)).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(json_of(&resp)["errCode"], "session-invalid");
    assert!(
        !authorize(&rig, authorizer_event(&token))
            .await
            .is_authorized
    );

    let resp = session(
        &rig,
        lambda_http::request::from_str(&event_text("session-get-no-token.json")).unwrap(),
    )
    .await;
    assert_eq!(json_of(&resp)["errCode"], "session-required");
}

#[tokio::test]
async fn sessions_expire_while_their_row_remains() {
    let rig = rig().await;
    let code = rig.emu.issue_code_with("bob", false);
    let (_, body) = login(&rig, json!({ "code": code })).await;
    let token = body["token"].as_str().unwrap().to_owned();
    let me = json_of(&session(&rig, session_event("session-get.json", &token)).await);
    assert!(me.get("unionid").is_none(), "{me}");

    rig.clock.advance(3 * 24 * 3600 * 1000 - 1);
    let resp = session(&rig, session_event("session-get.json", &token)).await;
    assert_eq!(resp.status(), 200);
    rig.clock.advance(1);
    let resp = session(&rig, session_event("session-get.json", &token)).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(json_of(&resp)["errCode"], "session-expired");
    assert_eq!(rig.store.session_count(), 1);
    assert!(
        !authorize(&rig, authorizer_event(&token))
            .await
            .is_authorized
    );
}

#[tokio::test]
async fn a_code_works_once_and_for_five_minutes() {
    let rig = rig().await;
    let code = rig.emu.issue_code("carol");
    assert_eq!(login(&rig, json!({ "code": code })).await.0, 200);
    let (status, body) = login(&rig, json!({ "code": code })).await;
    assert_eq!(
        (status, body["errCode"].as_str()),
        (400, Some("wx-code-invalid"))
    );
    assert_eq!(rig.emu.request_count(), 2, "a replayed code is not retried");

    let late = rig.emu.issue_code("carol");
    rig.clock.advance(5 * 60 * 1000);
    let (status, body) = login(&rig, json!({ "code": late })).await;
    assert_eq!(
        (status, body["errCode"].as_str()),
        (400, Some("wx-code-invalid"))
    );
    let (_, body) = login(&rig, json!({ "code": "never-issued" })).await;
    assert_eq!(body["errCode"], "wx-code-invalid");
    assert_eq!(rig.store.session_count(), 1);
}

#[tokio::test]
async fn every_errcode_maps_as_specified() {
    let rig = rig().await;
    let cases = [
        ("errcode-40029", 400, "wx-code-invalid", 1),
        ("errcode-40163", 400, "wx-code-invalid", 1),
        ("errcode-40226", 403, "wx-user-blocked", 1),
        ("errcode-45011", 429, "wx-rate-limited", 1),
        ("errcode-40013", 502, "wx-upstream-error", 1),
        ("errcode-40125", 502, "wx-upstream-error", 1),
        ("errcode-99999", 502, "wx-upstream-error", 1),
        // -1 is retried twice, then given up.
        ("errcode--1", 502, "wx-upstream-error", 3),
        ("flaky-3-dave", 502, "wx-upstream-error", 3),
        ("not-json", 502, "wx-upstream-error", 1),
    ];
    for (code, status, err_code, requests) in cases {
        let before = rig.emu.request_count();
        let (got_status, body) = login(&rig, json!({ "code": code })).await;
        assert_eq!(got_status, status, "{code}: {body}");
        assert_eq!(body["errCode"], err_code, "{code}");
        assert_eq!(rig.emu.request_count() - before, requests, "{code}");
    }
    assert!(rig.store.is_empty());
}

#[tokio::test]
async fn errcode_minus_one_is_retried_until_it_passes() {
    let rig = rig().await;
    let (status, body) = login(&rig, json!({"code": "flaky-2-erin"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rig.emu.request_count(), 3);
    let (status, body) = login(&rig, json!({"code": "flaky-1-erin"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rig.emu.request_count(), 5);
    // Same user, same openid, two sessions.
    assert_eq!(rig.store.session_count(), 2);
}

#[tokio::test]
async fn wrong_appid_or_secret_is_an_upstream_error() {
    for (appid, secret) in [("wxwrongappid0000", SECRET), (APPID, "wrong-secret")] {
        let rig = rig_with(appid, secret, Duration::from_secs(5)).await;
        let code = rig.emu.issue_code("frank");
        let (status, body) = login(&rig, json!({ "code": code })).await;
        assert_eq!(
            (status, body["errCode"].as_str()),
            (502, Some("wx-upstream-error"))
        );
        assert_eq!(rig.emu.request_count(), 1);
    }
}

#[tokio::test]
async fn a_slow_wechat_times_out() {
    let rig = rig_with(APPID, SECRET, Duration::from_millis(300)).await;
    let (status, body) = login(&rig, json!({"code": "slow-3000-gina"})).await;
    assert_eq!(
        (status, body["errCode"].as_str()),
        (502, Some("wx-upstream-error"))
    );
    assert_eq!(rig.emu.request_count(), 1, "a time-out is not retried");
    // Quick enough, it passes.
    let (status, _) = login(&rig, json!({"code": "slow-0-gina"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn user_data_is_checked_and_returned() {
    let rig = rig().await;
    let info = json!({"nickName": "Band", "gender": 1, "language": "zh_CN",
                      "city": "Guangzhou", "province": "Guangdong", "country": "CN",
                      "avatarUrl": "http://wx.qlogo.cn/x/0"});

    // encryptedData + iv + rawData + signature.
    let code = rig.emu.issue_code("hana");
    let data = rig.emu.user_data(&code, &info).unwrap();
    let (status, body) = login(
        &rig,
        json!({"code": code, "encryptedData": data.encrypted_data, "iv": data.iv,
               "rawData": data.raw_data, "signature": data.signature}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["userInfo"], info);

    // rawData + signature only: userInfo is the signed rawData.
    let code = rig.emu.issue_code("hana");
    let data = rig.emu.user_data(&code, &info).unwrap();
    let (status, body) = login(
        &rig,
        json!({"code": code, "rawData": data.raw_data, "signature": data.signature}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["userInfo"], info);
    assert_eq!(rig.store.session_count(), 2);

    // A signature by another session_key.
    let code = rig.emu.issue_code("hana");
    let other = rig.emu.issue_code("hana");
    let forged = rig.emu.user_data(&other, &info).unwrap();
    let (status, body) = login(
        &rig,
        json!({"code": code, "rawData": forged.raw_data, "signature": forged.signature}),
    )
    .await;
    assert_eq!(
        (status, body["errCode"].as_str()),
        (400, Some("wx-signature-mismatch"))
    );

    // encryptedData under another session_key.
    let (status, body) = login(
        &rig,
        json!({"code": other, "encryptedData": rig.emu.user_data(&rig.emu.issue_code("hana"), &info).unwrap().encrypted_data, "iv": forged.iv}),
    )
    .await;
    assert_eq!(
        (status, body["errCode"].as_str()),
        (400, Some("wx-decrypt-failed"))
    );

    // Another user's data under the right key is refused by the openId check.
    let ivy = rig.emu.issue_code("ivy");
    let ivy_data = rig.emu.user_data(&ivy, &info).unwrap();
    let (status, body) = login(
        &rig,
        json!({"code": rig.emu.issue_code("hana"), "encryptedData": ivy_data.encrypted_data, "iv": ivy_data.iv}),
    )
    .await;
    assert_eq!(
        (status, body["errCode"].as_str()),
        (400, Some("wx-decrypt-failed"))
    );
    assert_eq!(rig.store.session_count(), 2, "failed logins store nothing");
}

#[tokio::test(flavor = "current_thread")]
async fn secrets_never_reach_a_log_line_or_a_response() {
    let sink = gatehouse_e2e::capture_logs();

    let rig = rig_with(APPID, SECRET, Duration::from_millis(300)).await;
    let mut responses = String::new();
    let mut keys = Vec::new();
    let info = json!({"nickName": "Kai"});
    let code = rig.emu.issue_code("kai");
    let data = rig.emu.user_data(&code, &info).unwrap();
    keys.push(rig.emu.session_key_for_code(&code).unwrap());
    let bodies = [
        json!({"code": code, "encryptedData": data.encrypted_data, "iv": data.iv,
               "rawData": data.raw_data, "signature": "00"}),
        json!({"code": rig.emu.issue_code("kai"), "encryptedData": data.encrypted_data, "iv": data.iv}),
        json!({"code": "errcode--1"}),
        json!({"code": "errcode-40125"}),
        json!({"code": "not-json"}),
        json!({"code": "slow-2000-kai"}),
        json!({"code": code}),
    ];
    for body in bodies {
        let (_, answer) = login(&rig, body).await;
        responses.push_str(&answer.to_string());
    }
    let last = rig.emu.issue_code("kai");
    let (_, answer) = login(&rig, json!({"code": last})).await;
    keys.push(rig.emu.session_key_for_code(&last).unwrap());
    let token = answer["token"].as_str().unwrap().to_owned();
    responses.push_str(&answer.to_string());
    let me = session(&rig, session_event("session-get.json", &token)).await;
    responses.push_str(&json_of(&me).to_string());

    let logs = sink.text();
    assert!(
        logs.contains("jscode2session"),
        "the logs were captured: {logs}"
    );
    for needle in [SECRET].into_iter().chain(keys.iter().map(String::as_str)) {
        assert!(!logs.contains(needle), "{needle} in logs:\n{logs}");
        assert!(!responses.contains(needle), "{needle} in responses");
    }
    assert!(!logs.contains(&token), "token in logs");
}
