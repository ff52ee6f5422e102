//! How many DynamoDB requests each store operation makes, counted by an SDK
//! interceptor on a client pointed at DynamoDB Local: a successful create,
//! refresh and verify are one request each (the store's documented numbers).
//! And what they bill: [`CapacityMeter`] asks DynamoDB Local for every
//! request's consumed capacity (`ReturnConsumedCapacity = TOTAL`) and adds
//! it up, so the write units of every route are measured, not computed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::{
    UpdateItemError, UpdateItemInput, UpdateItemOutput,
};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use gatehouse::secret::Secret;
use gatehouse::store::dynamo::DynamoStore;
use gatehouse::store::{
    AccessTokenRecord, CaptchaRecord, CounterLimit, IndexedSession, IssueMode, IssueOutcome,
    PhoneNumber, SessionEnd, SessionRecord, TokenSwap, VerifyOutcome,
};
use gatehouse::store::{
    AccessTokenStore, CaptchaStore, CounterStore, SessionIndexStore, SessionStore, TicketStore,
};
use gatehouse_e2e::{NOW, captcha, device, new_pass, scene};

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
#[derive(Debug, Clone, Default)]
pub struct CapacityMeter(Arc<Mutex<(Units, usize)>>);

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
            }
            None => {}
        }
        Ok(())
    }
}

/// A store on a fresh table whose client counts requests and meters units.
pub async fn metered_store() -> (DynamoStore, RequestCounter, CapacityMeter) {
    let (table, requests, units) = metered_table().await;
    (table.store(), requests, units)
}

/// A fresh table whose client counts requests and meters units.
pub async fn metered_table() -> (gatehouse_e2e::LocalTable, RequestCounter, CapacityMeter) {
    let local = gatehouse_e2e::dynamodb_local().await;
    let counter = RequestCounter::default();
    let meter = CapacityMeter::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        local
            .config_builder()
            .interceptor(counter.clone())
            .interceptor(meter.clone())
            .build(),
    );
    let table = local.fresh_table_with(client).await;
    counter.take();
    meter.take();
    meter.failed_conditions();
    (table, counter, meter)
}

pub async fn counted_store() -> (DynamoStore, RequestCounter) {
    let local = gatehouse_e2e::dynamodb_local().await;
    let counter = RequestCounter::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        local.config_builder().interceptor(counter.clone()).build(),
    );
    let table = local.fresh_table_with(client).await;
    counter.take(); // table creation is not the store's doing
    (table.store(), counter)
}

#[tokio::test]
async fn create_refresh_and_verify_are_one_request_each() {
    let (store, requests) = counted_store().await;

    store
        .create_captcha(&captcha("login", "dev-1", "abcd"))
        .await
        .unwrap();
    assert_eq!(requests.take(), 1, "create");

    assert!(
        store
            .refresh_captcha(&captcha("login", "dev-1", "efgh"))
            .await
            .unwrap()
    );
    assert_eq!(requests.take(), 1, "refresh");

    assert_eq!(
        store
            .verify_captcha(
                &scene("login"),
                &device("dev-1"),
                "efgh",
                *NOW + 1,
                3,
                &new_pass()
            )
            .await
            .unwrap(),
        VerifyOutcome::Passed
    );
    assert_eq!(requests.take(), 1, "successful verify");

    // The documented numbers of the failing paths.
    assert!(
        !store
            .refresh_captcha(&CaptchaRecord {
                scene: scene("pay"),
                ..captcha("login", "dev-1", "x")
            })
            .await
            .unwrap()
    );
    assert_eq!(requests.take(), 1, "refresh without a captcha");

    assert_eq!(
        store
            .verify_captcha(
                &scene("login"),
                &device("dev-1"),
                "efgh",
                *NOW + 2,
                3,
                &new_pass()
            )
            .await
            .unwrap(),
        VerifyOutcome::NotPending
    );
    assert_eq!(requests.take(), 1, "verify of a used captcha");

    assert_eq!(
        store
            .verify_captcha(
                &scene("login"),
                &device("nobody"),
                "efgh",
                *NOW,
                3,
                &new_pass()
            )
            .await
            .unwrap(),
        VerifyOutcome::NotFound
    );
    assert_eq!(requests.take(), 1, "verify without a captcha");

    store
        .create_captcha(&captcha("login", "dev-1", "abcd"))
        .await
        .unwrap();
    requests.take();
    assert_eq!(
        store
            .verify_captcha(
                &scene("login"),
                &device("dev-1"),
                "zzzz",
                *NOW,
                3,
                &new_pass()
            )
            .await
            .unwrap(),
        VerifyOutcome::Wrong { attempts_left: 2 }
    );
    assert_eq!(
        requests.take(),
        1,
        "wrong answer: counted and judged in the same conditional write"
    );
    assert_eq!(
        store
            .verify_captcha(
                &scene("login"),
                &device("dev-1"),
                "abcd",
                *NOW + 180_000,
                3,
                &new_pass()
            )
            .await
            .unwrap(),
        VerifyOutcome::Expired
    );
    assert_eq!(requests.take(), 1, "verify of an expired captcha");
}

