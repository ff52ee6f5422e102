//! SMS codes end to end, through the routes' own handlers, the SMS
//! emulator (TC3 checked for real, an inbox read as a phone would) and a
//! manual clock (no sleeps): what a send answers and sends, what a verify
//! answers, the limits, Tencent's answers mapped, the guard's door at the
//! send, and the sms pass at a door. The lossy-proxy retries and the stored
//! items are on DynamoDB Local.

use std::sync::Arc;
use std::time::Duration;

use gatehouse::clock::{Clock, china_day, china_day_end_ms};
use gatehouse::guard::pass::PassToken;
use gatehouse::guard::{Authorizer, AuthorizerRequest, Guard, GuardRoutes};
use gatehouse::metrics::{Event, Events};
use gatehouse::options::ServiceOptions;
use gatehouse::settings::Settings;
use gatehouse::sms::{Mobile, SmsSender, SmsVerifier, routes};
use gatehouse::store::memory::MemoryStore;
use gatehouse::store::{CaptchaState, PassGrant, PassKind, Store};
use gatehouse::wechat::SessionService;
use gatehouse_e2e::sms::SmsRig;
use gatehouse_e2e::{NOW, capture_logs, pass_grant, post_json, scene, status_and_json};
use gatehouse_local::sms_emulator::{FORCED, Forced};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// `login`: the defaults. `tight`: 3 tries, a day of 2 sends per number,
/// a budget of 3, 10 s between sends. `guarded`: the guard always asks.
/// `busy`: a device's third request in ten minutes asks for a captcha.
const CONFIG: &str = r#"{"scene": {
    "login": {},
    "tight": {"sms": {"maxAttempts": 3, "perMobilePerDay": 2, "dailyBudget": 3,
                      "resendSeconds": 10, "expiresSeconds": 60}},
    "guarded": {"guard": {"mode": "always"}},
    "busy": {"guard": {"mode": "adaptive", "imageAfterRequests": 2, "tencentAfterRequests": 0}},
    "hk": {"sms": {"countries": ["86", "852"]}}}}"#;

const IP: &str = "203.0.113.60";
const MOBILE: &str = "+8613800138000";

struct Rig {
    sender: SmsSender,
    verifier: SmsVerifier,
    store: Arc<dyn Store>,
    memory: Option<Arc<MemoryStore>>,
    clock: Clock,
    sms: SmsRig,
    settings: Settings,
    options: ServiceOptions,
}

async fn rig_on(store: Arc<dyn Store>, memory: Option<Arc<MemoryStore>>) -> Rig {
    // An hour into a China day (after NOW, so no row's TTL is behind the
    // wall clock): the day's counters do not turn over in a test.
    let clock = Clock::manual(china_day_end_ms(china_day(*NOW)) + 3_600_000);
    let sms = SmsRig::with_clock(clock.clone()).await;
    let settings = Settings::from_json(CONFIG).unwrap();
    let options = ServiceOptions::new(settings.rate_limits.clone())
        .with_clock(clock.clone())
        .with_timeout(Duration::from_millis(500));
    let (sender, verifier) = sms.services(&settings, &store, &options);
    Rig {
        sender,
        verifier,
        store,
        memory,
        clock,
        sms,
        settings,
        options,
    }
}

async fn rig() -> Rig {
    let memory = Arc::new(MemoryStore::new());
    rig_on(memory.clone(), Some(memory)).await
}

fn request(body: Value, headers: &[(&str, &str)]) -> Request {
    let mut req = post_json(&body, IP);
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        req.headers_mut()
            .insert(name, http::HeaderValue::from_str(value).unwrap());
    }
    req
}

struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
    events: Events,
}

fn answer(mut resp: Response<Body>) -> Answer {
    let events = Events::take_from(&mut resp);
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let (status, body) = status_and_json(&resp);
    Answer {
        status,
        body,
        retry_after,
        events,
    }
}

impl Rig {
    async fn send(&self, scene: &str, mobile: &str) -> Answer {
        self.send_with(json!({"mobile": mobile, "scene": scene}), &[])
            .await
    }

    async fn send_with(&self, body: Value, headers: &[(&str, &str)]) -> Answer {
        answer(routes::send(&self.sender, request(body, headers)).await)
    }

    async fn verify(&self, scene: &str, mobile: &str, code: &str) -> Answer {
        let body = json!({"mobile": mobile, "scene": scene, "code": code});
        answer(routes::verify(&self.verifier, request(body, &[])).await)
    }

