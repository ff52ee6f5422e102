//! The CloudWatch metrics of `gatehouse::metrics`, read back: requests run
//! through the wrapper every function's `main` uses, then the flushed lines
//! checked against the embedded metric format (EMF) specification
//! (`_aws.Timestamp`, `_aws.CloudWatchMetrics` with `Namespace`,
//! `Dimensions` and `Metrics`, each dimension and metric a member of the
//! document) and for the expected values.
//!
//! A binary of its own: the metrics recorder is process-wide, so no other
//! test may record alongside (as `watch.rs` stands alone for the
//! environment).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gatehouse::api::Function;
use gatehouse::captcha::{CaptchaService, CaptchaSettings, Renderer, create, verify};
use gatehouse::guard::{Authorizer, AuthorizerRequest, Guard, GuardRoutes, authorize};
use gatehouse::metrics::{self, authorize_measured, measured};
use gatehouse::store::Store;
use gatehouse::store::memory::MemoryStore;
use gatehouse::tencent::{TencentConfig, TicketService, verify_ticket};
use gatehouse::wechat::SessionService;
use gatehouse_local::tencent_emulator::TencentEmulator;
use lambda_http::Request;
use lambda_http::RequestExt;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use serde_json::{Value, json};

fn post(path: &str, body: Value) -> Request {
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.http.source_ip = Some("198.51.100.40".into());
    ctx.route_key = Some(format!("POST {path}"));
    http::Request::builder()
        .method("POST")
        .uri(path)
        .body(lambda_http::Body::Text(body.to_string()))
        .unwrap()
        .with_request_context(RequestContext::ApiGatewayV2(ctx))
}

/// Checks one EMF document against the specification and returns its
/// dimensions (name → value) and values (metric → value).
fn emf(
    line: &str,
) -> (
    BTreeMap<String, String>,
    BTreeMap<String, Value>,
    Vec<Value>,
) {
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
    assert!(metrics::init().is_some(), "the recorder is installed");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let captcha = CaptchaService::new(
        CaptchaSettings::default(),
        Renderer::builtin(),
        store.clone(),
    );

    // create-captcha: passes; verify-captcha: a wrong answer.
    let body = json!({"scene": "login", "deviceId": "m1"});
    let resp = measured(
        Function::CreateCaptcha,
        post("/captcha/create", body),
        |req| create(&captcha, req),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body = json!({"scene": "login", "deviceId": "m1", "captcha": "nope"});
    let resp = measured(
        Function::VerifyCaptcha,
        post("/captcha/verify", body),
        |req| verify(&captcha, req),
    )
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
    let tickets = TicketService::new(config, store.clone())
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    for ticket in ["force-7~metrics", "force-pass~metrics"] {
        let body = json!({"ticket": ticket, "randstr": "@r"});
        measured(
            Function::VerifyTicket,
            post("/ticket/verify", body),
            |req| verify_ticket(&tickets, req),
        )
        .await;
    }

    // The authorizer: no session, denied.
    let authorizer = Authorizer::new(
        SessionService::new(store.clone()),
        Guard::new(Default::default(), store),
        GuardRoutes::default(),
    );
    let event: AuthorizerRequest = serde_json::from_value(json!({
        "version": "2.0", "type": "REQUEST", "routeKey": "GET /me", "rawPath": "/me",
        "headers": {}, "requestContext": {"http": {"method": "GET", "path": "/me",
            "protocol": "HTTP/1.1", "sourceIp": "198.51.100.40", "userAgent": "t"},
            "requestId": "r", "routeKey": "GET /me", "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000", "timeEpoch": 1735689600000i64}
    }))
    .unwrap();
    let verdict = authorize_measured(event, |e| authorize(&authorizer, e)).await;
    assert!(!verdict.is_authorized);

    let mut out = Vec::new();
    metrics::flush_to(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let docs: Vec<_> = text.lines().map(emf).collect();
    let value = |want: BTreeMap<String, String>, metric: &str| -> Option<Value> {
        docs.iter()
            .find(|(d, values, _)| *d == want && values.contains_key(metric))
            .map(|(_, values, _)| values[metric].clone())
    };
    let requests = |pairs: &[(&str, &str)]| value(dims(pairs), metrics::REQUESTS);

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
    // Every function together, by outcome: the create and the passing
    // ticket; the wrong answer and the rejected ticket.
    assert_eq!(requests(&[("Outcome", "Passed")]), Some(json!(2)));
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
            dims(&[("Function", "verify-ticket"), ("CaptchaCode", c)]),
            metrics::TENCENT_CAPTCHA_CODE,
        )
    };
    assert_eq!(code("7"), Some(json!(1)));
    assert_eq!(code("1"), Some(json!(1)));
    assert_eq!(
        value(
            dims(&[("Function", "verify-ticket")]),
            metrics::TENCENT_REJECTED
        ),
        Some(json!(1))
    );
    // No secret or ticket in any line.
    assert!(
        !text.contains("metrics-key") && !text.contains("force-"),
        "{text}"
    );

    // A flush writes what was recorded since the last one: nothing now.
    let mut again = Vec::new();
    metrics::flush_to(&mut again).unwrap();
    assert!(again.is_empty(), "{}", String::from_utf8_lossy(&again));
}