/// Create and refresh with their rate-limit counters: the captcha and one
/// update per counter, sent at once (one round trip), one write unit each.
/// A request a counter refuses undoes what its other writes did.
#[tokio::test]
async fn rate_limited_create_and_refresh_bill_a_unit_per_item() {
    let (store, requests, units) = metered_store().await;
    let limits = [
        CounterLimit {
            name: "create|ip|*|0|198.51.100.4".into(),
            limit: 1,
            window_end_ms: *NOW + 60_000,
        },
        CounterLimit {
            name: "create|dev|*|0|dev-1".into(),
            limit: 5,
            window_end_ms: *NOW + 60_000,
        },
    ];
    let record = captcha("login", "dev-1", "abcd");
    let issue = |mode, limits| store.issue_captcha(&record, mode, limits);
    let limits = &limits[..];
    assert_eq!(
        issue(IssueMode::Create, limits).await.unwrap(),
        IssueOutcome::Written
    );
    assert_eq!(requests.take(), 3, "create with counters, sent at once");
    assert_eq!(units.take().write, 3.0, "create with counters");
    assert!(matches!(
        issue(IssueMode::Create, limits).await.unwrap(),
        IssueOutcome::RateLimited { .. }
    ));
    assert_eq!(
        requests.take(),
        5,
        "create over the limit: three at once, then the device counter and \
         the captcha undone"
    );
    assert!(matches!(
        issue(IssueMode::Refresh, limits).await.unwrap(),
        IssueOutcome::RateLimited { .. }
    ));
    assert_eq!(requests.take(), 5, "refresh over the limit, likewise");
    let fresh = &[
        CounterLimit {
            name: "refresh|ip|*|0|198.51.100.4".into(),
            limit: 5,
            window_end_ms: *NOW + 60_000,
        },
        CounterLimit {
            name: "refresh|dev|*|0|dev-1".into(),
            limit: 5,
            window_end_ms: *NOW + 60_000,
        },
    ][..];
    units.take();
    assert_eq!(
        issue(IssueMode::Refresh, fresh).await.unwrap(),
        IssueOutcome::Written
    );
    assert_eq!(requests.take(), 3, "refresh with counters");
    assert_eq!(units.take().write, 3.0, "refresh with counters");
}

/// What the same three writes cost as one TransactWriteItems (the way
/// create and refresh were written before): two units per item.
#[tokio::test]
async fn a_transaction_of_the_same_items_bills_twice() {
    use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
    let local = gatehouse_e2e::dynamodb_local().await;
    let meter = CapacityMeter::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        local.config_builder().interceptor(meter.clone()).build(),
    );
    let table = local.fresh_table_with(client.clone()).await;
    meter.take();
    let counter = |name: &str| {
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&table.name)
                    .key("pk", AttributeValue::S(format!("rate#{name}")))
                    .update_expression("ADD #count :one")
                    .condition_expression("attribute_not_exists(pk) OR #count < :limit")
                    .expression_attribute_names("#count", "count")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .expression_attribute_values(":limit", AttributeValue::N("5".into()))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let put = Put::builder()
        .table_name(&table.name)
        .item("pk", AttributeValue::S("captcha#x".into()))
        .item("code", AttributeValue::S("abcd".into()))
        .build()
        .unwrap();
    client
        .transact_write_items()
        .transact_items(counter("create|ip"))
        .transact_items(counter("create|dev"))
        .transact_items(TransactWriteItem::builder().put(put).build())
        .send()
        .await
        .unwrap();
    assert_eq!(meter.take().write, 6.0, "three items in a transaction");
}

