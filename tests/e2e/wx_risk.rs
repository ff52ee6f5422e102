//! WeChat risk ranks (SPEC §12, issue 19) against the WeChat emulator, on
//! the embedded store and on DynamoDB Local: one WeChat call per user and
//! window across two instances on one table, every failure an answer
//! without a rank (cached for a minute, so that an outage costs one call a
//! minute per user), a stale access token refreshed once, the phone number
//! sent when known; and, on their own, the logs (no token, openid or phone
//! number) and (DynamoDB only) the requests and write units of a lookup.

use std::sync::Arc;
use std::time::Duration;

use gatehouse::metrics::{Event, Events};
use gatehouse::store::{GuardTally, GuardWindows, Store};
use gatehouse::wechat::risk::{DEFAULT_BUDGET, FAILURE_CACHE_MS, RiskLookup, RiskRanks};
use gatehouse::wechat::risk_rank::{RiskFailure, RiskRankRequest, RiskScene};
use gatehouse_local::wechat_emulator::{RiskRequest, WechatEmulator};

use crate::wechat_rig::{APPID, SECRET, WxRig, options};

const IP: &str = "203.0.113.7";

/// How long the tests' scenes cache a rank (the default `cacheSeconds`).
const CACHE_SECONDS: u64 = 600;

/// A new instance (cold: no access token in memory) on the rig's table and
/// clock, with a budget that a loaded test machine cannot overrun; the
/// time-out tests set the default 800 ms or less.
fn instance(rig: &WxRig) -> RiskRanks {
    RiskRanks::new(&rig.config, rig.store.clone(), &options(&rig.clock))
        .unwrap()
        .with_budget(Duration::from_secs(10))
}

fn user(openid: &str) -> RiskRankRequest<'_> {
    RiskRankRequest {
        openid,
        scene: RiskScene::Register,
        client_ip: IP,
        mobile_no: None,
        is_test: false,
    }
}

/// One lookup, and the events it pushed.
async fn look(ranks: &RiskRanks, user: &RiskRankRequest<'_>) -> (RiskLookup, Vec<Event>) {
    look_for(ranks, user, CACHE_SECONDS).await
}

/// [`look`] for a scene caching `cache_seconds`.
async fn look_for(
    ranks: &RiskRanks,
    user: &RiskRankRequest<'_>,
    cache_seconds: u64,
) -> (RiskLookup, Vec<Event>) {
    let mut events = Events::default();
    let lookup = ranks.rank(user, cache_seconds, &mut events).await;
    (lookup, events.iter().copied().collect())
}

fn hit(answer: Result<u8, RiskFailure>) -> RiskLookup {
    RiskLookup {
        answer,
        cached: true,
    }
}

fn asked(answer: Result<u8, RiskFailure>) -> RiskLookup {
    RiskLookup {
        answer,
        cached: false,
    }
}

mod cases {
    use super::*;

