//! Writes that survive retries: a loopback proxy in front of DynamoDB Local
//! loses the response of a chosen request after DynamoDB applied it, the
//! SDK times the attempt out and retries it, and the retry must answer what
//! the first attempt did: a right answer stays `Passed`, a wrong one counts
//! once, a ticket's first presentation is no reuse, a pass's grant is no
//! row in its own way, a redemption admits exactly once, a counter counts
//! one request once, and ending a user's sessions still finds every one of
//! them.

use std::time::Duration;

use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use gatehouse::domain::{DeviceId, Scene};
use gatehouse::guard::pass::PassToken;
use gatehouse::store::dynamo::DynamoStore;
use gatehouse::store::{
    AccessTokenRecord, AccessTokenStore, CaptchaStore, CounterLimit, CounterStore, IndexedSession,
    IssueMode, IssueOutcome, KEY_ATTRIBUTE, PassClaim, PassKind, PassStore, Redemption,
    SessionIndexStore, SessionStore, TicketStore, TokenSwap, VerifyOutcome, captcha_key,
};
use gatehouse_e2e::lossy_proxy::LossyProxy;
use gatehouse_e2e::{LocalTable, NOW, captcha, device, pass_grant, scene};

/// Short enough that a lost response costs a second, long enough for a
/// loaded machine's DynamoDB Local (a spurious time-out is only one more
/// retry, which these writes must survive anyway).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// A store whose client goes through a fresh lossy proxy (with the
/// Lambdas' retry policy: three attempts), the proxy, and the table (with
/// a direct client, for reading rows back).
pub(crate) async fn lossy_store() -> (DynamoStore, LossyProxy, LocalTable) {
    let local = gatehouse_e2e::dynamodb_local().await;
    let table = local.fresh_table().await;
    let proxy = LossyProxy::start(local.endpoint()).await;
    let client = aws_sdk_dynamodb::Client::from_conf(
        local
            .config_builder()
            .endpoint_url(proxy.url())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
            .build(),
    );
    let store = DynamoStore::new(client, table.name.clone());
    (store, proxy, table)
}

/// Asserts that exactly one response was lost and the request sent again.
fn assert_lost_once(proxy: &LossyProxy, operation: &str) {
    let seen = proxy.take_seen();
    let lost = seen.iter().filter(|(_, lost)| *lost).count();
    let sent = seen.iter().filter(|(op, _)| op == operation).count();
    assert_eq!(lost, 1, "one response lost: {seen:?}");
    assert!(sent >= 2, "the SDK retried {operation}: {seen:?}");
}

async fn number(table: &LocalTable, key: String, attribute: &str) -> i64 {
    let item = table
        .client
        .get_item()
        .table_name(&table.name)
        .key(KEY_ATTRIBUTE, AttributeValue::S(key))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the row");
    item[attribute].as_n().unwrap().parse().unwrap()
}

/// [`lossy_store`] holding a pending captcha of `scene` and `device`
/// answered `abcd`, the proxy's log cleared.
async fn lossy_store_with_captcha(
    scene: &str,
    device: &str,
) -> (DynamoStore, LossyProxy, LocalTable) {
    let (store, proxy, table) = lossy_store().await;
    store
        .create_captcha(&captcha(scene, device, "abcd"))
        .await
        .unwrap();
    proxy.take_seen();
    (store, proxy, table)
}

/// Whether `secret_hash`'s pass redeems (once, as every claim here is).
async fn redeems(store: &DynamoStore, secret_hash: &str, sc: &Scene, dev: &DeviceId) -> bool {
    matches!(
        store
            .redeem_pass(&claim(secret_hash, sc, dev))
            .await
            .unwrap(),
        Redemption::Redeemed(_)
    )
}

/// A session of `openid-lost`, an hour long.
fn session(token_hash: &str) -> gatehouse::store::SessionRecord {
    gatehouse::store::SessionRecord {
        token_hash: token_hash.into(),
        openid: "openid-lost".into(),
        unionid: None,
        phone: None,
        created_ms: *NOW,
        expires_ms: *NOW + 3_600_000,
    }
}