#[tokio::test]
async fn sessions_tickets_and_counters_are_one_request_each() {
    let (store, requests, units) = metered_store().await;
    let wru = || units.take().write;
    let session = SessionRecord {
        token_hash: "abc123".into(),
        openid: "openid-1".into(),
        unionid: None,
        phone: None,
        created_ms: *NOW,
        expires_ms: *NOW + 3_600_000,
    };
    let key = Secret::new("c2Vzc2lvbi1rZXktMTIzNA==");
    store.put_session(&session, Some(&key)).await.unwrap();
    assert_eq!(requests.take(), 1, "put_session");
    assert_eq!(wru(), 1.0, "put_session");
    assert!(store.get_session("abc123").await.unwrap().is_some());
    assert_eq!(requests.take(), 1, "get_session");
    assert_eq!(store.session_key("abc123").await.unwrap(), Some(key));
    assert_eq!(requests.take(), 1, "session_key");
    let phone = PhoneNumber {
        phone_number: "13800138000".into(),
        pure_phone_number: "13800138000".into(),
        country_code: "86".into(),
    };
    assert!(
        store
            .set_session_phone("abc123", &phone, *NOW)
            .await
            .unwrap()
    );
    assert_eq!(requests.take(), 1, "set_session_phone");
    assert_eq!(wru(), 1.0, "set_session_phone");
    let refreshed = SessionRecord {
        token_hash: "def456".into(),
        ..session.clone()
    };
    assert!(
        store
            .replace_session("abc123", &refreshed, *NOW)
            .await
            .unwrap()
    );
    assert_eq!(requests.take(), 1, "replace_session (one transaction)");
    assert_eq!(wru(), 4.0, "replace_session: two items in a transaction");
    assert_eq!(
        store.delete_session("def456", *NOW).await.unwrap(),
        SessionEnd::Ended
    );
    assert_eq!(requests.take(), 1, "delete_session of a live session");
    assert_eq!(wru(), 1.0, "delete_session");
    store.put_session(&session, None).await.unwrap();
    requests.take();
    assert_eq!(
        store
            .delete_session("abc123", *NOW + 3_600_000)
            .await
            .unwrap(),
        SessionEnd::Expired
    );
    assert_eq!(
        requests.take(),
        3,
        "an expired one: the failed delete, a read, the delete"
    );
    let many: Vec<String> = (0..60).map(|i| format!("h{i}")).collect();
    store.delete_sessions(&many).await.unwrap();
    assert_eq!(requests.take(), 3, "delete_sessions: one per 25");

    let entry = IndexedSession {
        token_hash: "abc123".into(),
        expires_ms: *NOW + 3_600_000,
    };
    let keep = *NOW + 86_400_000;
    store
        .index_session("openid-1", &entry, &[], keep)
        .await
        .unwrap();
    assert_eq!(requests.take(), 1, "index_session");
    units.take();
    store
        .unindex_sessions("openid-1", &["x".into()])
        .await
        .unwrap();
    assert_eq!(requests.take(), 1, "unindex_sessions");
    store
        .reset_session_index("openid-1", &entry, keep)
        .await
        .unwrap();
    assert_eq!(requests.take(), 1, "reset_session_index");
    store.take_session_index("openid-1").await.unwrap();
    assert_eq!(requests.take(), 1, "take_session_index");

    assert_eq!(store.get_access_token("wx1").await.unwrap(), None);
    assert_eq!(requests.take(), 1, "get_access_token");
    let lease = AccessTokenRecord::default();
    assert_eq!(
        store.swap_access_token("wx1", 0, &lease).await.unwrap(),
        TokenSwap::Written
    );
    assert!(matches!(
        store.swap_access_token("wx1", 0, &lease).await.unwrap(),
        TokenSwap::Lost(Some(_))
    ));
    assert_eq!(requests.take(), 2, "swap_access_token, won and lost");
    units.take();

    assert!(store.claim_ticket("t", *NOW, *NOW + 600_000).await.unwrap());
    assert_eq!(requests.take(), 1, "claim_ticket");
    assert_eq!(wru(), 1.0, "claim_ticket");
    assert!(!store.claim_ticket("t", *NOW, *NOW + 600_000).await.unwrap());
    assert_eq!(requests.take(), 1, "claim_ticket again");
    assert_eq!(
        wru(),
        1.0,
        "claim_ticket again: a refused condition bills too"
    );

    assert_eq!(
        store.increment_counter("c", *NOW + 60_000).await.unwrap(),
        1
    );
    assert_eq!(
        store.increment_counter("c", *NOW + 60_000).await.unwrap(),
        2
    );
    assert_eq!(requests.take(), 2, "increment_counter twice");
    assert_eq!(wru(), 2.0, "increment_counter twice");
}