    pub async fn one_wechat_call_per_user_and_window_across_instances(store: Arc<dyn Store>) {
        let rig = WxRig::new(store).await;
        let (first, second) = (instance(&rig), instance(&rig));
        let openid = rig.emu.openid_for("risky");
        rig.emu.set_risk_rank(&openid, 3);

        let (lookup, events) = look(&first, &user(&openid)).await;
        assert_eq!(lookup, asked(Ok(3)));
        assert_eq!(
            events,
            [Event::WxRiskRank {
                rank: 3,
                cached: false
            }]
        );
        // Forty more requests, on both instances: the table's cache answers.
        for i in 0..40 {
            let instance = if i % 2 == 0 { &second } else { &first };
            let (lookup, events) = look(instance, &user(&openid)).await;
            assert_eq!(lookup, hit(Ok(3)), "request {i}");
            assert_eq!(lookup.event(), events[0]);
        }
        let calls = rig.emu.calls();
        assert_eq!(
            (calls.getuserriskrank, calls.stable_token),
            (1, 1),
            "one WeChat call (and one access token) for 41 requests on two instances"
        );

        // WeChat re-rates the user: seen once the window is over.
        rig.emu.set_risk_rank(&openid, 1);
        rig.clock.advance(599_999);
        assert_eq!(look(&second, &user(&openid)).await.0, hit(Ok(3)));
        rig.clock.advance(1);
        assert_eq!(look(&second, &user(&openid)).await.0, asked(Ok(1)));
        assert_eq!(rig.emu.calls().getuserriskrank, 2);

        // The other WeChat scene is a rank of its own.
        let marketing = RiskRankRequest {
            scene: RiskScene::Marketing,
            ..user(&openid)
        };
        assert_eq!(look(&first, &marketing).await.0, asked(Ok(1)));
        assert_eq!(look(&second, &marketing).await.0, hit(Ok(1)));
        // A guard scene caching for a minute reads the same row for a minute.
        rig.clock.advance(59_999);
        assert_eq!(look_for(&first, &user(&openid), 60).await.0, hit(Ok(1)));
        assert_eq!(look(&first, &user(&openid)).await.0, hit(Ok(1)));
        rig.clock.advance(1);
        assert_eq!(look_for(&first, &user(&openid), 60).await.0, asked(Ok(1)));
        assert_eq!(rig.emu.calls().getuserriskrank, 4);

        // The guard's way: the row read beside its counters, then handed in.
        let counters = ["guard|ip|signup|203.0.113.7".to_owned()];
        let windows = GuardWindows::at(rig.clock.now_ms(), Some(600), 900);
        let (counts, row) = rig
            .store
            .counts_with_risk_rank(&counters, &windows, 0, &openid)
            .await
            .unwrap();
        assert_eq!(
            counts,
            [GuardTally::Counted {
                requests: 0,
                failures: 0
            }]
        );
        let mut events = Events::default();
        let lookup = second
            .rank_from(&user(&openid), CACHE_SECONDS, row, &mut events)
            .await;
        assert_eq!(lookup, hit(Ok(1)));
        // A user WeChat has nothing against: rank 0, the calm majority.
        let calm = rig.emu.openid_for("calm");
        assert_eq!(look(&second, &user(&calm)).await.0, asked(Ok(0)));
        assert_eq!(rig.emu.calls().getuserriskrank, 5);
        assert_eq!(rig.emu.calls().stable_token, 1);
    }

    pub async fn every_failure_is_an_answer_without_a_rank_cached_for_a_minute(
        store: Arc<dyn Store>,
    ) {
        let rig = WxRig::new(store).await;
        let ranks = instance(&rig).with_budget(DEFAULT_BUDGET);

        // No access token to be had (stable_token refused).
        rig.emu.fail_stable_token(&[40164]);
        let (lookup, events) = look(&ranks, &user("o-no-token")).await;
        assert_eq!(lookup, asked(Err(RiskFailure::NoAccessToken)));
        assert_eq!(
            events,
            [Event::WxRiskFailed {
                failure: "NoAccessToken",
                cached: false
            }]
        );
        assert_eq!(rig.emu.calls().getuserriskrank, 0);

        let cases = [
            ("errcode-61010", RiskFailure::NotSeenLately),
            ("errcode--1", RiskFailure::Busy),
            ("errcode-48001", RiskFailure::NoPermission),
            ("errcode-40003", RiskFailure::InvalidOpenid),
            ("errcode-40129", RiskFailure::InvalidScene),
            ("errcode-43104", RiskFailure::AppidMismatch),
            ("errcode-44002", RiskFailure::EmptyParameter),
            ("errcode-47001", RiskFailure::MalformedParameter),
            ("errcode-9410009", RiskFailure::TestQuotaUsedUp),
            ("errcode-43302", RiskFailure::OtherErrcode),
            ("errcode-99999", RiskFailure::OtherErrcode),
            ("http-502", RiskFailure::HttpError),
            ("http-503", RiskFailure::HttpError),
            ("not-json", RiskFailure::NotJson),
            // Past the 800 ms budget.
            ("slow-5000", RiskFailure::TimedOut),
        ];
        for (i, (pattern, failure)) in cases.into_iter().enumerate() {
            let openid = format!("o-fail-{i}");
            rig.emu.set_risk_failure(&openid, Some(pattern)).unwrap();
            let before = rig.emu.calls().getuserriskrank;
            assert_eq!(
                look(&ranks, &user(&openid)).await.0,
                asked(Err(failure)),
                "{pattern}"
            );
            // Cached for a minute: no call, however many requests.
            for _ in 0..3 {
                assert_eq!(
                    look(&ranks, &user(&openid)).await.0,
                    hit(Err(failure)),
                    "{pattern}"
                );
            }
            assert_eq!(rig.emu.calls().getuserriskrank - before, 1, "{pattern}");
            // WeChat is back: seen a minute later.
            rig.emu.set_risk_failure(&openid, None).unwrap();
            rig.clock.advance(FAILURE_CACHE_MS - 1);
            assert_eq!(look(&ranks, &user(&openid)).await.0, hit(Err(failure)));
            rig.clock.advance(1);
            assert_eq!(
                look(&ranks, &user(&openid)).await.0,
                asked(Ok(0)),
                "{pattern}"
            );
        }

        // The emulator's own checks, as WeChat's: a malformed openid, a
        // malformed or empty client IP.
        let bad_openid = user("not an openid");
        let bad_ip = RiskRankRequest {
            client_ip: "not-an-ip",
            ..user("o-bad-ip")
        };
        let no_ip = RiskRankRequest {
            client_ip: "",
            ..user("o-no-ip")
        };
        for (query, failure) in [
            (bad_openid, RiskFailure::InvalidOpenid),
            (bad_ip, RiskFailure::MalformedParameter),
            (no_ip, RiskFailure::EmptyParameter),
        ] {
            assert_eq!(look(&ranks, &query).await.0, asked(Err(failure)));
        }
    }