#[tokio::test]
async fn a_right_answer_whose_response_was_lost_still_passes() {
    let (store, proxy, _table) = lossy_store_with_captcha("login", "d1").await;
    proxy.lose_next("UpdateItem", 1);
    let outcome = store
        .verify_captcha(&scene("login"), &device("d1"), "abcd", *NOW, 1)
        .await
        .unwrap();
    assert_lost_once(&proxy, "UpdateItem");
    assert_eq!(outcome, VerifyOutcome::Passed, "not verify-fail");
    assert_eq!(
        store
            .verify_captcha(&scene("login"), &device("d1"), "abcd", *NOW, 1)
            .await
            .unwrap(),
        VerifyOutcome::NotPending,
        "and still only once"
    );
}

#[tokio::test]
async fn a_wrong_answer_whose_response_was_lost_counts_once() {
    let (store, proxy, table) = lossy_store_with_captcha("login", "d2").await;
    // With a pass at stake, as on the route: the right answer's transaction
    // is refused (by the code), then the UpdateItem that counts the wrong
    // answer is the write whose response is lost.
    let token = PassToken::issue(PassKind::Captcha);
    let grant = pass_grant(&token, "login", Some("d2"), "203.0.113.7");
    proxy.lose_next("UpdateItem", 1);
    let outcome = store
        .verify_captcha_granting(
            &scene("login"),
            &device("d2"),
            "zzzz",
            *NOW,
            3,
            Some(&grant),
        )
        .await
        .unwrap();
    assert_lost_once(&proxy, "UpdateItem");
    assert_eq!(outcome, VerifyOutcome::Wrong { attempts_left: 2 });
    let key = captcha_key(&scene("login"), &device("d2"));
    assert_eq!(number(&table, key, "attempts").await, 1, "counted once");
    assert_eq!(
        store
            .verify_captcha(&scene("login"), &device("d2"), "abcd", *NOW, 3)
            .await
            .unwrap(),
        VerifyOutcome::Passed
    );
}

/// A right answer's transaction (the captcha's update, the pass's put)
/// whose response was lost: the retry answers `Passed`, and the pass the
/// caller holds is the one in the table, granted once.
#[tokio::test]
async fn a_right_answer_with_its_pass_whose_response_was_lost_still_passes() {
    let (store, proxy, table) = lossy_store_with_captcha("signup", "d5").await;
    let (sc, dev) = (scene("signup"), device("d5"));
    let token = PassToken::issue(PassKind::Captcha);
    let grant = pass_grant(&token, "signup", Some("d5"), "203.0.113.7");
    proxy.lose_next("TransactWriteItems", 1);
    let outcome = store
        .verify_captcha_granting(&sc, &dev, "abcd", *NOW, 3, Some(&grant))
        .await
        .unwrap();
    assert_lost_once(&proxy, "TransactWriteItems");
    assert_eq!(outcome, VerifyOutcome::Passed, "not verify-fail");
    let key = captcha_key(&sc, &dev);
    assert_eq!(number(&table, key, "attempts").await, 1, "counted once");
    assert!(redeems(&store, &token.secret_hash(), &sc, &dev).await);
    let again = PassToken::issue(PassKind::Captcha);
    assert_eq!(
        store
            .verify_captcha_granting(
                &sc,
                &dev,
                "abcd",
                *NOW,
                3,
                Some(&pass_grant(&again, "signup", Some("d5"), "203.0.113.7"))
            )
            .await
            .unwrap(),
        VerifyOutcome::NotPending,
        "and still only once"
    );
}

