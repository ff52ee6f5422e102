//! A user's WeChat risk rank in one WeChat scene, cached for every
//! instance (see `crate::wechat::risk`).
//!
//! **In the guard's counter row of the user** (`rate#guard|oid|<scene>|<openid>`,
//! see `guard_counter.rs`), where the guard keeps it ([`RankCell`]): the
//! attributes `wx<n>_rank` or `wx<n>_failure`, `wx<n>_checked`,
//! `wx<n>_expired` for WeChat scene `<n>`. The counting UpdateItem answers
//! them (`ALL_NEW`) and the BatchGetItem of a read projects them: a cached
//! rank costs no request. A rank asked of WeChat is written by one
//! UpdateItem (`SET` the rank or the failure, `REMOVE` the other, `SET`
//! the row's `ttl` to the caller's windows, which cover the rank's
//! lifetime), the counts untouched: one write unit.
//!
//! **Alone** (`RiskRanks::rank`, for a caller that reads no counter):
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
//! unit), read by a GetItem.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::codec::*;
use super::guard_counter::{guard_attributes, tallies_of, tally_of};
use super::{BatchGetError, DynamoStore, join_all};
use crate::store::*;

/// The names of a cached rank's attributes: the rank, the failure, when
/// checked, when expired.
struct RankNames<N> {
    rank: N,
    failure: N,
    checked: N,
    expired: N,
}

/// A rank's row of its own.
const OWN: RankNames<&str> = RankNames {
    rank: "rank",
    failure: "failure",
    checked: "checked_date",
    expired: "expired_date",
};

/// A rank of WeChat scene `scene` in a guard counter row.
fn in_counter_row(scene: u8) -> RankNames<String> {
    RankNames {
        rank: format!("wx{scene}_rank"),
        failure: format!("wx{scene}_failure"),
        checked: format!("wx{scene}_checked"),
        expired: format!("wx{scene}_expired"),
    }
}

impl RankNames<String> {
    fn as_str(&self) -> RankNames<&str> {
        RankNames {
            rank: &self.rank,
            failure: &self.failure,
            checked: &self.checked,
            expired: &self.expired,
        }
    }
}

impl<'a> RankNames<&'a str> {
    fn all(&self) -> [&'a str; 4] {
        [self.rank, self.failure, self.checked, self.expired]
    }

    /// The rank `item` holds under these names (`None`: none).
    fn read(&self, item: &Item) -> Result<Option<RiskRankRecord>, StoreError> {
        if !item.contains_key(self.checked) {
            return Ok(None);
        }
        let answer = match item.get(self.rank) {
            Some(AttributeValue::N(_)) => RiskAnswer::Rank(
                u8::try_from(get_n(item, self.rank)?)
                    .map_err(|_| corrupt(self.rank, "not 0-255"))?,
            ),
            _ => RiskAnswer::Failed(get_s(item, self.failure)?.to_owned()),
        };
        Ok(Some(RiskRankRecord {
            answer,
            checked_ms: get_n(item, self.checked)?,
            expires_ms: get_n(item, self.expired)?,
        }))
    }
}

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
    OWN.read(item)?
        .ok_or_else(|| corrupt("checked_date", "missing"))
}

