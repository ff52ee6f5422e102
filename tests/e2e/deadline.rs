//! One deadline per request (`gatehouse::deadline`): with WeChat and
//! Tencent stalled (a loopback listener that accepts and never answers) and
//! a Lambda context whose deadline is near, `POST /wx/login` and
//! `POST /ticket/verify` answer `deadline-exceeded` in the envelope, where
//! each upstream call's own 5 s time-out would have given an upstream error
//! much later. No timed assertion: the errCode tells which came first. The
//! authorizer denies under a passed deadline.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse::api::{Function, Services};
use gatehouse::deadline::MARGIN;
use gatehouse::options::ServiceOptions;
use gatehouse::ratelimit::RateLimitConfig;
use gatehouse::store::Store;
use gatehouse::store::memory::MemoryStore;
use gatehouse::tencent::{TencentConfig, TicketService, TicketSettings};
use gatehouse::wechat::{LoginService, WxConfig};
use gatehouse_e2e::{api_event, status_and_json};
use lambda_http::{Context, Request, RequestExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A loopback listener that accepts every connection and never answers,
/// holding the sockets until it is dropped (the end of the stall).
struct Stall {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Stall {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Self { url, task }
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Lambda context whose deadline leaves `work` after the margin.
fn context(work: Duration) -> Context {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut ctx = Context::default();
    ctx.deadline = now_ms + (MARGIN + work).as_millis() as u64;
    ctx
}

/// `function`'s answer (status, body) to `route` with `body`, its Lambda
/// context's deadline leaving `work`.
async fn answer(
    function: Function,
    services: &Services,
    route: &str,
    body: &Value,
    work: Duration,
) -> (u16, Value) {
    let req: Request = api_event(route, body, "198.51.100.70").with_lambda_context(context(work));
    status_and_json(&function.lambda().answer(services, req).await)
}

/// `POST /wx/login` with WeChat stalled, the login service on `options`,
/// `work` left before the deadline.
async fn stalled_login(options: &ServiceOptions, work: Duration) -> (u16, Value) {
    let stall = Stall::start().await;
    let config = WxConfig::new("wxdeadline0000001", "deadline-secret")
        .unwrap()
        .with_api_base(&stall.url);
    let services = Services {
        login: Some(Arc::new(
            LoginService::new(config, store(), options).unwrap(),
        )),
        ..Services::default()
    };
    let body = json!({"code": "stalled-code"});
    let answer = answer(Function::WxLogin, &services, "POST /wx/login", &body, work).await;
    drop(stall);
    answer
}

fn store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

/// The default rate limits, clock and time-out.
fn defaults() -> ServiceOptions {
    ServiceOptions::new(RateLimitConfig::default())
}

#[tokio::test]
async fn a_stalled_tencent_is_answered_with_deadline_exceeded_before_its_time_out() {
    let stall = Stall::start().await;
    let config = TencentConfig {
        secret_id: "AKIDdeadline".into(),
        secret_key: "deadline-key".into(),
        captcha_app_id: 190_000_007,
        app_secret_key: "deadline-app-key".into(),
        endpoint: stall.url.clone(),
        region: None,
    };
    let services = Services {
        tickets: Some(Arc::new(
            TicketService::new(config, TicketSettings::default(), store(), &defaults()).unwrap(),
        )),
        ..Services::default()
    };
    let (status, body) = answer(
        Function::VerifyTicket,
        &services,
        "POST /ticket/verify",
        &json!({"ticket": "t03stalled", "randstr": "@r"}),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(
        (status, &body["errCode"]),
        (504, &json!("deadline-exceeded")),
        "{body}"
    );
    assert!(body["errMsg"].as_str().unwrap().contains("took too long"));
    drop(stall);
}

#[tokio::test]
async fn a_stalled_wechat_is_answered_with_deadline_exceeded_before_its_time_out() {
    let (status, body) = stalled_login(&defaults(), Duration::from_millis(300)).await;
    assert_eq!(
        (status, &body["errCode"]),
        (504, &json!("deadline-exceeded")),
        "{body}"
    );
}

#[tokio::test]
async fn a_request_within_its_deadline_is_answered_as_usual() {
    // The same stalled WeChat with the dev server's budget (no context):
    // the request is still cut by the deadline only after WeChat's own
    // time-out, so the client sees wx-upstream-error.
    let options = defaults().with_timeout(Duration::from_millis(200));
    let (status, body) = stalled_login(&options, Duration::from_secs(30)).await;
    assert_eq!(
        (status, &body["errCode"]),
        (502, &json!("wx-upstream-error")),
        "{body}"
    );
}