/// What the verify's transaction relies on, asked of DynamoDB Local
/// directly: a cancelled transaction names each item's reason and hands
/// back the refused item as it was (`ReturnValuesOnConditionCheckFailure =
/// ALL_OLD`), and a transaction sent again with its `ClientRequestToken`
/// after it was applied succeeds without writing again.
#[tokio::test]
async fn transactions_return_the_refused_item_and_apply_a_token_once() {
    use aws_sdk_dynamodb::error::SdkError;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::types::{
        Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
    };
    let table = gatehouse_e2e::dynamodb_local().await.fresh_table().await;
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let n = |v: i64| AttributeValue::N(v.to_string());
    table
        .client
        .put_item()
        .table_name(&table.name)
        .item(KEY_ATTRIBUTE, s("captcha#x"))
        .item("code", s("abcd"))
        .item("attempts", n(0))
        .send()
        .await
        .unwrap();
    let transaction = |answer: &str, pass: &str, token: &str| {
        let update = Update::builder()
            .table_name(&table.name)
            .key(KEY_ATTRIBUTE, s("captcha#x"))
            .update_expression("ADD attempts :one")
            .condition_expression("code = :answer")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":answer", s(answer))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .unwrap();
        let put = Put::builder()
            .table_name(&table.name)
            .item(KEY_ATTRIBUTE, s(pass))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .unwrap();
        table
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .client_request_token(token)
            .send()
    };
    // Why each item of a cancelled transaction was refused.
    let refusals = |err: SdkError<TransactWriteItemsError, _>| {
        let SdkError::ServiceError(ctx) = &err else {
            panic!("{err:?}");
        };
        let TransactWriteItemsError::TransactionCanceledException(cancelled) = ctx.err() else {
            panic!("{err:?}");
        };
        cancelled.cancellation_reasons().to_vec()
    };
    let reasons = refusals(
        transaction("zzzz", "pass#captcha#1", "token-1")
            .await
            .unwrap_err(),
    );
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0].code(), Some("ConditionalCheckFailed"));
    let old = reasons[0].item().expect("the refused item, as it was");
    assert_eq!(old["code"], s("abcd"));
    assert_eq!(old["attempts"], n(0));
    assert_eq!(reasons[1].code(), Some("None"));
    assert!(reasons[1].item().is_none());

    transaction("abcd", "pass#captcha#2", "token-2")
        .await
        .unwrap();
    transaction("abcd", "pass#captcha#2", "token-2")
        .await
        .expect("the same token again: success, nothing written");
    assert_eq!(
        number(&table, "captcha#x".into(), "attempts").await,
        1,
        "applied once"
    );
    // Another token is another transaction: its put finds the pass row.
    let refused = refusals(
        transaction("abcd", "pass#captcha#2", "token-3")
            .await
            .unwrap_err(),
    );
    let codes: Vec<_> = refused.iter().map(|r| r.code()).collect();
    assert_eq!(codes, [Some("None"), Some("ConditionalCheckFailed")]);
}

#[tokio::test]
async fn a_ticket_claim_whose_response_was_lost_is_no_reuse() {
    let (store, proxy, _table) = lossy_store().await;
    proxy.lose_next("PutItem", 1);
    assert!(
        store
            .claim_ticket("lost-ticket", *NOW, *NOW + 600_000)
            .await
            .unwrap(),
        "the first presentation of a ticket is never ticket-reused"
    );
    assert_lost_once(&proxy, "PutItem");
    assert!(
        !store
            .claim_ticket("lost-ticket", *NOW, *NOW + 600_000)
            .await
            .unwrap(),
        "the second is"
    );
}

fn claim<'a>(secret_hash: &'a str, sc: &'a Scene, dev: &'a DeviceId) -> PassClaim<'a> {
    PassClaim {
        kind: PassKind::Captcha,
        secret_hash,
        scene: sc,
        device: Some(dev),
        bind_device: false,
        bind_ip_net: None,
        idempotency_key: None,
        replay_only: false,
        now_ms: *NOW + 1,
    }
}