/// The Lambdas' own client set-up (`DynamoStore::from_env` minus reading the
/// environment) reaches DynamoDB Local with `DYNAMODB_ENDPOINT`.
#[tokio::test]
async fn the_configured_client_reaches_the_endpoint() {
    let local = gatehouse_e2e::dynamodb_local().await;
    let table = local.fresh_table().await;
    let settings = gatehouse::store::dynamo::DynamoSettings {
        table: table.name.clone(),
        endpoint: Some(local.endpoint().to_owned()),
    };
    let store = DynamoStore::connect(&settings).await;
    assert_eq!(store.table(), table.name);
    store
        .create_captcha(&captcha("login", "dev-1", "mn4p"))
        .await
        .unwrap();
    assert_eq!(
        table
            .store()
            .verify_captcha(
                &scene("login"),
                &device("dev-1"),
                "mn4p",
                *NOW,
                1,
                &new_pass()
            )
            .await
            .unwrap(),
        VerifyOutcome::Passed,
        "the row written through the configured client is in the table"
    );
}

/// The guard's request counts on the routes themselves: a captcha verify
/// that earns a pass (rate limits off) is one request, so is redeeming the
/// pass, and so is reading a level.
#[tokio::test]
async fn verify_redeem_and_status_are_one_request_each() {
    use gatehouse::captcha::{CaptchaConfig, CaptchaService, Renderer};
    use gatehouse::clock::Clock;
    use gatehouse::guard::{Client, Guard, Level, PassRule};
    use std::sync::Arc;

    let (store, requests) = counted_store().await;
    let store: Arc<dyn gatehouse::store::Store> = Arc::new(store);
    let config = CaptchaConfig::from_json(
        r#"{"rateLimit": {"enabled": false},
            "scene": {"signup": {"guard": {"mode": "adaptive", "imageAfterFailures": 1}}}}"#,
    )
    .unwrap();
    let clock = Clock::manual(*NOW);
    let guard = Guard::new(config.guard(), store.clone()).with_clock(clock.clone());
    let captchas =
        CaptchaService::new(config, Renderer::builtin(), store.clone()).with_clock(clock.clone());

    store
        .create_captcha(&captcha("signup", "dev-1", "abcd"))
        .await
        .unwrap();
    requests.take();
    let target = gatehouse::captcha::service::CaptchaTarget {
        scene: scene("signup"),
        device: device("dev-1"),
        ip: Some("203.0.113.7".into()),
    };
    let pass = captchas.verify(&target, "abcd").await.unwrap();
    assert_eq!(requests.take(), 1, "a verify that earns a pass");

    let client = Client {
        ip: Some("203.0.113.7".into()),
        device: Some(device("dev-1")),
    };
    assert_eq!(
        guard.level(&scene("signup"), &client).await.unwrap(),
        Level::None
    );
    assert_eq!(requests.take(), 1, "reading a level (both counters)");

    let admitted = guard
        .check(
            &scene("signup"),
            PassRule::Always,
            Some(&pass.pass_token),
            &client,
        )
        .await
        .unwrap();
    assert!(admitted.pass.is_some());
    assert_eq!(requests.take(), 2, "a redemption, after reading the level");
    assert!(
        guard
            .check(
                &scene("signup"),
                PassRule::Always,
                Some(&pass.pass_token),
                &client
            )
            .await
            .is_err()
    );
    requests.take();

    // In a scene whose guard is off an `always` door needs no level read:
    // the redemption alone.
    let other = Guard::new(Default::default(), store.clone()).with_clock(clock.clone());
    store
        .create_captcha(&captcha("login", "dev-1", "abcd"))
        .await
        .unwrap();
    let target = gatehouse::captcha::service::CaptchaTarget {
        scene: scene("login"),
        ..target
    };
    let pass = captchas.verify(&target, "abcd").await.unwrap();
    requests.take();
    other
        .check(
            &scene("login"),
            PassRule::Always,
            Some(&pass.pass_token),
            &client,
        )
        .await
        .unwrap();
    assert_eq!(requests.take(), 1, "a redemption");
}

