//! End to end: `POST /ticket/verify` through the real handler, the embedded
//! store and the Tencent emulator over loopback, plus the replay of events/.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gatehouse::clock::Clock;
use gatehouse::options::ServiceOptions;
use gatehouse::ratelimit::RateLimitConfig;
use gatehouse::store::Store;
use gatehouse::store::memory::MemoryStore;
use gatehouse::tencent::{TencentConfig, TicketService, TicketSettings, verify_ticket};
use gatehouse_e2e::{api_event, status_and_json};
use gatehouse_local::tencent_emulator::{EmulatorConfig, TencentEmulator};
use lambda_http::Request;
use serde_json::{Value, json};

const SECRET_ID: &str = "AKIDe2eTencentTest";
const SECRET_KEY: &str = "e2e-secret-key-DO-NOT-LOG";
const APP_ID: u64 = 190_000_042;
const APP_SECRET_KEY: &str = "e2e-app-secret-DO-NOT-LOG";

fn config(endpoint: &str) -> TencentConfig {
    TencentConfig {
        secret_id: SECRET_ID.into(),
        secret_key: SECRET_KEY.into(),
        captcha_app_id: APP_ID,
        app_secret_key: APP_SECRET_KEY.into(),
        endpoint: endpoint.into(),
        region: None,
    }
}

async fn emulator() -> TencentEmulator {
    TencentEmulator::start(SECRET_ID, SECRET_KEY, APP_ID, APP_SECRET_KEY)
        .await
        .unwrap()
}

fn service(config: TencentConfig, clock: Clock) -> TicketService {
    service_with(config, TicketSettings::default(), clock)
}

/// The ticket service with the scenes' `settings`, the default rate limits
/// and a 2 s time-out.
fn service_with(config: TencentConfig, settings: TicketSettings, clock: Clock) -> TicketService {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let options = ServiceOptions::new(RateLimitConfig::default())
        .with_clock(clock)
        .with_timeout(Duration::from_secs(2));
    TicketService::new(config, settings, store, &options).unwrap()
}

/// A payload 2.0 event for `POST /ticket/verify` with `body`.
fn request(body: &Value) -> Request {
    request_to("/ticket/verify", body)
}

/// A payload 2.0 event for `POST <path>` with `body`.
fn request_to(path: &str, body: &Value) -> Request {
    api_event(&format!("POST {path}"), body, "198.51.100.7")
}

async fn verify(svc: &TicketService, body: Value) -> (u16, Value) {
    status_and_json(&verify_ticket(svc, request(&body)).await)
}

