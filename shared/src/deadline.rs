//! One deadline per request, so that every function answers within its
//! Lambda time-out with room to spare, whatever its store and upstream
//! calls do.
//!
//! Each call has a time-out of its own (WeChat and Tencent 5 s, the
//! DynamoDB SDK's attempt and operation time-outs), but they add up: a
//! login that meets WeChat's `-1` twice can spend three WeChat calls and
//! their backoff, more than wx-login's 10 s. Past its time-out Lambda kills
//! the invocation and API Gateway answers a bare 503 with no errCode. So
//! the whole request, store and upstream calls alike, runs under one
//! deadline: the invocation's own (`Context::deadline`, epoch ms) less
//! [`MARGIN`], or on the dev server (no Lambda context) the function's
//! time-out in `template.yaml` (`api::Function::timeout`, which callers
//! pass in) less [`MARGIN`].
//! When it passes, the request is dropped where it stands (as when an
//! upstream call fails) and the client gets `deadline-exceeded` (504) in
//! the usual envelope; the authorizer denies.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_http::{Body, Context, Request, RequestExt, Response};

use crate::error::ApiError;
use crate::http::error_response;
use crate::lang::Lang;

/// Kept between a request's deadline and the Lambda's: time to write the
/// answer, flush the logs and metrics and hand the answer to the runtime.
/// The shortest time-out in `template.yaml` is 5 s, so every function has
/// at least 4 s of work (a test checks the template against
/// `api::Function::timeout`).
pub const MARGIN: Duration = Duration::from_secs(1);

/// How long the request `req` may work: to its invocation's deadline when
/// it came through Lambda, else to its function's `timeout`, less
/// [`MARGIN`] (zero when that has already passed).
pub fn budget(timeout: Duration, req: &Request) -> Duration {
    budget_of(timeout, req.lambda_context_ref())
}

/// [`budget`] from a Lambda context (none on the dev server); the
/// authorizer's events carry theirs beside the payload.
pub fn budget_of(timeout: Duration, context: Option<&Context>) -> Duration {
    let remaining = match context {
        Some(ctx) if ctx.deadline > 0 => {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            Duration::from_millis(ctx.deadline.saturating_sub(now_ms))
        }
        _ => timeout,
    };
    remaining.saturating_sub(MARGIN)
}

/// Runs `handler` on `req` under the request's deadline (see the module;
/// `timeout` is its function's): its answer, or `deadline-exceeded` once
/// the deadline passes.
pub async fn answer_within<F, Fut>(timeout: Duration, req: Request, handler: F) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    let budget = budget(timeout, &req);
    let lang = Lang::from_request(&req);
    match within(budget, handler(req)).await {
        Some(resp) => resp,
        None => {
            tracing::error!(
                budget_ms = budget.as_millis() as u64,
                "request deadline passed: answered before the Lambda time-out"
            );
            error_response(lang, &ApiError::DeadlineExceeded)
        }
    }
}

/// `work`'s output, or `None` when `budget` runs out first.
pub async fn within<T>(budget: Duration, work: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(budget, work).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_S: Duration = Duration::from_secs(5);
    const FIFTEEN_S: Duration = Duration::from_secs(15);

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    #[test]
    fn the_budget_is_the_invocations_deadline_or_the_functions_time_out_less_the_margin() {
        let bare = http::Request::new(Body::Empty);
        assert_eq!(budget(FIVE_S, &bare), Duration::from_secs(4));
        assert_eq!(budget(FIFTEEN_S, &bare), Duration::from_secs(14));
        let mut ctx = Context::default();
        ctx.deadline = now_ms() + 3_000;
        let with = http::Request::new(Body::Empty).with_lambda_context(ctx.clone());
        let b = budget(FIFTEEN_S, &with);
        assert!(
            b <= Duration::from_secs(2) && b > Duration::from_millis(1_500),
            "{b:?}"
        );
        ctx.deadline = now_ms().saturating_sub(10);
        assert_eq!(budget_of(FIVE_S, Some(&ctx)), Duration::ZERO);
        ctx.deadline = 0;
        assert_eq!(
            budget_of(FIVE_S, Some(&ctx)),
            Duration::from_secs(4),
            "a context without a deadline is the dev server's"
        );
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_gets_deadline_exceeded() {
        let mut ctx = Context::default();
        ctx.deadline = now_ms();
        let req = http::Request::new(Body::Empty).with_lambda_context(ctx);
        let resp = answer_within(FIVE_S, req, |_| async {
            std::future::pending::<Response<Body>>().await
        })
        .await;
        assert_eq!(resp.status(), 504);
        let Body::Text(text) = resp.body() else {
            panic!("a JSON body")
        };
        assert!(text.contains("\"deadline-exceeded\""), "{text}");
    }
}
