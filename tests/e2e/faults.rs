//! Injected faults, one test each: DynamoDB throttled after the SDK's
//! retries, unreachable, or slow past its time-out → 503 store-unavailable
//! inside the store's time budget with nothing half-written; WeChat and
//! Tencent slow, 5xx, non-JSON, resetting the connection, or answering with
//! a body past the 64 KiB cap → their 502, at the very time-out that ends
//! each (or at once), the body read no further than its cap.
//!
//! These tests time five routes exactly; that a throttled and an
//! unreachable table reach every route of every function (503, counted as
//! `StoreError`) and the authorizer (a denial) is `tests/metrics.rs`'s
//! `a_throttled_or_unreachable_table_reaches_every_function`.
//!
//! Time here is tokio's paused clock (`start_paused`): whenever every task
//! waits, the runtime jumps to the next timer, so a stall costs no real time
//! and every answer's time is exact, whatever the machine's load: a silent
//! upstream answers at exactly its time-out, a failing one at once. (The
//! loopback sockets are real; a write on loopback is readable before the
//! writer's task yields, so no timer fires ahead of bytes already sent.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use gatehouse::captcha::{CaptchaService, CaptchaSettings, Renderer, create, refresh, verify};
use gatehouse::options::ServiceOptions;
use gatehouse::ratelimit::RateLimitConfig;
use gatehouse::settings::Settings;
use gatehouse::store::Store;
use gatehouse::store::dynamo::{DynamoStore, lambda_retry_config, lambda_timeout_config};
use gatehouse::store::memory::MemoryStore;
use gatehouse::tencent::{TencentConfig, TicketService, TicketSettings, verify_ticket};
use gatehouse::wechat::{LoginService, WxConfig, login};
use gatehouse_e2e::{post_json, status_and_json};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The whole budget of one DynamoDB operation, retries included, as the
/// Lambdas' clients have it (4 s).
fn store_budget() -> Duration {
    lambda_timeout_config()
        .operation_timeout()
        .expect("the Lambdas' clients set an operation time-out")
}

/// When a route that meets a failing store answers, on the paused clock.
#[derive(Clone, Copy, Debug)]
enum StoreAnswer {
    /// Exactly when the store's budget runs out (a store that never answers).
    AtTheBudget,
    /// Within the store's budget (connections refused at once, retried).
    WithinTheBudget,
}

fn post(body: Value) -> Request {
    post_json(&body, "198.51.100.30")
}

/// Status and errCode ("0" for success).
fn parsed(resp: &Response<Body>) -> (u16, String) {
    let (status, body) = status_and_json(resp);
    (status, body["errCode"].as_str().unwrap_or("0").to_owned())
}

/// The default rate limits, clock and time-out.
fn defaults() -> ServiceOptions {
    ServiceOptions::new(RateLimitConfig::default())
}

fn captcha_service(store: Arc<dyn Store>) -> CaptchaService {
    CaptchaService::new(
        CaptchaSettings::default(),
        Renderer::builtin(),
        store,
        &defaults(),
    )
}

/// A DynamoDB client as the Lambdas build it (retries and time-outs of
/// `DynamoStore::from_env`), pointed at `endpoint`.
pub(crate) fn lambda_client(endpoint: &str) -> Client {
    let conf = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::from_static("us-east-1"))
        .credentials_provider(Credentials::new("k", "s", None, None, "faults"))
        .endpoint_url(endpoint)
        .retry_config(lambda_retry_config())
        .timeout_config(lambda_timeout_config())
        .build();
    Client::from_conf(conf)
}

