//! Pass rows: granted once, redeemed at most once (or again under the same
//! idempotency key).

use async_trait::async_trait;

use super::{MemoryStore, Row};
use crate::store::*;

/// A pass as its row holds it.
#[derive(Debug, Clone)]
pub(super) struct StoredPass {
    pub(super) grant: PassGrant,
    /// Redeemed, and under which idempotency key (if any).
    redeemed: Option<Option<String>>,
}

impl StoredPass {
    /// Why `claim` may not redeem this pass, if it may not.
    fn refusal(&self, claim: &PassClaim) -> Option<Redemption> {
        let grant = &self.grant;
        let same_key = matches!(
            (&self.redeemed, claim.idempotency_key),
            (Some(Some(held)), Some(key)) if held == key
        );
        let held = HeldPass {
            redeemed: self.redeemed.is_some(),
            same_key,
            expires_ms: grant.expires_ms,
            scene: &grant.scene,
            device: grant.device.as_ref(),
            ip_net: grant.ip_net.as_deref(),
        };
        held.refusal(claim)
            .or_else(|| (claim.replay_only && !same_key).then_some(Redemption::Unknown))
    }
}

impl MemoryStore {
    /// Writes a new pass row into `rows`, never over a row.
    pub(super) fn insert_pass(
        &self,
        rows: &mut std::collections::HashMap<String, Row>,
        pass: &PassGrant,
    ) -> Result<(), StoreError> {
        let key = pass.key();
        if rows.contains_key(&key) {
            return Err(StoreError(format!("grant_pass: a row is already at {key}")));
        }
        let row = Row::Pass(StoredPass {
            grant: pass.clone(),
            redeemed: None,
        });
        self.insert(rows, key, row);
        Ok(())
    }
}

#[async_trait]
impl PassStore for MemoryStore {
    async fn grant_pass(&self, pass: &PassGrant) -> Result<(), StoreError> {
        self.insert_pass(&mut self.rows(), pass)
    }

    async fn redeem_pass(&self, claim: &PassClaim<'_>) -> Result<Redemption, StoreError> {
        if claim.bind_device && claim.device.is_none() {
            return Ok(Redemption::OtherDevice);
        }
        let mut rows = self.rows();
        let key = pass_key_of(claim.kind, claim.secret_hash);
        let Some(Row::Pass(stored)) = rows.get_mut(&key) else {
            return Ok(Redemption::Unknown);
        };
        if let Some(refusal) = stored.refusal(claim) {
            return Ok(refusal);
        }
        if stored.redeemed.is_none() {
            stored.redeemed = Some(claim.idempotency_key.map(str::to_owned));
        }
        Ok(Redemption::Redeemed(RedeemedPass::of(&stored.grant)))
    }
}
