//! Counter rows: one per counter name (window included), counted up.

use std::collections::HashMap;

use async_trait::async_trait;

use super::guard_counter::guard_tallies;
use super::{MemoryStore, Row};
use crate::store::*;

impl MemoryStore {
    /// Adds one to counter `name`, creating it to expire at `window_end_ms`.
    pub(super) fn count(
        &self,
        rows: &mut HashMap<String, Row>,
        name: &str,
        window_end_ms: i64,
    ) -> u64 {
        let key = counter_key_of(name);
        if let Some(Row::Counter { count, .. }) = rows.get_mut(&key) {
            *count += 1;
            return *count;
        }
        self.insert(
            rows,
            key,
            Row::Counter {
                count: 1,
                expires_ms: window_end_ms,
            },
        );
        1
    }

    /// The count of counter `name` (for tests).
    pub fn counter(&self, name: &str) -> Option<u64> {
        match self.rows().get(&counter_key_of(name)) {
            Some(Row::Counter { count, .. }) => Some(*count),
            _ => None,
        }
    }
}

#[async_trait]
impl CounterStore for MemoryStore {
    async fn increment_counter(&self, name: &str, window_end_ms: i64) -> Result<u64, StoreError> {
        let mut rows = self.rows();
        Ok(self.count(&mut rows, name, window_end_ms))
    }

    async fn count_guard(
        &self,
        names: &[String],
        windows: &GuardWindows,
        event: GuardEvent,
    ) -> Result<Vec<GuardTally>, StoreError> {
        let mut rows = self.rows();
        names
            .iter()
            .map(|name| self.count_guard_row(&mut rows, name, windows, event))
            .collect()
    }

    async fn read_guard(
        &self,
        names: &[String],
        windows: &GuardWindows,
    ) -> Result<Vec<GuardTally>, StoreError> {
        Ok(guard_tallies(&self.rows(), names, windows))
    }
}
