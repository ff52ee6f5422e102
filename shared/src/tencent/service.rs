//! `POST /ticket/verify`: the replay guard, the call to Tencent and the
//! mapping of its answer onto [`ApiError`].

use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::client::{
    ACTION_MINI_RESULT, ACTION_RESULT, CaptchaClient, DEFAULT_TIMEOUT, TencentConfig,
    TencentConfigError, UpstreamError,
};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::http::{Lang, json_body, respond, source_ip};
use crate::ratelimit::{RateLimitConfig, Route, counted};
use crate::store::Store;
use crate::store::dynamo::DynamoStore;

/// How long a presented ticket's hash is remembered. Tencent tickets live
/// 5 minutes, so twice that covers any clock skew between us and Tencent.
pub const TICKET_CLAIM_TTL_MS: i64 = 10 * 60 * 1000;
/// Longest `ticket` accepted (real ones are a few hundred characters).
pub const MAX_TICKET_CHARS: usize = 2048;
/// Longest `randstr` accepted (real ones are about a dozen characters).
pub const MAX_RANDSTR_CHARS: usize = 128;
/// `CaptchaMsg` is passed to the client cut to this many characters.
pub const MAX_CAPTCHA_MSG_CHARS: usize = 256;

/// The request body of `POST /ticket/verify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyTicketRequest {
    pub ticket: Option<String>,
    pub randstr: Option<String>,
}

/// The success data of `POST /ticket/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketVerified {
    /// Tencent's `EvilLevel` (0 or 100) when it sent one; the mini-program
    /// action does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evil_level: Option<i64>,
}

/// Everything `POST /ticket/verify` needs, built once at start-up.
pub struct TicketService {
    config: TencentConfig,
    client: CaptchaClient,
    store: Arc<dyn Store>,
    clock: Clock,
    rate_limit: RateLimitConfig,
}

impl TicketService {
    /// The Lambda set-up: Tencent credentials and captcha app, then DynamoDB
    /// from `TABLE_NAME`, all validated before the first event.
    pub async fn from_lambda_env() -> Result<Self, lambda_http::Error> {
        let config = TencentConfig::from_env()?;
        let rate_limit = RateLimitConfig::from_env()?;
        let store = DynamoStore::from_env().await?;
        Ok(Self::new(config, Arc::new(store), Clock::system())?.with_rate_limit(rate_limit))
    }

    /// The service with the 5 s time-out of every Tencent call.
    pub fn new(
        config: TencentConfig,
        store: Arc<dyn Store>,
        clock: Clock,
    ) -> Result<Self, TencentConfigError> {
        Self::with_timeout(config, store, clock, DEFAULT_TIMEOUT)
    }

    /// The service with another time-out (tests use a short one).
    pub fn with_timeout(
        config: TencentConfig,
        store: Arc<dyn Store>,
        clock: Clock,
        timeout: Duration,
    ) -> Result<Self, TencentConfigError> {
        let client = CaptchaClient::new(&config, timeout)?;
        Ok(Self {
            config,
            client,
            store,
            clock,
            rate_limit: RateLimitConfig::default(),
        })
    }

    /// The same service with other limits (default: [`RateLimitConfig::default`]).
    pub fn with_rate_limit(mut self, rate_limit: RateLimitConfig) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    pub fn config(&self) -> &TencentConfig {
        &self.config
    }

    /// Checks a ticket once: claims its hash, then asks Tencent.
    ///
    /// A ticket whose hash is already claimed is [`ApiError::TicketReused`]
    /// without any call. The claim stays even when Tencent cannot be reached:
    /// the client then needs a new ticket (Tencent may have consumed it).
    pub async fn verify(
        &self,
        ticket: &str,
        randstr: Option<&str>,
        user_ip: &str,
    ) -> Result<TicketVerified, ApiError> {
        let ticket_hash = hex::encode(Sha256::digest(ticket.as_bytes()));
        // Enough of the hash to follow one ticket through the log, never the ticket.
        let ticket_ref = &ticket_hash[..12];
        let now_ms = self.clock.now_ms();
        // The per-IP counter runs alongside the claim; over the limit,
        // Tencent is not called.
        let counter = self
            .rate_limit
            .counters(Route::Ticket, "*", Some(user_ip), None, now_ms)
            .pop();
        let first = counted(self.store.as_ref(), counter.as_ref(), now_ms, async {
            Ok(self
                .store
                .claim_ticket(&ticket_hash, now_ms, now_ms + TICKET_CLAIM_TTL_MS)
                .await?)
        })
        .await?;
        if !first {
            tracing::info!(
                ticket = ticket_ref,
                "ticket presented again: refused without a call"
            );
            return Err(ApiError::TicketReused);
        }
        let action = if randstr.is_some() {
            ACTION_RESULT
        } else {
            ACTION_MINI_RESULT
        };
        let verdict = self
            .client
            .describe(
                &self.config,
                ticket,
                randstr,
                user_ip,
                now_ms.div_euclid(1000),
            )
            .await;
        let verdict = match verdict {
            Ok(verdict) => verdict,
            Err(UpstreamError::Api { code, request_id }) => {
                tracing::error!(
                    ticket = ticket_ref,
                    action,
                    tencent_error = %code,
                    request_id = %request_id,
                    "Tencent answered with an error"
                );
                return Err(ApiError::TicketUpstreamError);
            }
            Err(err) => {
                tracing::error!(ticket = ticket_ref, action, error = %err, "Tencent call failed");
                return Err(ApiError::TicketUpstreamError);
            }
        };
        tracing::info!(
            ticket = ticket_ref,
            action,
            captcha_code = verdict.captcha_code,
            evil_level = ?verdict.evil_level,
            request_id = %verdict.request_id,
            "Tencent verdict"
        );
        match verdict.captcha_code {
            1 => Ok(TicketVerified {
                evil_level: verdict.evil_level,
            }),
            8 => Err(ApiError::TicketExpired),
            9 => Err(ApiError::TicketReused),
            captcha_code => Err(ApiError::TicketRejected {
                captcha_code,
                captcha_msg: verdict
                    .captcha_msg
                    .chars()
                    .take(MAX_CAPTCHA_MSG_CHARS)
                    .collect(),
            }),
        }
    }
}

