//! Risk-rank rows: a user's WeChat risk rank in one WeChat scene, cached
//! for every instance (see `crate::wechat::risk`).
//!
//! | attribute | |
//! |---|---|
//! | `pk` | `wxrisk#<scene>#<openid>` ([`risk_rank_key_of`]) |
//! | `rank` | WeChat's `risk_rank`, 0-4, when it gave one |
//! | `failure` | else the failure's name (`Busy`, `TimedOut` …) |
//! | `checked_date` | epoch ms of WeChat's answer |
//! | `expired_date` | epoch ms after which no reader uses it |
//! | `ttl` | epoch seconds of `expired_date` |
//!
//! Written whole by an unconditional PutItem (about 60 bytes: one write
//! unit), read by a GetItem or beside the guard's counters in their
//! BatchGetItem ([`RiskRankStore::counts_with_risk_rank`]).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::codec::*;
use super::guard_counter::{guard_attributes, tallies_of};
use super::{BatchGetError, DynamoStore};
use crate::store::*;

/// The attributes a read asks for besides the key.
const ATTRIBUTES: [&str; 4] = ["rank", "failure", "checked_date", "expired_date"];

fn rank_item(scene: u8, openid: &str, record: &RiskRankRecord) -> Item {
    let mut item = HashMap::from([
        (KEY_ATTRIBUTE.to_owned(), s(risk_rank_key_of(scene, openid))),
        ("checked_date".to_owned(), n(record.checked_ms)),
        ("expired_date".to_owned(), n(record.expires_ms)),
        (TTL_ATTRIBUTE.to_owned(), n(ttl_seconds(record.expires_ms))),
    ]);
    match &record.answer {
        RiskAnswer::Rank(rank) => item.insert("rank".to_owned(), n(rank)),
        RiskAnswer::Failed(failure) => item.insert("failure".to_owned(), s(failure)),
    };
    item
}

fn rank_from_item(item: &Item) -> Result<RiskRankRecord, StoreError> {
    let answer = match item.get("rank") {
        Some(AttributeValue::N(_)) => RiskAnswer::Rank(
            u8::try_from(get_n(item, "rank")?).map_err(|_| corrupt("rank", "not 0-255"))?,
        ),
        _ => RiskAnswer::Failed(get_s(item, "failure")?.to_owned()),
    };
    Ok(RiskRankRecord {
        answer,
        checked_ms: get_n(item, "checked_date")?,
        expires_ms: get_n(item, "expired_date")?,
    })
}

#[async_trait]
impl RiskRankStore for DynamoStore {
    async fn get_risk_rank(
        &self,
        scene: u8,
        openid: &str,
    ) -> Result<Option<RiskRankRecord>, StoreError> {
        let out = self
            .get_row(risk_rank_key_of(scene, openid))
            .send()
            .await
            .map_err(|e| sdk_error("get_risk_rank", e))?;
        out.item().map(rank_from_item).transpose()
    }

    async fn counts_with_risk_rank(
        &self,
        names: &[String],
        windows: &GuardWindows,
        scene: u8,
        openid: &str,
    ) -> Result<(Vec<GuardTally>, Option<RiskRankRecord>), StoreError> {
        let rank_key = risk_rank_key_of(scene, openid);
        let keys: Vec<String> = names
            .iter()
            .map(|name| counter_key_of(name))
            .chain(std::iter::once(rank_key.clone()))
            .collect();
        let counted = guard_attributes(windows);
        let attributes: Vec<&str> = counted
            .iter()
            .map(String::as_str)
            .chain(ATTRIBUTES)
            .collect();
        let found = match self
            .batch_get("counts_with_risk_rank", &keys, &attributes)
            .await
        {
            Ok(found) => found,
            Err(BatchGetError::Throttled) => {
                tracing::warn!("guard counters' read throttled: past their thresholds");
                return Ok((vec![GuardTally::Throttled; names.len()], None));
            }
            Err(BatchGetError::Store(err)) => return Err(err),
        };
        let rank = found.get(&rank_key).map(rank_from_item).transpose()?;
        Ok((tallies_of(&keys[..names.len()], &found, windows)?, rank))
    }

    async fn put_risk_rank(
        &self,
        scene: u8,
        openid: &str,
        record: &RiskRankRecord,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(rank_item(scene, openid, record)))
            .send()
            .await
            .map_err(|e| sdk_error("put_risk_rank", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_rows_round_trip_and_stay_small() {
        for answer in [RiskAnswer::Rank(3), RiskAnswer::Failed("TimedOut".into())] {
            let record = RiskRankRecord {
                answer,
                checked_ms: 1_700_000_000_000,
                expires_ms: 1_700_000_600_000,
            };
            let item = rank_item(1, "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", &record);
            assert_eq!(item["pk"], s("wxrisk#1#o6_bmjrPTlm6_2sgVt7hMZOPfL2M"));
            assert_eq!(item["ttl"], n(1_700_000_601));
            assert_eq!(rank_from_item(&item).unwrap(), record);
            // Names and values well under the 1 KB of one write unit.
            let bytes: usize = item
                .iter()
                .map(|(k, v)| k.len() + v.as_s().map_or(21, String::len))
                .sum();
            assert!(bytes < 200, "{bytes} bytes");
        }
    }
}