    fn inbox(&self, mobile: &str) -> usize {
        self.sms.emulator.inbox(mobile).len()
    }

    fn code(&self, mobile: &str) -> String {
        self.sms.emulator.last_code(mobile).expect("a message")
    }

    /// A code other than `code`.
    fn wrong(code: &str) -> String {
        let n: u32 = code.parse().unwrap();
        format!("{:06}", (n + 1) % 1_000_000)
    }

    /// The state of `mobile`'s code row in `scene` (memory store only).
    fn state(&self, scene_name: &str, mobile: &str) -> Option<CaptchaState> {
        let memory = self.memory.as_ref().expect("a memory store");
        memory
            .sms_code(&scene(scene_name), &Mobile::parse(mobile).unwrap())
            .map(|r| r.state)
    }
}

#[tokio::test]
async fn a_code_is_sent_once_and_verifies_once() {
    let rig = rig().await;
    let sent = rig.send("login", MOBILE).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.body["resendAfter"], 60);
    assert_eq!(sent.body["expiresIn"], 300);
    let message = &rig.sms.emulator.inbox(MOBILE)[0];
    let code = &message.params[0];
    assert_eq!(code.len(), 6);
    assert_eq!(message.params[1], "5", "the template's minutes");
    assert_eq!(
        message.text,
        format!("【网关测试】您的验证码为{code}，5分钟内有效。")
    );
    assert!(sent.events.iter().any(|e| *e
        == Event::SmsStatus {
            status: "Ok",
            billed: 1
        }));

    // Wrong, then right, then replayed.
    let wrong = rig.verify("login", MOBILE, &Rig::wrong(code)).await;
    assert_eq!(
        (wrong.status, wrong.body["errCode"].as_str()),
        (400, Some("sms-code-invalid"))
    );
    let right = rig.verify("login", "13800138000", code).await;
    assert_eq!(right.status, 200, "{}", right.body);
    let token = PassToken::parse(right.body["passToken"].as_str().unwrap()).unwrap();
    assert_eq!(token.kind(), PassKind::Sms);
    assert_eq!(right.body["passExpired"], rig.clock.now_ms() + 300_000);
    let again = rig.verify("login", MOBILE, code).await;
    assert_eq!(
        (again.status, again.body["errCode"].as_str()),
        (400, Some("sms-code-invalid"))
    );
    // Another scene's code is another row.
    let other = rig.verify("tight", MOBILE, code).await;
    assert_eq!(other.body["errCode"], "sms-code-invalid");
    for shapeless in ["12345", "1234567", "12a456"] {
        let refused = rig.verify("login", MOBILE, shapeless).await;
        assert_eq!(refused.body["errCode"], "sms-code-invalid", "{shapeless}");
    }
    assert_eq!(
        rig.verify("login", MOBILE, " ").await.body["errCode"],
        "sms-code-required"
    );
}

#[tokio::test]
async fn a_resend_too_soon_is_429_and_sends_nothing() {
    let rig = rig().await;
    assert_eq!(rig.send("login", MOBILE).await.status, 200);
    let first = rig.code(MOBILE);
    rig.clock.advance(20_000);
    let soon = rig.send("login", MOBILE).await;
    assert_eq!(soon.status, 429);
    assert_eq!(soon.body["errCode"], "sms-send-too-soon");
    assert_eq!(soon.retry_after, Some(40));
    assert_eq!((rig.inbox(MOBILE), rig.sms.emulator.calls()), (1, 1));
    // The refused send left the first code as it was.
    assert_eq!(rig.verify("login", MOBILE, &first).await.status, 200);

    // A minute on, a new code, and the older one is void.
    assert_eq!(
        rig.send("login", MOBILE).await.status,
        429,
        "verified, same window"
    );
    rig.clock.advance(40_000);
    assert_eq!(rig.send("login", MOBILE).await.status, 200);
    let second = rig.code(MOBILE);
    rig.clock.advance(60_000);
    assert_eq!(rig.send("login", MOBILE).await.status, 200);
    let third = rig.code(MOBILE);
    if second != third {
        let voided = rig.verify("login", MOBILE, &second).await;
        assert_eq!(
            voided.body["errCode"], "sms-code-invalid",
            "a new send voids the last"
        );
    }
    assert_eq!(rig.verify("login", MOBILE, &third).await.status, 200);
}