#[tokio::test]
async fn a_pass_grant_whose_response_was_lost_is_still_granted() {
    let (store, proxy, table) = lossy_store().await;
    let (sc, dev) = (scene("signup"), device("d4"));
    let token = PassToken::issue(PassKind::Captcha);
    let grant = pass_grant(&token, "signup", Some(dev.as_str()), "203.0.113.7");
    proxy.take_seen();
    proxy.lose_next("PutItem", 1);
    store
        .grant_pass(&grant)
        .await
        .expect("the retry recognises its own pass (granted_by), not a row in the way");
    assert_lost_once(&proxy, "PutItem");
    let key = gatehouse::store::pass_key_of(PassKind::Captcha, &token.secret_hash());
    assert_eq!(number(&table, key, "pass_created").await, *NOW);
    assert!(redeems(&store, &token.secret_hash(), &sc, &dev).await);
    // Another grant under the same key is no retry: refused.
    assert!(store.grant_pass(&grant).await.is_err());
}

#[tokio::test]
async fn a_redemption_whose_response_was_lost_admits_exactly_once() {
    let (store, proxy, _table) = lossy_store().await;
    let (sc, dev) = (scene("signup"), device("d3"));
    let token = PassToken::issue(PassKind::Captcha);
    store
        .grant_pass(&pass_grant(
            &token,
            "signup",
            Some(dev.as_str()),
            "203.0.113.7",
        ))
        .await
        .unwrap();
    proxy.take_seen();
    let secret_hash = token.secret_hash();
    let claim = claim(&secret_hash, &sc, &dev);
    proxy.lose_next("UpdateItem", 1);
    let first = store.redeem_pass(&claim).await.unwrap();
    assert_lost_once(&proxy, "UpdateItem");
    assert!(
        matches!(&first, Redemption::Redeemed(pass) if pass.device == Some(dev.clone())),
        "{first:?}"
    );
    assert_eq!(store.redeem_pass(&claim).await.unwrap(), Redemption::Used);
}

#[tokio::test]
async fn counters_count_a_request_whose_response_was_lost_once() {
    let (store, proxy, table) = lossy_store().await;
    proxy.lose_next("UpdateItem", 1);
    assert_eq!(
        store
            .increment_counter("lost|c", *NOW + 60_000)
            .await
            .unwrap(),
        1
    );
    assert_lost_once(&proxy, "UpdateItem");
    assert_eq!(
        store
            .increment_counter("lost|c", *NOW + 60_000)
            .await
            .unwrap(),
        2
    );

    // A create's counters: the first counter's response lost, the create
    // still written and each counter counted once.
    let limits = [
        CounterLimit {
            name: "create|ip|*|0|lost".into(),
            limit: 2,
            window_end_ms: *NOW + 60_000,
        },
        CounterLimit {
            name: "create|dev|*|0|lost".into(),
            limit: 2,
            window_end_ms: *NOW + 60_000,
        },
    ];
    proxy.lose_next("UpdateItem", 1);
    assert_eq!(
        store
            .issue_captcha(&captcha("login", "d4", "abcd"), IssueMode::Create, &limits)
            .await
            .unwrap(),
        IssueOutcome::Written
    );
    assert_lost_once(&proxy, "UpdateItem");
    for limit in &limits {
        let key = gatehouse::store::counter_key_of(&limit.name);
        assert_eq!(number(&table, key, "count").await, 1, "{}", limit.name);
    }
}

#[tokio::test]
async fn an_access_token_swap_whose_response_was_lost_is_won() {
    let (store, proxy, _table) = lossy_store().await;
    let lease = AccessTokenRecord {
        lease_until_ms: *NOW + 10_000,
        ..AccessTokenRecord::default()
    };
    proxy.lose_next("PutItem", 1);
    assert_eq!(
        store.swap_access_token("wxlost", 0, &lease).await.unwrap(),
        TokenSwap::Written,
        "the retry finds its own write, not a rival's"
    );
    assert_lost_once(&proxy, "PutItem");
    assert!(matches!(
        store.swap_access_token("wxlost", 0, &lease).await.unwrap(),
        TokenSwap::Lost(Some(_))
    ));
}

