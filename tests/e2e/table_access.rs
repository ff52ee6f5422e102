//! Every function's routes, run on DynamoDB Local through its own SDK
//! client, touch only the rows its grants cover
//! (`gatehouse::api::Function::table_grants`, which the template's
//! `dynamodb:LeadingKeys` policies are held to in `template.rs`): an
//! interceptor records each request's IAM action and keys (a transaction's
//! item by item, as IAM authorises it), and the test fails on any that no
//! grant allows. The flows are the ordinary ones, with rate limits on and the
//! guard adaptive, so that counters, failures and passes are all written.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use gatehouse::api::{Function, Services};
use gatehouse::captcha::{CaptchaService, Renderer};
use gatehouse::guard::{Authorizer, AuthorizerResponse, Guard, GuardRoutes};
use gatehouse::options::ServiceOptions;
use gatehouse::settings::Settings;
use gatehouse::store::Store;
use gatehouse::store::dynamo::DynamoStore;
use gatehouse::tencent::{TencentConfig, TicketService};
use gatehouse::wechat::risk::RiskRanks;
use gatehouse::wechat::{LoginService, PhoneService, SessionService, WxConfig};
use gatehouse_e2e::authorizer_event;
use gatehouse_local::tencent_emulator::TencentEmulator;
use gatehouse_local::wechat_emulator::WechatEmulator;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde_json::{Value, json};

mod door;
mod sms;

/// Rate limits on (the defaults), the scenes guarded so that one wrong
/// answer raises the level and every route writes what it can.
const CONFIG: &str = r#"{"scene": {
    "login": {"guard": {"mode": "adaptive", "imageAfterFailures": 1}},
    "demo": {"guard": {"mode": "always"}}}}"#;
const ROUTES: &str =
    r#"{"POST /demo/guarded": {"scene": "demo", "pass": "always", "session": true}}"#;
const IP: &str = "198.51.100.30";
const KEY: &str = "pk";

/// One request as IAM authorises it: its action, partition key and the
/// attributes it writes or its condition reads (`dynamodb:Attributes`, the
/// key included).
type Seen = (String, String, Vec<String>);

/// Every request a client sends.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

fn key_of(item: &std::collections::HashMap<String, AttributeValue>) -> String {
    match item.get(KEY) {
        Some(AttributeValue::S(key)) => key.clone(),
        other => format!("(no string pk: {other:?})"),
    }
}

/// The attributes an update or condition expression names: `#placeholders`
/// through `names`, bare names as they are; functions, keywords and
/// `:values` are none. (The store writes no nested paths; a `a.b` would
/// count `b` too, which errs on the strict side.)
fn expression_attributes(
    expression: Option<&str>,
    names: Option<&std::collections::HashMap<String, String>>,
) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN",
    ];
    let expression = expression.unwrap_or_default();
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '#' || c == ':';
    let mut out = Vec::new();
    let mut rest = expression;
    while let Some(start) = rest.find(word) {
        let tail = &rest[start..];
        let end = tail.find(|c| !word(c)).unwrap_or(tail.len());
        let (token, after) = tail.split_at(end);
        rest = after;
        let is_function = after.trim_start().starts_with('(');
        if token.starts_with(':')
            || token.starts_with(|c: char| c.is_ascii_digit())
            || is_function
            || KEYWORDS.contains(&token)
        {
            continue;
        }
        out.push(match token.strip_prefix('#') {
            Some(_) => names
                .and_then(|n| n.get(token))
                .cloned()
                .unwrap_or_else(|| format!("(unbound {token})")),
            None => token.to_owned(),
        });
    }
    out
}

