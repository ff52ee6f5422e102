//! WeChat's risk rank at the door (SPEC §12, issue 19.6), on both stores:
//! a session door, `POST /guard/check` with `openid` and `GET
//! /guard/status` with a bearer session each take the higher of the
//! counters' level and the rank's, with the reason `wxRisk`; rank 0
//! passes, 2 needs an image pass, 3 a ticket pass, `refuseFromRank`
//! refuses; one WeChat call for many requests across two instances on one
//! table; the session's phone number sent; any WeChat failure leaves the
//! counters to decide.

use std::sync::Arc;

use gatehouse::api::{Function, Services};
use gatehouse::guard::{Authorizer, AuthorizerRequest, Guard, GuardRoutes, Verdict, judge};
use gatehouse::metrics::Event;
use gatehouse::settings::Settings;
use gatehouse::store::Store;
use gatehouse::wechat::risk::RiskRanks;
use gatehouse_e2e::status_and_json;
use serde_json::{Value, json};

use crate::wechat_rig::{WxRig, options, request};

type Shared = Arc<dyn Store>;

const CONFIG: &str = r#"{"rateLimit": {"enabled": false}, "scene": {"signup": {"guard": {
    "mode": "adaptive",
    "wxRisk": {"scene": "register", "imageFromRank": 2, "tencentFromRank": 3,
               "refuseFromRank": 4, "cacheSeconds": 600}}}}}"#;
const ROUTES: &str = r#"{"POST /signup": {"scene": "signup", "pass": "auto", "session": true}}"#;

/// One instance of the guard's functions on the rig's table: a new
/// `RiskRanks` (cold), the authorizer and the guard function's services.
fn instance(rig: &WxRig) -> (Authorizer, Services) {
    let settings = Settings::from_json(CONFIG).unwrap();
    let options = options(&rig.clock);
    let ranks = RiskRanks::new(&rig.config, rig.store.clone(), &options).unwrap();
    let guard =
        Guard::new(settings.guard, rig.store.clone(), &options).with_risk_ranks(Some(ranks));
    let auth = Authorizer::new(
        rig.sessions.clone(),
        guard.clone(),
        GuardRoutes::from_json(ROUTES).unwrap(),
    );
    let services = Services {
        guard: Some(Arc::new(guard)),
        sessions: Some(Arc::new(rig.sessions.clone())),
        ..Services::default()
    };
    (auth, services)
}

/// The authorizer event of `POST /signup` for bearer `token`.
fn signup(token: &str) -> AuthorizerRequest {
    let bearer = format!("Bearer {token}");
    gatehouse_e2e::authorizer_event("POST /signup", "203.0.113.7", &[("authorization", &bearer)])
}

/// The door's answer: admitted or not, the context's level and reasons,
/// and the guard's reasons counted in the metrics.
fn seen(verdict: &Verdict) -> (bool, Value, Vec<&'static str>) {
    let context = &verdict.response.context;
    let reasons = verdict
        .events
        .iter()
        .filter_map(|event| match event {
            Event::GuardReason { reason } => Some(*reason),
            _ => None,
        })
        .collect();
    (
        verdict.response.is_authorized,
        json!([context["level"], context["reasons"]]),
        reasons,
    )
}

async fn check(services: &Services, openid: &str) -> (u16, Value) {
    let body = json!({"scene": "signup", "openid": openid, "userIp": "203.0.113.7"});
    let req = request("POST", "/guard/check", None, Some(&body));
    status_and_json(&Function::Guard.lambda().answer(services, req).await)
}

async fn status(services: &Services, token: &str) -> (u16, Value) {
    let mut req = request("GET", "/guard/status", Some(token), None);
    *req.uri_mut() = "/guard/status?scene=signup".parse().unwrap();
    status_and_json(&Function::Guard.lambda().answer(services, req).await)
}

/// A signed-in user whom WeChat ranks `rank`: the session token and openid.
async fn user(rig: &WxRig, name: &str, rank: u8) -> (String, String) {
    let token = rig.login(name).await;
    let openid = rig.emu.openid_for(name);
    rig.emu.set_risk_rank(&openid, rank);
    (token, openid)
}

mod cases {
    use super::*;

