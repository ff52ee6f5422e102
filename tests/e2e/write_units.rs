//! What each route bills in DynamoDB write request units, measured on
//! DynamoDB Local through [`CapacityMeter`]: a rate-limited create or
//! refresh is three single-item writes sent at once (one unit each), not a
//! transaction (two per item); a guarded flow's units, route by route.
//! The cost figures of `docs/performance.md` come from here:
//! `cargo test -p gatehouse-e2e --test e2e -- write_units --nocapture`

use std::sync::Arc;

use gatehouse::store::dynamo::DynamoStore;
use gatehouse::store::{CaptchaStore, CounterLimit, IssueMode, IssueOutcome};
use gatehouse_e2e::capacity::CapacityMeter;
use gatehouse_e2e::{NOW, captcha, scene};

use crate::dynamo_requests::RequestCounter;

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

/// The write units of a guarded flow, route by route, through the services
/// (create, verify with its pass, the pass redeemed, then refused), rate
/// limits at their defaults and off.
#[tokio::test]
async fn write_units_of_a_guarded_flow() {
    use gatehouse::captcha::{CaptchaService, Renderer, create, refresh, verify};
    use gatehouse::clock::Clock;
    use gatehouse::guard::{Client, Door, Guard, PassRule};
    use gatehouse::options::ServiceOptions;
    use gatehouse::ratelimit::RateLimitConfig;
    use gatehouse::settings::Settings;
    use gatehouse_e2e::{post_json, status_and_json};
    use serde_json::json;

    let (table, _requests, units) = metered_table().await;
    let store: Arc<dyn gatehouse::store::Store> = Arc::new(table.store());
    let clock = Clock::manual(*NOW);
    let uncounted = ServiceOptions::new(RateLimitConfig::disabled()).with_clock(clock.clone());
    let guard = Guard::new(Default::default(), store.clone(), &uncounted);
    let guarded = Guard::new(
        Settings::from_json(r#"{"scene": {"login": {"guard": {"mode": "adaptive"}}}}"#)
            .unwrap()
            .guard,
        store.clone(),
        &uncounted,
    );
    let mut report = Vec::new();
    for (limits, config) in [
        ("defaults", "{}"),
        ("off", r#"{"rateLimit": {"enabled": false}}"#),
    ] {
        let settings = Settings::from_json(config).unwrap();
        let svc = CaptchaService::new(
            settings.captcha_settings(),
            Renderer::builtin(),
            store.clone(),
            &ServiceOptions::new(settings.rate_limits).with_clock(clock.clone()),
        );
        let device = format!("flow-{limits}");
        let body = json!({"scene": "login", "deviceId": device});
        let ip = "203.0.113.50";
        let mut step = |route: &str, expected: f64, cancelled: usize| {
            let got = units.take();
            let items = units.cancelled_transaction_items();
            report.push(format!(
                "{route:<31} limits {limits:<8} {} WRU {} RRU, cancelled transaction items {items}",
                got.write, got.read
            ));
            assert_eq!(got.write, expected, "{route}, limits {limits}");
            assert_eq!(items, cancelled, "{route}, limits {limits}");
            // Only a guarded scene's door reads (its level's counters).
            if !route.contains("guarded") {
                assert_eq!(got.read, 0.0, "{route}, limits {limits}");
            }
        };
        let on = if limits == "off" { 0.0 } else { 1.0 };

        assert_eq!(
            status_and_json(&create(&svc, post_json(&body, ip)).await).0,
            200
        );
        step("POST /captcha/create", 1.0 + 2.0 * on, 0);
        assert_eq!(
            status_and_json(&refresh(&svc, post_json(&body, ip)).await).0,
            200
        );
        step("POST /captcha/refresh", 1.0 + 2.0 * on, 0);
        let wrong = json!({"scene": "login", "deviceId": device, "captcha": "zzzz"});
        assert_eq!(
            status_and_json(&verify(&svc, post_json(&wrong, ip)).await).0,
            400
        );
        // The right answer's transaction (captcha, pass), cancelled by the
        // code, then the update that counts the wrong answer.
        step("POST /captcha/verify (wrong)", 1.0 + on, 2);

        assert_eq!(
            status_and_json(&refresh(&svc, post_json(&body, ip)).await).0,
            200
        );
        units.take();
        let code = captcha_answer(&table, "login", &device).await;
        units.take();
        units.cancelled_transaction_items();
        let right = json!({"scene": "login", "deviceId": device, "captcha": code});
        let (status, reply) = status_and_json(&verify(&svc, post_json(&right, ip)).await);
        assert_eq!(status, 200, "{reply}");
        // One transaction of the verify and, the answer right, the pass's
        // own row: two units per item.
        step("POST /captcha/verify (pass)", 4.0 + on, 0);
        let token = reply["passToken"].as_str().unwrap().to_owned();
        let client = Client {
            ip: Some(ip.into()),
            device: Some(gatehouse_e2e::device(&device)),
            openid: None,
            phone_number: None,
        };
        let door = Door::new(scene("login"), PassRule::Always);
        guard
            .check(&door, Some(&token), None, &client)
            .await
            .unwrap();
        step("redeem (authorizer, check)", 1.0, 0);
        // Spent: refused by the same one conditional write, and in a
        // guarded scene counted as a request and as a failure (the IP's
        // and the device's counter rows, one write each for each).
        guarded
            .check(&door, Some(&token), None, &client)
            .await
            .unwrap_err();
        step("redeem refused (guarded scene)", 5.0, 0);
    }
    eprintln!("{}", report.join("\n"));
}

/// Issue 22: the short way, the answer at the door. Per flow, with the
/// default limits and the scene's guard off: the create (3 WRU: captcha and
/// its two counters) and the door's one conditional write of the captcha
/// (1 WRU), in two DynamoDB requests and two HTTP requests; the pass way
/// (create, verify with its pass in its transaction, redeem) is 9 WRU in
/// six DynamoDB requests.
/// `cargo test -p gatehouse-e2e --test e2e -- write_units::the_short_way --nocapture`
#[tokio::test]
async fn the_short_way_bills_create_and_one_write_at_the_door() {
    use gatehouse::captcha::{CaptchaService, Renderer, create, verify};
    use gatehouse::clock::Clock;
    use gatehouse::guard::{Challenge, Client, Door, Guard, PassRule};
    use gatehouse::options::ServiceOptions;
    use gatehouse::settings::Settings;
    use gatehouse_e2e::{post_json, status_and_json};
    use serde_json::json;

    let (table, requests, units) = metered_table().await;
    let store: Arc<dyn gatehouse::store::Store> = Arc::new(table.store());
    let settings = Settings::from_json("{}").unwrap();
    let options = ServiceOptions::new(settings.rate_limits.clone()).with_clock(Clock::manual(*NOW));
    let captcha = Arc::new(CaptchaService::new(
        settings.captcha_settings(),
        Renderer::builtin(),
        store.clone(),
        &options,
    ));
    let guard = Guard::new(settings.guard.clone(), store.clone(), &options).with_judge(
        gatehouse::door::judge(Some(captcha.verifier().clone()), None),
    );
    let door = Door::new(scene("login"), PassRule::Always);
    let ip = "203.0.113.60";
    let mut measured = Vec::new();
    for way in ["short", "pass"] {
        let device = format!("way-{way}");
        let body = json!({"scene": "login", "deviceId": device});
        let client = Client {
            ip: Some(ip.into()),
            device: Some(gatehouse_e2e::device(&device)),
            ..Client::default()
        };
        assert_eq!(
            status_and_json(&create(&captcha, post_json(&body, ip)).await).0,
            200
        );
        let code = captcha_answer(&table, "login", &device).await;
        let (created_requests, created_units) = (requests.take() - 1, units.take().write);
        let admission = if way == "short" {
            guard
                .check_challenge(&door, &Challenge::Answer(code), &client)
                .await
                .unwrap()
        } else {
            let right = json!({"scene": "login", "deviceId": device, "captcha": code});
            let (status, reply) = status_and_json(&verify(&captcha, post_json(&right, ip)).await);
            assert_eq!(status, 200, "{reply}");
            let token = reply["passToken"].as_str().unwrap().to_owned();
            guard
                .check(&door, Some(&token), None, &client)
                .await
                .unwrap()
        };
        assert_eq!(admission.pass.unwrap().kind.as_str(), "captcha");
        let flow = (
            created_requests + requests.take(),
            created_units + units.take().write,
        );
        measured.push((way, flow));
    }
    eprintln!(
        "way    DynamoDB requests  WRU\n{}",
        measured
            .iter()
            .map(|(way, (r, w))| format!("{way:<6} {r:<18} {w}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        measured[0].1,
        (4, 4.0),
        "short way: create (3 at once) + the door's one write"
    );
    assert!(measured[0].1.1 <= 5.0, "issue 22: at most 5 WRU");
    assert_eq!(
        measured[1].1,
        (6, 9.0),
        "pass way: create 3 + verify 5 (its transaction of two items, its \
         counter) + redeem 1"
    );
}

/// The units of each SMS route, and of a guarded sign-in by phone end to
/// end (a captcha, its pass at the send's door, the code verified, the sms
/// pass redeemed at the business door), rate limits at their defaults and
/// off. The SMS cost figures of `docs/sms.md` come from here.
#[tokio::test]
async fn write_units_of_a_guarded_sign_in_by_phone() {
    use gatehouse::captcha::{CaptchaService, Renderer};
    use gatehouse::clock::Clock;
    use gatehouse::guard::{Client, Door, Guard, PassRule};
    use gatehouse::options::ServiceOptions;
    use gatehouse::settings::Settings;
    use gatehouse::sms::routes;
    use gatehouse_e2e::sms::SmsRig;
    use gatehouse_e2e::{post_json, status_and_json};
    use serde_json::json;

    let (table, _requests, units) = metered_table().await;
    let store: Arc<dyn gatehouse::store::Store> = Arc::new(table.store());
    let clock = Clock::manual(*NOW);
    let sms = SmsRig::with_clock(clock.clone()).await;
    let mut report = Vec::new();
    let ip = "203.0.113.51";
    for (limits, config) in [
        (
            "defaults",
            r#"{"scene": {"phone": {"guard": {"mode": "always"}}}}"#,
        ),
        (
            "off",
            r#"{"rateLimit": {"enabled": false}, "scene": {"phone": {"guard": {"mode": "always"}}}}"#,
        ),
    ] {
        let settings = Settings::from_json(config).unwrap();
        let options = ServiceOptions::new(settings.rate_limits.clone()).with_clock(clock.clone());
        let captchas = CaptchaService::new(
            settings.captcha_settings(),
            Renderer::builtin(),
            store.clone(),
            &options,
        );
        let (sender, verifier) = sms.services(&settings, &store, &options);
        let guard = Guard::new(settings.guard.clone(), store.clone(), &options);
        let on = if limits == "off" { 0.0 } else { 1.0 };
        let mut step = |route: &str, write: f64, read: f64| {
            let got = units.take();
            report.push(format!(
                "{route:<40} limits {limits:<8} {} WRU {} RRU",
                got.write, got.read
            ));
            assert_eq!(
                (got.write, got.read),
                (write, read),
                "{route}, limits {limits}"
            );
        };

        // A plain send and verify (a scene without a guard).
        let mobile = format!("+86138001380{}", if on > 0.0 { "20" } else { "21" });
        let body = json!({"mobile": mobile, "scene": "login"});
        let sent = status_and_json(&routes::send(&sender, post_json(&body, ip)).await);
        assert_eq!(sent.0, 200, "{}", sent.1);
        step("POST /sms/send", 3.0 + on, 0.0);
        let code = sms.emulator.last_code(&mobile).unwrap();
        let body = json!({"mobile": mobile, "scene": "login", "code": code});
        let verified = status_and_json(&routes::verify(&verifier, post_json(&body, ip)).await);
        assert_eq!(verified.0, 200, "{}", verified.1);
        // The code's update and the pass's own row.
        step("POST /sms/verify (pass)", 2.0 + on, 0.0);

        // The guarded sign-in by phone, request by request.
        let device = format!("phone-{limits}");
        let mobile = format!("+86138001380{}", if on > 0.0 { "22" } else { "23" });
        let body = json!({"scene": "phone", "deviceId": device});
        assert_eq!(
            status_and_json(&gatehouse::captcha::create(&captchas, post_json(&body, ip)).await).0,
            200
        );
        step("POST /captcha/create", 1.0 + 2.0 * on, 0.0);
        let answer = captcha_answer(&table, "phone", &device).await;
        units.take();
        let body = json!({"scene": "phone", "deviceId": device, "captcha": answer});
        let passed =
            status_and_json(&gatehouse::captcha::verify(&captchas, post_json(&body, ip)).await);
        assert_eq!(passed.0, 200, "{}", passed.1);
        // One transaction of the captcha's update and its pass: two units
        // per item.
        step("POST /captcha/verify (pass)", 4.0 + on, 0.0);
        let mut req = post_json(
            &json!({"mobile": mobile, "scene": "phone", "deviceId": device}),
            ip,
        );
        req.headers_mut().insert(
            "x-gatehouse-pass",
            passed.1["passToken"].as_str().unwrap().parse().unwrap(),
        );
        let sent = status_and_json(&routes::send(&sender, req).await);
        assert_eq!(sent.0, 200, "{}", sent.1);
        // The send counted as a request of its scene in the guard's rows
        // of its IP and device (one write each, answering the counts), the
        // captcha pass redeemed, the code and its counters.
        step("POST /sms/send (guarded, pass)", 6.0 + on, 0.0);
        let code = sms.emulator.last_code(&mobile).unwrap();
        let body = json!({"mobile": mobile, "scene": "phone", "code": code, "deviceId": device});
        let verified = status_and_json(&routes::verify(&verifier, post_json(&body, ip)).await);
        assert_eq!(verified.0, 200, "{}", verified.1);
        step("POST /sms/verify (pass)", 2.0 + on, 0.0);
        let client = Client {
            ip: Some(ip.into()),
            device: Some(gatehouse_e2e::device(&device)),
            openid: None,
            phone_number: None,
        };
        let token = verified.1["passToken"].as_str().unwrap();
        let admitted = guard
            .check(
                &Door::new(scene("phone"), PassRule::Auto),
                Some(token),
                None,
                &client,
            )
            .await
            .unwrap();
        assert_eq!(admitted.pass.unwrap().mobile.unwrap().as_str(), mobile);
        // The request counted (the IP's and the device's rows), the pass
        // redeemed.
        step("door: sms pass redeemed (auto)", 3.0, 0.0);
        clock.advance(60_000);
    }
    eprintln!("{}", report.join("\n"));
}

/// The answer a captcha row holds, read by the test's own request (its
/// units are taken out by the caller).
async fn captcha_answer(
    table: &gatehouse_e2e::LocalTable,
    scene_name: &str,
    device: &str,
) -> String {
    let key = gatehouse::store::captcha_key(&scene(scene_name), &gatehouse_e2e::device(device));
    let item = table
        .client
        .get_item()
        .table_name(&table.name)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(key))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    item["code"].as_s().unwrap().clone()
}