    pub async fn a_stale_token_is_refreshed_once_and_the_call_retried(store: Arc<dyn Store>) {
        let rig = WxRig::new(store).await;
        let ranks = instance(&rig);
        assert_eq!(look(&ranks, &user("o-stale-1")).await.0, asked(Ok(0)));
        let first = rig.emu.calls();
        assert_eq!((first.stable_token, first.getuserriskrank), (1, 1));

        // Another back end force-refreshed: 40001, one force refresh, the
        // call again.
        rig.emu.revoke_access_tokens();
        assert_eq!(look(&ranks, &user("o-stale-2")).await.0, asked(Ok(0)));
        let after = rig.emu.calls();
        assert_eq!(after.stable_token - first.stable_token, 1, "refreshed once");
        assert_eq!(after.force_refresh, 1, "with force_refresh");
        assert_eq!(after.getuserriskrank - first.getuserriskrank, 2);

        // An expired token (42001), past WeChat's 30 s between force
        // refreshes: the same.
        rig.clock.advance(31_000);
        rig.emu.expire_access_tokens();
        assert_eq!(look(&ranks, &user("o-stale-3")).await.0, asked(Ok(0)));
        let expired = rig.emu.calls();
        assert_eq!(expired.stable_token - after.stable_token, 1);
        assert_eq!(expired.getuserriskrank - after.getuserriskrank, 2);

        // Refused again within 30 s of the last force refresh: no second
        // refresh, no retry, no rank (the counters decide).
        rig.emu.revoke_access_tokens();
        assert_eq!(
            look(&ranks, &user("o-stale-4")).await.0,
            asked(Err(RiskFailure::NoAccessToken))
        );
        let refused = rig.emu.calls();
        assert_eq!(refused.stable_token, expired.stable_token);
        assert_eq!(refused.getuserriskrank - expired.getuserriskrank, 1);
    }

    pub async fn the_phone_number_and_client_ip_are_sent(store: Arc<dyn Store>) {
        let rig = WxRig::new(store).await;
        let ranks = instance(&rig);
        let openid = rig.emu.openid_for("with-phone");
        let with_phone = RiskRankRequest {
            scene: RiskScene::Marketing,
            mobile_no: Some("13800138000"),
            ..user(&openid)
        };
        assert_eq!(look(&ranks, &with_phone).await.0, asked(Ok(0)));
        let without = RiskRankRequest {
            client_ip: "2001:db8::7",
            ..user(&openid)
        };
        assert_eq!(look(&ranks, &without).await.0, asked(Ok(0)));
        assert_eq!(
            rig.emu.risk_requests(),
            [
                RiskRequest {
                    openid: openid.clone(),
                    scene: 1,
                    client_ip: IP.into(),
                    mobile_no: Some("13800138000".into()),
                    is_test: false,
                },
                RiskRequest {
                    openid,
                    scene: 0,
                    client_ip: "2001:db8::7".into(),
                    mobile_no: None,
                    is_test: false,
                },
            ]
        );
    }
}

gatehouse_e2e::on_both_stores!(
    one_wechat_call_per_user_and_window_across_instances,
    every_failure_is_an_answer_without_a_rank_cached_for_a_minute,
    a_stale_token_is_refreshed_once_and_the_call_retried,
    the_phone_number_and_client_ip_are_sent,
);

