//! The CloudWatch metrics of `gatehouse::metrics`, read back: requests run
//! through the path every function's `main` serves them by
//! (`gatehouse::lambda`: `Lambda::answer`, `Lambda::authorize`), then the flushed lines
//! checked against the embedded metric format (EMF) specification
//! (`_aws.Timestamp`, `_aws.CloudWatchMetrics` with `Namespace`,
//! `Dimensions` and `Metrics`, each dimension and metric a member of the
//! document) and for the expected values.
//!
//! A binary of its own: the metrics recorder is process-wide, so no other
//! test may record alongside (as `watch.rs` stands alone for the
//! environment); its tests take turns ([`SERIAL`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gatehouse::api::{Function, Services};
use gatehouse::captcha::{CaptchaService, CaptchaSettings, Renderer};
use gatehouse::guard::{Authorizer, AuthorizerRequest, Guard, GuardConfig, GuardRoutes};
use gatehouse::metrics;
use gatehouse::options::ServiceOptions;
use gatehouse::ratelimit::RateLimitConfig;
use gatehouse::store::Store;
use gatehouse::store::dynamo::{DynamoSettings, DynamoStore};
use gatehouse::store::memory::MemoryStore;
use gatehouse::tencent::{TencentConfig, TicketService, TicketSettings};
use gatehouse::wechat::SessionService;
use gatehouse_e2e::capture_logs;
use gatehouse_local::tencent_emulator::TencentEmulator;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Context, Request, RequestExt};
use serde_json::{Value, json};

/// Held by each test while it records and reads back.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn request(method: &str, path: &str, body: Value) -> Request {
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.http.source_ip = Some("198.51.100.40".into());
    ctx.route_key = Some(format!("{method} {path}"));
    http::Request::builder()
        .method(method)
        .uri(path)
        .body(lambda_http::Body::Text(body.to_string()))
        .unwrap()
        .with_request_context(RequestContext::ApiGatewayV2(ctx))
}

fn post(path: &str, body: Value) -> Request {
    request("POST", path, body)
}

/// An authorizer event for `GET /me` with `headers`.
fn authorizer_event(headers: Value) -> AuthorizerRequest {
    serde_json::from_value(json!({
        "version": "2.0", "type": "REQUEST", "routeKey": "GET /me", "rawPath": "/me",
        "headers": headers, "requestContext": {"http": {"method": "GET", "path": "/me",
            "protocol": "HTTP/1.1", "sourceIp": "198.51.100.40", "userAgent": "t"},
            "requestId": "r", "routeKey": "GET /me", "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000", "timeEpoch": 1735689600000i64}
    }))
    .unwrap()
}