    pub async fn each_rank_sets_the_level_where_the_openid_is_known(store: Shared) {
        let rig = WxRig::new(store).await;
        let (auth, services) = instance(&rig);

        let (calm, calm_openid) = user(&rig, "calm", 0).await;
        assert_eq!(
            seen(&judge(&auth, signup(&calm)).await),
            (true, json!(["none", null]), vec![])
        );
        let (_, body) = check(&services, &calm_openid).await;
        assert_eq!(
            (body["level"].clone(), body["reasons"].clone()),
            (json!("none"), json!([]))
        );

        let (two, two_openid) = user(&rig, "two", 2).await;
        assert_eq!(
            seen(&judge(&auth, signup(&two)).await),
            (false, json!([null, null]), vec!["wxRisk"]),
            "an image pass asked for"
        );
        let (code, body) = check(&services, &two_openid).await;
        assert_eq!(
            (code, body["errCode"].clone(), body["reasons"].clone()),
            (403, json!("guard-captcha-required"), json!(["wxRisk"]))
        );
        let (code, body) = status(&services, &two).await;
        assert_eq!(
            (code, body["level"].clone(), body["reasons"].clone()),
            (200, json!("image"), json!(["wxRisk"]))
        );

        let (three, three_openid) = user(&rig, "three", 3).await;
        assert!(!judge(&auth, signup(&three)).await.response.is_authorized);
        let (code, body) = check(&services, &three_openid).await;
        assert_eq!(
            (code, body["errCode"].clone(), body["level"].clone()),
            (403, json!("guard-tencent-required"), json!("tencent"))
        );

        let (four, four_openid) = user(&rig, "four", 4).await;
        assert!(!judge(&auth, signup(&four)).await.response.is_authorized);
        let (code, body) = check(&services, &four_openid).await;
        assert_eq!(
            (code, body["errCode"].clone(), body["reasons"].clone()),
            (403, json!("guard-refused"), json!(["wxRisk"]))
        );
        let (code, body) = status(&services, &four).await;
        assert_eq!(
            (code, body["errCode"].clone()),
            (403, json!("guard-refused"))
        );
    }

    pub async fn one_wechat_call_for_many_requests_across_two_instances(store: Shared) {
        let rig = WxRig::new(store).await;
        let (first, first_services) = instance(&rig);
        let (second, _) = instance(&rig);
        let (token, openid) = user(&rig, "busy", 2).await;
        for n in 0..10 {
            let auth = if n % 2 == 0 { &first } else { &second };
            assert!(!judge(auth, signup(&token)).await.response.is_authorized);
        }
        assert_eq!(check(&first_services, &openid).await.0, 403);
        assert_eq!(
            rig.emu.calls().getuserriskrank,
            1,
            "one call, cached in the table for both instances"
        );
    }

    pub async fn the_sessions_phone_number_is_sent(store: Shared) {
        let rig = WxRig::new(store).await;
        let (auth, _) = instance(&rig);
        let (token, openid) = user(&rig, "with-phone", 0).await;
        let code = rig.emu.issue_phone_code("13800138000");
        assert_eq!(rig.phone(&token, &code).await.0, 200);
        assert!(judge(&auth, signup(&token)).await.response.is_authorized);
        let sent = rig.emu.risk_requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (
                sent[0].openid.as_str(),
                sent[0].scene,
                sent[0].client_ip.as_str()
            ),
            (openid.as_str(), 0, "203.0.113.7")
        );
        assert_eq!(sent[0].mobile_no.as_deref(), Some("13800138000"));
    }

    pub async fn wechat_failing_leaves_the_counters_to_decide(store: Shared) {
        let rig = WxRig::new(store).await;
        let (auth, services) = instance(&rig);
        for (n, failure) in [
            "errcode-61010",
            "errcode--1",
            "errcode-48001",
            "errcode-9410009",
            "http-500",
            "not-json",
        ]
        .into_iter()
        .enumerate()
        {
            let name = format!("unlucky-{n}");
            let (token, openid) = user(&rig, &name, 4).await;
            rig.emu.set_risk_failure(&openid, Some(failure)).unwrap();
            let verdict = judge(&auth, signup(&token)).await;
            assert_eq!(
                seen(&verdict),
                (true, json!(["none", null]), vec![]),
                "{failure}: admitted at the counters' level"
            );
            let (code, body) = check(&services, &openid).await;
            assert_eq!(
                (code, body["level"].clone()),
                (200, json!("none")),
                "{failure}"
            );
        }
    }
}

gatehouse_e2e::on_both_stores!(
    each_rank_sets_the_level_where_the_openid_is_known,
    one_wechat_call_for_many_requests_across_two_instances,
    the_sessions_phone_number_is_sent,
    wechat_failing_leaves_the_counters_to_decide,
);