/// No access token, AppSecret, openid or phone number in any log line,
/// whatever the outcome; 48001 logged once per instance as the
/// configuration error it is.
#[tokio::test(flavor = "current_thread")]
async fn no_token_openid_or_phone_number_in_any_log_line() {
    let sink = gatehouse_e2e::capture_logs();
    let rig = WxRig::new(Arc::new(gatehouse::store::memory::MemoryStore::new())).await;
    let ranks = instance(&rig).with_budget(DEFAULT_BUDGET);
    let mut openids = Vec::new();
    for (i, failure) in [
        None,
        Some("errcode-48001"),
        Some("errcode-48001"),
        Some("errcode-61010"),
        Some("errcode--1"),
        Some("http-502"),
        Some("not-json"),
        Some("slow-5000"),
    ]
    .into_iter()
    .enumerate()
    {
        let openid = rig.emu.openid_for(&format!("logged-{i}"));
        if let Some(failure) = failure {
            rig.emu.set_risk_failure(&openid, Some(failure)).unwrap();
        }
        let with_phone = RiskRankRequest {
            mobile_no: Some("13912345678"),
            ..user(&openid)
        };
        let (lookup, _) = look(&ranks, &with_phone).await;
        assert!(!format!("{lookup:?}").contains(&openid));
        openids.push(openid);
    }
    rig.emu.revoke_access_tokens();
    let refreshed = rig.emu.openid_for("logged-refresh");
    assert_eq!(look(&ranks, &user(&refreshed)).await.0, asked(Ok(0)));
    openids.push(refreshed);

    let logs = sink.text();
    assert!(
        logs.contains("getuserriskrank"),
        "the logs were captured: {logs}"
    );
    assert_eq!(
        logs.matches("has not been granted the API").count(),
        1,
        "48001 is logged once per instance: {logs}"
    );
    let issued = rig.emu.access_tokens_issued();
    assert!(issued.len() >= 2, "tokens were handed out: {issued:?}");
    for needle in [SECRET.to_owned(), "13912345678".to_owned()]
        .into_iter()
        .chain(issued)
        .chain(openids)
    {
        assert!(!logs.contains(&needle), "{needle} in logs:\n{logs}");
    }
}

/// The status and text of the emulator's answer to `request`.
async fn answer_of(request: reqwest::RequestBuilder) -> (u16, String) {
    let resp = request.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The emulator's `getuserriskrank` and `/emulator/riskRank` over HTTP, as
/// a page or another language's back end meets them: WeChat's checks in
/// order, a user's rank and failures set by user name, the calls counted.
#[tokio::test]
async fn the_emulator_keeps_wechat_s_contract() {
    use serde_json::{Value, json};
    let emu = WechatEmulator::start(APPID, SECRET).await.unwrap();
    let base = emu.base_url();
    let http = reqwest::Client::new();
    let (_, token) = answer_of(
        http.post(format!("{base}/cgi-bin/stable_token"))
            .json(&json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET})),
    )
    .await;
    let token = serde_json::from_str::<Value>(&token).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ask = |token: String, body: Value| {
        let url = format!("{base}/wxa/getuserriskrank?access_token={token}");
        answer_of(http.post(url).json(&body))
    };
    let errcode = |text: &str| serde_json::from_str::<Value>(text).unwrap()["errcode"].clone();
    let alice = emu.openid_for("alice");
    let good = json!({"appid": APPID, "openid": alice, "scene": 0, "client_ip": IP});
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let cases = [
        (String::new(), good.clone(), 41001),
        ("stale".to_owned(), good.clone(), 40001),
        (token.clone(), with("appid", json!("wxother")), 43104),
        (token.clone(), with("appid", Value::Null), 44002),
        (
            token.clone(),
            with("openid", json!("no spaces please")),
            40003,
        ),
        (token.clone(), with("scene", json!(2)), 40129),
        (token.clone(), with("scene", json!("0")), 47001),
        (token.clone(), with("client_ip", json!("")), 44002),
        (token.clone(), with("client_ip", json!("localhost")), 47001),
        (
            token.clone(),
            with("mobile_no", json!(13800138000u64)),
            47001,
        ),
        (token.clone(), with("is_test", json!("yes")), 47001),
        (token.clone(), with("is_test", json!(true)), 0),
    ];
    for (token, body, want) in cases {
        let (status, text) = ask(token, body.clone()).await;
        assert_eq!(
            (status, errcode(&text)),
            (200, json!(want)),
            "{body}: {text}"
        );
    }
    let (_, wrong_method) =
        answer_of(http.get(format!("{base}/wxa/getuserriskrank?access_token={token}"))).await;
    assert_eq!(errcode(&wrong_method), json!(43302));

    // A page sets alice's rank by her user name, then a failure, then
    // clears it.
    let set = |body: Value| answer_of(http.post(format!("{base}/emulator/riskRank")).json(&body));
    let (status, text) = set(json!({"user": "alice", "rank": 3})).await;
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        answer,
        json!({"openid": alice, "rank": 3, "failing": false})
    );
    let (_, text) = ask(token.clone(), good.clone()).await;
    let rated: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (&rated["errcode"], &rated["risk_rank"], &rated["errmsg"]),
        (&json!(0), &json!(3), &json!("getuserriskrank succ"))
    );
    assert!(rated["unoin_id"].is_u64(), "WeChat's spelling: {rated}");
    set(json!({"openid": alice, "fail": "errcode-61010"})).await;
    assert_eq!(
        errcode(&ask(token.clone(), good.clone()).await.1),
        json!(61010)
    );
    set(json!({"openid": alice, "fail": "http-503"})).await;
    assert_eq!(ask(token.clone(), good.clone()).await.0, 503);
    set(json!({"openid": alice, "fail": null})).await;
    assert_eq!(errcode(&ask(token.clone(), good.clone()).await.1), json!(0));
    for bad in [
        json!({"user": "alice", "rank": 5}),
        json!({"user": "alice", "fail": "sometimes"}),
        json!({"user": "alice", "openid": alice}),
        json!({"rank": 1}),
        json!({"openid": "bad openid", "rank": 1}),
        json!({"user": "alice", "rnak": 1}),
    ] {
        assert_eq!(set(bad.clone()).await.0, 400, "{bad}");
    }
    let (_, calls) = answer_of(http.get(format!("{base}/emulator/calls"))).await;
    let calls: Value = serde_json::from_str(&calls).unwrap();
    assert_eq!(calls["getuserriskrank"], json!(16), "{calls}");
    assert_eq!(
        emu.risk_requests().len(),
        5,
        "the ones that passed the checks"
    );
}

