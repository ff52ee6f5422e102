//! The guard's counter rows: each count kept with the start of the window
//! it counts in, so that a count of an earlier window reads 0, as the
//! DynamoDB row's window-named attributes do.

use std::collections::HashMap;

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
        let (requests, failures) = match event {
            GuardEvent::Request => (requests + 1, failures),
            GuardEvent::Failure => (requests, failures + 1),
        };
        let row = Row::GuardCounter {
            requests: windows.requests.map(|w| (w.start_s, requests)),
            failures: Some((windows.failures.start_s, failures)),
            expires_ms: windows.keep_until_ms,
        };
        self.insert(rows, key, row);
        Ok(GuardTally::Counted { requests, failures })
    }
}
