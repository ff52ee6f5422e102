//! Risk-rank rows: one per user and WeChat scene, replaced whole.

use std::collections::HashMap;

use async_trait::async_trait;

use super::guard_counter::guard_tallies;
use super::{MemoryStore, Row};
use crate::store::*;

fn rank_in(rows: &HashMap<String, Row>, scene: u8, openid: &str) -> Option<RiskRankRecord> {
    match rows.get(&risk_rank_key_of(scene, openid)) {
        Some(Row::RiskRank(record)) => Some(record.clone()),
        _ => None,
    }
}

#[async_trait]
impl RiskRankStore for MemoryStore {
    async fn get_risk_rank(
        &self,
        scene: u8,
        openid: &str,
    ) -> Result<Option<RiskRankRecord>, StoreError> {
        Ok(rank_in(&self.rows(), scene, openid))
    }

    async fn counts_with_risk_rank(
        &self,
        names: &[String],
        windows: &GuardWindows,
        scene: u8,
        openid: &str,
    ) -> Result<(Vec<GuardTally>, Option<RiskRankRecord>), StoreError> {
        // One lock: the counts and the rank as of one moment, as DynamoDB's
        // one request reads them.
        let rows = self.rows();
        Ok((
            guard_tallies(&rows, names, windows),
            rank_in(&rows, scene, openid),
        ))
    }

    async fn put_risk_rank(
        &self,
        scene: u8,
        openid: &str,
        record: &RiskRankRecord,
    ) -> Result<(), StoreError> {
        let mut rows = self.rows();
        let key = risk_rank_key_of(scene, openid);
        self.insert(&mut rows, key, Row::RiskRank(record.clone()));
        Ok(())
    }
}