/// DynamoDB only: what a lookup costs in requests and write units, warm
/// (the access token in memory). The figures of `docs/wechat.md` come from here:
/// `cargo test -p gatehouse-e2e --test e2e -- wx_risk::costs --nocapture`.
mod costs {
    use super::*;

    #[tokio::test]
    async fn requests_and_write_units_of_a_lookup() {
        let (store, requests, units) = crate::write_units::metered_store().await;
        let rig = WxRig::new(Arc::new(store)).await;
        let ranks = instance(&rig);
        // Warm the instance's access token.
        look(&ranks, &user("o-warm")).await;
        requests.take();
        units.take();

        let counters = [
            "guard|ip|signup|203.0.113.7".to_owned(),
            "guard|dev|signup|d1".to_owned(),
        ];
        let windows = GuardWindows::at(rig.clock.now_ms(), Some(600), 900);
        let mut rows = Vec::new();
        let measure = |what: &'static str, rows: &mut Vec<_>| {
            let billed = units.take();
            rows.push((what, requests.take(), billed.read, billed.write));
        };
        // The guard's read alone, as today: the baseline.
        rig.store.read_guard(&counters, &windows).await.unwrap();
        measure("counters alone (today's read)", &mut rows);
        // A miss: the rank row read with the counters, WeChat, one write.
        let costly = rig.emu.openid_for("costly");
        let (_, row) = rig
            .store
            .counts_with_risk_rank(&counters, &windows, 0, &costly)
            .await
            .unwrap();
        let mut events = Events::default();
        let miss = ranks
            .rank_from(&user(&costly), CACHE_SECONDS, row, &mut events)
            .await;
        assert_eq!(miss, asked(Ok(0)));
        measure("counters and rank, a miss", &mut rows);
        // Hits: no request beyond the read the counters need anyway.
        let calls = rig.emu.calls().getuserriskrank;
        for _ in 0..10 {
            let (_, row) = rig
                .store
                .counts_with_risk_rank(&counters, &windows, 0, &costly)
                .await
                .unwrap();
            let lookup = ranks
                .rank_from(&user(&costly), CACHE_SECONDS, row, &mut events)
                .await;
            assert_eq!(lookup, hit(Ok(0)));
        }
        assert_eq!(rig.emu.calls().getuserriskrank, calls);
        measure("counters and rank, 10 hits", &mut rows);
        // Read alone (no counters to share a request with): one GetItem.
        assert_eq!(look(&ranks, &user(&costly)).await.0, hit(Ok(0)));
        measure("rank alone, a hit", &mut rows);

        for (what, requests, read, write) in &rows {
            println!(
                "{what}: {requests} DynamoDB requests, {read} read units, {write} write units"
            );
        }
        let figures: Vec<(usize, f64)> = rows.iter().map(|r| (r.1, r.3)).collect();
        assert_eq!(
            figures,
            [(1, 0.0), (2, 1.0), (10, 0.0), (1, 0.0)],
            "{rows:?}"
        );
    }
}
