//! Passes: held in the captcha, ticket or SMS code row that earned them,
//! redeemed at most once.

use async_trait::async_trait;

use super::{MemoryStore, Row};
use crate::store::*;

/// A pass as a row holds it.
#[derive(Debug, Clone)]
pub(super) struct StoredPass {
    secret_hash: String,
    created_ms: i64,
    pub(super) expires_ms: i64,
    redeemed: bool,
}

impl StoredPass {
    pub(super) fn new(pass: &NewPass, now_ms: i64) -> Self {
        Self {
            secret_hash: pass.secret_hash.clone(),
            created_ms: now_ms,
            expires_ms: pass.expires_ms,
            redeemed: false,
        }
    }

    /// Redeems this pass for `claim` when it may be, answering `redeemed`;
    /// the refusal otherwise. The order of checks is the DynamoDB store's
    /// (see its `classify_pass`).
    fn redeem(&mut self, redeemed: RedeemedPass, claim: &PassClaim) -> Redemption {
        if self.secret_hash != claim.secret_hash {
            return Redemption::Unknown;
        }
        if self.redeemed {
            return Redemption::Used;
        }
        if claim.now_ms >= self.expires_ms {
            return Redemption::Expired;
        }
        if &redeemed.scene != claim.scene {
            return Redemption::OtherScene;
        }
        if let (Some(held), Some(asking)) = (&redeemed.device, claim.device)
            && held != asking
        {
            return Redemption::OtherDevice;
        }
        self.redeemed = true;
        Redemption::Redeemed(redeemed)
    }
}

#[async_trait]
impl PassStore for MemoryStore {
    async fn redeem_pass(&self, claim: &PassClaim<'_>) -> Result<Redemption, StoreError> {
        let mut rows = self.rows();
        let key = match claim.kind {
            PassKind::Captcha => captcha_key_of(claim.locator),
            PassKind::Ticket => ticket_key_of(&hex::encode(claim.locator)),
            PassKind::Sms => sms_key_of(claim.locator),
        };
        let (stored, redeemed) = match (claim.kind, rows.get_mut(&key)) {
            (PassKind::Captcha, Some(Row::Captcha(captcha, Some(stored)))) => {
                let redeemed = RedeemedPass {
                    kind: PassKind::Captcha,
                    scene: captcha.scene.clone(),
                    device: Some(captcha.device_uuid.clone()),
                    ip: captcha.ip.clone(),
                    evil_level: None,
                    degraded: false,
                    mobile: None,
                    created_ms: stored.created_ms,
                };
                (stored, redeemed)
            }
            (PassKind::Sms, Some(Row::Sms(code, Some(stored)))) => {
                let redeemed = RedeemedPass {
                    kind: PassKind::Sms,
                    scene: code.scene.clone(),
                    device: code.device.clone(),
                    ip: code.ip.clone(),
                    evil_level: None,
                    degraded: false,
                    mobile: Some(code.mobile.clone()),
                    created_ms: stored.created_ms,
                };
                (stored, redeemed)
            }
            (
                PassKind::Ticket,
                Some(Row::Ticket {
                    pass: Some((stored, ticket)),
                    ..
                }),
            ) => {
                let redeemed = RedeemedPass {
                    kind: PassKind::Ticket,
                    scene: ticket.scene.clone(),
                    device: ticket.device.clone(),
                    ip: ticket.ip.clone(),
                    evil_level: ticket.evil_level,
                    degraded: ticket.degraded,
                    mobile: None,
                    created_ms: stored.created_ms,
                };
                (stored, redeemed)
            }
            _ => return Ok(Redemption::Unknown),
        };
        Ok(stored.redeem(redeemed, claim))
    }
}
