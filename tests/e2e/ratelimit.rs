//! Rate limits on both stores: the counters of create and refresh go into
//! the captcha's own write (all or nothing), and the routes answer 429 with
//! `Retry-After` past a limit. Every case runs on the embedded `MemoryStore`
//! and on `DynamoStore` over DynamoDB Local.

use std::sync::Arc;

use gatehouse::captcha::{CaptchaService, Renderer, create, refresh, verify};
use gatehouse::clock::Clock;
use gatehouse::options::ServiceOptions;
use gatehouse::settings::Settings;
use gatehouse::store::{CounterLimit, IssueMode, IssueOutcome, Store, VerifyOutcome};
use gatehouse_e2e::{NOW, captcha, device, post_json, scene, status_and_json as parsed};
use lambda_http::Request;
use serde_json::{Value, json};

type Shared = Arc<dyn Store>;

fn limit(name: &str, limit: u64) -> CounterLimit {
    CounterLimit {
        name: name.to_owned(),
        limit,
        window_end_ms: *NOW + 60_000,
    }
}

fn post(body: Value) -> Request {
    post_json(&body, "198.51.100.20")
}

mod cases {
    use super::*;

    pub async fn a_full_counter_blocks_the_write_and_is_not_counted(store: Shared) {
        let limits = [limit("ip-a", 2), limit("dev-a", 5)];
        for code in ["aaaa", "bbbb"] {
            assert_eq!(
                store
                    .issue_captcha(&captcha("login", "d1", code), IssueMode::Create, &limits)
                    .await
                    .unwrap(),
                IssueOutcome::Written
            );
        }
        assert_eq!(
            store
                .issue_captcha(&captcha("login", "d1", "cccc"), IssueMode::Create, &limits)
                .await
                .unwrap(),
            IssueOutcome::RateLimited {
                window_end_ms: *NOW + 60_000
            }
        );
        // Nothing was written: the second captcha is still the one that passes.
        assert_eq!(
            store
                .verify_captcha(&scene("login"), &device("d1"), "bbbb", *NOW + 1, 1)
                .await
                .unwrap(),
            VerifyOutcome::Passed
        );
        // Nothing was counted: both counters stand where the two writes left them.
        assert_eq!(
            store
                .increment_counter("ip-a", *NOW + 60_000)
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            store
                .increment_counter("dev-a", *NOW + 60_000)
                .await
                .unwrap(),
            3
        );
    }

    pub async fn refresh_needs_a_captcha_and_the_limit_wins(store: Shared) {
        let limits = [limit("ip-r", 1)];
        assert_eq!(
            store
                .issue_captcha(&captcha("login", "r1", "aaaa"), IssueMode::Refresh, &limits)
                .await
                .unwrap(),
            IssueOutcome::NotFound
        );
        assert_eq!(
            store
                .increment_counter("ip-r", *NOW + 60_000)
                .await
                .unwrap(),
            1,
            "a refresh that found nothing counted nothing"
        );
        // ip-r is now full: over the limit, rate-limited wins over not-found.
        assert_eq!(
            store
                .issue_captcha(&captcha("login", "r1", "aaaa"), IssueMode::Refresh, &limits)
                .await
                .unwrap(),
            IssueOutcome::RateLimited {
                window_end_ms: *NOW + 60_000
            }
        );
        store
            .create_captcha(&captcha("login", "r1", "bbbb"))
            .await
            .unwrap();
        assert_eq!(
            store
                .issue_captcha(
                    &captcha("login", "r1", "cccc"),
                    IssueMode::Refresh,
                    &[limit("ip-r2", 1)]
                )
                .await
                .unwrap(),
            IssueOutcome::Written
        );
        assert_eq!(
            store
                .verify_captcha(&scene("login"), &device("r1"), "cccc", *NOW + 1, 1)
                .await
                .unwrap(),
            VerifyOutcome::Passed
        );
        // No limits: the plain writes.
        assert_eq!(
            store
                .issue_captcha(&captcha("login", "r9", "x"), IssueMode::Refresh, &[])
                .await
                .unwrap(),
            IssueOutcome::NotFound
        );
    }

    pub async fn racing_writes_never_pass_the_limit(store: Shared) {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .issue_captcha(
                            &captcha("login", &format!("racer{i}"), "abcd"),
                            IssueMode::Create,
                            &[limit("ip-race", 4)],
                        )
                        .await
                })
            })
            .collect();
        let mut written = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                IssueOutcome::Written => written += 1,
                IssueOutcome::RateLimited { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        // Each racer's counter update is one conditional write on one item,
        // which DynamoDB (and the embedded store's lock) applies one at a
        // time: exactly the first four are counted, and no racer is turned
        // away while the count is below the limit.
        assert_eq!(written, 4, "{written} writes passed a limit of 4");
        let count = store
            .increment_counter("ip-race", *NOW + 60_000)
            .await
            .unwrap();
        assert_eq!(count, written + 1, "the counter counted exactly the writes");
    }

    pub async fn routes_answer_429_with_retry_after(store: Shared) {
        let settings = Settings::from_json(
            r#"{"rateLimit": {"windowSeconds": 60, "createPerDevice": 2, "refreshPerDevice": 1, "verifyPerIp": 1}}"#,
        )
        .unwrap();
        let options =
            ServiceOptions::new(settings.rate_limits.clone()).with_clock(Clock::manual(*NOW));
        let svc = CaptchaService::new(
            settings.captcha_settings(),
            Renderer::builtin(),
            store,
            &options,
        );
        let body = json!({"scene": "login", "deviceId": "route-dev"});
        for _ in 0..2 {
            assert_eq!(parsed(&create(&svc, post(body.clone())).await).0, 200);
        }
        let resp = create(&svc, post(body.clone())).await;
        let (status, reply) = parsed(&resp);
        assert_eq!(
            (status, reply["errCode"].as_str()),
            (429, Some("rate-limited"))
        );
        let retry: i64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let window_end = (*NOW / 60_000 + 1) * 60_000;
        assert_eq!(retry, (window_end - *NOW + 999) / 1000);

        assert_eq!(parsed(&refresh(&svc, post(body.clone())).await).0, 200);
        assert_eq!(parsed(&refresh(&svc, post(body.clone())).await).0, 429);

        let guess = json!({"scene": "login", "deviceId": "route-dev", "captcha": "zzzz"});
        assert_eq!(parsed(&verify(&svc, post(guess.clone())).await).0, 400);
        assert_eq!(parsed(&verify(&svc, post(guess)).await).0, 429);
    }
}

gatehouse_e2e::on_both_stores!(
    a_full_counter_blocks_the_write_and_is_not_counted,
    refresh_needs_a_captcha_and_the_limit_wins,
    racing_writes_never_pass_the_limit,
    routes_answer_429_with_retry_after,
);
