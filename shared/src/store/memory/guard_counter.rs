//! The guard's counter rows: each count kept with the start of the window
//! it counts in, so that a count of an earlier window reads 0, as the
//! DynamoDB row's window-named attributes do.

use std::collections::{BTreeMap, HashMap};

use super::{MemoryStore, Row};
use crate::store::*;

/// The count held for `window` (`None`: not counted).
fn in_window(held: Option<(i64, u64)>, window: Option<&CounterWindow>) -> u64 {
    match (held, window) {
        (Some((start_s, count)), Some(window)) if start_s == window.start_s => count,
        _ => 0,
    }
}

/// The request and failure counts `row` holds in `windows`.
fn counts(row: Option<&Row>, windows: &GuardWindows) -> (u64, u64) {
    match row {
        Some(Row::GuardCounter {
            requests, failures, ..
        }) => (
            in_window(*requests, windows.requests.as_ref()),
            in_window(*failures, Some(&windows.failures)),
        ),
        _ => (0, 0),
    }
}

/// The ranks `row` holds.
fn ranks_of(row: Option<&Row>) -> BTreeMap<u8, RiskRankRecord> {
    match row {
        Some(Row::GuardCounter { ranks, .. }) => ranks.clone(),
        _ => BTreeMap::new(),
    }
}

/// The rank `cell` holds among `rows`.
pub(super) fn rank_in_cell(
    rows: &HashMap<String, Row>,
    cell: RankCell<'_>,
) -> Option<RiskRankRecord> {
    match rows.get(&counter_key_of(cell.row)) {
        Some(Row::GuardCounter { ranks, .. }) => ranks.get(&cell.scene).cloned(),
        _ => None,
    }
}

/// The counts the rows `names` hold in `windows`.
pub(super) fn guard_tallies(
    rows: &HashMap<String, Row>,
    names: &[String],
    windows: &GuardWindows,
) -> Vec<GuardTally> {
    names
        .iter()
        .map(|name| {
            let (requests, failures) = counts(rows.get(&counter_key_of(name)), windows);
            GuardTally::Counted { requests, failures }
        })
        .collect()
}

impl MemoryStore {
    /// Counts `event` in row `name` (see [`CounterStore::count_guard`]).
    pub(super) fn count_guard_row(
        &self,
        rows: &mut HashMap<String, Row>,
        name: &str,
        windows: &GuardWindows,
        event: GuardEvent,
    ) -> Result<GuardTally, StoreError> {
        if event == GuardEvent::Request && windows.requests.is_none() {
            return Err(StoreError(
                "count_guard: a request without its window".into(),
            ));
        }
        let key = counter_key_of(name);
        let (requests, failures) = counts(rows.get(&key), windows);
        let ranks = ranks_of(rows.get(&key));
        let (requests, failures) = match event {
            GuardEvent::Request => (requests + 1, failures),
            GuardEvent::Failure => (requests, failures + 1),
        };
        let row = Row::GuardCounter {
            requests: windows.requests.map(|w| (w.start_s, requests)),
            failures: Some((windows.failures.start_s, failures)),
            ranks,
            // As DynamoDB's `SET ttl`: the caller's windows cover the ranks.
            expires_ms: windows.keep_until_ms,
        };
        self.insert(rows, key, row);
        Ok(GuardTally::Counted { requests, failures })
    }

    /// Keeps `record` in `cell` (see [`RiskRankStore::put_guard_rank`]).
    pub(super) fn put_guard_rank_row(
        &self,
        rows: &mut HashMap<String, Row>,
        cell: RankCell<'_>,
        record: &RiskRankRecord,
        keep_until_ms: i64,
    ) {
        let key = counter_key_of(cell.row);
        let row = match rows.remove(&key) {
            Some(Row::GuardCounter {
                requests,
                failures,
                mut ranks,
                ..
            }) => {
                ranks.insert(cell.scene, record.clone());
                Row::GuardCounter {
                    requests,
                    failures,
                    ranks,
                    expires_ms: keep_until_ms,
                }
            }
            _ => Row::GuardCounter {
                requests: None,
                failures: None,
                ranks: BTreeMap::from([(cell.scene, record.clone())]),
                expires_ms: keep_until_ms,
            },
        };
        self.insert(rows, key, row);
    }
}