#[tokio::test]
async fn max_attempts_voids_the_code_and_expiry_is_its_own_error() {
    let rig = rig().await;
    assert_eq!(rig.send("tight", MOBILE).await.status, 200);
    let code = rig.code(MOBILE);
    let mut wrong = code.clone();
    for _ in 0..3 {
        wrong = Rig::wrong(&wrong);
        let answer = rig.verify("tight", MOBILE, &wrong).await;
        assert_eq!(answer.body["errCode"], "sms-code-invalid");
    }
    assert_eq!(rig.state("tight", MOBILE), Some(CaptchaState::Void));
    let late = rig.verify("tight", MOBILE, &code).await;
    assert_eq!(
        late.body["errCode"], "sms-code-invalid",
        "void after maxAttempts"
    );

    let other = "+8613800138001";
    assert_eq!(rig.send("tight", other).await.status, 200);
    rig.clock.advance(60_000);
    let expired = rig.verify("tight", other, &rig.code(other)).await;
    assert_eq!(
        (expired.status, expired.body["errCode"].as_str()),
        (400, Some("sms-code-expired"))
    );
}

#[tokio::test]
async fn invalid_numbers_and_other_countries_send_nothing() {
    let rig = rig().await;
    for mobile in [
        "",
        "138001380",
        "+86 13800138000",
        "138-0013-8000",
        "+8612800138000",
        "008613800138000",
        "+0123456789",
        &"1".repeat(40),
    ] {
        let refused = rig.send("login", mobile).await;
        assert_eq!(
            (refused.status, refused.body["errCode"].as_str()),
            (400, Some("sms-mobile-invalid")),
            "{mobile:?}"
        );
    }
    let hk = rig.send("login", "+85291234567").await;
    assert_eq!(hk.body["errCode"], "sms-country-not-allowed");
    assert_eq!(rig.sms.emulator.calls(), 0, "nothing reached Tencent");
    assert_eq!(
        rig.send("hk", "+85291234567").await.status,
        200,
        "listed there"
    );
    let refused = rig
        .send_with(json!({"mobile": MOBILE, "scene": "login", "extra": 1}), &[])
        .await;
    assert_eq!(refused.body["errCode"], "invalid-request");
    let bad_device = rig
        .send_with(
            json!({"mobile": MOBILE, "scene": "login", "deviceId": "a b"}),
            &[],
        )
        .await;
    assert_eq!(bad_device.body["errCode"], "invalid-request");
    // A null member is refused by name, never taken as absent (openapi.yaml
    // types no field as nullable).
    for body in [
        json!({"mobile": MOBILE, "scene": "login", "deviceId": null}),
        json!({"mobile": null, "scene": "login"}),
        json!({"mobile": MOBILE, "scene": null}),
    ] {
        let refused = rig.send_with(body.clone(), &[]).await;
        assert_eq!(
            (refused.status, refused.body["errCode"].as_str()),
            (400, Some("invalid-request")),
            "{body}"
        );
        assert!(
            refused.body["errMsg"].as_str().unwrap().contains("is null"),
            "{}",
            refused.body
        );
    }
    for body in [
        json!({"mobile": MOBILE, "scene": "login", "code": null}),
        json!({"mobile": MOBILE, "scene": "login", "code": "123456", "deviceId": null}),
    ] {
        let refused = answer(routes::verify(&rig.verifier, request(body.clone(), &[])).await);
        assert_eq!(
            (refused.status, refused.body["errCode"].as_str()),
            (400, Some("invalid-request")),
            "{body}"
        );
    }
    assert_eq!(rig.sms.emulator.calls(), 1);
}

#[tokio::test]
async fn every_upstream_answer_maps_and_leaves_no_code() {
    let rig = rig().await;
    for (number, forced) in FORCED {
        let (status, code) = match forced {
            Forced::Code(c) if c.starts_with("LimitExceeded.") => (429, "sms-upstream-limited"),
            Forced::Code("InvalidParameterValue.IncorrectPhoneNumber") => {
                (400, "sms-mobile-invalid")
            }
            _ => (502, "sms-upstream-error"),
        };
        let answer = rig.send("login", number).await;
        assert_eq!(
            (answer.status, answer.body["errCode"].as_str()),
            (status, Some(code)),
            "{number} {forced:?}"
        );
        assert_eq!(answer.retry_after, None, "{number}");
        assert_eq!(
            rig.state("login", number),
            Some(CaptchaState::Void),
            "{number}"
        );
        assert!(
            answer
                .events
                .iter()
                .any(|e| matches!(e, Event::SmsStatus { billed: 0, .. })),
            "{number}"
        );
    }
    // A misconfigured signature is Tencent's per-number failure: 502.
    let misnamed = SmsSender::new(
        rig.sms.config_with(&[("SMS_SIGN_NAME", "别的签名")]),
        rig.settings.sms_settings(),
        rig.store.clone(),
        &rig.options,
    )
    .unwrap();
    let body = json!({"mobile": "+8613800138005", "scene": "login"});
    let answer = answer(routes::send(&misnamed, request(body, &[])).await);
    assert_eq!(answer.body["errCode"], "sms-upstream-error");
    assert_eq!(rig.inbox("+8613800138005"), 0);
}