/// Checks a request body: the ticket (required) and the optional randstr,
/// trimmed; an empty randstr counts as none.
pub fn validate(body: &VerifyTicketRequest) -> Result<(&str, Option<&str>), ApiError> {
    let ticket = body
        .ticket
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::TicketRequired)?;
    check_field("ticket", ticket, MAX_TICKET_CHARS)?;
    let randstr = body
        .randstr
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if let Some(randstr) = randstr {
        check_field("randstr", randstr, MAX_RANDSTR_CHARS)?;
    }
    Ok((ticket, randstr))
}

fn check_field(name: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.len() > max {
        return Err(ApiError::InvalidRequest(format!(
            "{name} is longer than {max} characters"
        )));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::InvalidRequest(format!(
            "{name} may hold only visible ASCII characters"
        )));
    }
    Ok(())
}

/// `POST /ticket/verify` → `{errCode: 0, errMsg, evilLevel?}` or an error.
pub async fn verify_ticket(svc: &TicketService, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    respond(lang, handle(svc, &req).await)
}

async fn handle(svc: &TicketService, req: &Request) -> Result<TicketVerified, ApiError> {
    let body: VerifyTicketRequest = json_body(req)?;
    let (ticket, randstr) = validate(&body)?;
    let Some(user_ip) = source_ip(req).filter(|ip| !ip.is_empty()) else {
        // API Gateway always sets it; a request without one did not come
        // through it (or the API is not an HTTP API): refuse it as input.
        tracing::error!("request has no requestContext.http.sourceIp: cannot send UserIp");
        return Err(ApiError::InvalidRequest(
            "the request carries no client IP (requestContext.http.sourceIp)".into(),
        ));
    };
    svc.verify(ticket, randstr, user_ip).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(ticket: Option<&str>, randstr: Option<&str>) -> VerifyTicketRequest {
        VerifyTicketRequest {
            ticket: ticket.map(str::to_owned),
            randstr: randstr.map(str::to_owned),
        }
    }

    #[test]
    fn ticket_is_required_trimmed_and_bounded() {
        for missing in [None, Some(""), Some("   ")] {
            assert_eq!(
                validate(&body(missing, Some("r"))),
                Err(ApiError::TicketRequired)
            );
        }
        let good = body(Some(" t03abc* "), Some(" @xY "));
        assert_eq!(validate(&good), Ok(("t03abc*", Some("@xY"))));
        let no_randstr = body(Some("t"), Some(" "));
        assert_eq!(validate(&no_randstr), Ok(("t", None)));

        let at_cap = "t".repeat(MAX_TICKET_CHARS);
        assert!(validate(&body(Some(&at_cap), None)).is_ok());
        let long = "t".repeat(MAX_TICKET_CHARS + 1);
        let long_randstr = "r".repeat(MAX_RANDSTR_CHARS + 1);
        for bad in [
            body(Some(&long), None),
            body(Some("a b"), None),
            body(Some("t\u{7f}"), None),
            body(Some("票据"), None),
            body(Some("t"), Some(&long_randstr)),
            body(Some("t"), Some("r\nx")),
        ] {
            assert_eq!(
                validate(&bad).unwrap_err().code(),
                "invalid-request",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn success_data_names_evil_level_only_when_known() {
        let with = serde_json::to_value(TicketVerified {
            evil_level: Some(0),
        })
        .unwrap();
        assert_eq!(with, serde_json::json!({"evilLevel": 0}));
        let without = serde_json::to_value(TicketVerified { evil_level: None }).unwrap();
        assert_eq!(without, serde_json::json!({}));
    }
}
