//! CloudWatch metrics of every function, as embedded-metric-format (EMF)
//! lines on stdout, which CloudWatch Logs turns into metrics: no API call, no
//! IAM permission, no added latency. What is recorded is written here, from
//! plain values; when is `crate::lambda`'s business: its run loop times
//! every request, derives its [`Outcome`] from the response (status and
//! errCode), [`record`]s it with the [`Event`]s the handler found on the way
//! (Tencent's verdict, which only the ticket service knows, or the guard's
//! reasons, travel back in the response's extensions, or in the
//! authorizer's verdict: [`Events`]) and [`flush`]es one EMF document per
//! dimension set after every invocation.
//!
//! A leaf: it knows no route, function or domain of the crate.
//!
//! | metric | dimensions | unit |
//! |---|---|---|
//! | `Requests` | `Function`, `Route`, `Outcome` | count |
//! | `Requests` | `Outcome` (every function together, for alarms) | count |
//! | `Latency` | `Function`, `Route` | milliseconds |
//! | `TencentCaptchaCode` | `Function`, `CaptchaCode` | count |
//! | `TencentRejected` | `Function` (a `CaptchaCode` other than 1) | count |
//! | `SmsStatus` | `Function`, `Status` (what `SendSms` came to: `Ok`, `LimitExceeded`, `IncorrectPhoneNumber`, `InsufficientBalance`, `Failed`, `Unreachable`, `NotJson`) | count |
//! | `SmsBilled` | `Function` (messages Tencent bills, its `Fee`) | count |
//! | `SmsBudgetExhausted` | `Function` (sends refused by a scene's `dailyBudget`) | count |
//! | `GuardReasons` | `Function`, `Reason` (each reason of a level above `none` at a door) | count |
//! | `GuardThrottled` | `Function` (a guard counter DynamoDB throttled: a pass asked for) | count |
//! | `GuardDegraded` | `Function` (a door admitted without the store, `onStoreError: "admit"`) | count |
//! | `WxRisk` | `Function`, `Result` (`Rank0` … `Rank4`, or why there is no rank: `Busy`, `TimedOut` …), `Source` (`Cache` or `WeChat`) | count |
//!
//! The namespace is `METRICS_NAMESPACE` (the template sets one per stack),
//! default [`DEFAULT_NAMESPACE`]. The EMF encoding is the
//! `metrics_cloudwatch_embedded` crate's, behind the `metrics` facade.

use std::time::Duration;

use lambda_http::{Body, Response};
use metrics_cloudwatch_embedded::{Builder, Collector};

/// The variable naming the metrics' namespace.
pub const NAMESPACE_VAR: &str = "METRICS_NAMESPACE";
/// The namespace when `METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "gatehouse";

/// Metric names and dimension keys (the template's alarms and dashboard use
/// the same).
pub const REQUESTS: &str = "Requests";
pub const LATENCY: &str = "Latency";
pub const TENCENT_CAPTCHA_CODE: &str = "TencentCaptchaCode";
pub const TENCENT_REJECTED: &str = "TencentRejected";
pub const SMS_STATUS: &str = "SmsStatus";
pub const SMS_BILLED: &str = "SmsBilled";
pub const SMS_BUDGET_EXHAUSTED: &str = "SmsBudgetExhausted";
pub const STATUS: &str = "Status";
pub const GUARD_REASONS: &str = "GuardReasons";
pub const GUARD_THROTTLED: &str = "GuardThrottled";
pub const GUARD_DEGRADED: &str = "GuardDegraded";
pub const REASON: &str = "Reason";
pub const FUNCTION: &str = "Function";
pub const ROUTE: &str = "Route";
pub const OUTCOME: &str = "Outcome";
pub const CAPTCHA_CODE: &str = "CaptchaCode";
pub const WX_RISK: &str = "WxRisk";
pub const RESULT: &str = "Result";
pub const SOURCE: &str = "Source";

/// What a request came to, from its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Success (`errCode` 0; an admitted authorizer request).
    Passed,
    /// A wrong or spent answer, code, token, ticket or pass.
    Wrong,
    /// An expired captcha, session or ticket.
    Expired,
    /// Our own rate limit (`rate-limited`).
    RateLimited,
    /// Refused by policy: a door that needs a pass or session, a blocked
    /// WeChat user, a denied authorizer request.
    Denied,
    /// Any other client error (a malformed request).
    Invalid,
    /// WeChat or Tencent failed (errors, time-outs, their own limits).
    UpstreamError,
    /// DynamoDB failed after the SDK's retries (`store-unavailable`; the
    /// authorizer's denial when the store failed it).
    StoreError,
    /// The request's deadline passed first (`deadline-exceeded`; the
    /// authorizer's denial when its deadline passed).
    DeadlineExceeded,
    /// Anything else on our side (a 5xx).
    InternalError,
}