#[tokio::test]
async fn the_number_day_and_the_scene_budget_are_limits_of_their_own() {
    let rig = rig().await;
    for _ in 0..2 {
        assert_eq!(rig.send("tight", MOBILE).await.status, 200);
        rig.clock.advance(10_000);
    }
    let third = rig.send("tight", MOBILE).await;
    assert_eq!(third.body["errCode"], "sms-daily-limit");
    assert!(third.retry_after.unwrap() <= 86_400);
    assert_eq!(rig.inbox(MOBILE), 2);

    // The budget: 3 messages a day in the scene, whatever the number.
    assert_eq!(rig.send("tight", "+8613800138001").await.status, 200);
    let spent = rig.send("tight", "+8613800138002").await;
    assert_eq!(
        (spent.status, spent.body["errCode"].as_str()),
        (429, Some("sms-budget-exhausted"))
    );
    assert!(spent.events.iter().any(|e| *e == Event::SmsBudgetExhausted));
    let day_end = china_day_end_ms(china_day(rig.clock.now_ms()));
    let wait = spent.retry_after.unwrap() as i64;
    assert_eq!(
        wait,
        (day_end - rig.clock.now_ms() + 999) / 1000,
        "until midnight in Beijing"
    );
    assert_eq!(rig.sms.emulator.calls(), 3, "refused sends call nobody");
    // Other scenes have budgets of their own; the next day, this one too.
    assert_eq!(rig.send("login", "+8613800138002").await.status, 200);
    rig.clock.advance(wait * 1000);
    assert_eq!(rig.send("tight", "+8613800138002").await.status, 200);
}

#[tokio::test]
async fn the_code_is_in_no_answer_and_no_log_line() {
    let logs = capture_logs();
    let rig = rig().await;
    let sent = rig.send("login", MOBILE).await;
    let code = rig.code(MOBILE);
    let wrong = rig.verify("login", MOBILE, &Rig::wrong(&code)).await;
    let right = rig.verify("login", MOBILE, &code).await;
    assert_eq!(right.status, 200);
    for answer in [&sent, &wrong, &right] {
        assert!(!answer.body.to_string().contains(&code), "{}", answer.body);
    }
    let text = logs.text();
    assert!(
        text.contains("SendSms answered"),
        "the send was logged: {text}"
    );
    assert!(!text.contains(&code), "{text}");
    assert!(!text.contains("13800138000"), "numbers are masked: {text}");
    let memory = rig.memory.as_ref().unwrap();
    let row = memory
        .sms_code(&scene("login"), &Mobile::parse(MOBILE).unwrap())
        .unwrap();
    assert!(!format!("{row:?}").contains(&code));
}

/// The send is a door of its scene's guard: with `always`, a pass is
/// needed, decided in-process, and a refusal carries the guard's errCode,
/// its level and reasons.
#[tokio::test]
async fn a_guarded_send_needs_a_pass_of_its_scene() {
    let rig = rig().await;
    let refused = rig.send("guarded", MOBILE).await;
    assert_eq!(
        (refused.status, refused.body["errCode"].as_str()),
        (403, Some("guard-captcha-required"))
    );
    assert_eq!(refused.body["level"], "image");
    assert_eq!(refused.body["reasons"], json!(["always"]));
    assert!(
        refused
            .events
            .iter()
            .any(|e| *e == Event::GuardReason { reason: "always" })
    );
    assert_eq!(rig.sms.emulator.calls(), 0);
    let pass = captcha_pass(&rig, "guarded", "phone-1").await;
    let headers = [
        ("x-gatehouse-pass", pass.as_str()),
        ("x-device-id", "phone-1"),
    ];
    let body = json!({"mobile": MOBILE, "scene": "guarded"});
    let sent = rig.send_with(body.clone(), &headers).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(rig.inbox(MOBILE), 1);
    rig.clock.advance(60_000);
    let spent = rig.send_with(body, &headers).await;
    assert_eq!(
        spent.body["errCode"], "guard-pass-invalid",
        "one pass, one send"
    );
    let other_scene = captcha_pass(&rig, "login", "phone-1").await;
    let wrong = rig
        .send_with(
            json!({"mobile": MOBILE, "scene": "guarded"}),
            &[("x-gatehouse-pass", other_scene.as_str())],
        )
        .await;
    assert_eq!(wrong.body["errCode"], "guard-pass-invalid");
    assert_eq!(rig.inbox(MOBILE), 1);
}

