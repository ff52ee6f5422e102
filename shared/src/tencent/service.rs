//! Ticket verification: the replay guard, the per-IP limit, the call to
//! Tencent and the mapping of its answer onto [`ApiError`].

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::client::{Action, CaptchaClient, UpstreamError};
use super::config::TencentConfig;
use crate::clock::Clock;
use crate::config::ConfigError;
use crate::error::ApiError;
use crate::ratelimit::{RateLimitConfig, Route, counted};
use crate::store::Store;

/// How long a presented ticket's hash is remembered. Tencent tickets live
/// 5 minutes, so twice that covers any clock skew between us and Tencent.
pub const TICKET_CLAIM_TTL_MS: i64 = 10 * 60 * 1000;
/// `CaptchaMsg` is passed to the client cut to this many characters.
pub const MAX_CAPTCHA_MSG_CHARS: usize = 256;

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
    /// The service with the 5 s time-out of every Tencent call.
    pub fn new(config: TencentConfig, store: Arc<dyn Store>) -> Result<Self, ConfigError> {
        let client = CaptchaClient::new(&config)?;
        Ok(Self {
            config,
            client,
            store,
            clock: Clock::system(),
            rate_limit: RateLimitConfig::default(),
        })
    }

    /// The same service reading time from `clock` (tests move a manual one).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same service with other limits (default: [`RateLimitConfig::default`]).
    pub fn with_rate_limit(mut self, rate_limit: RateLimitConfig) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// The same service with another time-out of each Tencent call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.client = self.client.with_timeout(timeout);
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
        let action = Action::for_randstr(randstr);
        let verdict = self
            .client
            .describe(
                &self.config,
                action,
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
                    action = action.as_str(),
                    tencent_error = %code,
                    request_id = %request_id,
                    "Tencent answered with an error"
                );
                return Err(ApiError::TicketUpstreamError);
            }
            Err(err) => {
                tracing::error!(ticket = ticket_ref, action = action.as_str(), error = %err, "Tencent call failed");
                return Err(ApiError::TicketUpstreamError);
            }
        };
        tracing::info!(
            ticket = ticket_ref,
            action = action.as_str(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
