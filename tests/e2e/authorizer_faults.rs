//! The authorizer when the store fails it (issue 25.3, 25.7): a guarded
//! route's denial is recorded as `StoreError` or `DeadlineExceeded`, not as
//! a plain `Denied`, so the alarms on those outcomes see it; a scene whose
//! guard says `onStoreError: "admit"` opens instead, `degraded: true` in
//! the context, with the `GuardDegraded` event.
//!
//! Time is tokio's paused clock, as in `faults.rs`: a silent DynamoDB
//! answers at exactly the budget that ends it.

use std::sync::Arc;
use std::time::Duration;

use gatehouse::guard::{Authorizer, AuthorizerRequest, GuardRoutes, Verdict, judge_within};
use gatehouse::metrics::{Event, Outcome};
use gatehouse::options::ServiceOptions;
use gatehouse::ratelimit::RateLimitConfig;
use gatehouse::settings::Settings;
use gatehouse::store::dynamo::DynamoStore;
use gatehouse::wechat::SessionService;
use serde_json::json;

use crate::faults::{lambda_client, silent_listener};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_smithy_mocks::{RuleMode, mock, mock_client};

/// The authorizer's own budget (its 5 s time-out less the margin), shorter
/// than the store's 4 s only when the test says so.
const BUDGET: Duration = Duration::from_secs(2);

fn authorizer(store_endpoint: &str, guard: serde_json::Value) -> Authorizer {
    authorizer_on(lambda_client(store_endpoint), guard)
}

fn authorizer_on(client: aws_sdk_dynamodb::Client, guard: serde_json::Value) -> Authorizer {
    let config = json!({"scene": {"signup": {"guard": guard}}}).to_string();
    let settings = Settings::from_json(&config).unwrap();
    let store = Arc::new(DynamoStore::new(client, "gatehouse".into()));
    let options = ServiceOptions::new(RateLimitConfig::disabled());
    let routes = r#"{"POST /signup": {"scene": "signup", "pass": "auto"}}"#;
    Authorizer::new(
        SessionService::new(store.clone(), &options),
        gatehouse::guard::Guard::new(settings.guard, store, &options),
        GuardRoutes::from_json(routes).unwrap(),
    )
}

/// The authorizer event of `POST /signup` from device `dev-faults`, no
/// session.
fn signup() -> AuthorizerRequest {
    gatehouse_e2e::authorizer_event(
        "POST /signup",
        "203.0.113.7",
        &[("x-device-id", "dev-faults")],
    )
}

fn summary(verdict: &Verdict) -> (bool, Outcome, Vec<Event>) {
    (
        verdict.response.is_authorized,
        verdict.outcome,
        verdict.events.iter().cloned().collect(),
    )
}

/// A closed loopback port: every request refused at once, retried, failed.
fn unreachable() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_is_a_store_error_denial_or_a_degraded_admission() {
    let deny = authorizer(&unreachable(), json!({"mode": "adaptive"}));
    let verdict = judge_within(&deny, signup(), BUDGET).await;
    assert_eq!(summary(&verdict), (false, Outcome::StoreError, vec![]));

    let admit = authorizer(
        &unreachable(),
        json!({"mode": "adaptive", "onStoreError": "admit"}),
    );
    let verdict = judge_within(&admit, signup(), BUDGET).await;
    assert_eq!(
        summary(&verdict),
        (true, Outcome::Passed, vec![Event::GuardDegraded])
    );
    assert_eq!(
        verdict.response.context,
        json!({"scene": "signup", "level": "none", "degraded": true})
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_store_past_the_deadline_is_a_deadline_denial_or_a_degraded_admission() {
    let (addr, _held) = silent_listener().await;
    let endpoint = format!("http://{addr}");
    let deny = authorizer(&endpoint, json!({"mode": "adaptive"}));
    let started = tokio::time::Instant::now();
    let verdict = judge_within(&deny, signup(), BUDGET).await;
    assert_eq!(started.elapsed(), BUDGET, "denied at the deadline");
    assert_eq!(
        summary(&verdict),
        (false, Outcome::DeadlineExceeded, vec![])
    );

    let admit = authorizer(
        &endpoint,
        json!({"mode": "adaptive", "onStoreError": "admit"}),
    );
    let verdict = judge_within(&admit, signup(), BUDGET).await;
    assert_eq!(
        summary(&verdict),
        (true, Outcome::Passed, vec![Event::GuardDegraded])
    );
    assert_eq!(verdict.response.context["degraded"], true);
}

/// A counter row DynamoDB throttles (a flooded IP past a thousand writes a
/// second) counts as past every threshold: the door asks for a pass (here
/// a ticket's: none was sent), never answers 5xx, never opens; with
/// `onStoreError: "admit"` too, for a throttle is no store failure.
#[tokio::test(start_paused = true)]
async fn a_throttled_counter_asks_for_a_pass() {
    for policy in ["deny", "admit"] {
        let throttled = || {
            gatehouse_e2e::throttled(
                "Throughput exceeds the current capacity for one or more global secondary indexes",
            )
        };
        let update = mock!(Client::update_item).then_error(move || {
            UpdateItemError::ProvisionedThroughputExceededException(throttled())
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&update], |builder| {
            builder.retry_config(gatehouse::store::dynamo::lambda_retry_config())
        });
        let auth = authorizer_on(client, json!({"mode": "adaptive", "onStoreError": policy}));
        let verdict = judge_within(&auth, signup(), BUDGET).await;
        assert_eq!(
            summary(&verdict),
            (
                false,
                Outcome::Denied,
                vec![
                    Event::GuardThrottled,
                    Event::GuardReason { reason: "failures" },
                    Event::GuardReason { reason: "requests" },
                ]
            ),
            "{policy}"
        );
        assert!(update.num_calls() >= 2, "the IP's and the device's rows");
    }
}
