//! The SMS functions' flows of the table-access test: send-sms at its
//! guarded door (the send counted as a request, or the counters read where
//! the scene counts none; a captcha, a ticket and an sms pass redeemed, a
//! spent one refused and counted as a failure), a send Tencent
//! refuses (its code voided) and one the budget refuses (its row taken
//! back); verify-sms wrong (the guard's failures) and right; the sms passes
//! redeemed by the authorizer and by `/guard/check`.

use std::sync::Arc;

use gatehouse::api::{Function, Services};
use gatehouse::guard::pass::PassToken;
use gatehouse::guard::{Authorizer, Guard, GuardRoutes};
use gatehouse::options::ServiceOptions;
use gatehouse::settings::Settings;
use gatehouse::sms::{SmsSender, SmsVerifier};
use gatehouse::store::{PassGrant, PassKind, Store};
use gatehouse::wechat::SessionService;
use gatehouse_e2e::pass_grant;
use gatehouse_e2e::sms::SmsRig;
use serde_json::json;

use super::{Recorder, Rig, authorize, guard_services, json_of, request};

/// `demo` always asks for a pass (the send's door: each send counted as a
/// request) and counts wrong codes; `still` always asks too but counts no
/// request (the door reads the counters); `budget` has a budget of one
/// message a day.
const CONFIG: &str = r#"{"scene": {
    "demo": {"guard": {"mode": "always"}},
    "still": {"guard": {"mode": "always", "imageAfterRequests": 0, "tencentAfterRequests": 0}},
    "budget": {"sms": {"dailyBudget": 1}}}}"#;

/// A pass of `kind` in `scene_name` (a captcha's earned with `device_id`),
/// as its verify function grants it, written by the test's own, unrecorded
/// store.
async fn pass(
    store: &Arc<dyn Store>,
    kind: PassKind,
    scene_name: &str,
    device_id: Option<&str>,
) -> String {
    let now = gatehouse::clock::Clock::system().now_ms();
    let token = PassToken::issue(kind);
    let grant = PassGrant {
        created_ms: now,
        expires_ms: now + 300_000,
        ..pass_grant(&token, scene_name, device_id, super::IP)
    };
    store.grant_pass(&grant).await.unwrap();
    token.encode()
}