/// Every captcha route and the two others answer 503 store-unavailable,
/// when `expected`, when the store fails.
async fn every_route_is_store_unavailable(store: Arc<dyn Store>, expected: StoreAnswer) {
    let svc = captcha_service(store.clone());
    let body = json!({"scene": "login", "deviceId": "dev-f"});
    let verify_body = json!({"scene": "login", "deviceId": "dev-f", "captcha": "abcd"});
    // wx-login: the rate-limit counter fails alongside the WeChat call (to
    // a port where nothing listens): the route cannot keep its limits.
    let wx = WxConfig::new("wxfault", "secret")
        .unwrap()
        .with_api_base("http://127.0.0.1:9");
    let login_svc = LoginService::new(wx, store.clone(), &defaults()).unwrap();
    // Ticket verify: neither the claim nor the counter can be written, so
    // Tencent (here: nothing listening either) is never asked.
    let tickets = TicketService::new(
        tencent_config("http://127.0.0.1:9"),
        TicketSettings::default(),
        store,
        &defaults(),
    )
    .unwrap();

    async fn timed(
        route: &'static str,
        call: impl std::future::Future<Output = Response<Body>>,
    ) -> (&'static str, Response<Body>, Duration) {
        let t = Instant::now();
        let resp = call.await;
        (route, resp, t.elapsed())
    }
    // Every route at once: each must answer within the budget by itself.
    let answers = tokio::join!(
        timed("create", create(&svc, post(body.clone()))),
        timed("refresh", refresh(&svc, post(body.clone()))),
        timed("verify", verify(&svc, post(verify_body))),
        timed("wx-login", login(&login_svc, post(json!({"code": "c0de"})))),
        timed(
            "ticket",
            verify_ticket(&tickets, post(json!({"ticket": "t03x", "randstr": "@r"})))
        ),
    );
    let answers = [answers.0, answers.1, answers.2, answers.3, answers.4];
    for (route, resp, elapsed) in answers {
        assert_eq!(
            parsed(&resp),
            (503, "store-unavailable".to_owned()),
            "{expected:?}: {route}"
        );
        match expected {
            StoreAnswer::AtTheBudget => assert_eq!(elapsed, store_budget(), "{route}"),
            StoreAnswer::WithinTheBudget => {
                assert!(elapsed <= store_budget(), "{route} took {elapsed:?}")
            }
        }
    }
}

fn tencent_config(endpoint: &str) -> TencentConfig {
    TencentConfig::from_lookup(|key| match key {
        "TENCENT_SECRET_ID" => Some("AKIDfaults".into()),
        "TENCENT_SECRET_KEY" => Some("fault-key".into()),
        "CAPTCHA_APP_ID" => Some("190000001".into()),
        "CAPTCHA_APP_SECRET_KEY" => Some("fault-app-key".into()),
        "TENCENT_CAPTCHA_ENDPOINT" => Some(endpoint.into()),
        _ => None,
    })
    .unwrap()
}

#[tokio::test]
async fn dynamodb_throttled_after_the_sdk_retries_is_503() {
    // (The error code in its metadata: what the SDK's retry classifier reads.)
    let throttled = || gatehouse_e2e::throttled(gatehouse_e2e::TABLE_THROTTLED);
    // The counters are throttled; the captcha's put, sent alongside, goes
    // through, and is taken back once the counters have failed.
    let update = mock!(Client::update_item)
        .then_error(move || UpdateItemError::ProvisionedThroughputExceededException(throttled()));
    let put = mock!(Client::put_item)
        .then_output(|| aws_sdk_dynamodb::operation::put_item::PutItemOutput::builder().build());
    let delete = mock!(Client::delete_item).then_output(|| {
        aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput::builder().build()
    });
    // A right answer's verify: one transaction (the captcha's update, the
    // pass's put), throttled too.
    let transaction = mock!(Client::transact_write_items).then_error(move || {
        TransactWriteItemsError::ProvisionedThroughputExceededException(throttled())
    });
    let client = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        [&update, &put, &delete, &transaction],
        |builder| builder.retry_config(lambda_retry_config())
    );
    let store = Arc::new(DynamoStore::new(client, "gatehouse".into()));
    let svc = captcha_service(store.clone());
    let resp = create(&svc, post(json!({"scene": "login", "deviceId": "d"}))).await;
    assert_eq!(parsed(&resp), (503, "store-unavailable".to_owned()));
    assert_eq!(
        update.num_calls(),
        2 * 3,
        "the SDK tried each of the two counters three times (the store's MAX_ATTEMPTS)"
    );
    assert_eq!(put.num_calls(), 1, "the captcha went alongside");
    assert_eq!(
        delete.num_calls(),
        1,
        "and was taken back (there was none before it)"
    );

    let resp = verify(
        &svc,
        post(json!({"scene": "login", "deviceId": "d", "captcha": "abcd"})),
    )
    .await;
    assert_eq!(parsed(&resp), (503, "store-unavailable".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn dynamodb_unreachable_is_503_within_the_budget() {
    // Bind, then close: a loopback port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = Arc::new(DynamoStore::new(
        lambda_client(&format!("http://127.0.0.1:{port}")),
        "gatehouse".into(),
    ));
    every_route_is_store_unavailable(store, StoreAnswer::WithinTheBudget).await;
}

