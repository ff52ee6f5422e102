//! The door functions' challenges, the table-access test's part (SPEC
//! §13): the authorizer at a guarded route, the guard at `POST
//! /guard/check` and send-sms at its own door each take the answer to a
//! captcha (judged in the captcha's one conditional update) and a Tencent
//! ticket (claimed, counted per IP, verified) in place of a pass, with the
//! judge their Lambdas build at start-up (`gatehouse::lambda::door_judge`).

use std::sync::Arc;

use gatehouse::api::{Function, Services};
use gatehouse::guard::{Authorizer, ChallengeJudge, Guard, GuardRoutes};
use gatehouse::options::ServiceOptions;
use gatehouse::settings::{ConfigPart, Settings};
use gatehouse::sms::SmsSender;
use gatehouse::store::Store;
use gatehouse::tencent::TencentConfig;
use gatehouse::wechat::SessionService;
use gatehouse_e2e::sms::SmsRig;
use serde_json::json;

use super::{
    CONFIG, IP, ROUTES, Recorder, Rig, answer_in, authorize, captcha_services, json_of, post,
    request,
};

/// The judge `function`'s Lambda builds, over `store`.
fn judge(
    part: ConfigPart,
    store: Arc<dyn Store>,
    tencent: &TencentConfig,
) -> Arc<dyn ChallengeJudge> {
    let settings = Settings::from_json_part(CONFIG, part).unwrap();
    let options = ServiceOptions::new(settings.rate_limits.clone());
    gatehouse::lambda::door_judge(&settings, store, Some(tencent.clone()), &options).unwrap()
}

/// A fresh captcha of `device` in `scene` (made by create-captcha, on the
/// test's own unrecorded store), and its answer.
async fn captcha(rig: &Rig, scene: &str, device: &str) -> String {
    let settings = Settings::from_json(CONFIG).unwrap();
    let options = ServiceOptions::new(settings.rate_limits.clone());
    let (store, _) = rig.store();
    let services = captcha_services(&settings, store, &options);
    let body = json!({"scene": scene, "deviceId": device});
    let resp = post(Function::CreateCaptcha, &services, "/captcha/create", body).await;
    assert_eq!(resp.status(), 200, "{}", json_of(&resp));
    answer_in(rig, scene, device).await
}

/// Runs each door through an answer and a ticket, each function's requests
/// checked by `note`.
pub(super) async fn flows(
    rig: &Rig,
    bearer: &str,
    tencent: &TencentConfig,
    note: &mut dyn FnMut(Function, &Recorder),
) {
    let guard_settings = Settings::from_json_part(CONFIG, ConfigPart::Door).unwrap();
    let uncounted = ServiceOptions::new(guard_settings.rate_limits.clone());

    // authorizer: `POST /demo/guarded` (scene demo, a pass always asked).
    let (store, recorder) = rig.store();
    let guard = Guard::new(guard_settings.guard.clone(), store.clone(), &uncounted)
        .with_judge(judge(ConfigPart::Door, store.clone(), tencent));
    let services = Services {
        authorizer: Some(Arc::new(Authorizer::new(
            SessionService::new(store, &uncounted),
            guard,
            GuardRoutes::from_json(ROUTES).unwrap(),
        ))),
        ..Services::default()
    };
    let answer = captcha(rig, "demo", "door-a").await;
    let verdict = authorize(
        &services,
        "POST /demo/guarded",
        &[
            ("authorization", bearer),
            ("x-gatehouse-captcha", answer.as_str()),
            ("x-device-id", "door-a"),
        ],
    )
    .await;
    assert!(verdict.is_authorized, "{:?}", verdict.context);
    assert_eq!(verdict.context["passKind"], "captcha");
    let verdict = authorize(
        &services,
        "POST /demo/guarded",
        &[
            ("authorization", bearer),
            ("x-gatehouse-ticket", "force-pass~door-authorizer"),
            ("x-gatehouse-randstr", "@r"),
        ],
    )
    .await;
    assert!(verdict.is_authorized, "{:?}", verdict.context);
    assert_eq!(verdict.context["passKind"], "ticket");
    note(Function::Authorizer, &recorder);

    // guard: `POST /guard/check` with the answer, then with the ticket.
    let (store, recorder) = rig.store();
    let guard = Guard::new(guard_settings.guard.clone(), store.clone(), &uncounted)
        .with_judge(judge(ConfigPart::Door, store, tencent));
    let services = Services {
        guard: Some(Arc::new(guard)),
        ..Services::default()
    };
    let answer = captcha(rig, "demo", "door-g").await;
    let check = json!({"scene": "demo", "deviceId": "door-g", "captcha": answer, "userIp": IP});
    let resp = post(Function::Guard, &services, "/guard/check", check).await;
    assert_eq!(json_of(&resp)["errCode"], 0, "{}", json_of(&resp));
    let check = json!({"scene": "demo", "ticket": "force-pass~door-guard", "randstr": "@r",
                       "userIp": IP});
    let resp = post(Function::Guard, &services, "/guard/check", check).await;
    assert_eq!(json_of(&resp)["errCode"], 0, "{}", json_of(&resp));
    note(Function::Guard, &recorder);

    // send-sms: its own door (scene demo, a pass always asked).
    let sms = SmsRig::start().await;
    let sms_settings = Settings::from_json_part(CONFIG, ConfigPart::SmsDoor).unwrap();
    let options = ServiceOptions::new(sms_settings.rate_limits.clone());
    let (store, recorder) = rig.store();
    let sender = SmsSender::new(
        sms.config(),
        sms_settings.sms_settings(),
        store.clone(),
        &options,
    )
    .unwrap()
    .with_judge(judge(ConfigPart::SmsDoor, store, tencent));
    let services = Services {
        sms_sender: Some(Arc::new(sender)),
        ..Services::default()
    };
    let answer = captcha(rig, "demo", "door-s").await;
    let body = |mobile: &str| json!({"mobile": mobile, "scene": "demo", "deviceId": "door-s"});
    let with_answer = [
        ("x-gatehouse-captcha", answer.as_str()),
        ("x-device-id", "door-s"),
    ];
    let with_ticket = [
        ("x-gatehouse-ticket", "force-pass~door-sms"),
        ("x-gatehouse-randstr", "@r"),
    ];
    for (mobile, headers) in [
        ("+8613800138020", &with_answer),
        ("+8613800138021", &with_ticket),
    ] {
        let send = request("POST", "/sms/send", Some(body(mobile)), headers);
        let resp = Function::SendSms.lambda().answer(&services, send).await;
        assert_eq!(resp.status(), 200, "{mobile}: {}", json_of(&resp));
    }
    note(Function::SendSms, &recorder);
}