/// The write units of a guarded flow, route by route, through the services
/// (create, verify with its pass, the pass redeemed), rate limits at their
/// defaults and off. The README's cost figures come from here:
/// `cargo test -p gatehouse-e2e --test e2e -- dynamo_requests::write_units --nocapture`
#[tokio::test]
async fn write_units_of_a_guarded_flow() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use gatehouse::captcha::{CaptchaConfig, CaptchaService, Renderer, create, refresh, verify};
    use gatehouse::clock::Clock;
    use gatehouse::guard::{Client, Guard, PassRule};
    use gatehouse_e2e::{post_json, status_and_json};
    use serde_json::json;

    let (table, _requests, units) = metered_table().await;
    let store: Arc<dyn gatehouse::store::Store> = Arc::new(table.store());
    let answer = |device: &str| {
        let key = gatehouse::store::captcha_key(&scene("login"), &gatehouse_e2e::device(device));
        let (client, name) = (table.client.clone(), table.name.clone());
        async move {
            let item = client
                .get_item()
                .table_name(name)
                .key("pk", AttributeValue::S(key))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
                .unwrap();
            item["code"].as_s().unwrap().clone()
        }
    };
    let clock = Clock::manual(*NOW);
    let guard = Guard::new(Default::default(), store.clone()).with_clock(clock.clone());
    let mut report = Vec::new();
    for (limits, config) in [
        ("defaults", "{}"),
        ("off", r#"{"rateLimit": {"enabled": false}}"#),
    ] {
        let svc = CaptchaService::new(
            CaptchaConfig::from_json(config).unwrap(),
            Renderer::builtin(),
            store.clone(),
        )
        .with_clock(clock.clone());
        let device = format!("flow-{limits}");
        let body = json!({"scene": "login", "deviceId": device});
        let ip = "203.0.113.50";
        let mut step = |route: &str, expected: f64| {
            let got = units.take();
            report.push(format!(
                "{route:<28} limits {limits:<8} {} WRU {} RRU",
                got.write, got.read
            ));
            assert_eq!(
                (got.write, got.read),
                (expected, 0.0),
                "{route}, limits {limits}"
            );
        };
        let on = if limits == "off" { 0.0 } else { 1.0 };

        assert_eq!(
            status_and_json(&create(&svc, post_json(&body, ip)).await).0,
            200
        );
        step("POST /captcha/create", 1.0 + 2.0 * on);
        assert_eq!(
            status_and_json(&refresh(&svc, post_json(&body, ip)).await).0,
            200
        );
        step("POST /captcha/refresh", 1.0 + 2.0 * on);
        let wrong = json!({"scene": "login", "deviceId": device, "captcha": "zzzz"});
        assert_eq!(
            status_and_json(&verify(&svc, post_json(&wrong, ip)).await).0,
            400
        );
        step("POST /captcha/verify (wrong)", 1.0 + on);

        assert_eq!(
            status_and_json(&refresh(&svc, post_json(&body, ip)).await).0,
            200
        );
        units.take();
        let code = answer(&device).await;
        units.take();
        let right = json!({"scene": "login", "deviceId": device, "captcha": code});
        let (status, reply) = status_and_json(&verify(&svc, post_json(&right, ip)).await);
        assert_eq!(status, 200, "{reply}");
        step("POST /captcha/verify (pass)", 1.0 + on);
        let token = reply["passToken"].as_str().unwrap().to_owned();
        let client = Client {
            ip: Some(ip.into()),
            device: Some(gatehouse_e2e::device(&device)),
        };
        guard
            .check(&scene("login"), PassRule::Always, Some(&token), &client)
            .await
            .unwrap();
        step("redeem (authorizer, check)", 1.0);
    }
    eprintln!("{}", report.join("\n"));
}
