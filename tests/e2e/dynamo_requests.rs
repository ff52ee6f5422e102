//! How many DynamoDB requests each store operation makes, counted by an SDK
//! interceptor on a client pointed at DynamoDB Local: a successful create,
//! refresh and verify are one request each (the store's documented numbers;
//! with a pass at stake, as on the route, a right answer's pass rides in
//! its verify's transaction, and a wrong answer is two: that transaction,
//! cancelled, then the write that counts it).
//! What they bill is metered in `write_units.rs`.

use gatehouse::guard::pass::PassToken;
use gatehouse::secret::Secret;
use gatehouse::store::dynamo::DynamoStore;
use gatehouse::store::{
    AccessTokenRecord, CaptchaRecord, IndexedSession, PhoneNumber, SessionEnd, SessionRecord,
    TokenSwap, VerifyOutcome,
};
use gatehouse::store::{
    AccessTokenStore, CaptchaStore, CounterStore, PassKind, PassStore, SessionIndexStore,
    SessionStore, TicketStore,
};
use gatehouse_e2e::{NOW, captcha, device, pass_grant, scene};

pub use gatehouse_e2e::capacity::RequestCounter;

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
            .verify_captcha(&scene("login"), &device("dev-1"), "efgh", *NOW + 1, 3)
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
            .verify_captcha(&scene("login"), &device("dev-1"), "efgh", *NOW + 2, 3)
            .await
            .unwrap(),
        VerifyOutcome::NotPending
    );
    assert_eq!(requests.take(), 1, "verify of a used captcha");

    assert_eq!(
        store
            .verify_captcha(&scene("login"), &device("nobody"), "efgh", *NOW, 3)
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
            .verify_captcha(&scene("login"), &device("dev-1"), "zzzz", *NOW, 3)
            .await
            .unwrap(),
        VerifyOutcome::Wrong { attempts_left: 2 }
    );
    assert_eq!(
        requests.take(),
        1,
        "wrong answer without a pass at stake: counted and judged in the same conditional write"
    );
    assert_eq!(
        store
            .verify_captcha(&scene("login"), &device("dev-1"), "abcd", *NOW + 180_000, 3)
            .await
            .unwrap(),
        VerifyOutcome::Expired
    );
    assert_eq!(requests.take(), 1, "verify of an expired captcha");

    // With the pass a right answer earns: the same one request (a
    // transaction of the captcha's update and the pass's put) or two.
    store
        .create_captcha(&captcha("login", "dev-2", "abcd"))
        .await
        .unwrap();
    requests.take();
    let granting = |device_id: &'static str, answer: &'static str| {
        let store = store.clone();
        let token = PassToken::issue(PassKind::Captcha);
        let grant = pass_grant(&token, "login", Some(device_id), "203.0.113.7");
        async move {
            store
                .verify_captcha_granting(
                    &scene("login"),
                    &device(device_id),
                    answer,
                    *NOW,
                    3,
                    Some(&grant),
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(granting("dev-2", "abcd").await, VerifyOutcome::Passed);
    assert_eq!(
        requests.take(),
        1,
        "right answer: one transaction, the pass with it"
    );
    store
        .create_captcha(&captcha("login", "dev-3", "abcd"))
        .await
        .unwrap();
    requests.take();
    assert_eq!(
        granting("dev-3", "zzzz").await,
        VerifyOutcome::Wrong { attempts_left: 2 }
    );
    assert_eq!(
        requests.take(),
        2,
        "wrong answer with a pass at stake: the transaction, cancelled, then the count"
    );
    // An answer after a counted one: its first round assumed none, and the
    // row it was refused by tells the count (as before the transaction).
    assert_eq!(granting("dev-3", "abcd").await, VerifyOutcome::Passed);
    assert_eq!(
        requests.take(),
        2,
        "a right answer after a wrong one: a round more"
    );
}

#[tokio::test]
async fn sessions_tickets_and_counters_are_one_request_each() {
    let (store, requests, units) = crate::write_units::metered_store().await;
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
            .set_session_phone(&session, &phone, *NOW)
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
    // The index holds `entry` alone: resetting it to `entry` reads it and
    // has nothing else to remove; taking it reads it and removes `entry`.
    store
        .reset_session_index("openid-1", &entry, keep)
        .await
        .unwrap();
    assert_eq!(requests.take(), 1, "reset_session_index, no other entry");
    assert_eq!(store.take_session_index("openid-1").await.unwrap().len(), 1);
    assert_eq!(requests.take(), 2, "take_session_index: read, remove");
    assert!(
        store
            .take_session_index("openid-1")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(requests.take(), 1, "take_session_index of an empty index");

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
    let pass = pass_grant(
        &PassToken::issue(PassKind::Ticket),
        "pay",
        None,
        "198.51.100.7",
    );
    store.grant_pass(&pass).await.unwrap();
    assert_eq!(requests.take(), 1, "grant_pass (a ticket's pass)");
    assert_eq!(wru(), 1.0, "grant_pass");
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
            .verify_captcha(&scene("login"), &device("dev-1"), "mn4p", *NOW, 1)
            .await
            .unwrap(),
        VerifyOutcome::Passed,
        "the row written through the configured client is in the table"
    );
}

/// The guard's request counts on the routes themselves: a captcha verify
/// that earns a pass (rate limits off) is one request (a transaction of the
/// verify and the pass's row), reading a level is one, and a door counts the request in
/// each of its rows (one UpdateItem each, at once) before it redeems the
/// pass (one more).
#[tokio::test]
async fn verify_redeem_and_status_are_one_request_each() {
    use gatehouse::captcha::{CaptchaService, Renderer};
    use gatehouse::clock::Clock;
    use gatehouse::guard::{Client, Door, Guard, Level, PassRule};
    use gatehouse::options::ServiceOptions;
    use gatehouse::settings::Settings;
    use std::sync::Arc;

    let (store, requests) = counted_store().await;
    let store: Arc<dyn gatehouse::store::Store> = Arc::new(store);
    let settings = Settings::from_json(
        r#"{"rateLimit": {"enabled": false},
            "scene": {"signup": {"guard": {"mode": "adaptive", "imageAfterFailures": 1}}}}"#,
    )
    .unwrap();
    let clock = Clock::manual(*NOW);
    let options = ServiceOptions::new(settings.rate_limits.clone()).with_clock(clock.clone());
    let guard = Guard::new(settings.guard.clone(), store.clone(), &options);
    let captchas = CaptchaService::new(
        settings.captcha_settings(),
        Renderer::builtin(),
        store.clone(),
        &options,
    );

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
    assert_eq!(
        requests.take(),
        1,
        "a verify that earns a pass: one transaction of the verify and the pass's own row"
    );

    let client = Client {
        ip: Some("203.0.113.7".into()),
        device: Some(device("dev-1")),
        openid: None,
        phone_number: None,
    };
    assert_eq!(
        guard.level(&scene("signup"), &client).await.unwrap(),
        Level::None
    );
    assert_eq!(requests.take(), 1, "reading a level (both counters)");

    let admitted = guard
        .check(
            &Door::new(scene("signup"), PassRule::Always),
            Some(&pass.pass_token),
            None,
            &client,
        )
        .await
        .unwrap();
    assert!(admitted.pass.is_some());
    assert_eq!(
        requests.take(),
        3,
        "the request counted in its IP's and device's rows (one UpdateItem each, sent at once), \
         then a redemption"
    );
    assert!(
        guard
            .check(
                &Door::new(scene("signup"), PassRule::Always),
                Some(&pass.pass_token),
                None,
                &client
            )
            .await
            .is_err()
    );
    requests.take();

    // In a scene whose guard is off an `always` door needs no level read:
    // the redemption alone.
    let other = Guard::new(Default::default(), store.clone(), &options);
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
    // With an idempotency key: still the one conditional write, and its
    // retry another.
    let key = gatehouse::guard::IdempotencyKey::parse("order-1").unwrap();
    let door = Door::new(scene("login"), PassRule::Always);
    for attempt in ["a keyed redemption", "its retry"] {
        other
            .check(&door, Some(&pass.pass_token), Some(&key), &client)
            .await
            .unwrap();
        assert_eq!(requests.take(), 1, "{attempt}");
    }
    let pass = captchas.verify(&target, "abcd").await;
    assert!(pass.is_err(), "the captcha was used");
    store
        .create_captcha(&captcha("login", "dev-1", "abcd"))
        .await
        .unwrap();
    let pass = captchas.verify(&target, "abcd").await.unwrap();
    requests.take();
    other
        .check(
            &Door::new(scene("login"), PassRule::Always),
            Some(&pass.pass_token),
            None,
            &client,
        )
        .await
        .unwrap();
    assert_eq!(requests.take(), 1, "a redemption");
}

/// An SMS send is one round trip (the row and its counters at once), a
/// refused one one more (its undo), a void and a verify one request each.
#[tokio::test]
async fn sms_sends_voids_and_verifies_take_their_documented_requests() {
    use gatehouse::sms::Mobile;
    use gatehouse::sms::code::code_hash;
    use gatehouse::store::{CounterLimit, SmsCodeStore, SmsIssue, sms_locator};
    use gatehouse_e2e::sms::sms_record;

    let (store, requests) = counted_store().await;
    let limits = [
        CounterLimit {
            name: "smsday|*|1|+8613800138000".into(),
            limit: 5,
            window_end_ms: *NOW + 86_400_000,
        },
        CounterLimit {
            name: "smsbudget|*|1".into(),
            limit: 1,
            window_end_ms: *NOW + 86_400_000,
        },
    ];
    let record = sms_record("login", "+8613800138000", "123456", *NOW);
    assert_eq!(
        store.issue_sms_code(&record, &limits, *NOW).await.unwrap(),
        SmsIssue::Written
    );
    assert_eq!(requests.take(), 3, "the row and two counters, at once");
    let too_soon = sms_record("login", "+8613800138000", "654321", *NOW + 1);
    assert!(matches!(
        store
            .issue_sms_code(&too_soon, &limits, *NOW + 1)
            .await
            .unwrap(),
        SmsIssue::TooSoon { .. }
    ));
    assert_eq!(
        requests.take(),
        4,
        "three at once, the day's counter taken back (the budget's was full)"
    );
    let other = sms_record("login", "+8613800138001", "111111", *NOW);
    assert!(matches!(
        store.issue_sms_code(&other, &limits, *NOW).await.unwrap(),
        SmsIssue::Limited { index: 1, .. }
    ));
    assert_eq!(
        requests.take(),
        5,
        "three at once, the row and a counter undone"
    );
    store.void_sms_code(&other).await.unwrap();
    assert_eq!(requests.take(), 1, "void");

    let mobile = Mobile::parse("+8613800138000").unwrap();
    let hash = code_hash(&sms_locator(&scene("login"), &mobile), "123456");
    assert_eq!(
        store
            .verify_sms_code(&scene("login"), &mobile, &hash, *NOW, 5)
            .await
            .unwrap(),
        VerifyOutcome::Passed
    );
    assert_eq!(requests.take(), 1, "verify");
}