/// Each send is a request of its scene, counted by the guard's velocity as
/// at any door: a device's sends to many numbers (SMS bombing from one
/// phone) ask for a captcha from the threshold on, with the reason
/// `requests`, and nothing more is sent without a pass.
#[tokio::test]
async fn sends_count_as_requests_of_their_scene() {
    let rig = rig().await;
    let send = |mobile: &'static str, pass: Option<String>| {
        let rig = &rig;
        async move {
            let body = json!({"mobile": mobile, "scene": "busy", "deviceId": "bomber-1"});
            let headers: Vec<(&str, &str)> = pass
                .as_deref()
                .map(|p| ("x-gatehouse-pass", p))
                .into_iter()
                .collect();
            rig.send_with(body, &headers).await
        }
    };
    for mobile in ["+8613800138011", "+8613800138012"] {
        let sent = send(mobile, None).await;
        assert_eq!(sent.status, 200, "{mobile}: {}", sent.body);
        assert!(
            sent.events
                .iter()
                .all(|e| !matches!(e, Event::GuardReason { .. }))
        );
    }
    let refused = send("+8613800138013", None).await;
    assert_eq!(
        (refused.status, refused.body["errCode"].as_str()),
        (403, Some("guard-captcha-required")),
        "{}",
        refused.body
    );
    assert_eq!(refused.body["level"], "image");
    assert_eq!(refused.body["reasons"], json!(["requests"]));
    assert!(
        refused
            .events
            .iter()
            .any(|e| *e == Event::GuardReason { reason: "requests" })
    );
    assert_eq!(rig.sms.emulator.calls(), 2, "the refused send sent nothing");
    assert_eq!(rig.inbox("+8613800138013"), 0);
    // Another device at the same IP is not yet past the IP's threshold.
    let body = json!({"mobile": "+8613800138014", "scene": "busy", "deviceId": "other-1"});
    assert_eq!(rig.send_with(body, &[]).await.status, 200);
    // With a captcha pass of its scene, the device sends again.
    let pass = captcha_pass(&rig, "busy", "bomber-1").await;
    let sent = send("+8613800138013", Some(pass)).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(
        sent.events
            .iter()
            .any(|e| *e == Event::GuardReason { reason: "requests" })
    );
    assert_eq!(rig.inbox("+8613800138013"), 1);
}

/// A solved captcha's pass for `device` in `scene_name`, as verify-captcha
/// grants it.
async fn captcha_pass(rig: &Rig, scene_name: &str, device_id: &str) -> String {
    let now = rig.clock.now_ms();
    let token = PassToken::issue(PassKind::Captcha);
    let grant = PassGrant {
        created_ms: now,
        expires_ms: now + 300_000,
        ..pass_grant(&token, scene_name, Some(device_id), "203.0.113.9")
    };
    rig.store.grant_pass(&grant).await.unwrap();
    token.encode()
}