#[test]
fn expression_attributes_are_what_iam_counts() {
    let names = std::collections::HashMap::from([
        ("#r".to_owned(), "pass_redeemed".to_owned()),
        ("#pk".to_owned(), "pk".to_owned()),
    ]);
    assert_eq!(
        expression_attributes(
            Some("SET #r = if_not_exists(#r, :now), by = :n ADD count :one"),
            Some(&names)
        ),
        ["pass_redeemed", "pass_redeemed", "by", "count"]
    );
    assert_eq!(
        expression_attributes(
            Some("attribute_not_exists(#pk) OR (scene = :s AND size(x) > :n)"),
            Some(&names)
        ),
        ["pk", "scene", "x"]
    );
    assert!(expression_attributes(None, None).is_empty());
}

impl Recorder {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    fn record(&self, action: &str, key: String, attributes: Vec<String>) {
        let mut attributes = attributes;
        attributes.push(KEY.to_owned());
        attributes.sort();
        attributes.dedup();
        self.0
            .lock()
            .unwrap()
            .push((format!("dynamodb:{action}"), key, attributes));
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "TableAccessRecorder"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let attributes = expression_attributes;
        if let Some(put) = input.downcast_ref::<PutItemInput>() {
            let item = put.item().unwrap();
            let mut written: Vec<String> = item.keys().cloned().collect();
            written.extend(attributes(
                put.condition_expression(),
                put.expression_attribute_names(),
            ));
            self.record("PutItem", key_of(item), written);
        } else if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
            let names = update.expression_attribute_names();
            let mut touched = attributes(update.update_expression(), names);
            touched.extend(attributes(update.condition_expression(), names));
            self.record("UpdateItem", key_of(update.key().unwrap()), touched);
        } else if let Some(get) = input.downcast_ref::<GetItemInput>() {
            self.record("GetItem", key_of(get.key().unwrap()), Vec::new());
        } else if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
            let touched = attributes(
                delete.condition_expression(),
                delete.expression_attribute_names(),
            );
            self.record("DeleteItem", key_of(delete.key().unwrap()), touched);
        } else if let Some(batch) = input.downcast_ref::<BatchGetItemInput>() {
            for keys in batch.request_items().unwrap().values() {
                for key in keys.keys() {
                    self.record("BatchGetItem", key_of(key), Vec::new());
                }
            }
        } else if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
            for writes in batch.request_items().unwrap().values() {
                for write in writes {
                    if let Some(put) = write.put_request() {
                        let written = put.item().keys().cloned().collect();
                        self.record("BatchWriteItem", key_of(put.item()), written);
                    } else if let Some(delete) = write.delete_request() {
                        self.record("BatchWriteItem", key_of(delete.key()), Vec::new());
                    }
                }
            }
        } else if let Some(tx) = input.downcast_ref::<TransactWriteItemsInput>() {
            // IAM authorises a transaction item by item.
            for item in tx.transact_items() {
                if let Some(put) = item.put() {
                    let mut written: Vec<String> = put.item().keys().cloned().collect();
                    written.extend(attributes(
                        put.condition_expression(),
                        put.expression_attribute_names(),
                    ));
                    self.record("PutItem", key_of(put.item()), written);
                } else if let Some(update) = item.update() {
                    let names = update.expression_attribute_names();
                    let mut touched = attributes(Some(update.update_expression()), names);
                    touched.extend(attributes(update.condition_expression(), names));
                    self.record("UpdateItem", key_of(update.key()), touched);
                } else if let Some(delete) = item.delete() {
                    let touched = attributes(
                        delete.condition_expression(),
                        delete.expression_attribute_names(),
                    );
                    self.record("DeleteItem", key_of(delete.key()), touched);
                } else if let Some(check) = item.condition_check() {
                    self.record("ConditionCheckItem", key_of(check.key()), Vec::new());
                }
            }
        } else {
            self.record(
                "(an operation this test does not know)",
                String::new(),
                Vec::new(),
            );
        }
        Ok(())
    }
}

/// One function's view of the shared table: a store on its own recorded
/// client.
struct Rig {
    table: String,
    config: aws_sdk_dynamodb::config::Builder,
}

impl Rig {
    fn store(&self) -> (Arc<dyn Store>, Recorder) {
        let recorder = Recorder::default();
        let client = aws_sdk_dynamodb::Client::from_conf(
            self.config.clone().interceptor(recorder.clone()).build(),
        );
        (
            Arc::new(DynamoStore::new(client, self.table.clone())),
            recorder,
        )
    }
}

