//! What DynamoDB bills: an SDK interceptor that asks for every request's
//! consumed capacity (`ReturnConsumedCapacity = TOTAL`) and adds it up, so
//! that tests measure the write units of a route rather than compute them.

use std::sync::{Arc, Mutex};

use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::delete_item::{
    DeleteItemError, DeleteItemInput, DeleteItemOutput,
};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::{
    UpdateItemError, UpdateItemInput, UpdateItemOutput,
};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// Capacity units billed, as DynamoDB reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    /// Write request units (on demand; = write capacity units).
    pub write: f64,
    /// Read request units.
    pub read: f64,
}

/// Adds up the capacity DynamoDB reports for every request: it sets
/// `ReturnConsumedCapacity = TOTAL` on each input and reads
/// `ConsumedCapacity` from each output. A write whose condition failed
/// answers an error, which carries no `ConsumedCapacity`, yet DynamoDB bills
/// it as the write of its item: one unit for an item under 1 KB, which every
/// gatehouse row is (counted so here, and marked in `failed_conditions`).
/// A cancelled transaction answers an error too, and AWS documents no bill
/// for it: it is counted apart, by its items
/// ([`CapacityMeter::cancelled_transaction_items`]), never in the units.
#[derive(Debug, Clone, Default)]
pub struct CapacityMeter(Arc<Mutex<(Units, usize, usize)>>);

impl CapacityMeter {
    /// The units billed since the last call.
    pub fn take(&self) -> Units {
        std::mem::take(&mut self.0.lock().unwrap().0)
    }

    /// Conditional writes refused since the last call (each counted as one
    /// write unit in [`CapacityMeter::take`]).
    pub fn failed_conditions(&self) -> usize {
        std::mem::take(&mut self.0.lock().unwrap().1)
    }

    /// The items of the transactions cancelled since the last call (none
    /// of them in [`CapacityMeter::take`]).
    pub fn cancelled_transaction_items(&self) -> usize {
        std::mem::take(&mut self.0.lock().unwrap().2)
    }

    fn add(&self, write: bool, consumed: &[ConsumedCapacity]) {
        let units: f64 = consumed.iter().filter_map(|c| c.capacity_units()).sum();
        let mut held = self.0.lock().unwrap();
        if write {
            held.0.write += units;
        } else {
            held.0.read += units;
        }
    }
}

/// The items of a TransactWriteItems, kept from its input for its bill.
#[derive(Debug, Clone, Copy)]
struct TransactionItems(usize);

impl Storable for TransactionItems {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let total = Some(ReturnConsumedCapacity::Total);
        let input = context.input_mut();
        if let Some(i) = input.downcast_mut::<PutItemInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<UpdateItemInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<DeleteItemInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<GetItemInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<BatchGetItemInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<BatchWriteItemInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<TransactWriteItemsInput>() {
            let items = TransactionItems(i.transact_items().len());
            cfg.interceptor_state().store_put(items);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let one = |c: Option<&ConsumedCapacity>| c.cloned().into_iter().collect::<Vec<_>>();
        match context.output_or_error() {
            Some(Ok(out)) => {
                if let Some(o) = out.downcast_ref::<PutItemOutput>() {
                    self.add(true, &one(o.consumed_capacity()));
                } else if let Some(o) = out.downcast_ref::<UpdateItemOutput>() {
                    self.add(true, &one(o.consumed_capacity()));
                } else if let Some(o) = out.downcast_ref::<DeleteItemOutput>() {
                    self.add(true, &one(o.consumed_capacity()));
                } else if out.downcast_ref::<TransactWriteItemsOutput>().is_some() {
                    // DynamoDB Local misreports transactions (2.0 for one of
                    // three items): billed as AWS documents it, two units per
                    // item (every gatehouse item is under 1 KB).
                    let items = cfg.load::<TransactionItems>().map_or(0, |n| n.0);
                    self.0.lock().unwrap().0.write += 2.0 * items as f64;
                } else if let Some(o) = out.downcast_ref::<BatchWriteItemOutput>() {
                    self.add(true, o.consumed_capacity());
                } else if let Some(o) = out.downcast_ref::<GetItemOutput>() {
                    self.add(false, &one(o.consumed_capacity()));
                } else if let Some(o) = out.downcast_ref::<BatchGetItemOutput>() {
                    self.add(false, o.consumed_capacity());
                }
            }
            Some(Err(err)) => {
                let refused = err.as_operation_error().is_some_and(|e| {
                    e.downcast_ref::<PutItemError>()
                        .is_some_and(|e| e.is_conditional_check_failed_exception())
                        || e.downcast_ref::<UpdateItemError>()
                            .is_some_and(|e| e.is_conditional_check_failed_exception())
                        || e.downcast_ref::<DeleteItemError>()
                            .is_some_and(|e| e.is_conditional_check_failed_exception())
                });
                if refused {
                    let mut held = self.0.lock().unwrap();
                    held.0.write += 1.0;
                    held.1 += 1;
                }
                let cancelled = err.as_operation_error().is_some_and(|e| {
                    e.downcast_ref::<TransactWriteItemsError>()
                        .is_some_and(|e| e.is_transaction_canceled_exception())
                });
                if cancelled {
                    let items = cfg.load::<TransactionItems>().map_or(0, |n| n.0);
                    self.0.lock().unwrap().2 += items;
                }
            }
            None => {}
        }
        Ok(())
    }
}

/// Counts every HTTP request the client transmits (retries included).
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<AtomicUsize>);

impl RequestCounter {
    pub fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}