/// A session replacement is a transaction: the SDK gives it an idempotency
/// token (`ClientRequestToken`), so its retry succeeds without writing
/// twice.
#[tokio::test]
async fn a_session_replacement_whose_response_was_lost_still_succeeds() {
    let (store, proxy, _table) = lossy_store().await;
    let old = session("lost-old");
    store.put_session(&old, None).await.unwrap();
    let new = gatehouse::store::SessionRecord {
        token_hash: "lost-new".into(),
        ..old.clone()
    };
    proxy.lose_next("TransactWriteItems", 1);
    assert!(
        store
            .replace_session(&old.token_hash, &new, *NOW)
            .await
            .unwrap()
    );
    assert_lost_once(&proxy, "TransactWriteItems");
    assert!(store.get_session("lost-old").await.unwrap().is_none());
    assert!(store.get_session("lost-new").await.unwrap().is_some());
}

/// A logout whose delete was applied but whose answer was lost: the retry
/// finds no row, and still answers that the session ended.
#[tokio::test]
async fn a_session_end_whose_response_was_lost_still_ends_it() {
    let (store, proxy, _table) = lossy_store().await;
    store.put_session(&session("lost-end"), None).await.unwrap();
    proxy.take_seen();
    proxy.lose_next("DeleteItem", 1);
    assert_eq!(
        store.delete_session("lost-end", *NOW).await.unwrap(),
        gatehouse::store::SessionEnd::Ended,
        "not session-invalid"
    );
    assert_lost_once(&proxy, "DeleteItem");
    assert_eq!(
        store.delete_session("lost-end", *NOW).await.unwrap(),
        gatehouse::store::SessionEnd::NotFound
    );
}

/// Three sessions of one user, listed in its index.
async fn three_indexed_sessions(store: &DynamoStore, openid: &str) -> Vec<IndexedSession> {
    let keep = *NOW + 86_400_000;
    let mut entries = Vec::new();
    for i in 0..3 {
        let entry = IndexedSession {
            token_hash: format!("{openid}-{i}"),
            expires_ms: *NOW + 3_600_000,
        };
        store
            .index_session(openid, &entry, &[], keep)
            .await
            .unwrap();
        entries.push(entry);
    }
    entries
}

/// A single login whose index read was applied but whose answer was lost:
/// the retry still hands back the user's other sessions, to be ended (a
/// `PutItem` returning the old index would hand back the fresh one).
#[tokio::test]
async fn a_single_login_whose_index_answer_was_lost_still_ends_the_others() {
    let (store, proxy, _table) = lossy_store().await;
    let others = three_indexed_sessions(&store, "openid-single").await;
    let this = IndexedSession {
        token_hash: "openid-single-this".into(),
        expires_ms: *NOW + 3_600_000,
    };
    proxy.take_seen();
    proxy.lose_next("UpdateItem", 1);
    let ended = store
        .reset_session_index("openid-single", &this, *NOW + 86_400_000)
        .await
        .unwrap();
    assert_lost_once(&proxy, "UpdateItem");
    assert_eq!(ended, others, "every other session, to be ended");
    assert_eq!(
        store.take_session_index("openid-single").await.unwrap(),
        vec![this],
        "the index lists this login alone"
    );
}

/// Ending every session, with the index read's answer lost: the retry still
/// lists every session (a `DeleteItem` returning the old item would list
/// none, and they would live on).
#[tokio::test]
async fn ending_every_session_with_the_answer_lost_still_lists_them_all() {
    let (store, proxy, _table) = lossy_store().await;
    let listed = three_indexed_sessions(&store, "openid-all").await;
    proxy.take_seen();
    proxy.lose_next("UpdateItem", 1);
    assert_eq!(
        store.take_session_index("openid-all").await.unwrap(),
        listed
    );
    assert_lost_once(&proxy, "UpdateItem");
    assert!(
        store
            .take_session_index("openid-all")
            .await
            .unwrap()
            .is_empty()
    );
}