fn request(method: &str, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Request {
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.http.source_ip = Some(IP.into());
    ctx.http.method = method.parse().unwrap();
    let route = path.split('?').next().unwrap();
    ctx.route_key = Some(format!("{method} {route}"));
    let mut builder = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = body.map_or(Body::Empty, |b| Body::Text(b.to_string()));
    builder
        .body(body)
        .unwrap()
        .with_request_context(RequestContext::ApiGatewayV2(ctx))
}

/// The captcha functions' services on `store`, as `settings` configure them.
fn captcha_services(
    settings: &Settings,
    store: Arc<dyn Store>,
    options: &ServiceOptions,
) -> Services {
    Services {
        captcha: Some(Arc::new(CaptchaService::new(
            settings.captcha_settings(),
            Renderer::builtin(),
            store,
            options,
        ))),
        ..Services::default()
    }
}

/// The guard function's services on `store`, as `settings` configure them.
fn guard_services(
    settings: &Settings,
    store: Arc<dyn Store>,
    options: &ServiceOptions,
) -> Services {
    Services {
        guard: Some(Arc::new(Guard::new(settings.guard.clone(), store, options))),
        ..Services::default()
    }
}

/// `function`'s Lambda answer to a `POST` of `body` to `path` from [`IP`].
async fn post(
    function: Function,
    services: &Services,
    path: &str,
    body: Value,
) -> lambda_http::Response<Body> {
    function
        .lambda()
        .answer(services, request("POST", path, Some(body), &[]))
        .await
}

/// The authorizer's answer (of `services`) to `route` from [`IP`] with
/// `headers`.
async fn authorize(
    services: &Services,
    route: &str,
    headers: &[(&str, &str)],
) -> AuthorizerResponse {
    services
        .authorize(authorizer_event(route, IP, headers), None)
        .await
        .response
}

fn json_of(resp: &lambda_http::Response<Body>) -> Value {
    match resp.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("expected a JSON body, got {other:?}"),
    }
}

/// Fails unless every recorded request of `function` is one of its grants:
/// its action, on a row of its prefixes, touching only its attributes.
fn assert_granted(function: Function, seen: &[Seen]) -> usize {
    assert!(
        !seen.is_empty(),
        "{function:?} made no request: the flow is broken"
    );
    for (action, key, attributes) in seen {
        let allowed = function.table_grants().iter().any(|grant| {
            grant.actions.contains(&action.as_str())
                && grant.key_prefixes.iter().any(|p| key.starts_with(p))
                && (grant.attributes.is_empty()
                    || attributes
                        .iter()
                        .all(|a| grant.attributes.contains(&a.as_str())))
        });
        assert!(
            allowed,
            "{}: {action} on {key:?} touching {attributes:?} is not in Function::table_grants \
             (so the template's policy would refuse it)",
            function.name()
        );
    }
    seen.len()
}

/// The answer the captcha row of `device` holds (read by the test's own,
/// unrecorded client).
async fn answer_of(rig: &Rig, device: &str) -> String {
    answer_in(rig, "login", device).await
}

/// [`answer_of`] in `scene`.
async fn answer_in(rig: &Rig, scene: &str, device: &str) -> String {
    let client = aws_sdk_dynamodb::Client::from_conf(rig.config.clone().build());
    let key =
        gatehouse::store::captcha_key(&gatehouse_e2e::scene(scene), &gatehouse_e2e::device(device));
    let item = client
        .get_item()
        .table_name(&rig.table)
        .key(KEY, AttributeValue::S(key))
        .send()
        .await
        .unwrap()
        .item
        .expect("the captcha row");
    item["code"].as_s().unwrap().clone()
}

