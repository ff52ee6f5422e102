//! Ticket verification: the replay guard, the per-IP limit, the call to
//! Tencent and the mapping of its answer onto [`ApiError`].

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::client::{Action, CaptchaClient, UpstreamError};
use super::config::{Degrade, TencentConfig, TencentSettings};
use crate::clock::Clock;
use crate::config::ConfigError;
use crate::config::blocks::PerScene;
use crate::domain::{DeviceId, Scene};
use crate::error::ApiError;
use crate::guard::challenge::Judged;
use crate::guard::config::GuardConfig;
use crate::guard::pass::{PassIssued, PassToken, ip_net};
use crate::guard::service::{Client, count_failure};
use crate::metrics::{Event, Events};
use crate::options::ServiceOptions;
use crate::ratelimit::{RateLimitConfig, Route, counted};
use crate::store::{PassGrant, PassKind, TicketServiceStore};

/// How long a presented ticket's hash is remembered. Tencent tickets live
/// 5 minutes, so twice that covers any clock skew between us and Tencent.
pub const TICKET_CLAIM_TTL_MS: i64 = 10 * 60 * 1000;
/// The `EvilLevel` of a ticket Tencent judged malicious (with `CaptchaCode` 1).
pub const EVIL: i64 = 100;
/// The `CaptchaCode` Tencent gives a disaster-recovery ticket ("diff"),
/// and the one a refused disaster ticket is answered with.
pub const DISASTER_CODE: i64 = 21;
/// `CaptchaMsg` is passed to the client cut to this many characters.
pub const MAX_CAPTCHA_MSG_CHARS: usize = 256;

/// A ticket admitted without Tencent's word, by the scene's policy.
fn degraded(evil_level: Option<i64>) -> Judged {
    Judged {
        evil_level,
        degraded: true,
    }
}

/// A ticket as a client presented it, checked for shape (see
/// [`super::routes`]).
#[derive(Debug, Clone)]
pub struct PresentedTicket {
    pub ticket: String,
    /// Web and app tickets come with one; mini-program tickets without.
    pub randstr: Option<String>,
    /// The scene the pass it earns is for (`default` unless the client names
    /// one).
    pub scene: Scene,
    /// The client IP, sent to Tencent as `UserIp`.
    pub user_ip: String,
    pub device: Option<DeviceId>,
}

/// The success data of `POST /ticket/verify`: the pass, and Tencent's
/// `EvilLevel` (0, or 100 where the scene accepts it) when it sent one (the
/// mini-program action does not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketVerified {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evil_level: Option<i64>,
    /// The pass was earned without Tencent's word, where the scene's policy
    /// admits that (named only when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub degraded: bool,
    #[serde(flatten)]
    pub pass: PassIssued,
}

/// What `POST /ticket/verify` reads of `CAPTCHA_CONFIG` besides the rate
/// limits (which come with the [`ServiceOptions`]), per scene: the guard's
/// settings (pass lifetime, failure counting) and the ticket policy
/// (`tencent.acceptEvil`, what a ticket Tencent could not vouch for comes
/// to). See [`crate::settings::Settings::ticket_settings`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketSettings {
    pub guard: GuardConfig,
    pub policies: PerScene<TencentSettings>,
}

/// Everything `POST /ticket/verify` needs, built once at start-up.
pub struct TicketService {
    config: TencentConfig,
    settings: TicketSettings,
    client: CaptchaClient,
    store: Arc<dyn TicketServiceStore>,
    clock: Clock,
    /// Tickets count at the root's limits, whatever the scene.
    rate_limit: RateLimitConfig,
}

impl TicketService {
    /// The service (and its one HTTP client, with the `options`' time-out of
    /// every Tencent call); the root's rate limits are the `options`'.
    pub fn new(
        config: TencentConfig,
        settings: TicketSettings,
        store: Arc<dyn TicketServiceStore>,
        options: &ServiceOptions,
    ) -> Result<Self, ConfigError> {
        let client = CaptchaClient::new(&config, options.timeout())?;
        Ok(Self {
            config,
            settings,
            client,
            store,
            clock: options.clock().clone(),
            rate_limit: *options.rate_limits().root(),
        })
    }

    pub fn config(&self) -> &TencentConfig {
        &self.config
    }