#[tokio::test(start_paused = true)]
async fn dynamodb_slow_past_the_time_out_is_503_at_the_end_of_the_budget() {
    let (addr, _held) = silent_listener().await;
    let store = Arc::new(DynamoStore::new(
        lambda_client(&format!("http://{addr}")),
        "gatehouse".into(),
    ));
    every_route_is_store_unavailable(store, StoreAnswer::AtTheBudget).await;
}

/// A store failure of the counter (after the route's own step succeeded)
/// still answers 503, and the embedded store shows the captcha write and its
/// counters are all or nothing: a refused create leaves no row.
#[tokio::test]
async fn a_refused_create_writes_nothing_at_all() {
    let store = Arc::new(MemoryStore::new());
    let settings =
        Settings::from_json(r#"{"rateLimit": {"createPerDevice": 1, "createPerIp": 0}}"#).unwrap();
    let svc = CaptchaService::new(
        settings.captcha_settings(),
        Renderer::builtin(),
        store.clone(),
        &ServiceOptions::new(settings.rate_limits),
    );
    let body = json!({"scene": "login", "deviceId": "once"});
    assert_eq!(parsed(&create(&svc, post(body.clone())).await).0, 200);
    let rows = store.len();
    let before = store.captcha("login", "once");
    assert_eq!(parsed(&create(&svc, post(body)).await).0, 429);
    assert_eq!(store.len(), rows);
    assert_eq!(store.captcha("login", "once"), before);
}

/// Accepts connections and never answers; the connections stay open as
/// long as the returned guard lives.
pub(crate) async fn silent_listener() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Accepts and never answers.
    Silent,
    /// HTTP 500 with an HTML page.
    Status500,
    /// HTTP 200 with a body that is not JSON.
    NotJson,
    /// Reads the request, then resets the connection (RST).
    Reset,
    /// HTTP 200 announcing 100 MB of JSON, sending one byte past the 64 KiB
    /// cap and then nothing more, the connection held open: only a client
    /// that stops at its cap answers before its time-out.
    PastTheCap,
    /// A valid answer (the `body`) padded with spaces to exactly the cap:
    /// read and judged as any answer.
    AtTheCap(&'static str),
    /// WeChat's "system busy" (errcode -1, which is retried), after 2.5 s.
    SlowBusy,
}

/// The body cap of both clients.
const CAP: usize = gatehouse::wechat::client::MAX_UPSTREAM_BODY_BYTES;
const _: () = assert!(CAP == gatehouse::tencent::api::MAX_RESPONSE_BYTES);
const HUGE_BYTES: usize = 100 * 1024 * 1024;

/// A fake upstream that misbehaves on every connection. Returns its URL and
/// the count of body bytes it wrote.
async fn fake_upstream(how: Misbehaviour) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            if let Misbehaviour::Silent = how {
                held.push(socket);
                continue;
            }
            tokio::spawn(async move {
                read_request(&mut socket).await;
                let bytes = match how {
                    Misbehaviour::Silent => unreachable!("held above"),
                    Misbehaviour::Status500 => {
                        let page = "<html><body>502 Bad Gateway</body></html>";
                        response(
                            "500 Internal Server Error",
                            "text/html",
                            page.len(),
                            page.as_bytes(),
                        )
                    }
                    Misbehaviour::NotJson => {
                        let page = "<html>系统繁忙</html>";
                        response("200 OK", "text/plain", page.len(), page.as_bytes())
                    }
                    Misbehaviour::SlowBusy => {
                        tokio::time::sleep(Duration::from_millis(2500)).await;
                        let body = r#"{"errcode":-1,"errmsg":"system error, rid: x"}"#;
                        response("200 OK", "text/plain", body.len(), body.as_bytes())
                    }
                    Misbehaviour::Reset => {
                        #[allow(deprecated)]
                        let _ = socket.set_linger(Some(Duration::ZERO));
                        return;
                    }
                    Misbehaviour::PastTheCap => response(
                        "200 OK",
                        "application/json",
                        HUGE_BYTES,
                        &vec![b'['; CAP + 1],
                    ),
                    Misbehaviour::AtTheCap(body) => {
                        let padded = body.to_owned() + &" ".repeat(CAP - body.len());
                        response("200 OK", "application/json", CAP, padded.as_bytes())
                    }
                };
                if socket.write_all(&bytes).await.is_err() {
                    return;
                }
                let head = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                counter.fetch_add(bytes.len() - head, Ordering::SeqCst);
                if let Misbehaviour::PastTheCap = how {
                    // Held open, and silent: only the client's cap ends it
                    // before its time-out.
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    (format!("http://{addr}"), written)
}

/// An HTTP/1.1 answer announcing `length` body bytes, with `body`.
fn response(status: &str, content_type: &str, length: usize, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {length}\r\n\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Reads the request head and the body its content-length announces, so
/// that the client is done sending before we misbehave.
async fn read_request(socket: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match socket.read(&mut buf).await {
            Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => return,
        }
    };
    let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while seen.len() < head_end + length {
        match socket.read(&mut buf).await {
            Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
}

/// Status and errCode, the paused-clock time the route took, and the body
/// bytes the upstream wrote.
type Answered = ((u16, String), Duration, usize);

async fn wechat_against(how: Misbehaviour) -> Answered {
    let (url, written) = fake_upstream(how).await;
    let wx = WxConfig::new("wxfault", "secret")
        .unwrap()
        .with_api_base(&url);
    let svc = LoginService::new(wx, Arc::new(MemoryStore::new()), &defaults()).unwrap();
    let t = Instant::now();
    let resp = login(&svc, post(json!({"code": "c0de"}))).await;
    (parsed(&resp), t.elapsed(), written.load(Ordering::SeqCst))
}

async fn tencent_against(how: Misbehaviour) -> Answered {
    let (url, written) = fake_upstream(how).await;
    let svc = TicketService::new(
        tencent_config(&url),
        TicketSettings::default(),
        Arc::new(MemoryStore::new()),
        &defaults(),
    )
    .unwrap();
    let t = Instant::now();
    let resp = verify_ticket(&svc, post(json!({"ticket": "t03fault", "randstr": "@r"}))).await;
    (parsed(&resp), t.elapsed(), written.load(Ordering::SeqCst))
}

/// How an upstream misbehaves, the answer the route gives, and when (on
/// the paused clock).
type Case = (Misbehaviour, (u16, String), Duration);

/// The misbehaviours both clients answer at once with `upstream_error`:
/// nothing waits for a time-out.
fn failing_at_once(upstream_error: &(u16, String)) -> Vec<Case> {
    [
        Misbehaviour::Status500,
        Misbehaviour::NotJson,
        Misbehaviour::Reset,
        Misbehaviour::PastTheCap,
    ]
    .into_iter()
    .map(|how| (how, upstream_error.clone(), Duration::ZERO))
    .collect()
}

/// Runs every case at once (on the paused clock each is timed by itself)
/// and checks each answer and its time; past the cap, the upstream wrote
/// one byte more than the cap and the client read no further.
async fn each_answers_as_expected<F, Fut>(cases: Vec<Case>, against: F)
where
    F: Fn(Misbehaviour) -> Fut,
    Fut: std::future::Future<Output = Answered> + Send + 'static,
{
    let runs: Vec<_> = cases
        .into_iter()
        .map(|(how, answer, at)| (how, answer, at, tokio::spawn(against(how))))
        .collect();
    for (how, expected, at, run) in runs {
        let (answer, elapsed, written) = run.await.unwrap();
        assert_eq!((answer, elapsed), (expected, at), "{how:?}");
        if let Misbehaviour::PastTheCap = how {
            assert_eq!(written, CAP + 1, "one byte past the cap, and no more");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn wechat_faults_are_502_at_the_time_out_that_ends_each() {
    use gatehouse::wechat::client::{DEFAULT_UPSTREAM_TIMEOUT, RETRY_BUDGET_SLACK};
    let upstream_error = (502, "wx-upstream-error".to_owned());
    let mut cases = failing_at_once(&upstream_error);
    cases.extend([
        // Three slow -1 answers would take 7.5 s: the exchange's own
        // deadline, one time-out and its slack, ends it first.
        (
            Misbehaviour::SlowBusy,
            upstream_error.clone(),
            DEFAULT_UPSTREAM_TIMEOUT + RETRY_BUDGET_SLACK,
        ),
        (
            Misbehaviour::Silent,
            upstream_error,
            DEFAULT_UPSTREAM_TIMEOUT,
        ),
        (
            Misbehaviour::AtTheCap(r#"{"errcode":40029,"errmsg":"invalid code, rid: x"}"#),
            (400, "wx-code-invalid".to_owned()),
            Duration::ZERO,
        ),
    ]);
    each_answers_as_expected(cases, wechat_against).await;
}

#[tokio::test(start_paused = true)]
async fn tencent_faults_are_502_at_the_time_out_that_ends_each() {
    use gatehouse::tencent::client::DEFAULT_TIMEOUT;
    let upstream_error = (502, "ticket-upstream-error".to_owned());
    let mut cases = failing_at_once(&upstream_error);
    cases.extend([
        (Misbehaviour::Silent, upstream_error, DEFAULT_TIMEOUT),
        (
            Misbehaviour::AtTheCap(
                r#"{"Response":{"CaptchaCode":15,"CaptchaMsg":"decrypt fail","RequestId":"r"}}"#,
            ),
            (400, "ticket-rejected".to_owned()),
            Duration::ZERO,
        ),
    ]);
    each_answers_as_expected(cases, tencent_against).await;
}

/// A verify that meets another transaction on its captcha row (DynamoDB
/// cancels its transaction with `TransactionConflict`, or refuses its
/// UpdateItem with `TransactionConflictException`; DynamoDB Local never
/// does) tries the same round again rather than failing.
#[tokio::test]
async fn a_verify_that_meets_another_transaction_tries_again() {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_sdk_dynamodb::types::error::{
        TransactionCanceledException, TransactionConflictException,
    };
    use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
    use gatehouse::guard::pass::PassToken;
    use gatehouse::store::{CaptchaStore, PassKind, VerifyOutcome};
    use gatehouse_e2e::{NOW, device, pass_grant, scene};

    let reason = |code: &str| CancellationReason::builder().code(code).build();
    let cancelled = move |first: CancellationReason| {
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .cancellation_reasons(first)
                .cancellation_reasons(reason("None"))
                .build(),
        )
    };
    let n = |v: i64| AttributeValue::N(v.to_string());
    let row = move || {
        std::collections::HashMap::from([
            ("code".to_owned(), AttributeValue::S("abcd".into())),
            ("state".to_owned(), n(0)),
            ("attempts".to_owned(), n(0)),
            ("expired_date".to_owned(), n(*NOW + 60_000)),
        ])
    };
    let conflict_then_passed = mock!(Client::transact_write_items)
        .sequence()
        .error(move || cancelled(reason("TransactionConflict")))
        .output(|| TransactWriteItemsOutput::builder().build())
        .build();
    let client = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::Sequential,
        [&conflict_then_passed]
    );
    let store = DynamoStore::new(client, "gatehouse".into());
    let token = PassToken::issue(PassKind::Captcha);
    let grant = pass_grant(&token, "login", Some("d"), "203.0.113.7");
    let verify = |store: DynamoStore, answer: &'static str| {
        let grant = grant.clone();
        async move {
            store
                .verify_captcha_granting(
                    &scene("login"),
                    &device("d"),
                    answer,
                    *NOW,
                    3,
                    Some(&grant),
                )
                .await
        }
    };
    assert_eq!(verify(store, "abcd").await.unwrap(), VerifyOutcome::Passed);
    assert_eq!(conflict_then_passed.num_calls(), 2, "the round tried again");

    // A wrong answer: its transaction refused by the code (the row as it
    // was), its count refused once by another transaction, then counted.
    let refused = mock!(Client::transact_write_items).then_error(move || {
        cancelled(
            CancellationReason::builder()
                .code("ConditionalCheckFailed")
                .set_item(Some(row()))
                .build(),
        )
    });
    let counted = mock!(Client::update_item)
        .sequence()
        .error(|| {
            UpdateItemError::TransactionConflictException(
                TransactionConflictException::builder().build(),
            )
        })
        .output(move || {
            UpdateItemOutput::builder()
                .set_attributes(Some(row()))
                .attributes("state", n(0))
                .attributes("attempts", n(1))
                .build()
        })
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&refused, &counted]);
    let store = DynamoStore::new(client, "gatehouse".into());
    assert_eq!(
        verify(store, "zzzz").await.unwrap(),
        VerifyOutcome::Wrong { attempts_left: 2 }
    );
    assert_eq!(refused.num_calls(), 1);
    assert_eq!(counted.num_calls(), 2, "the count tried again");
}
