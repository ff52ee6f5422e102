//! The judge of the challenges a door takes in place of a pass (SPEC §13):
//! an answer goes to the captcha service's verify, a ticket to the ticket
//! service's, each without the pass they would write. It sits above
//! `captcha`, `tencent` and `guard`, which import none of it: the guard
//! knows it only as a [`ChallengeJudge`].

use std::sync::Arc;

use async_trait::async_trait;

use crate::captcha::CaptchaVerifier;
use crate::captcha::code::normalize_answer;
use crate::captcha::routes::MAX_ANSWER_CHARS;
use crate::captcha::service::CaptchaTarget;
use crate::domain::Scene;
use crate::error::ApiError;
use crate::guard::{Challenge, ChallengeJudge, Client, Judged};
use crate::metrics::Events;
use crate::tencent::TicketService;
use crate::tencent::callback::{AppIdField, Callback};
use crate::tencent::routes::{VerifyTicketRequest, validate};
use crate::tencent::service::PresentedTicket;

/// Judges answers with `captcha` and tickets with `tickets`; a kind whose
/// service is missing (Tencent not configured) is refused as no pass. The
/// captcha side is the verifier alone (`CaptchaService::verifier` on the dev
/// server; in the door Lambdas, built without the renderer).
pub struct DoorJudge {
    pub captcha: Option<Arc<CaptchaVerifier>>,
    pub tickets: Option<Arc<TicketService>>,
}

/// The judge of doors that have these services.
pub fn judge(
    captcha: Option<Arc<CaptchaVerifier>>,
    tickets: Option<Arc<TicketService>>,
) -> Arc<dyn ChallengeJudge> {
    Arc::new(DoorJudge { captcha, tickets })
}

#[async_trait]
impl ChallengeJudge for DoorJudge {
    async fn judge(
        &self,
        scene: &Scene,
        challenge: &Challenge,
        client: &Client,
    ) -> Result<Judged, ApiError> {
        match challenge {
            Challenge::Answer(typed) => {
                let captcha = self
                    .captcha
                    .as_ref()
                    .ok_or(ApiError::GuardCaptchaRequired)?;
                let device = client.device.clone().ok_or(ApiError::DeviceIdRequired)?;
                let answer = normalize_answer(typed);
                if answer.is_empty() {
                    return Err(ApiError::TextRequired);
                }
                if answer.chars().count() > MAX_ANSWER_CHARS {
                    return Err(ApiError::InvalidRequest(format!(
                        "captcha is longer than {MAX_ANSWER_CHARS} characters"
                    )));
                }
                let target = CaptchaTarget {
                    scene: scene.clone(),
                    device,
                    ip: client.ip.clone(),
                };
                captcha.judge(&target, &answer).await?;
                Ok(Judged::default())
            }
            Challenge::Ticket {
                ticket,
                randstr,
                app_ids,
            } => {
                let tickets = self
                    .tickets
                    .as_ref()
                    .ok_or(ApiError::GuardTencentRequired)?;
                let ours = tickets.config().captcha_app_id;
                for named in app_ids {
                    let named = AppIdField::Text(named.clone());
                    let callback = Callback {
                        appid: Some(&named),
                        ..Callback::default()
                    };
                    callback.check(ours)?;
                }
                let shape = VerifyTicketRequest {
                    ticket: Some(ticket.clone()),
                    randstr: randstr.clone(),
                    ..VerifyTicketRequest::default()
                };
                let (ticket, randstr) = validate(&shape)?;
                let user_ip = client
                    .ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .ok_or_else(|| {
                        ApiError::InvalidRequest(
                            "a ticket needs the client IP (Tencent's UserIp)".into(),
                        )
                    })?;
                let presented = PresentedTicket {
                    ticket: ticket.to_owned(),
                    randstr: randstr.map(str::to_owned),
                    scene: scene.clone(),
                    user_ip,
                    device: client.device.clone(),
                };
                tickets.judge(&presented, &mut Events::default()).await
            }
        }
    }
}