    /// Checks a ticket once: claims its hash, asks Tencent, and on a pass
    /// writes the pass it earns (a row of its own).
    ///
    /// A ticket whose hash is already claimed is [`ApiError::TicketReused`]
    /// without any call. The claim stays even when Tencent cannot be reached:
    /// the client then needs a new ticket (Tencent may have consumed it). A
    /// rejected ticket counts as a failure for the scene's guard.
    ///
    /// Where Tencent cannot vouch for the ticket (a disaster-recovery
    /// ticket, which is not sent to it; `CaptchaCode` 21 or 26; Tencent
    /// unreachable) the scene's [`TencentPolicy`](super::config::TencentPolicy)
    /// decides: refused as before, or a pass marked degraded.
    ///
    /// Tencent's verdict, when it was asked, goes into `events` (for the
    /// metrics).
    pub async fn verify(
        &self,
        presented: &PresentedTicket,
        events: &mut Events,
    ) -> Result<TicketVerified, ApiError> {
        let Judged {
            evil_level,
            degraded,
        } = self.judge(presented, events).await?;
        self.grant(presented, evil_level, degraded).await
    }

    /// [`Self::verify`] without the pass: the ticket checked once (the claim,
    /// Tencent, the scene's policy; a rejection counted as a failure). What
    /// a door does with a ticket brought in place of a pass.
    pub async fn judge(
        &self,
        presented: &PresentedTicket,
        events: &mut Events,
    ) -> Result<Judged, ApiError> {
        let PresentedTicket {
            ticket,
            randstr,
            scene,
            user_ip,
            ..
        } = presented;
        let randstr = randstr.as_deref();
        let ticket_hash = hex::encode(Sha256::digest(ticket.as_bytes()));
        // Enough of the hash to follow one ticket through the log, never the ticket.
        let ticket_ref = &ticket_hash[..12];
        let now_ms = self.clock.now_ms();
        // The per-IP counter runs alongside the claim; over the limit,
        // Tencent is not called.
        let counter = self
            .rate_limit
            .counters(Route::Ticket, "*", Some(user_ip.as_str()), None, now_ms)
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
        let TencentSettings {
            accept_evil,
            policy,
        } = *self.settings.policies.scene(scene);
        if is_disaster_ticket(ticket) {
            // Tencent cannot verify these (it answers CaptchaCode 21), so
            // it is not asked: the scene's policy decides.
            if policy.disaster_ticket == Degrade::Admit {
                tracing::warn!(
                    ticket = ticket_ref,
                    "disaster-recovery ticket admitted: degraded pass"
                );
                return Ok(degraded(None));
            }
            tracing::info!(ticket = ticket_ref, "disaster-recovery ticket refused");
            let rejected = ApiError::TicketRejected {
                captcha_code: DISASTER_CODE,
                captcha_msg: "disaster-recovery ticket (trerror_)".into(),
                evil_level: None,
            };
            return self.refuse(presented, rejected, now_ms).await;
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
            Err(err) => {
                match &err {
                    UpstreamError::Api { code, request_id } => tracing::error!(
                        ticket = ticket_ref,
                        action = action.as_str(),
                        tencent_error = %code,
                        request_id = %request_id,
                        "Tencent answered with an error"
                    ),
                    err => {
                        tracing::error!(ticket = ticket_ref, action = action.as_str(), error = %err, "Tencent call failed")
                    }
                }
                if is_unreachable(&err) && policy.unreachable == Degrade::Admit {
                    tracing::warn!(ticket = ticket_ref, "Tencent unreachable: degraded pass");
                    return Ok(degraded(None));
                }
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
        events.push(Event::TencentVerdict {
            captcha_code: verdict.captcha_code,
        });
        let captcha_msg = || {
            verdict
                .captcha_msg
                .chars()
                .take(MAX_CAPTCHA_MSG_CHARS)
                .collect()
        };
        let admit_degraded = match verdict.captcha_code {
            21 => policy.code21 == Degrade::Admit,
            26 => policy.code26 == Degrade::Admit,
            _ => false,
        };
        if admit_degraded {
            tracing::warn!(
                ticket = ticket_ref,
                captcha_code = verdict.captcha_code,
                "ticket admitted by the scene's policy: degraded pass"
            );
            return Ok(degraded(verdict.evil_level));
        }
        let rejected = match verdict.captcha_code {
            1 if verdict.evil_level == Some(EVIL) && !accept_evil => ApiError::TicketRejected {
                captcha_code: 1,
                captcha_msg: captcha_msg(),
                evil_level: Some(EVIL),
            },
            1 => {
                return Ok(Judged {
                    evil_level: verdict.evil_level,
                    degraded: false,
                });
            }
            8 => return Err(ApiError::TicketExpired),
            9 => return Err(ApiError::TicketReused),
            captcha_code => ApiError::TicketRejected {
                captcha_code,
                captcha_msg: captcha_msg(),
                evil_level: None,
            },
        };
        self.refuse(presented, rejected, now_ms).await
    }

    /// Counts a rejected ticket as a failure for the scene's guard, then
    /// answers with `rejected`.
    async fn refuse(
        &self,
        presented: &PresentedTicket,
        rejected: ApiError,
        now_ms: i64,
    ) -> Result<Judged, ApiError> {
        let client = Client {
            ip: Some(presented.user_ip.clone()),
            device: presented.device.clone(),
            openid: None,
            phone_number: None,
        };
        let settings = self.settings.guard.scene(&presented.scene);
        count_failure(
            self.store.as_ref(),
            settings,
            &presented.scene,
            &client,
            now_ms,
        )
        .await?;
        Err(rejected)
    }

    /// Writes the pass a passing ticket earns: a row of its own.
    async fn grant(
        &self,
        presented: &PresentedTicket,
        evil_level: Option<i64>,
        degraded: bool,
    ) -> Result<TicketVerified, ApiError> {
        let now_ms = self.clock.now_ms();
        let settings = self.settings.guard.scene(&presented.scene);
        let pass_expired =
            now_ms.saturating_add((settings.pass_ttl_seconds as i64).saturating_mul(1000));
        let token = PassToken::issue(PassKind::Ticket);
        let grant = PassGrant {
            kind: PassKind::Ticket,
            secret_hash: token.secret_hash(),
            scene: presented.scene.clone(),
            device: presented.device.clone(),
            ip: Some(presented.user_ip.clone()),
            ip_net: ip_net(Some(&presented.user_ip)),
            evil_level,
            degraded,
            mobile: None,
            created_ms: now_ms,
            expires_ms: pass_expired,
        };
        self.store.grant_pass(&grant).await?;
        Ok(TicketVerified {
            evil_level,
            degraded,
            pass: PassIssued {
                pass_token: token.encode(),
                pass_expired,
            },
        })
    }
}

/// Whether `ticket` is a disaster-recovery ticket that Tencent's front end
/// makes when its script or service fails: `trerror_<errorCode>_<appid>_<ts>`
/// (`terror_` in older SDKs).
pub fn is_disaster_ticket(ticket: &str) -> bool {
    ticket.starts_with("trerror_") || ticket.starts_with("terror_")
}

/// Whether a failed call means Tencent could not be reached (what its
/// disaster-recovery advice covers), rather than a misconfiguration (a bad
/// key, an unknown parameter) or a garbled answer: those are never
/// admitted, else one wrong secret would open every door.
pub fn is_unreachable(err: &UpstreamError) -> bool {
    match err {
        UpstreamError::Timeout(_) | UpstreamError::Connect(_) => true,
        UpstreamError::Status(status) => *status >= 500,
        UpstreamError::Api { code, .. } => code.starts_with("InternalError"),
        UpstreamError::TooLarge | UpstreamError::NotJson => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn disaster_tickets_and_unreachable_tencent_are_told_apart() {
        assert!(is_disaster_ticket("trerror_1001_190000000_1700000000"));
        assert!(is_disaster_ticket("terror_1001_190000000_1700000000"));
        assert!(!is_disaster_ticket("t03abc"));
        assert!(!is_disaster_ticket("xtrerror_1"));
        let api = |code: &str| UpstreamError::Api {
            code: code.into(),
            request_id: "r".into(),
        };
        for yes in [
            UpstreamError::Timeout(Duration::from_secs(5)),
            UpstreamError::Connect("refused".into()),
            UpstreamError::Status(502),
            api("InternalError"),
            api("InternalError.ServerError"),
        ] {
            assert!(is_unreachable(&yes), "{yes:?}");
        }
        for no in [
            UpstreamError::Status(404),
            UpstreamError::NotJson,
            UpstreamError::TooLarge,
            api("AuthFailure.SignatureFailure"),
            api("InvalidParameter"),
        ] {
            assert!(!is_unreachable(&no), "{no:?}");
        }
    }

    #[test]
    fn success_data_names_evil_level_only_when_known() {
        let pass = PassIssued {
            pass_token: "t".into(),
            pass_expired: 5,
        };
        let with = serde_json::to_value(TicketVerified {
            evil_level: Some(0),
            degraded: false,
            pass: pass.clone(),
        })
        .unwrap();
        assert_eq!(
            with,
            serde_json::json!({"evilLevel": 0, "passToken": "t", "passExpired": 5})
        );
        let without = serde_json::to_value(TicketVerified {
            evil_level: None,
            degraded: false,
            pass: pass.clone(),
        })
        .unwrap();
        assert_eq!(
            without,
            serde_json::json!({"passToken": "t", "passExpired": 5})
        );
        let degraded = serde_json::to_value(TicketVerified {
            evil_level: None,
            degraded: true,
            pass,
        })
        .unwrap();
        assert_eq!(
            degraded,
            serde_json::json!({"degraded": true, "passToken": "t", "passExpired": 5})
        );
    }
}
