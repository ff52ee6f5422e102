//! Risk ranks: alone, one row per user and WeChat scene, replaced whole;
//! or in the user's guard counter row (`guard_counter.rs`).

use std::collections::HashMap;

use async_trait::async_trait;

use super::guard_counter::{guard_tallies, rank_in_cell};
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

    async fn count_guard_ranked(
        &self,
        names: &[String],
        windows: &GuardWindows,
        event: GuardEvent,
        cell: RankCell<'_>,
    ) -> Result<(Vec<GuardTally>, Option<RiskRankRecord>), StoreError> {
        // One lock: the counts and the rank as of one moment, as each
        // DynamoDB UpdateItem answers its row whole.
        let mut rows = self.rows();
        let tallies = names
            .iter()
            .map(|name| self.count_guard_row(&mut rows, name, windows, event))
            .collect::<Result<Vec<_>, _>>()?;
        let rank = names
            .iter()
            .any(|name| name == cell.row)
            .then(|| rank_in_cell(&rows, cell))
            .flatten();
        Ok((tallies, rank))
    }

    async fn read_guard_ranked(
        &self,
        names: &[String],
        windows: &GuardWindows,
        cell: RankCell<'_>,
    ) -> Result<(Vec<GuardTally>, Option<RiskRankRecord>), StoreError> {
        // One lock: the counts and the rank as of one moment, as DynamoDB's
        // one request reads them.
        let rows = self.rows();
        let rank = names
            .iter()
            .any(|name| name == cell.row)
            .then(|| rank_in_cell(&rows, cell))
            .flatten();
        Ok((guard_tallies(&rows, names, windows), rank))
    }

    async fn put_guard_rank(
        &self,
        cell: RankCell<'_>,
        record: &RiskRankRecord,
        keep_until_ms: i64,
    ) -> Result<(), StoreError> {
        let mut rows = self.rows();
        self.put_guard_rank_row(&mut rows, cell, record, keep_until_ms);
        Ok(())
    }
}