impl Outcome {
    pub const ALL: [Outcome; 10] = [
        Outcome::Passed,
        Outcome::Wrong,
        Outcome::Expired,
        Outcome::RateLimited,
        Outcome::Denied,
        Outcome::Invalid,
        Outcome::UpstreamError,
        Outcome::StoreError,
        Outcome::DeadlineExceeded,
        Outcome::InternalError,
    ];

    /// The dimension value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "Passed",
            Outcome::Wrong => "Wrong",
            Outcome::Expired => "Expired",
            Outcome::RateLimited => "RateLimited",
            Outcome::Denied => "Denied",
            Outcome::Invalid => "Invalid",
            Outcome::UpstreamError => "UpstreamError",
            Outcome::StoreError => "StoreError",
            Outcome::DeadlineExceeded => "DeadlineExceeded",
            Outcome::InternalError => "InternalError",
        }
    }

    /// The outcome of an answer with HTTP `status` and `errCode` (the
    /// error table of `crate::error`); an unknown code falls back on the
    /// status.
    pub fn of(status: u16, err_code: Option<&str>) -> Outcome {
        match err_code {
            Some(
                "rate-limited" | "sms-send-too-soon" | "sms-daily-limit" | "sms-budget-exhausted",
            ) => Outcome::RateLimited,
            Some("store-unavailable") => Outcome::StoreError,
            Some("deadline-exceeded") => Outcome::DeadlineExceeded,
            Some(
                "wx-upstream-error"
                | "ticket-upstream-error"
                | "wx-rate-limited"
                | "sms-upstream-error"
                | "sms-upstream-limited",
            ) => Outcome::UpstreamError,
            Some(
                "uni-captcha-verify-overdue"
                | "session-expired"
                | "ticket-expired"
                | "sms-code-expired",
            ) => Outcome::Expired,
            Some(
                "uni-captcha-verify-fail"
                | "uni-captcha-refresh-fail"
                | "wx-code-invalid"
                | "wx-decrypt-failed"
                | "wx-signature-mismatch"
                | "session-invalid"
                | "ticket-reused"
                | "ticket-rejected"
                | "guard-pass-invalid"
                | "sms-code-invalid",
            ) => Outcome::Wrong,
            Some(
                "wx-user-blocked"
                | "session-required"
                | "guard-captcha-required"
                | "guard-tencent-required"
                | "guard-refused",
            ) => Outcome::Denied,
            _ => match status {
                200..=399 => Outcome::Passed,
                400..=499 => Outcome::Invalid,
                _ => Outcome::InternalError,
            },
        }
    }

    /// The outcome of a handler's response: a success by its status alone
    /// (its body, a captcha image say, is not parsed), a failure by its
    /// errCode.
    pub fn of_response(resp: &Response<Body>) -> Outcome {
        let status = resp.status().as_u16();
        if status < 400 {
            return Outcome::Passed;
        }
        let err_code = match resp.body() {
            Body::Text(text) => serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("errCode")?.as_str().map(str::to_owned)),
            _ => None,
        };
        Outcome::of(status, err_code.as_deref())
    }
}

/// Installs the process's metrics recorder, once (later calls, and a
/// recorder already installed, leave the first one). `None` when none
/// could be installed: the function then runs without metrics.
pub fn init() -> Option<&'static Collector> {
    static COLLECTOR: std::sync::OnceLock<Option<&'static Collector>> = std::sync::OnceLock::new();
    *COLLECTOR.get_or_init(|| {
        let namespace = std::env::var(NAMESPACE_VAR)
            .ok()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        match Builder::new().cloudwatch_namespace(namespace).init() {
            Ok(collector) => {
                metrics::describe_histogram!(LATENCY, metrics::Unit::Milliseconds, "");
                Some(collector)
            }
            Err(e) => {
                tracing::error!(error = %e, "metrics recorder not installed: no metrics");
                None
            }
        }
    })
}

/// Writes what was recorded since the last flush to stdout (one line per
/// dimension set), where Lambda sends it to CloudWatch Logs.
pub fn flush() {
    if let Err(e) = flush_to(std::io::stdout().lock()) {
        tracing::error!(error = %e, "metrics not written");
    }
}

