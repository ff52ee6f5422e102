//! Writes that go with rate-limit counters (a captcha's create and refresh,
//! an SMS code's send): the row's write and one conditional count per
//! counter, sent at once, so a request within its limits takes one round
//! trip and bills one write unit per item (a transaction would bill two);
//! and the undo of a request a counter (or anything else) refused, in one
//! more round trip.
//!
//! Both only ever undo their own request's writes: a counter's slot holds
//! the request's nonce (see `counter.rs`), and the row it wrote holds it in
//! [`ISSUE_NONCE`], so whatever another request wrote since stays.

use super::codec::*;
use super::{DynamoStore, Undo, join_all};
use crate::store::*;

/// The attribute of the request nonce in a row an issue wrote: what its
/// undo checks (and, for an SMS code, its `send_id`).
pub(super) const ISSUE_NONCE: &str = "nonce";

/// The counts of one request's counters, in the order of its limits.
pub(super) struct Counts(Vec<Result<bool, StoreError>>);

impl Counts {
    /// Whether every counter counted the request.
    pub(super) fn all_counted(&self) -> bool {
        self.0.iter().all(|c| matches!(c, Ok(true)))
    }

    /// The first counter that was full: its index in the limits, and when
    /// its window ends.
    pub(super) fn first_full(&self, limits: &[CounterLimit]) -> Option<(usize, i64)> {
        self.0
            .iter()
            .position(|c| matches!(c, Ok(false)))
            .map(|i| (i, limits[i].window_end_ms))
    }

    /// The first failure of a count, if any.
    pub(super) fn result(self) -> Result<(), StoreError> {
        self.0.into_iter().try_for_each(|c| c.map(drop))
    }
}

impl DynamoStore {
    /// `write` and one conditional count per limit (see
    /// `DynamoStore::count_within`), sent at once.
    pub(super) async fn count_alongside<T>(
        &self,
        limits: &[CounterLimit],
        nonce: &str,
        write: impl Future<Output = T>,
    ) -> (T, Counts) {
        let counting = join_all(
            limits
                .iter()
                .map(|limit| self.count_within(limit, nonce))
                .collect(),
        );
        let (written, counted) = tokio::join!(write, counting);
        (written, Counts(counted))
    }

    /// The undo of every count of `counts` that went through.
    pub(super) fn uncount_all<'a>(
        &'a self,
        limits: &'a [CounterLimit],
        counts: &Counts,
        nonce: &'a str,
    ) -> Vec<Undo<'a>> {
        limits
            .iter()
            .zip(&counts.0)
            .filter(|(_, c)| matches!(c, Ok(true)))
            .map(|(limit, _)| Box::pin(self.uncount(&limit.name, nonce)) as Undo<'a>)
            .collect()
    }

    /// Undoes a refused request's write of row `key`: puts back the item it
    /// replaced, or, when it replaced none and `delete_own` says so,
    /// deletes its own, but only while the row is still its own untouched
    /// write (its `nonce`, pending, no attempt). A retry of an applied undo
    /// fails that condition, which is success. An item the write replaced
    /// that holds the same nonce was the request's own earlier attempt (a
    /// retry after a lost response): it counts as none.
    pub(super) async fn restore_row(
        &self,
        key: &str,
        replaced: Option<Item>,
        nonce: &str,
        delete_own: bool,
        operation: &'static str,
    ) -> Result<(), StoreError> {
        const UNTOUCHED: &str = "#nonce = :nonce AND #state = :pending AND #attempts = :zero";
        let replaced = replaced.filter(
            |old| !matches!(old.get(ISSUE_NONCE), Some(v) if v.as_s().is_ok_and(|v| v == nonce)),
        );
        let names = [
            ("#nonce", ISSUE_NONCE),
            ("#state", "state"),
            ("#attempts", "attempts"),
        ];
        let values = [
            (":nonce", s(nonce)),
            (":pending", n(CaptchaState::Pending as i64)),
            (":zero", n(0)),
        ];
        match replaced {
            Some(old) => {
                let mut put = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(old))
                    .condition_expression(UNTOUCHED);
                for (k, v) in names {
                    put = put.expression_attribute_names(k, v);
                }
                for (k, v) in values {
                    put = put.expression_attribute_values(k, v);
                }
                if let Err(err) = put.send().await {
                    put_condition_failed(err, operation)?;
                }
            }
            None if !delete_own => {}
            None => {
                let mut delete = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .key(KEY_ATTRIBUTE, s(key))
                    .condition_expression(UNTOUCHED);
                for (k, v) in names {
                    delete = delete.expression_attribute_names(k, v);
                }
                for (k, v) in values {
                    delete = delete.expression_attribute_values(k, v);
                }
                if let Err(err) = delete.send().await {
                    delete_condition_failed(err, operation)?;
                }
            }
        }
        Ok(())
    }
}