/// Runs the SMS flows, each function's requests checked by `note`.
pub(super) async fn flows(rig: &Rig, bearer: &str, note: &mut dyn FnMut(Function, &Recorder)) {
    let settings = Settings::from_json(CONFIG).unwrap();
    let options = ServiceOptions::new(settings.rate_limits.clone());
    let sms = SmsRig::start().await;
    let (plain, _) = rig.store();

    // send-sms: the door takes a captcha pass, then a ticket pass.
    let (store, recorder) = rig.store();
    let sender = Services {
        sms_sender: Some(Arc::new(
            SmsSender::new(sms.config(), settings.sms_settings(), store, &options).unwrap(),
        )),
        ..Services::default()
    };
    // No pass header where `pass` is empty (an empty one is no pass token,
    // refused at any level).
    let send = |mobile: &str, scene: &str, pass: &str| {
        let headers = [("x-gatehouse-pass", pass), ("x-device-id", "p1")];
        request(
            "POST",
            "/sms/send",
            Some(json!({"mobile": mobile, "scene": scene, "deviceId": "p1"})),
            &headers[usize::from(pass.is_empty())..],
        )
    };
    let captcha = pass(&plain, PassKind::Captcha, "demo", Some("p1")).await;
    let ticket = pass(&plain, PassKind::Ticket, "demo", None).await;
    let sms_pass = pass(&plain, PassKind::Sms, "demo", None).await;
    let still = pass(&plain, PassKind::Captcha, "still", Some("p1")).await;
    for (mobile, scene, pass) in [
        ("+8613800138010", "demo", &captcha),
        ("+8613800138011", "demo", &ticket),
        ("+8613800138014", "demo", &sms_pass),
        ("+8613800138015", "still", &still),
    ] {
        let resp = Function::SendSms
            .lambda()
            .answer(&sender, send(mobile, scene, pass))
            .await;
        assert_eq!(resp.status(), 200, "{}", json_of(&resp));
    }
    // A spent pass is refused at the door, and counts as a failure.
    let resp = Function::SendSms
        .lambda()
        .answer(&sender, send("+8613800138013", "demo", &captcha))
        .await;
    assert_eq!(json_of(&resp)["errCode"], "guard-pass-invalid");
    // Tencent refuses (the code voided); the budget refuses (the row that
    // went out alongside its counters taken back).
    let resp = Function::SendSms
        .lambda()
        .answer(&sender, send("+8619900000005", "budget", ""))
        .await;
    assert_eq!(json_of(&resp)["errCode"], "sms-upstream-error");
    let resp = Function::SendSms
        .lambda()
        .answer(&sender, send("+8613800138012", "budget", ""))
        .await;
    assert_eq!(json_of(&resp)["errCode"], "sms-budget-exhausted");
    note(Function::SendSms, &recorder);

    // verify-sms: a wrong code in a guarded scene, then the right ones.
    let (store, recorder) = rig.store();
    let verifier = Services {
        sms_verifier: Some(Arc::new(SmsVerifier::new(
            settings.sms_settings(),
            store,
            &options,
        ))),
        ..Services::default()
    };
    let verify = |mobile: &str, scene: &str, code: &str| {
        request(
            "POST",
            "/sms/verify",
            Some(json!({"mobile": mobile, "scene": scene, "code": code})),
            &[],
        )
    };
    // A wrong code from a device counts in its IP's and its device's rows.
    let verify_from_device = |mobile: &str, scene: &str, code: &str| {
        let body = json!({"mobile": mobile, "scene": scene, "code": code, "deviceId": "p1"});
        request("POST", "/sms/verify", Some(body), &[])
    };
    let mut passes = Vec::new();
    for mobile in ["+8613800138010", "+8613800138011"] {
        let code = sms.emulator.last_code(mobile).expect("a message");
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        let resp = Function::VerifySms
            .lambda()
            .answer(&verifier, verify_from_device(mobile, "demo", &wrong))
            .await;
        assert_eq!(json_of(&resp)["errCode"], "sms-code-invalid");
        let resp = Function::VerifySms
            .lambda()
            .answer(&verifier, verify(mobile, "demo", &code))
            .await;
        let pass = json_of(&resp)["passToken"].as_str().map(str::to_owned);
        passes.push(pass.unwrap_or_else(|| panic!("a pass: {}", json_of(&resp))));
    }
    note(Function::VerifySms, &recorder);

    // The sms passes at the doors: the authorizer's and /guard/check.
    let (store, recorder) = rig.store();
    let authorizer = Services {
        authorizer: Some(Arc::new(Authorizer::new(
            SessionService::new(store.clone(), &options),
            Guard::new(settings.guard.clone(), store, &options),
            GuardRoutes::from_json(super::ROUTES).unwrap(),
        ))),
        ..Services::default()
    };
    let verdict = authorize(
        &authorizer,
        "POST /demo/guarded",
        &[
            ("authorization", bearer),
            ("x-gatehouse-pass", passes[0].as_str()),
            ("x-device-id", "p1"),
        ],
    )
    .await;
    assert!(verdict.is_authorized, "{:?}", verdict.context);
    assert_eq!(verdict.context["mobile"], "+8613800138010");
    note(Function::Authorizer, &recorder);
    let (store, recorder) = rig.store();
    let guard = guard_services(&settings, store, &options);
    let check = json!({"scene": "demo", "passToken": passes[1], "deviceId": "p1"});
    let resp = Function::Guard
        .lambda()
        .answer(&guard, request("POST", "/guard/check", Some(check), &[]))
        .await;
    assert_eq!(json_of(&resp)["pass"]["mobile"], "+8613800138011");
    note(Function::Guard, &recorder);
}