/// Everything recorded since the last flush, as EMF documents.
fn flushed() -> (String, Vec<Document>) {
    let mut out = Vec::new();
    metrics::flush_to(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let docs = text.lines().map(emf).collect();
    (text, docs)
}

type Document = (
    BTreeMap<String, String>,
    BTreeMap<String, Value>,
    Vec<Value>,
);

/// The value of `metric` in the document with exactly `dimensions`.
fn value_in(docs: &[Document], dimensions: &[(&str, &str)], metric: &str) -> Option<Value> {
    docs.iter()
        .find(|(d, values, _)| *d == dims(dimensions) && values.contains_key(metric))
        .map(|(_, values, _)| values[metric].clone())
}

/// Checks one EMF document against the specification and returns its
/// dimensions (name → value) and values (metric → value).
fn emf(line: &str) -> Document {
    let doc: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let aws = &doc["_aws"];
    assert!(
        aws["Timestamp"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "{line}"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics");
    assert_eq!(directives.len(), 1, "{line}");
    let directive = &directives[0];
    assert_eq!(directive["Namespace"], metrics::DEFAULT_NAMESPACE, "{line}");
    let sets = directive["Dimensions"].as_array().expect("Dimensions");
    assert_eq!(sets.len(), 1, "{line}");
    let mut dimensions = BTreeMap::new();
    for key in sets[0].as_array().unwrap() {
        let key = key.as_str().expect("a dimension key is a string");
        let value = doc[key]
            .as_str()
            .unwrap_or_else(|| panic!("dimension {key} is a string member: {line}"));
        dimensions.insert(key.to_owned(), value.to_owned());
    }
    assert!(
        (1..=30).contains(&dimensions.len()),
        "EMF allows 1 to 30 dimensions: {line}"
    );
    let definitions = directive["Metrics"].as_array().expect("Metrics");
    let mut values = BTreeMap::new();
    for definition in definitions {
        let name = definition["Name"].as_str().expect("a metric Name");
        let value = &doc[name];
        let numeric = value.is_number()
            || value
                .as_array()
                .is_some_and(|v| !v.is_empty() && v.iter().all(Value::is_number));
        assert!(numeric, "{name} is a number or numbers: {line}");
        values.insert(name.to_owned(), value.clone());
    }
    (dimensions, values, definitions.clone())
}

fn dims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn every_request_is_counted_by_route_and_outcome_in_emf() {
    let _turn = SERIAL.lock().await;
    assert!(metrics::init().is_some(), "the recorder is installed");
    flushed();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let options = ServiceOptions::new(RateLimitConfig::default());
    let captcha = Services {
        captcha: Some(Arc::new(CaptchaService::new(
            CaptchaSettings::default(),
            Renderer::builtin(),
            store.clone(),
            &options,
        ))),
        ..Services::default()
    };

    // create-captcha: passes; verify-captcha: a wrong answer.
    let body = json!({"scene": "login", "deviceId": "m1"});
    let resp = Function::CreateCaptcha
        .lambda()
        .answer(&captcha, post("/captcha/create", body))
        .await;
    assert_eq!(resp.status(), 200);
    let body = json!({"scene": "login", "deviceId": "m1", "captcha": "nope"});
    let resp = Function::VerifyCaptcha
        .lambda()
        .answer(&captcha, post("/captcha/verify", body))
        .await;
    assert_eq!(resp.status(), 400);

    // verify-ticket: Tencent's CaptchaCode 7, then 1.
    let tencent = TencentEmulator::start("AKIDmetrics", "metrics-key", 190_000_088, "app-key")
        .await
        .unwrap();
    let config = TencentConfig {
        secret_id: "AKIDmetrics".into(),
        secret_key: "metrics-key".into(),
        captcha_app_id: 190_000_088,
        app_secret_key: "app-key".into(),
        endpoint: tencent.base_url(),
        region: None,
    };
    let tickets = Services {
        tickets: Some(Arc::new(
            TicketService::new(
                config,
                TicketSettings::default(),
                store.clone(),
                &options.clone().with_timeout(Duration::from_secs(5)),
            )
            .unwrap(),
        )),
        ..Services::default()
    };
    for ticket in ["force-7~metrics", "force-pass~metrics"] {
        let body = json!({"ticket": ticket, "randstr": "@r"});
        Function::VerifyTicket
            .lambda()
            .answer(&tickets, post("/ticket/verify", body))
            .await;
    }

    // send-sms: sent, refused by Tencent, and refused by the budget.
    let sms = gatehouse_e2e::sms::SmsRig::start().await;
    let settings =
        gatehouse::settings::Settings::from_json(r#"{"sms": {"dailyBudget": 2}}"#).unwrap();
    let options = gatehouse::options::ServiceOptions::new(settings.rate_limits.clone());
    let sender = Services {
        sms_sender: Some(Arc::new(
            gatehouse::sms::SmsSender::new(
                sms.config(),
                settings.sms_settings(),
                store.clone(),
                &options,
            )
            .unwrap(),
        )),
        ..Services::default()
    };
    for (mobile, status) in [
        ("+8613800138000", 200),
        ("+8619900000005", 502),
        ("+8613800138001", 429),
    ] {
        let body = json!({"mobile": mobile, "scene": "login"});
        let resp = Function::SendSms
            .lambda()
            .answer(&sender, post("/sms/send", body))
            .await;
        assert_eq!(resp.status(), status, "{mobile}");
    }

    // The authorizer: no session, denied.
    let authorizer = Services {
        authorizer: Some(Arc::new(Authorizer::new(
            SessionService::new(store.clone(), &options),
            Guard::new(Default::default(), store, &options),
            GuardRoutes::default(),
        ))),
        ..Services::default()
    };
    let verdict = Function::Authorizer
        .lambda()
        .authorize(&authorizer, authorizer_event(json!({})), None)
        .await;
    assert!(!verdict.is_authorized);

    let (text, docs) = flushed();
    let value = |want: &[(&str, &str)], metric: &str| value_in(&docs, want, metric);
    let requests = |pairs: &[(&str, &str)]| value(pairs, metrics::REQUESTS);

    let create_route = [
        ("Function", "create-captcha"),
        ("Route", "POST /captcha/create"),
    ];
    assert_eq!(
        requests(&[create_route[0], create_route[1], ("Outcome", "Passed")]),
        Some(json!(1)),
        "{text}"
    );
    assert_eq!(
        requests(&[
            ("Function", "verify-captcha"),
            ("Route", "POST /captcha/verify"),
            ("Outcome", "Wrong")
        ]),
        Some(json!(1))
    );
    assert_eq!(
        requests(&[
            ("Function", "authorizer"),
            ("Route", "GET /me"),
            ("Outcome", "Denied")
        ]),
        Some(json!(1))
    );
    // Every function together, by outcome: the create, the passing ticket
    // and the sent SMS; the wrong answer and the rejected ticket.
    assert_eq!(requests(&[("Outcome", "Passed")]), Some(json!(3)));
    assert_eq!(requests(&[("Outcome", "Wrong")]), Some(json!(2)));
    assert_eq!(requests(&[("Outcome", "Denied")]), Some(json!(1)));
    // Latency, in milliseconds, one value per request.
    let latency = docs
        .iter()
        .find(|(d, values, _)| *d == dims(&create_route) && values.contains_key(metrics::LATENCY))
        .expect("create's latency");
    let samples = latency.1[metrics::LATENCY].as_array().unwrap();
    assert_eq!(samples.len(), 1);
    assert!(samples[0].as_f64().unwrap() > 0.0);
    assert_eq!(latency.2[0]["Unit"], "Milliseconds", "{:?}", latency.2);
    // Tencent's verdicts.
    let code = |c: &str| {
        value(
            &[("Function", "verify-ticket"), ("CaptchaCode", c)],
            metrics::TENCENT_CAPTCHA_CODE,
        )
    };
    assert_eq!(code("7"), Some(json!(1)));
    assert_eq!(code("1"), Some(json!(1)));
    assert_eq!(
        value(&[("Function", "verify-ticket")], metrics::TENCENT_REJECTED),
        Some(json!(1))
    );
    // What SendSms came to, what it billed, and the spent budget.
    let sms_status = |s: &str| {
        value(
            &[("Function", "send-sms"), ("Status", s)],
            metrics::SMS_STATUS,
        )
    };
    assert_eq!(sms_status("Ok"), Some(json!(1)));
    assert_eq!(sms_status("InsufficientBalance"), Some(json!(1)));
    assert_eq!(
        value(&[("Function", "send-sms")], metrics::SMS_BILLED),
        Some(json!(1))
    );
    assert_eq!(
        value(&[("Function", "send-sms")], metrics::SMS_BUDGET_EXHAUSTED),
        Some(json!(1))
    );
    assert_eq!(
        requests(&[
            ("Function", "send-sms"),
            ("Route", "POST /sms/send"),
            ("Outcome", "RateLimited")
        ]),
        Some(json!(1))
    );
    // No secret or ticket in any line.
    assert!(
        !text.contains("metrics-key") && !text.contains("force-"),
        "{text}"
    );

    // A flush writes what was recorded since the last one: nothing now.
    let (again, _) = flushed();
    assert!(again.is_empty(), "{again}");
}

/// Every function's run path answers under its deadline and records the
/// request: with an invocation whose deadline has passed, each route of
/// each HTTP function (its handler swapped for one that never answers)
/// gets `deadline-exceeded`, and the authorizer (its table never answering)
/// denies and says why; each is counted once by function, route and
/// outcome. With `functions/*/src/main.rs` held to the one `run` call
/// (`tests/e2e/bootstraps.rs`), no function can start without either.
#[tokio::test]
async fn every_function_answers_under_its_deadline_and_is_measured() {
    let _turn = SERIAL.lock().await;
    assert!(metrics::init().is_some(), "the recorder is installed");
    flushed();
    let mut passed = Context::default();
    passed.deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut counted = Vec::new();
    for function in Function::ALL {
        if function == Function::Authorizer {
            continue;
        }
        let mut lambda = function.lambda();
        for row in lambda.routes.iter_mut().flatten() {
            row.handler = |_, _| Box::pin(std::future::pending());
        }
        assert!(lambda.routes().next().is_some(), "{function:?} has routes");
        for route in lambda.routes() {
            let req =
                request(route.method, route.path, json!({})).with_lambda_context(passed.clone());
            let resp = lambda.answer(&Services::default(), req).await;
            let (status, body) = gatehouse_e2e::status_and_json(&resp);
            let name = format!("{} {}", route.method, route.path);
            assert_eq!(
                (status, &body["errCode"]),
                (504, &json!("deadline-exceeded")),
                "{function:?} {name}"
            );
            counted.push((function.name(), name, "DeadlineExceeded"));
        }
    }

    // The authorizer, its table a loopback listener that never answers.
    let stall = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let settings = DynamoSettings {
        table: "gatehouse".into(),
        endpoint: Some(format!("http://{}", stall.local_addr().unwrap())),
    };
    let store: Arc<dyn Store> = Arc::new(DynamoStore::connect(&settings).await);
    let options = ServiceOptions::new(RateLimitConfig::default());
    let services = Services {
        authorizer: Some(Arc::new(Authorizer::new(
            SessionService::new(store.clone(), &options),
            Guard::new(GuardConfig::default(), store, &options),
            GuardRoutes::default(),
        ))),
        ..Services::default()
    };
    let bearer = format!("Bearer {}", gatehouse::wechat::crypto::new_token());
    let logs = capture_logs();
    let verdict = Function::Authorizer
        .lambda()
        .authorize(
            &services,
            authorizer_event(json!({ "authorization": bearer })),
            Some(&passed),
        )
        .await;
    assert!(!verdict.is_authorized);
    assert!(
        logs.text().contains("authorizer deadline passed"),
        "{}",
        logs.text()
    );
    // A denial its deadline caused: an outcome of its own (issue 25.3).
    counted.push(("authorizer", "GET /me".into(), "DeadlineExceeded"));

    let (text, docs) = flushed();
    for (function, route, outcome) in &counted {
        let want = [
            ("Function", *function),
            ("Route", route),
            ("Outcome", outcome),
        ];
        assert_eq!(
            value_in(&docs, &want, metrics::REQUESTS),
            Some(json!(1)),
            "{want:?}: {text}"
        );
    }
}

/// A WeChat risk-rank lookup is counted by its rank or failure and by
/// where it came from (the cache hit rate is `Source` `Cache` over all).
#[tokio::test]
async fn wx_risk_lookups_are_counted_by_result_and_source() {
    let _turn = SERIAL.lock().await;
    assert!(metrics::init().is_some(), "the recorder is installed");
    flushed();
    let events = [
        metrics::Event::WxRiskRank {
            rank: 3,
            cached: false,
        },
        metrics::Event::WxRiskRank {
            rank: 3,
            cached: true,
        },
        metrics::Event::WxRiskRank {
            rank: 3,
            cached: true,
        },
        metrics::Event::WxRiskFailed {
            failure: "NoPermission",
            cached: false,
        },
    ];
    for event in &events {
        metrics::record_event("guard", event);
    }
    let (text, docs) = flushed();
    let count = |result: &str, source: &str| {
        value_in(
            &docs,
            &[
                ("Function", "guard"),
                ("Result", result),
                ("Source", source),
            ],
            metrics::WX_RISK,
        )
    };
    assert_eq!(count("Rank3", "WeChat"), Some(json!(1)), "{text}");
    assert_eq!(count("Rank3", "Cache"), Some(json!(2)));
    assert_eq!(count("NoPermission", "WeChat"), Some(json!(1)));
    assert_eq!(count("NoPermission", "Cache"), None);
}

/// Every service of every function over `store`, with scene `login`
/// guarded (so the guard's routes read its counters) and WeChat and
/// Tencent at a port where nothing listens.
fn every_service(store: Arc<dyn Store>) -> Services {
    use gatehouse::settings::Settings;
    use gatehouse::wechat::{LoginService, PhoneService, WxConfig};
    let settings =
        Settings::from_json(r#"{"scene": {"login": {"guard": {"mode": "adaptive"}}}}"#).unwrap();
    let options = ServiceOptions::new(settings.rate_limits.clone());
    let wx = WxConfig::new("wxfaults", "secret")
        .unwrap()
        .with_api_base("http://127.0.0.1:9");
    let tencent = TencentConfig {
        secret_id: "AKIDfaults".into(),
        secret_key: "fault-key".into(),
        captcha_app_id: 190_000_001,
        app_secret_key: "fault-app-key".into(),
        endpoint: "http://127.0.0.1:9".into(),
        region: None,
    };
    let sms = gatehouse::sms::SmsConfig::from_lookup(|key| match key {
        "TENCENT_SECRET_ID" => Some("AKIDfaults".into()),
        "TENCENT_SECRET_KEY" => Some("fault-key".into()),
        "SMS_SDK_APP_ID" => Some("1400000001".into()),
        "SMS_SIGN_NAME" => Some("faults".into()),
        "SMS_TEMPLATE_ID" => Some("1".into()),
        "TENCENT_SMS_ENDPOINT" => Some("http://127.0.0.1:9".into()),
        _ => None,
    })
    .unwrap();
    let sessions = SessionService::new(store.clone(), &options);
    let guard = Guard::new(settings.guard.clone(), store.clone(), &options);
    Services {
        captcha: Some(Arc::new(CaptchaService::new(
            settings.captcha_settings(),
            Renderer::builtin(),
            store.clone(),
            &options,
        ))),
        login: Some(Arc::new(
            LoginService::new(wx.clone(), store.clone(), &options).unwrap(),
        )),
        sessions: Some(Arc::new(sessions.clone())),
        tickets: Some(Arc::new(
            TicketService::new(tencent, settings.ticket_settings(), store.clone(), &options)
                .unwrap(),
        )),
        phone: Some(Arc::new(
            PhoneService::new(wx, store.clone(), &options).unwrap(),
        )),
        sms_sender: Some(Arc::new(
            gatehouse::sms::SmsSender::new(sms, settings.sms_settings(), store.clone(), &options)
                .unwrap(),
        )),
        sms_verifier: Some(Arc::new(gatehouse::sms::SmsVerifier::new(
            settings.sms_settings(),
            store,
            &options,
        ))),
        guard: Some(Arc::new(guard.clone())),
        authorizer: Some(Arc::new(Authorizer::new(
            sessions,
            guard,
            GuardRoutes::default(),
        ))),
    }
}

/// A request to every route of the table that reads or writes the table
/// (all but the demo's guarded route, which answers its context), each
/// valid as far as the store.
fn a_request_to_every_route() -> Vec<(Function, String, Request)> {
    let bearer = format!("Bearer {}", gatehouse::wechat::crypto::new_token());
    let device = json!({"scene": "login", "deviceId": "fault-1"});
    let mut requests = Vec::new();
    for route in gatehouse::api::ROUTES {
        let body = match (route.method, route.path) {
            ("POST", "/demo/guarded") => continue,
            ("POST", "/captcha/verify") => {
                json!({"scene": "login", "deviceId": "fault-1", "captcha": "abcd"})
            }
            ("POST", "/wx/login") => json!({"code": "c0de"}),
            ("POST", "/wx/phone") => json!({"code": "ph0ne"}),
            ("POST", "/ticket/verify") => json!({"ticket": "t03x", "randstr": "@r"}),
            // A scene without a guard: the send reaches its own writes.
            ("POST", "/sms/send") => {
                json!({"scene": "open", "deviceId": "fault-1", "mobile": "+8613800138000"})
            }
            ("POST", "/sms/verify") => {
                json!({"scene": "login", "mobile": "+8613800138000", "code": "123456"})
            }
            ("GET", _) | ("DELETE", _) => json!(null),
            _ => device.clone(),
        };
        let mut req = request(route.method, route.path, body);
        if route.path == "/guard/status" {
            *req.uri_mut() = "/guard/status?scene=login&deviceId=fault-1"
                .parse()
                .unwrap();
        }
        if body_is_null(&req) {
            *req.body_mut() = lambda_http::Body::Empty;
        }
        req.headers_mut()
            .insert("authorization", bearer.parse().unwrap());
        requests.push((
            route.function,
            format!("{} {}", route.method, route.path),
            req,
        ));
    }
    // And a send at its guarded scene's door, which counts the request
    // first (as the guard's own doors do).
    let body = json!({"scene": "login", "deviceId": "fault-1", "mobile": "+8613800138001"});
    let mut req = request("POST", "/sms/send", body);
    req.headers_mut()
        .insert("authorization", bearer.parse().unwrap());
    requests.push((Function::SendSms, "POST /sms/send (guarded)".into(), req));
    requests
}

fn body_is_null(req: &Request) -> bool {
    matches!(req.body(), lambda_http::Body::Text(text) if text == "null")
}

/// A DynamoDB that throttles every request, past the SDK's retries, and
/// one that cannot be reached: every route of every function answers 503
/// `store-unavailable`, counted as a `StoreError`; the authorizer denies.
#[tokio::test(start_paused = true)]
async fn a_throttled_or_unreachable_table_reaches_every_function() {
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    let _turn = SERIAL.lock().await;
    assert!(metrics::init().is_some(), "the recorder is installed");

    let throttled = || gatehouse_e2e::throttled(gatehouse_e2e::TABLE_THROTTLED);
    use aws_sdk_dynamodb::operation::{
        batch_get_item::BatchGetItemError, batch_write_item::BatchWriteItemError,
        delete_item::DeleteItemError, get_item::GetItemError, put_item::PutItemError,
        transact_write_items::TransactWriteItemsError, update_item::UpdateItemError,
    };
    let rules = [
        mock!(aws_sdk_dynamodb::Client::get_item)
            .then_error(move || GetItemError::ProvisionedThroughputExceededException(throttled())),
        mock!(aws_sdk_dynamodb::Client::put_item)
            .then_error(move || PutItemError::ProvisionedThroughputExceededException(throttled())),
        mock!(aws_sdk_dynamodb::Client::update_item).then_error(move || {
            UpdateItemError::ProvisionedThroughputExceededException(throttled())
        }),
        mock!(aws_sdk_dynamodb::Client::delete_item).then_error(move || {
            DeleteItemError::ProvisionedThroughputExceededException(throttled())
        }),
        mock!(aws_sdk_dynamodb::Client::batch_get_item).then_error(move || {
            BatchGetItemError::ProvisionedThroughputExceededException(throttled())
        }),
        mock!(aws_sdk_dynamodb::Client::batch_write_item).then_error(move || {
            BatchWriteItemError::ProvisionedThroughputExceededException(throttled())
        }),
        mock!(aws_sdk_dynamodb::Client::transact_write_items).then_error(move || {
            TransactWriteItemsError::ProvisionedThroughputExceededException(throttled())
        }),
    ];
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &rules, |builder| {
        builder.retry_config(gatehouse::store::dynamo::lambda_retry_config())
    });
    let throttled_store: Arc<dyn Store> = Arc::new(DynamoStore::new(client, "gatehouse".into()));
    // Bind, then close: a loopback port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = DynamoSettings {
        table: "gatehouse".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
    };
    let unreachable_store: Arc<dyn Store> = Arc::new(DynamoStore::connect(&settings).await);

    for (table, store) in [
        ("throttled", throttled_store),
        ("unreachable", unreachable_store),
    ] {
        flushed();
        let services = every_service(store);
        let mut answered = Vec::new();
        for (function, route, req) in a_request_to_every_route() {
            let resp = function.lambda().answer(&services, req).await;
            let (status, body) = gatehouse_e2e::status_and_json(&resp);
            // A guard counter DynamoDB throttles counts as past every
            // threshold (issue 21.1): the guard asks for a ticket pass, it
            // never answers 5xx (and never admits without one). (The
            // status's bearer session is read first: a store failure.)
            let expected = match (table, route.as_str()) {
                ("throttled", "POST /guard/report") => (200, json!(0)),
                ("throttled", "POST /guard/check" | "POST /sms/send (guarded)") => {
                    (403, json!("guard-tencent-required"))
                }
                _ => (503, json!("store-unavailable")),
            };
            assert_eq!(
                (status, &body["errCode"]),
                (expected.0, &expected.1),
                "{table}: {function:?} {route}: {body}"
            );
            if expected.0 != 503 {
                assert_eq!(body["level"], "tencent", "{table}: {route}: {body}");
                continue;
            }
            // The route's own name (the metric's dimension).
            let route = route.trim_end_matches(" (guarded)").to_owned();
            answered.push((function, route));
        }
        let functions: std::collections::BTreeSet<_> =
            answered.iter().map(|(f, _)| f.name()).collect();
        let http_functions: std::collections::BTreeSet<_> = Function::ALL
            .into_iter()
            .filter(|f| *f != Function::Authorizer)
            .map(Function::name)
            .collect();
        assert_eq!(
            functions, http_functions,
            "{table}: every HTTP function met it"
        );

        let bearer = format!("Bearer {}", gatehouse::wechat::crypto::new_token());
        let verdict = Function::Authorizer
            .lambda()
            .authorize(
                &services,
                authorizer_event(json!({ "authorization": bearer })),
                None,
            )
            .await;
        assert!(!verdict.is_authorized, "{table}: the authorizer denies");
        // Recorded as a store failure, not a plain denial (issue 25.3).
        answered.push((Function::Authorizer, "GET /me".into()));

        let (text, docs) = flushed();
        for (function, route) in &answered {
            let want = [
                ("Function", function.name()),
                ("Route", route.as_str()),
                ("Outcome", "StoreError"),
            ];
            let times = answered
                .iter()
                .filter(|(f, r)| f == function && r == route)
                .count();
            assert_eq!(
                value_in(&docs, &want, metrics::REQUESTS),
                Some(json!(times)),
                "{table}: {want:?}: {text}"
            );
        }
    }
}