/// The Tencent settings of verify-ticket and of the doors, for the
/// emulator (its endpoint set by the caller).
fn door_tencent_config() -> TencentConfig {
    TencentConfig {
        secret_id: "AKIDaccess".into(),
        secret_key: "access-key".into(),
        captcha_app_id: 190_000_077,
        app_secret_key: "app-key".into(),
        endpoint: String::new(),
        region: None,
    }
}

#[tokio::test]
async fn every_function_touches_only_the_rows_it_is_granted() {
    let local = gatehouse_e2e::dynamodb_local().await;
    let table = local.fresh_table().await;
    let rig = Rig {
        table: table.name.clone(),
        config: local.config_builder(),
    };
    let settings = Settings::from_json(CONFIG).unwrap();
    let options = ServiceOptions::new(settings.rate_limits.clone());
    let mut seen: BTreeSet<(Function, String, String)> = BTreeSet::new();
    let mut note = |function: Function, recorder: &Recorder| {
        let requests = recorder.take();
        assert_granted(function, &requests);
        seen.extend(requests.into_iter().map(|(a, k, _)| {
            // Keep the prefix only, for the coverage check below.
            let prefix = k.split_inclusive(['#', '|']).take(3).collect::<String>();
            (function, a, prefix)
        }));
    };

    // create-captcha, refresh-captcha: the captcha and its counters, sent
    // at once.
    for (function, path) in [
        (Function::CreateCaptcha, "/captcha/create"),
        (Function::RefreshCaptcha, "/captcha/refresh"),
    ] {
        let (store, recorder) = rig.store();
        let services = captcha_services(&settings, store, &options);
        let body = json!({"scene": "login", "deviceId": "d1"});
        let resp = post(function, &services, path, body).await;
        assert_eq!(resp.status(), 200, "{path}: {}", json_of(&resp));
        note(function, &recorder);
    }

    // A create the per-IP limit refuses: its captcha, written alongside the
    // counters, is taken back (deleted: the device had none).
    let (store, recorder) = rig.store();
    let flood_settings = Settings::from_json(r#"{"rateLimit": {"createPerIp": 1}}"#).unwrap();
    let flood = captcha_services(
        &flood_settings,
        store,
        &ServiceOptions::new(flood_settings.rate_limits.clone()),
    );
    for (device, status) in [("f1", 200), ("f2", 429)] {
        let body = json!({"scene": "flood", "deviceId": device});
        let resp = post(Function::CreateCaptcha, &flood, "/captcha/create", body).await;
        assert_eq!(resp.status(), status, "{device}: {}", json_of(&resp));
    }
    let requests = recorder.take();
    assert!(
        requests
            .iter()
            .any(|(action, key, _)| action == "dynamodb:DeleteItem" && key.starts_with("captcha#")),
        "the refused create took its captcha back: {requests:?}"
    );
    recorder.0.lock().unwrap().extend(requests);
    note(Function::CreateCaptcha, &recorder);

    // verify-captcha: a wrong answer (an attempt and the guard's failures),
    // then a right one on a fresh captcha (the pass).
    let (store, recorder) = rig.store();
    let verifier = captcha_services(&settings, store, &options);
    let verify = |answer: &str| json!({"scene": "login", "deviceId": "d1", "captcha": answer});
    let resp = post(
        Function::VerifyCaptcha,
        &verifier,
        "/captcha/verify",
        verify("wrong"),
    )
    .await;
    assert_eq!(json_of(&resp)["errCode"], "uni-captcha-verify-fail");
    note(Function::VerifyCaptcha, &recorder);
    let (store, creator) = rig.store();
    let create = captcha_services(&settings, store, &options);
    let body = json!({"scene": "login", "deviceId": "d1"});
    let resp = post(Function::CreateCaptcha, &create, "/captcha/create", body).await;
    assert_eq!(resp.status(), 200);
    note(Function::CreateCaptcha, &creator);
    let answer = answer_of(&rig, "d1").await;
    let resp = post(
        Function::VerifyCaptcha,
        &verifier,
        "/captcha/verify",
        verify(&answer),
    )
    .await;
    let captcha_pass = json_of(&resp)["passToken"]
        .as_str()
        .expect("a pass")
        .to_owned();
    note(Function::VerifyCaptcha, &recorder);

    // guard: the level (counters read), a pass redeemed, a failure reported.
    let (store, guard_recorder) = rig.store();
    let guard = guard_services(&settings, store, &options);
    let resp = Function::Guard
        .lambda()
        .answer(
            &guard,
            request("GET", "/guard/status?scene=login&deviceId=d1", None, &[]),
        )
        .await;
    assert_eq!(json_of(&resp)["level"], "image", "{}", json_of(&resp));
    let check = json!({"scene": "login", "passToken": captcha_pass, "deviceId": "d1"});
    let resp = post(Function::Guard, &guard, "/guard/check", check).await;
    assert_eq!(json_of(&resp)["errCode"], 0, "{}", json_of(&resp));
    let report = json!({"scene": "login", "deviceId": "d1", "userIp": IP});
    let resp = post(Function::Guard, &guard, "/guard/report", report).await;
    assert_eq!(json_of(&resp)["errCode"], 0, "{}", json_of(&resp));
    note(Function::Guard, &guard_recorder);

    // verify-ticket: a rejected ticket (the guard's failures) and a passing
    // one (claim, pass, counter).
    let tencent = TencentEmulator::start("AKIDaccess", "access-key", 190_000_077, "app-key")
        .await
        .unwrap();
    let tencent_config = TencentConfig {
        endpoint: tencent.base_url(),
        ..door_tencent_config()
    };
    let (store, recorder) = rig.store();
    let tickets = Services {
        tickets: Some(Arc::new(
            TicketService::new(
                tencent_config,
                settings.ticket_settings(),
                store,
                &options.clone().with_timeout(Duration::from_secs(5)),
            )
            .unwrap(),
        )),
        ..Services::default()
    };
    let ticket = |ticket: &str| json!({"ticket": ticket, "randstr": "@r", "scene": "demo", "deviceId": "d1"});
    let resp = post(
        Function::VerifyTicket,
        &tickets,
        "/ticket/verify",
        ticket("force-7~access"),
    )
    .await;
    assert_eq!(json_of(&resp)["errCode"], "ticket-rejected");
    let resp = post(
        Function::VerifyTicket,
        &tickets,
        "/ticket/verify",
        ticket("force-pass~access"),
    )
    .await;
    let ticket_pass = json_of(&resp)["passToken"]
        .as_str()
        .unwrap_or_else(|| panic!("a pass: {}", json_of(&resp)))
        .to_owned();
    note(Function::VerifyTicket, &recorder);

    // wx-login: a session and its counter.
    let wechat = WechatEmulator::start("wxaccess000000001", "access-secret")
        .await
        .unwrap();
    let wx_config = WxConfig::new("wxaccess000000001", "access-secret")
        .unwrap()
        .with_api_base(&wechat.base_url());
    let (store, recorder) = rig.store();
    let login = Services {
        login: Some(Arc::new(
            LoginService::new(wx_config, store, &options).unwrap(),
        )),
        ..Services::default()
    };
    // Two sessions, then a `single` login that ends them.
    let mut token = String::new();
    for single in [false, false, true] {
        let code = wechat.issue_code("access-user");
        let resp = post(
            Function::WxLogin,
            &login,
            "/wx/login",
            json!({"code": code, "single": single}),
        )
        .await;
        token = json_of(&resp)["token"]
            .as_str()
            .unwrap_or_else(|| panic!("a token: {}", json_of(&resp)))
            .to_owned();
    }
    note(Function::WxLogin, &recorder);
    let bearer = format!("Bearer {token}");
    // Two more sessions of the same user, for the session function below.
    let mut spare = Vec::new();
    for _ in 0..2 {
        let code = wechat.issue_code("access-user");
        let resp = post(
            Function::WxLogin,
            &login,
            "/wx/login",
            json!({"code": code}),
        )
        .await;
        spare.push(format!(
            "Bearer {}",
            json_of(&resp)["token"].as_str().unwrap()
        ));
    }
    recorder.take();

    // wx-phone: the session read and given its number; the access token
    // fetched cold and stored, then revoked and renewed.
    let (store, recorder) = rig.store();
    let phone = Services {
        phone: Some(Arc::new(
            PhoneService::new(
                WxConfig::new("wxaccess000000001", "access-secret")
                    .unwrap()
                    .with_api_base(&wechat.base_url()),
                store,
                &options,
            )
            .unwrap(),
        )),
        ..Services::default()
    };
    for revoke in [false, true] {
        if revoke {
            wechat.revoke_access_tokens();
        }
        let code = wechat.issue_phone_code("13800138000");
        let resp = Function::WxPhone
            .lambda()
            .answer(
                &phone,
                request(
                    "POST",
                    "/wx/phone",
                    Some(json!({"code": code})),
                    &[("authorization", &bearer)],
                ),
            )
            .await;
        assert_eq!(resp.status(), 200, "{}", json_of(&resp));
    }
    note(Function::WxPhone, &recorder);

    // authorizer: a guarded route (session and ticket pass), then a
    // session-protected one.
    let (store, recorder) = rig.store();
    let authorizer = Services {
        authorizer: Some(Arc::new(Authorizer::new(
            SessionService::new(store.clone(), &options),
            Guard::new(settings.guard.clone(), store, &options),
            GuardRoutes::from_json(ROUTES).unwrap(),
        ))),
        ..Services::default()
    };
    let verdict = authorize(
        &authorizer,
        "POST /demo/guarded",
        &[
            ("authorization", bearer.as_str()),
            ("x-gatehouse-pass", ticket_pass.as_str()),
            ("x-device-id", "d1"),
        ],
    )
    .await;
    assert!(verdict.is_authorized, "{:?}", verdict.context);
    let verdict = authorize(
        &authorizer,
        "GET /me",
        &[("authorization", bearer.as_str())],
    )
    .await;
    assert!(verdict.is_authorized);
    // A captcha pass, spent by the guard above: refused, after the one
    // conditional update that tells.
    let verdict = authorize(
        &authorizer,
        "POST /demo/guarded",
        &[
            ("authorization", bearer.as_str()),
            ("x-gatehouse-pass", captcha_pass.as_str()),
        ],
    )
    .await;
    assert!(!verdict.is_authorized);
    note(Function::Authorizer, &recorder);

    // guard: the ticket pass, spent by the authorizer: refused likewise.
    let check = json!({"scene": "demo", "passToken": ticket_pass, "deviceId": "d1"});
    let resp = post(Function::Guard, &guard, "/guard/check", check).await;
    assert_eq!(json_of(&resp)["errCode"], "guard-pass-invalid");
    note(Function::Guard, &guard_recorder);

    // authorizer and guard: a signed-in user's WeChat risk rank as the
    // guard's level reads it (`RiskRanks`, SPEC §12): in the user's
    // counter row, answered by the counting of a scene that counts
    // requests (its UpdateItem) and by the read of a scene that counts
    // none (its BatchGetItem); a miss asked of WeChat and written into the
    // row (an UpdateItem), with the shared access token fetched cold (read,
    // leased, stored). Each function on an app of its own, so each fetches one;
    // the guard's status reads the bearer session first.
    const RISK_CONFIG: &str = r#"{"scene": {
        "risky": {"guard": {"mode": "adaptive", "wxRisk": {"scene": "register"}}},
        "quiet": {"guard": {"mode": "adaptive", "imageAfterRequests": 0,
                            "tencentAfterRequests": 0, "wxRisk": {"scene": "marketing"}}}}}"#;
    const RISK_ROUTES: &str = r#"{
        "POST /risky": {"scene": "risky", "pass": "auto", "session": true},
        "POST /quiet": {"scene": "quiet", "pass": "auto", "session": true}}"#;
    let risk_settings = Settings::from_json(RISK_CONFIG).unwrap();
    for (function, appid) in [
        (Function::Authorizer, "wxaccess000000002"),
        (Function::Guard, "wxaccess000000003"),
    ] {
        let wechat = WechatEmulator::start(appid, "access-secret").await.unwrap();
        let config = WxConfig::new(appid, "access-secret")
            .unwrap()
            .with_api_base(&wechat.base_url());
        let (store, recorder) = rig.store();
        let ranks = RiskRanks::new(&config, store.clone(), &options).unwrap();
        let guard = Guard::new(risk_settings.guard.clone(), store.clone(), &options)
            .with_risk_ranks(Some(ranks));
        let services = Services {
            sessions: Some(Arc::new(SessionService::new(store.clone(), &options))),
            authorizer: Some(Arc::new(Authorizer::new(
                SessionService::new(store, &options),
                guard.clone(),
                GuardRoutes::from_json(RISK_ROUTES).unwrap(),
            ))),
            guard: Some(Arc::new(guard)),
            ..Services::default()
        };
        let with_session = [("authorization", bearer.as_str())];
        if function == Function::Authorizer {
            for route in ["POST /risky", "POST /quiet"] {
                let verdict = authorize(&services, route, &with_session).await;
                assert!(verdict.is_authorized, "{route}: {:?}", verdict.context);
            }
        } else {
            let status = request("GET", "/guard/status?scene=risky", None, &with_session);
            let resp = function.lambda().answer(&services, status).await;
            assert_eq!(resp.status(), 200, "{}", json_of(&resp));
            // A user no door has seen yet: a miss, asked and cached.
            let stranger = wechat.openid_for("access-stranger");
            let check = json!({"scene": "risky", "openid": stranger, "userIp": IP});
            let resp = post(function, &services, "/guard/check", check).await;
            assert_eq!(resp.status(), 200, "{}", json_of(&resp));
        }
        note(function, &recorder);
    }
    // send-sms and verify-sms, and their passes at the doors.
    sms::flows(&rig, &bearer, &mut note).await;
    // The doors (authorizer, guard, send-sms): challenges in place of a
    // pass, judged as their Lambdas judge them.
    let door_tencent = TencentConfig {
        endpoint: tencent.base_url(),
        ..door_tencent_config()
    };
    door::flows(&rig, &bearer, &door_tencent, &mut note).await;

    // session: read, then end.
    let (store, recorder) = rig.store();
    let sessions = Services {
        sessions: Some(Arc::new(SessionService::new(store, &options))),
        ..Services::default()
    };
    let resp = Function::Session
        .lambda()
        .answer(
            &sessions,
            request("GET", "/wx/session", None, &[("authorization", &bearer)]),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", json_of(&resp));
    let resp = Function::Session
        .lambda()
        .answer(
            &sessions,
            request(
                "POST",
                "/wx/session/refresh",
                None,
                &[("authorization", &bearer)],
            ),
        )
        .await;
    let refreshed = format!(
        "Bearer {}",
        json_of(&resp)["token"].as_str().expect("a new token")
    );
    for (method, path, bearer) in [
        ("DELETE", "/wx/session", &refreshed),
        ("DELETE", "/wx/sessions", &spare[0]),
    ] {
        let resp = Function::Session
            .lambda()
            .answer(
                &sessions,
                request(method, path, None, &[("authorization", bearer)]),
            )
            .await;
        assert_eq!(resp.status(), 200, "{method} {path}: {}", json_of(&resp));
    }
    note(Function::Session, &recorder);

    // Every grant was used by the flows above: none is granted for nothing.
    for function in Function::ALL {
        for grant in function.table_grants() {
            for action in grant.actions {
                for prefix in grant.key_prefixes {
                    let used = seen
                        .iter()
                        .any(|(f, a, k)| *f == function && a == action && k.starts_with(prefix));
                    assert!(
                        used,
                        "{}: {action} on {prefix}* is granted but no flow used it",
                        function.name()
                    );
                }
            }
        }
    }
}