/// [`flush`] into `out` (tests read the lines back).
pub fn flush_to(out: impl std::io::Write) -> std::io::Result<()> {
    match init() {
        Some(collector) => collector.flush(out),
        None => Ok(()),
    }
}

/// Counts one request of `route` (`POST /captcha/create`, or `other`) of
/// `function` (its name) with `outcome`, and its latency.
pub fn record(function: &'static str, route: &str, outcome: Outcome, elapsed: Duration) {
    let outcome = outcome.as_str();
    metrics::counter!(REQUESTS, FUNCTION => function, ROUTE => route.to_owned(), OUTCOME => outcome)
        .increment(1);
    metrics::counter!(REQUESTS, OUTCOME => outcome).increment(1);
    metrics::histogram!(LATENCY, FUNCTION => function, ROUTE => route.to_owned())
        .record(elapsed.as_secs_f64() * 1000.0);
}

/// Something a handler found out about its request that its answer's
/// [`Outcome`] does not tell, counted beside it. A service hands its events
/// back to its handler (in an [`Events`]); the handler puts them in its
/// response; the Lambda's run loop records them ([`record_event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Tencent's verdict on a ticket: its `CaptchaCode`.
    TencentVerdict { captcha_code: i64 },
    /// What a `SendSms` came to (a fixed set of words, so the dimension
    /// stays small), and the messages it billed.
    SmsStatus { status: &'static str, billed: u64 },
    /// A send refused by its scene's daily budget: the bill's bound was
    /// reached (an alarm watches it).
    SmsBudgetExhausted,
    /// One reason (its code: `failures`, `requests` …) of a level above
    /// `none` that a door asked a pass for.
    GuardReason { reason: &'static str },
    /// A guard counter DynamoDB throttled, taken for one past its
    /// thresholds.
    GuardThrottled,
    /// A door admitted a request without the store (`onStoreError:
    /// "admit"`).
    GuardDegraded,
    /// A user's WeChat risk rank (0-4), read from the table's cache
    /// (`cached`) or asked of WeChat.
    WxRiskRank { rank: u8, cached: bool },
    /// No WeChat risk rank for a user (the guard's counters decide alone):
    /// the failure's name, cached or just met.
    WxRiskFailed { failure: &'static str, cached: bool },
}

/// The [`Event`]s of one request, in the order they happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Events(Vec<Event>);

impl Events {
    pub fn push(&mut self, event: Event) {
        self.0.push(event);
    }

    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.0.iter()
    }

    /// Hands these events on in `resp`'s extensions (after any it holds).
    pub fn attach_to<B>(self, resp: &mut http::Response<B>) {
        if !self.0.is_empty() {
            let held = resp.extensions_mut().get_or_insert_default::<Events>();
            held.0.extend(self.0);
        }
    }

    /// The events `resp` carries, taken out of it.
    pub fn take_from<B>(resp: &mut http::Response<B>) -> Events {
        resp.extensions_mut().remove().unwrap_or_default()
    }
}

/// Counts one event of `function` (its name).
pub fn record_event(function: &'static str, event: &Event) {
    match *event {
        // Every CaptchaCode, and a rejection when it is not 1.
        Event::TencentVerdict { captcha_code } => {
            metrics::counter!(TENCENT_CAPTCHA_CODE, FUNCTION => function,
                CAPTCHA_CODE => captcha_code.to_string())
            .increment(1);
            if captcha_code != 1 {
                metrics::counter!(TENCENT_REJECTED, FUNCTION => function).increment(1);
            }
        }
        Event::SmsStatus { status, billed } => {
            metrics::counter!(SMS_STATUS, FUNCTION => function, STATUS => status).increment(1);
            metrics::counter!(SMS_BILLED, FUNCTION => function).increment(billed);
        }
        Event::SmsBudgetExhausted => {
            metrics::counter!(SMS_BUDGET_EXHAUSTED, FUNCTION => function).increment(1);
        }
        Event::GuardReason { reason } => {
            metrics::counter!(GUARD_REASONS, FUNCTION => function, REASON => reason).increment(1);
        }
        Event::GuardThrottled => {
            metrics::counter!(GUARD_THROTTLED, FUNCTION => function).increment(1);
        }
        Event::GuardDegraded => {
            metrics::counter!(GUARD_DEGRADED, FUNCTION => function).increment(1);
        }
        Event::WxRiskRank { rank, cached } => {
            const RANKS: [&str; 5] = ["Rank0", "Rank1", "Rank2", "Rank3", "Rank4"];
            let result = RANKS.get(usize::from(rank)).copied().unwrap_or("RankOther");
            wx_risk(function, result, cached);
        }
        Event::WxRiskFailed { failure, cached } => wx_risk(function, failure, cached),
    }
}

/// Counts one risk-rank lookup of `function` with `result`.
fn wx_risk(function: &'static str, result: &'static str, cached: bool) {
    let source = if cached { "Cache" } else { "WeChat" };
    metrics::counter!(WX_RISK, FUNCTION => function, RESULT => result, SOURCE => source)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_its_outcome() {
        let cases: &[(u16, &str, Outcome)] = &[
            (400, "invalid-request", Outcome::Invalid),
            (400, "uni-captcha-scene-required", Outcome::Invalid),
            (400, "uni-captcha-verify-fail", Outcome::Wrong),
            (400, "uni-captcha-verify-overdue", Outcome::Expired),
            (404, "uni-captcha-refresh-fail", Outcome::Wrong),
            (500, "uni-captcha-create-fail", Outcome::InternalError),
            (400, "uni-captcha-size-not-allowed", Outcome::Invalid),
            (429, "rate-limited", Outcome::RateLimited),
            (503, "store-unavailable", Outcome::StoreError),
            (400, "wx-code-invalid", Outcome::Wrong),
            (403, "wx-user-blocked", Outcome::Denied),
            (429, "wx-rate-limited", Outcome::UpstreamError),
            (502, "wx-upstream-error", Outcome::UpstreamError),
            (401, "session-required", Outcome::Denied),
            (401, "session-invalid", Outcome::Wrong),
            (401, "session-expired", Outcome::Expired),
            (409, "ticket-reused", Outcome::Wrong),
            (400, "ticket-expired", Outcome::Expired),
            (400, "ticket-rejected", Outcome::Wrong),
            (502, "ticket-upstream-error", Outcome::UpstreamError),
            (403, "guard-captcha-required", Outcome::Denied),
            (403, "guard-pass-invalid", Outcome::Wrong),
            (400, "sms-mobile-invalid", Outcome::Invalid),
            (400, "sms-country-not-allowed", Outcome::Invalid),
            (429, "sms-send-too-soon", Outcome::RateLimited),
            (429, "sms-daily-limit", Outcome::RateLimited),
            (429, "sms-budget-exhausted", Outcome::RateLimited),
            (429, "sms-upstream-limited", Outcome::UpstreamError),
            (502, "sms-upstream-error", Outcome::UpstreamError),
            (400, "sms-code-invalid", Outcome::Wrong),
            (400, "sms-code-expired", Outcome::Expired),
            (400, "guard-invalid-device", Outcome::Invalid),
            (403, "guard-refused", Outcome::Denied),
            (500, "internal-error", Outcome::InternalError),
            (504, "deadline-exceeded", Outcome::DeadlineExceeded),
            (418, "something-new", Outcome::Invalid),
        ];
        for (status, code, outcome) in cases {
            assert_eq!(Outcome::of(*status, Some(code)), *outcome, "{code}");
        }
        assert_eq!(Outcome::of(200, None), Outcome::Passed);
        let names: std::collections::BTreeSet<_> =
            Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(names.len(), Outcome::ALL.len());
    }

    #[test]
    fn a_response_is_read_by_status_then_errcode() {
        let resp = |status: u16, body: &str| {
            Response::builder()
                .status(status)
                .body(Body::Text(body.into()))
                .unwrap()
        };
        assert_eq!(
            Outcome::of_response(&resp(200, "not even json")),
            Outcome::Passed
        );
        assert_eq!(
            Outcome::of_response(&resp(429, r#"{"errCode":"rate-limited"}"#)),
            Outcome::RateLimited
        );
        assert_eq!(
            Outcome::of_response(&resp(502, "<html>")),
            Outcome::InternalError
        );
    }

    #[test]
    fn events_travel_in_the_response_and_are_taken_once() {
        let mut resp = Response::new(Body::Empty);
        assert_eq!(Events::take_from(&mut resp), Events::default());
        let verdict = Event::TencentVerdict { captcha_code: 7 };
        let mut events = Events::default();
        events.push(verdict);
        events.attach_to(&mut resp);
        let mut more = Events::default();
        more.push(Event::TencentVerdict { captcha_code: 1 });
        more.attach_to(&mut resp);
        let taken = Events::take_from(&mut resp);
        assert_eq!(
            taken.iter().copied().collect::<Vec<_>>(),
            [verdict, Event::TencentVerdict { captcha_code: 1 }]
        );
        assert_eq!(Events::take_from(&mut resp), Events::default());
    }
}