#[tokio::test]
async fn web_ticket_passes_once_and_a_second_presentation_makes_no_call() {
    let emu = emulator().await;
    let svc = service(config(&emu.base_url()), Clock::system());
    let issued = emu.issue_ticket();
    let body = json!({"ticket": issued.ticket, "randstr": issued.randstr});

    let (status, answer) = verify(&svc, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errCode"], 0);
    assert_eq!(answer["evilLevel"], 0);
    assert_eq!(emu.calls(), 1);

    for _ in 0..3 {
        let (status, answer) = verify(&svc, body.clone()).await;
        assert_eq!((status, &answer["errCode"]), (409, &json!("ticket-reused")));
    }
    assert_eq!(emu.calls(), 1, "a reused ticket must not reach Tencent");
}

#[tokio::test]
async fn mini_program_ticket_uses_the_mini_action() {
    let emu = emulator().await;
    let svc = service(config(&emu.base_url()), Clock::system());
    let issued = emu.issue_ticket();
    // The emulator refuses Randstr on DescribeCaptchaMiniResult and requires
    // it on DescribeCaptchaResult, so a pass here proves the mini action.
    let (status, answer) = verify(&svc, json!({"ticket": issued.ticket})).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("evilLevel").is_none(), "{answer}");
    let (status, _) = verify(&svc, json!({"ticket": "force-pass~m", "randstr": ""})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn captcha_codes_map_onto_the_spec_error_codes() {
    let emu = emulator().await;
    let svc = service(config(&emu.base_url()), Clock::system());
    let issued = emu.issue_ticket();
    let (status, answer) = verify(
        &svc,
        json!({"ticket": issued.ticket, "randstr": "@notmine"}),
    )
    .await;
    assert_eq!(
        (status, &answer["errCode"]),
        (400, &json!("ticket-rejected"))
    );
    assert_eq!(answer["captchaCode"], 7);
    assert_eq!(answer["captchaMsg"], "captcha no match");

    for (ticket, status, err_code, captcha_code) in [
        ("force-8", 400, "ticket-expired", None),
        ("force-9", 409, "ticket-reused", None),
        ("force-15", 400, "ticket-rejected", Some(15)),
        ("force-16", 400, "ticket-rejected", Some(16)),
        ("force-100", 400, "ticket-rejected", Some(100)),
        ("force-21", 400, "ticket-rejected", Some(21)),
        // CaptchaCode 1 with EvilLevel 100 earns no pass (SPEC §9).
        ("force-evil", 400, "ticket-rejected", Some(1)),
    ] {
        let (got_status, answer) = verify(&svc, json!({"ticket": ticket, "randstr": "@r"})).await;
        assert_eq!(got_status, status, "{ticket}: {answer}");
        assert_eq!(answer["errCode"], err_code, "{ticket}");
        match captcha_code {
            Some(code) => assert_eq!(answer["captchaCode"], code, "{ticket}"),
            None => assert!(answer.get("captchaCode").is_none(), "{ticket}"),
        }
        assert!(answer.get("passToken").is_none(), "{ticket}: {answer}");
        if ticket == "force-evil" {
            assert_eq!(answer["evilLevel"], 100);
        }
    }

    // A scene that accepts evil tickets hands out the pass, saying so.
    let accepting = gatehouse::settings::Settings::from_json(
        r#"{"scene": {"lenient": {"tencent": {"acceptEvil": true}}}}"#,
    )
    .unwrap();
    let svc = service_with(
        config(&emu.base_url()),
        accepting.ticket_settings(),
        Clock::system(),
    );
    let body = json!({"ticket": "force-evil", "randstr": "@r", "scene": "lenient"});
    let (status, answer) = verify(&svc, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["evilLevel"], 100);
    assert!(answer["passToken"].is_string(), "{answer}");
    let body = json!({"ticket": "force-evil~2", "randstr": "@r", "scene": "strict"});
    let (status, answer) = verify(&svc, body).await;
    assert_eq!((status, answer["evilLevel"].as_i64()), (400, Some(100)));
}

#[tokio::test]
async fn tencent_side_reuse_and_expiry_are_reported() {
    let clock = Clock::manual(Clock::system().now_ms());
    let emu = TencentEmulator::start_with(
        "127.0.0.1:0".parse().unwrap(),
        EmulatorConfig {
            secret_id: SECRET_ID.into(),
            secret_key: SECRET_KEY.into(),
            captcha_app_id: APP_ID,
            app_secret_key: APP_SECRET_KEY.into(),
            clock: clock.clone(),
        },
    )
    .await
    .unwrap();
    // Two back ends with their own stores: the second one's replay guard has
    // not seen the ticket, Tencent has (CaptchaCode 9).
    let first = service(config(&emu.base_url()), clock.clone());
    let second = service(config(&emu.base_url()), clock.clone());
    let issued = emu.issue_ticket();
    let body = json!({"ticket": issued.ticket, "randstr": issued.randstr});
    assert_eq!(verify(&first, body.clone()).await.0, 200);
    let (status, answer) = verify(&second, body).await;
    assert_eq!((status, &answer["errCode"]), (409, &json!("ticket-reused")));

    let late = emu.issue_ticket();
    clock.advance(5 * 60 * 1000);
    let (status, answer) = verify(
        &first,
        json!({"ticket": late.ticket, "randstr": late.randstr}),
    )
    .await;
    assert_eq!(
        (status, &answer["errCode"]),
        (400, &json!("ticket-expired"))
    );
    assert_eq!(emu.calls(), 3);
}

#[tokio::test]
async fn app_id_and_app_secret_key_mismatches_are_rejections() {
    let emu = emulator().await;
    let mut other_app = config(&emu.base_url());
    other_app.captcha_app_id = APP_ID + 1;
    let (_, answer) = verify(
        &service(other_app, Clock::system()),
        json!({"ticket": "force-pass", "randstr": "@r"}),
    )
    .await;
    assert_eq!(answer["captchaCode"], 16);
    let mut other_key = config(&emu.base_url());
    other_key.app_secret_key = "another".into();
    let (_, answer) = verify(
        &service(other_key, Clock::system()),
        json!({"ticket": "force-pass", "randstr": "@r"}),
    )
    .await;
    assert_eq!(answer["captchaCode"], 100);
}

#[tokio::test]
async fn every_upstream_failure_is_ticket_upstream_error() {
    let emu = emulator().await;
    let base = emu.base_url();
    let ok = service(config(&base), Clock::system());
    for ticket in [
        "force-error",
        "force-error-LimitExceeded",
        "force-notjson",
        "force-status-500",
        "force-status-503",
        "force-huge",
    ] {
        let (status, answer) = verify(&ok, json!({"ticket": ticket, "randstr": "@r"})).await;
        assert_eq!(status, 502, "{ticket}: {answer}");
        assert_eq!(answer["errCode"], "ticket-upstream-error", "{ticket}");
    }

    let mut wrong_key = config(&base);
    wrong_key.secret_key = "not-the-key".into();
    let mut wrong_id = config(&base);
    wrong_id.secret_id = "AKIDunknown".into();
    let skewed_clock = Clock::manual(Clock::system().now_ms() - 6 * 60 * 1000);
    let cases = [
        service(wrong_key, Clock::system()),
        service(wrong_id, Clock::system()),
        service(config(&base), skewed_clock),
    ];
    for (i, svc) in cases.iter().enumerate() {
        let (status, answer) = verify(svc, json!({"ticket": "force-pass", "randstr": "@r"})).await;
        assert_eq!(status, 502, "case {i}: {answer}");
    }

    // Time-out: the emulator answers force-slow after 8 s, the client waits 300 ms.
    let impatient = TicketService::new(
        config(&base),
        TicketSettings::default(),
        Arc::new(MemoryStore::new()),
        &ServiceOptions::new(RateLimitConfig::default()).with_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let (status, _) = verify(&impatient, json!({"ticket": "force-slow", "randstr": "@r"})).await;
    assert_eq!(status, 502);

    // Nobody listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (status, answer) = verify(
        &service(config(&closed), Clock::system()),
        json!({"ticket": "force-pass", "randstr": "@r"}),
    )
    .await;
    assert_eq!(
        (status, &answer["errCode"]),
        (502, &json!("ticket-upstream-error"))
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_any_claim_or_call() {
    let emu = emulator().await;
    let svc = service(config(&emu.base_url()), Clock::system());
    for (body, err_code) in [
        (json!({}), "ticket-required"),
        (json!({"ticket": "  ", "randstr": "@r"}), "ticket-required"),
        (json!({"ticket": 5}), "invalid-request"),
        (json!({"ticket": "t", "extra": 1}), "invalid-request"),
        (json!({"ticket": "t".repeat(2049)}), "invalid-request"),
        (
            json!({"ticket": "t", "randstr": "r".repeat(129)}),
            "invalid-request",
        ),
    ] {
        let (status, answer) = verify(&svc, body.clone()).await;
        assert_eq!(
            (status, &answer["errCode"]),
            (400, &json!(err_code)),
            "{body}"
        );
    }
    assert_eq!(emu.calls(), 0);
    // The refused requests claimed nothing: ticket "t" now reaches Tencent,
    // which does not know it (15), instead of being refused as reused.
    let (_, answer) = verify(&svc, json!({"ticket": "t"})).await;
    assert_eq!(answer["errCode"], "ticket-rejected", "{answer}");
    assert_eq!(answer["captchaCode"], 15);
    assert_eq!(emu.calls(), 1);
}

#[tokio::test]
async fn logs_name_tencent_error_codes_and_never_a_secret_or_ticket() {
    let captured = gatehouse_e2e::capture_logs();
    let emu = emulator().await;
    let mut wrong_key = config(&emu.base_url());
    wrong_key.secret_key = "wrong-secret-DO-NOT-LOG".into();
    let svc = service(wrong_key, Clock::system());
    let issued = emu.issue_ticket();
    let (status, body) = verify(
        &svc,
        json!({"ticket": issued.ticket, "randstr": issued.randstr}),
    )
    .await;
    assert_eq!(status, 502);
    let ok = service(config(&emu.base_url()), Clock::system());
    let (status, _) = verify(
        &ok,
        json!({"ticket": "force-error-LimitExceeded.LogTest", "randstr": "@r"}),
    )
    .await;
    assert_eq!(status, 502);

    let logs = captured.text();
    assert!(
        logs.contains("tencent_error=AuthFailure.SignatureFailure"),
        "{logs}"
    );
    assert!(
        logs.contains("tencent_error=LimitExceeded.LogTest"),
        "{logs}"
    );
    assert!(logs.contains("request_id=emu-"), "{logs}");
    let body = body.to_string();
    for secret in [
        SECRET_KEY,
        APP_SECRET_KEY,
        "wrong-secret-DO-NOT-LOG",
        issued.ticket.as_str(),
    ] {
        assert!(!logs.contains(secret), "log holds {secret}: {logs}");
        assert!(!body.contains(secret), "body holds {secret}: {body}");
    }
}

fn events_dir() -> PathBuf {
    gatehouse_e2e::repo_path("events")
}

#[tokio::test]
async fn ticket_events_replay_with_their_documented_answers() {
    let emu = emulator().await;
    let svc = service(config(&emu.base_url()), Clock::system());
    let cases = [
        ("ticket-verify.json", 200, json!(0)),
        ("ticket-verify-mini.json", 200, json!(0)),
        ("ticket-verify-rejected.json", 400, json!("ticket-rejected")),
        ("ticket-verify-expired.json", 400, json!("ticket-expired")),
        ("ticket-verify-missing.json", 400, json!("ticket-required")),
        // The same event again: the replay guard answers, Tencent is not asked.
        ("ticket-verify.json", 409, json!("ticket-reused")),
    ];
    for (name, status, err_code) in cases {
        let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
        let req = lambda_http::request::from_str(&text).unwrap();
        assert_eq!(
            gatehouse::http::source_ip(&req),
            Some("203.0.113.10"),
            "{name}"
        );
        let (got, answer) = status_and_json(&verify_ticket(&svc, req).await);
        assert_eq!(
            (got, &answer["errCode"]),
            (status, &err_code),
            "{name}: {answer}"
        );
        if name == "ticket-verify-mini.json" {
            assert_eq!(answer["errMsg"], "OK", "Accept-Language: en");
        }
    }
    assert_eq!(emu.calls(), 4);
}

#[tokio::test]
async fn a_degraded_pass_says_so_in_every_answer() {
    let emu = emulator().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let settings = gatehouse::settings::Settings::from_json(
        r#"{"scene": {"login": {"guard": {"mode": "always"},
                                "tencent": {"disasterTicket": "admit", "code26": "admit"}}}}"#,
    )
    .unwrap();
    let options =
        ServiceOptions::new(RateLimitConfig::default()).with_timeout(Duration::from_secs(2));
    let svc = TicketService::new(
        config(&emu.base_url()),
        settings.ticket_settings(),
        store.clone(),
        &options,
    )
    .unwrap();
    let guard = gatehouse::guard::Guard::new(settings.guard, store, &options);
    let check = |token: &Value| {
        request_to(
            "/guard/check",
            &json!({"scene": "login", "passToken": token}),
        )
    };

    // A disaster-recovery ticket: admitted by `login`'s policy, degraded,
    // without a call to Tencent.
    let disaster = format!("trerror_1001_{APP_ID}_1700000000");
    let calls = emu.calls();
    let body = json!({"ticket": disaster, "randstr": "@x", "scene": "login"});
    let (status, answer) = verify(&svc, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["degraded"], true);
    assert_eq!(
        emu.calls(),
        calls,
        "a disaster ticket is not sent to Tencent"
    );
    let checked = gatehouse::guard::routes::check(&guard, check(&answer["passToken"])).await;
    let (status, checked) = status_and_json(&checked);
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["pass"]["degraded"], true);
    assert_eq!(checked["pass"]["ip"], "198.51.100.7");

    // CaptchaCode 26: admitted, degraded. A plain pass says nothing.
    let body = json!({"ticket": "force-26", "randstr": "@r", "scene": "login"});
    let (status, answer) = verify(&svc, body).await;
    assert_eq!(
        (status, &answer["degraded"]),
        (200, &json!(true)),
        "{answer}"
    );
    let body = json!({"ticket": "force-pass~plain", "randstr": "@r", "scene": "login"});
    let (_, answer) = verify(&svc, body).await;
    assert!(answer.get("degraded").is_none(), "{answer}");
    let (_, checked) = status_and_json(
        &gatehouse::guard::routes::check(&guard, check(&answer["passToken"])).await,
    );
    assert!(checked["pass"].get("degraded").is_none(), "{checked}");

    // The default scene keeps today's answers.
    let body = json!({"ticket": format!("{disaster}~2"), "randstr": "@x"});
    let (status, answer) = verify(&svc, body).await;
    assert_eq!(
        (status, &answer["errCode"], &answer["captchaCode"]),
        (400, &json!("ticket-rejected"), &json!(21)),
        "{answer}"
    );
    let body = json!({"ticket": "force-26~default", "randstr": "@r"});
    let (status, answer) = verify(&svc, body).await;
    assert_eq!(
        (status, &answer["captchaCode"]),
        (400, &json!(26)),
        "{answer}"
    );
    // The emulator answers a disaster ticket as Tencent does: 21, "diff".
    let direct = service(config(&emu.base_url()), Clock::system());
    let client = gatehouse::tencent::client::CaptchaClient::new(
        direct.config(),
        gatehouse::tencent::client::DEFAULT_TIMEOUT,
    )
    .unwrap();
    let verdict = client
        .describe(
            direct.config(),
            gatehouse::tencent::client::Action::Result,
            &disaster,
            Some("@x"),
            "198.51.100.7",
            Clock::system().now_ms() / 1000,
        )
        .await
        .unwrap();
    assert_eq!(
        (verdict.captcha_code, verdict.captcha_msg.as_str()),
        (21, "diff")
    );
}