/// Sign in by phone: a guarded door that redeems the sms pass knows the
/// number, as `/guard/check` does.
#[tokio::test]
async fn the_pass_at_a_door_carries_the_number() {
    let rig = rig().await;
    let guard = Guard::new(rig.settings.guard.clone(), rig.store.clone(), &rig.options);
    let routes =
        GuardRoutes::from_json(r#"{"POST /signin": {"scene": "login", "pass": "always"}}"#)
            .unwrap();
    let sessions = SessionService::new(rig.store.clone(), &rig.options);
    let authorizer = Authorizer::new(sessions, guard.clone(), routes);
    let pass_of = |answer: &Answer| answer.body["passToken"].as_str().unwrap().to_owned();

    rig.send_with(
        json!({"mobile": "13800138000", "scene": "login", "deviceId": "phone-9"}),
        &[],
    )
    .await;
    // The pass carries the device that proved the code (its verify's).
    let body = json!({"mobile": MOBILE, "scene": "login", "code": rig.code(MOBILE)});
    let verified =
        answer(routes::verify(&rig.verifier, request(body, &[("x-device-id", "phone-9")])).await);
    let pass = pass_of(&verified);
    let event = |pass: &str| {
        serde_json::from_value::<AuthorizerRequest>(json!({
            "version": "2.0", "type": "REQUEST", "routeKey": "POST /signin",
            "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abc/$default/POST/signin",
            "rawPath": "/signin", "rawQueryString": "",
            "headers": {"x-gatehouse-pass": pass, "x-device-id": "phone-9"},
            "requestContext": {"http": {"method": "POST", "path": "/signin", "protocol": "HTTP/1.1",
                "sourceIp": IP, "userAgent": "t"}, "requestId": "r", "routeKey": "POST /signin",
                "stage": "$default", "time": "t", "timeEpoch": 0}
        }))
        .unwrap()
    };
    let admitted = gatehouse::guard::authorize(&authorizer, event(&pass)).await;
    assert!(admitted.is_authorized);
    assert_eq!(admitted.context["passKind"], "sms");
    assert_eq!(admitted.context["mobile"], MOBILE);
    assert_eq!(admitted.context["deviceId"], "phone-9");
    assert!(
        !gatehouse::guard::authorize(&authorizer, event(&pass))
            .await
            .is_authorized
    );

    // /guard/check returns them too, where the level asks for a pass (the
    // guarded scene's send takes a captcha pass of its own first).
    let other = "+8613800138001";
    let captcha = captcha_pass(&rig, "guarded", "phone-9").await;
    let body = json!({"mobile": other, "scene": "guarded"});
    let sent = rig
        .send_with(body, &[("x-gatehouse-pass", captcha.as_str())])
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let pass = pass_of(&rig.verify("guarded", other, &rig.code(other)).await);
    let check = json!({"scene": "guarded", "passToken": pass});
    let checked = answer(gatehouse::guard::routes::check(&guard, request(check, &[])).await);
    assert_eq!(checked.status, 200, "{}", checked.body);
    assert_eq!(checked.body["pass"]["kind"], "sms");
    assert_eq!(checked.body["pass"]["mobile"], other);
}

/// A lost response on the way back from DynamoDB, its request retried by
/// the SDK: the send's write is recognised as its own (one message, the
/// code verifies), and so is the verify's.
#[tokio::test]
async fn a_lossy_proxy_retry_neither_sends_twice_nor_loses_the_code() {
    let (store, proxy, _table) = crate::retries::lossy_store().await;
    let rig = rig_on(Arc::new(store), None).await;
    proxy.take_seen();
    proxy.lose_next("PutItem", 1);
    let sent = rig.send("login", MOBILE).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let seen = proxy.take_seen();
    assert_eq!(
        seen.iter().filter(|(op, _)| op == "PutItem").count(),
        2,
        "{seen:?}"
    );
    assert_eq!(
        (rig.inbox(MOBILE), rig.sms.emulator.calls()),
        (1, 1),
        "sent once"
    );
    proxy.lose_next("UpdateItem", 1);
    let verified = rig.verify("login", MOBILE, &rig.code(MOBILE)).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    // A client that retries after a lost answer of its own: too soon, and
    // nothing sent twice.
    let retried = rig.send("login", MOBILE).await;
    assert_eq!(retried.body["errCode"], "sms-send-too-soon");
    assert_eq!(rig.inbox(MOBILE), 1);
}

/// The table holds no code, on DynamoDB as in memory: no attribute name or
/// value, in any item the send and verify wrote.
#[tokio::test]
async fn the_code_is_in_no_stored_item() {
    let table = gatehouse_e2e::dynamodb_local().await.fresh_table().await;
    let rig = rig_on(Arc::new(table.store()), None).await;
    assert_eq!(rig.send("login", MOBILE).await.status, 200);
    let code = rig.code(MOBILE);
    assert_eq!(
        rig.verify("login", MOBILE, &Rig::wrong(&code)).await.status,
        400
    );
    assert_eq!(rig.verify("login", MOBILE, &code).await.status, 200);
    let items = table
        .client
        .scan()
        .table_name(&table.name)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert!(items.len() >= 4, "the row and its counters: {items:?}");
    for item in &items {
        for (name, value) in item {
            assert!(!name.contains(&code), "{name}");
            let leaked = match value {
                aws_sdk_dynamodb::types::AttributeValue::S(s) => s.contains(&code),
                aws_sdk_dynamodb::types::AttributeValue::N(n) => n == &code,
                _ => false,
            };
            assert!(!leaked, "{name} = {value:?}");
        }
    }
}