/// A cached rank read with the counters: one that cannot be read is a
/// miss (logged), never an error of the counting.
fn readable(rank: Result<Option<RiskRankRecord>, StoreError>) -> Option<RiskRankRecord> {
    rank.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "a cached risk rank unreadable: asked again");
        None
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

    async fn count_guard_ranked(
        &self,
        names: &[String],
        windows: &GuardWindows,
        event: GuardEvent,
        cell: RankCell<'_>,
    ) -> Result<(Vec<GuardTally>, Option<RiskRankRecord>), StoreError> {
        let items = join_all(
            names
                .iter()
                .map(|name| self.count_guard_item(name, windows, event))
                .collect(),
        )
        .await;
        let rank_names = in_counter_row(cell.scene);
        let mut tallies = Vec::with_capacity(names.len());
        let mut rank = None;
        for (name, item) in names.iter().zip(items) {
            match item? {
                Some(item) => {
                    if name == cell.row {
                        rank = readable(rank_names.as_str().read(&item));
                    }
                    tallies.push(tally_of(&item, windows)?);
                }
                None => tallies.push(GuardTally::Throttled),
            }
        }
        Ok((tallies, rank))
    }

    async fn read_guard_ranked(
        &self,
        names: &[String],
        windows: &GuardWindows,
        cell: RankCell<'_>,
    ) -> Result<(Vec<GuardTally>, Option<RiskRankRecord>), StoreError> {
        let keys: Vec<String> = names.iter().map(|name| counter_key_of(name)).collect();
        let rank_names = in_counter_row(cell.scene);
        let rank_names = rank_names.as_str();
        let counted = guard_attributes(windows);
        let attributes: Vec<&str> = counted
            .iter()
            .map(String::as_str)
            .chain(rank_names.all())
            .collect();
        let found = match self
            .batch_get("read_guard_ranked", &keys, &attributes)
            .await
        {
            Ok(found) => found,
            Err(BatchGetError::Throttled) => {
                tracing::warn!("guard counters' read throttled: past their thresholds");
                return Ok((vec![GuardTally::Throttled; names.len()], None));
            }
            Err(BatchGetError::Store(err)) => return Err(err),
        };
        let rank = match found.get(&counter_key_of(cell.row)) {
            Some(item) => readable(rank_names.read(item)),
            None => None,
        };
        Ok((tallies_of(&keys, &found, windows)?, rank))
    }

    async fn put_guard_rank(
        &self,
        cell: RankCell<'_>,
        record: &RiskRankRecord,
        keep_until_ms: i64,
    ) -> Result<(), StoreError> {
        let names = in_counter_row(cell.scene);
        let (set, value, removed) = match &record.answer {
            RiskAnswer::Rank(rank) => (&names.rank, n(rank), &names.failure),
            RiskAnswer::Failed(failure) => (&names.failure, s(failure), &names.rank),
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(counter_key_of(cell.row)))
            .update_expression(
                "SET #answer = :answer, #checked = :checked, #expired = :expired, #ttl = :ttl \
                 REMOVE #other",
            )
            .expression_attribute_names("#answer", set)
            .expression_attribute_names("#other", removed)
            .expression_attribute_names("#checked", &names.checked)
            .expression_attribute_names("#expired", &names.expired)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":answer", value)
            .expression_attribute_values(":checked", n(record.checked_ms))
            .expression_attribute_values(":expired", n(record.expires_ms))
            .expression_attribute_values(
                ":ttl",
                n(ttl_seconds(keep_until_ms.max(record.expires_ms))),
            )
            .send()
            .await
            .map_err(|e| sdk_error("put_guard_rank", e))?;
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

    #[test]
    fn a_rank_in_a_counter_row_is_read_by_its_wechat_scenes_names() {
        let names = in_counter_row(1);
        assert_eq!(
            names.as_str().all(),
            ["wx1_rank", "wx1_failure", "wx1_checked", "wx1_expired"]
        );
        let mut row: Item = HashMap::from([
            ("pk".to_owned(), s("rate#guard|oid|login|o-1")),
            ("r1700000000".to_owned(), n(4)),
            ("ttl".to_owned(), n(1_700_000_900)),
        ]);
        assert_eq!(names.as_str().read(&row).unwrap(), None, "counts only");
        row.insert("wx1_failure".to_owned(), s("Busy"));
        row.insert("wx1_checked".to_owned(), n(1_700_000_000_000_i64));
        row.insert("wx1_expired".to_owned(), n(1_700_000_060_000_i64));
        let busy = RiskRankRecord {
            answer: RiskAnswer::Failed("Busy".into()),
            checked_ms: 1_700_000_000_000,
            expires_ms: 1_700_000_060_000,
        };
        assert_eq!(names.as_str().read(&row).unwrap(), Some(busy));
        assert_eq!(in_counter_row(0).as_str().read(&row).unwrap(), None);
        row.insert("wx1_rank".to_owned(), n(7_000));
        assert!(names.as_str().read(&row).is_err(), "not a rank");
        assert_eq!(readable(names.as_str().read(&row)), None, "a miss");
    }
}
