//! Support library of the end-to-end tests (crate gatehouse-e2e).

pub mod capacity;
pub mod cfn;
pub mod dynamodb_local;
pub mod fixtures;
pub mod flow_costs;
pub mod fuzz_harness;
pub mod logs;
pub mod lossy_proxy;
pub mod sms;
pub mod watch_backends;

pub use dynamodb_local::{DynamoLocal, LocalTable, TableDefinition, dynamodb_local};
pub use fixtures::{NOW, captcha, device, doc_holding, docs, pass_grant, repo_path, scene};
pub use logs::{LogCapture, capture_logs};

use gatehouse::clock::Clock;
use gatehouse::store::SessionRecord;
use gatehouse::wechat::crypto::token_hash;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;

/// What DynamoDB says when a table's provisioned throughput is exceeded.
pub const TABLE_THROTTLED: &str =
    "The level of configured provisioned throughput for the table was exceeded";

/// DynamoDB's throttling error saying `message`, with its code in the
/// metadata as the deserializer sets it: that code is what the SDK's retry
/// classifier reads.
pub fn throttled(
    message: &str,
) -> aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException {
    aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException::builder()
        .message(message)
        .meta(
            aws_sdk_dynamodb::error::ErrorMetadata::builder()
                .code("ProvisionedThroughputExceededException")
                .message(message)
                .build(),
        )
        .build()
}

/// A live session for bearer `token`, created now and lasting `life_ms`
/// (what the events' tokens are seeded as).
pub fn live_session(token: &str, openid: &str, life_ms: i64) -> SessionRecord {
    let now = Clock::system().now_ms();
    SessionRecord {
        token_hash: token_hash(token),
        openid: openid.to_owned(),
        unionid: None,
        phone: None,
        created_ms: now,
        expires_ms: now + life_ms,
    }
}

/// The `session_key` seeded sessions are stored with.
pub fn seed_session_key() -> gatehouse::secret::Secret {
    gatehouse::secret::Secret::new("HyVFkGl5F5OQWJZZaNzBBg==")
}

/// Waits, when less than `need` is left of the current failure window of
/// `scene`, until the next window starts. The guard counts failures in
/// fixed windows, so a test that counts on a level rising (the demo page,
/// the contract's tour) must not straddle a window's end, where the count
/// starts over. This keeps the test clear of that moment; it asserts
/// nothing.
pub async fn clear_of_failure_window_end(
    guard: &gatehouse::guard::Guard,
    scene: &str,
    need: std::time::Duration,
) {
    let scene = gatehouse::domain::Scene::parse(scene).expect("a valid scene");
    let window_ms = guard.config().scene(&scene).failure_window_seconds.max(1) * 1000;
    let into = Clock::system().now_ms().rem_euclid(window_ms as i64) as u64;
    let left = window_ms - into;
    if u128::from(left) < need.as_millis() {
        tokio::time::sleep(std::time::Duration::from_millis(left + 50)).await;
    }
}

/// A `POST` with the JSON `body` as an HTTP API hands it to a function,
/// from client address `source_ip` (handlers ignore the path).
pub fn post_json(body: &Value, source_ip: &str) -> Request {
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.http.source_ip = Some(source_ip.into());
    http::Request::builder()
        .method("POST")
        .uri("/")
        .body(Body::Text(body.to_string()))
        .unwrap()
        .with_request_context(RequestContext::ApiGatewayV2(ctx))
}

/// An HTTP API payload 2.0 event for `route` (`"POST /ticket/verify"`) with
/// the JSON `body`, from client address `source_ip`, in English, as
/// `lambda_http` parses it off the wire.
pub fn api_event(route: &str, body: &Value, source_ip: &str) -> Request {
    let (method, path) = route.split_once(' ').expect("a route key: METHOD /path");
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "accept-language": "en"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": "test"},
            "requestId": "r",
            "routeKey": route,
            "stage": "$default",
            "time": "10/Mar/2025:08:30:00 +0000",
            "timeEpoch": 1741595400000u64
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("a payload 2.0 event")
}

/// A Lambda authorizer event (payload 2.0) for `route` (`"POST /pay"`)
/// from client address `source_ip`, with `headers`.
pub fn authorizer_event(
    route: &str,
    source_ip: &str,
    headers: &[(&str, &str)],
) -> gatehouse::guard::AuthorizerRequest {
    let (method, path) = route.split_once(' ').expect("a route key: METHOD /path");
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), Value::from(*value)))
        .collect();
    serde_json::from_value(serde_json::json!({
        "version": "2.0", "type": "REQUEST",
        "routeArn": format!("arn:aws:execute-api:us-east-1:123456789012:api/$default/{method}{path}"),
        "routeKey": route, "rawPath": path, "rawQueryString": "", "headers": headers,
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": "test"},
            "requestId": "r1", "routeKey": route, "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000", "timeEpoch": 1735689600000i64
        }
    }))
    .expect("an authorizer event")
}

/// Status and JSON body of a handler's response.
pub fn status_and_json(resp: &Response<Body>) -> (u16, Value) {
    let Body::Text(text) = resp.body() else {
        panic!("expected a text body, got {:?}", resp.body())
    };
    (resp.status().as_u16(), serde_json::from_str(text).unwrap())
}

/// Runs each named `cases::<name>(Arc<dyn Store>)` of the calling test file
/// twice: on the embedded `MemoryStore` (module `memory`) and on a fresh
/// DynamoDB Local table (module `dynamo`), so both stores meet one suite.
#[macro_export]
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::cases::$case(std::sync::Arc::new(
                        gatehouse::store::memory::MemoryStore::new(),
                    ))
                    .await;
                }
            )*
        }

        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let table = $crate::dynamodb_local().await.fresh_table().await;
                    super::cases::$case(std::sync::Arc::new(table.store())).await;
                }
            )*
        }
    };
}