/// Issue 22.6: Tencent's callback object, posted as the front end hands it
/// over (here: the emulator's own answer, the shape of the SDK's callback).
#[tokio::test]
async fn the_callback_object_is_taken_as_it_comes() {
    let emu = emulator().await;
    let svc = service(config(&emu.base_url()), Clock::system());
    let callback: Value = reqwest::Client::new()
        .post(format!("{}/emulator/ticket", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(callback["ret"], 0, "{callback}");
    let (status, answer) = verify(&svc, callback.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(emu.calls(), 1);

    // The web SDK's whole object, both app id names, bizState and the
    // disaster fields included.
    let issued = emu.issue_ticket();
    let whole = json!({
        "ret": 0, "ticket": issued.ticket, "randstr": issued.randstr,
        "appid": APP_ID.to_string(), "CaptchaAppId": APP_ID, "bizState": {"order": 7},
        "errorCode": 0, "errorMessage": "",
    });
    let (status, answer) = verify(&svc, whole).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(emu.calls(), 2);

    // Closed (ret 2, empty ticket) or failed: a code of its own, no call.
    for ret in [2, 1] {
        let closed = json!({"ret": ret, "ticket": "", "randstr": "", "appid": APP_ID.to_string()});
        let (status, answer) = verify(&svc, closed).await;
        assert_eq!(
            (status, &answer["errCode"]),
            (400, &json!("ticket-not-solved"))
        );
        assert_eq!(answer["ret"], ret);
    }
    // Another app's callback: refused as Tencent would (16), asking no one;
    // nothing claimed, so the same ticket with our app id still passes.
    let issued = emu.issue_ticket();
    for (name, other) in [("appid", json!("190000043")), ("CaptchaAppId", json!(1))] {
        let mut body = json!({"ret": 0, "ticket": issued.ticket, "randstr": issued.randstr});
        body[name] = other;
        let (status, answer) = verify(&svc, body).await;
        assert_eq!(
            (status, &answer["errCode"]),
            (400, &json!("ticket-rejected"))
        );
        assert_eq!(answer["captchaCode"], 16);
    }
    // Any other unknown field is still refused.
    let mut unknown = callback.clone();
    unknown["sig"] = json!("x");
    let (status, answer) = verify(&svc, unknown).await;
    assert_eq!(
        (status, &answer["errCode"]),
        (400, &json!("invalid-request"))
    );
    assert_eq!(emu.calls(), 2);
    let body =
        json!({"ret": 0, "ticket": issued.ticket, "randstr": issued.randstr, "appid": APP_ID});
    let (status, answer) = verify(&svc, body).await;
    assert_eq!(status, 200, "{answer}");
}
