//! Why a pass may not be redeemed: one judgement, in one order, that the
//! embedded store makes before it redeems and the DynamoDB store makes
//! after its conditional redemption failed, from the row it saw.

use super::{PassClaim, Redemption};
use crate::domain::{DeviceId, Scene};

/// What a pass row holds that a redemption is judged by.
pub(crate) struct HeldPass<'a> {
    pub redeemed: bool,
    /// Redeemed under the claim's idempotency key.
    pub same_key: bool,
    pub expires_ms: i64,
    pub scene: &'a Scene,
    pub device: Option<&'a DeviceId>,
    pub ip_net: Option<&'a str>,
}

impl HeldPass<'_> {
    /// Why `claim` may not redeem this pass, if one of the redemption's
    /// conditions says so (whether only a replay may redeem is the
    /// caller's to judge).
    pub(crate) fn refusal(&self, claim: &PassClaim) -> Option<Redemption> {
        if self.redeemed && !self.same_key {
            return Some(Redemption::Used);
        }
        if claim.now_ms >= self.expires_ms {
            return Some(Redemption::Expired);
        }
        if self.scene != claim.scene {
            return Some(Redemption::OtherScene);
        }
        if let Some(device) = claim.device
            && (claim.bind_device || self.device.is_some())
            && self.device != Some(device)
        {
            return Some(Redemption::OtherDevice);
        }
        if let Some(net) = claim.bind_ip_net
            && self.ip_net != Some(net)
        {
            return Some(Redemption::OtherIp);
        }
        None
    }
}
