//! What one guarded request costs on DynamoDB Local, at each level and with
//! WeChat's rank (the "DynamoDB cost" figures of `docs/performance.md`):
//! `cargo test -p gatehouse-e2e --test e2e -- guard_costs --nocapture`.
//!
//! A door counts the request in each of its client's rows (one
//! `UpdateItem`, one write unit each: the IP's and the device's, the
//! openid's when known) and redeems a pass where the level asks for one
//! (one more). Reading a rank beside the counting is one strongly
//! consistent `GetItem`; a miss adds a WeChat call and a `PutItem`.

use std::sync::Arc;

use gatehouse::captcha::service::CaptchaTarget;
use gatehouse::captcha::{CaptchaService, Renderer};
use gatehouse::clock::Clock;
use gatehouse::guard::{Client, Door, Guard, Level, PassRule, Proof};
use gatehouse::metrics::Events;
use gatehouse::options::ServiceOptions;
use gatehouse::settings::Settings;
use gatehouse::store::Store;
use gatehouse::wechat::risk::RiskRanks;
use gatehouse_e2e::{NOW, captcha, device, scene};

use crate::wechat_rig::WxRig;
use crate::write_units::metered_table;

/// Defaults, but a device asks for an image pass from its 3rd request and
/// a ticket from its 5th, so that every level is reached quickly.
const CONFIG: &str = r#"{"rateLimit": {"enabled": false}, "scene": {
    "signup": {"guard": {"mode": "adaptive", "imageAfterRequests": 2,
                         "tencentAfterRequests": 5,
                         "wxRisk": {"scene": "register"}}},
    "still": {"guard": {"mode": "adaptive", "imageAfterRequests": 0,
                        "tencentAfterRequests": 0}}}}"#;

#[tokio::test]
async fn write_units_of_a_guarded_request_at_each_level() {
    let (table, requests, units) = metered_table().await;
    let store: Arc<dyn Store> = Arc::new(table.store());
    let rig = WxRig::new(store.clone()).await;
    let clock = Clock::manual(*NOW);
    let settings = Settings::from_json(CONFIG).unwrap();
    let options = ServiceOptions::new(settings.rate_limits.clone()).with_clock(clock.clone());
    let ranks = RiskRanks::new(&rig.config, store.clone(), &options).unwrap();
    let guard =
        Guard::new(settings.guard.clone(), store.clone(), &options).with_risk_ranks(Some(ranks));
    let captchas = CaptchaService::new(
        settings.captcha_settings(),
        Renderer::builtin(),
        store.clone(),
        &options,
    );
    let ip = "203.0.113.60";
    let pass = |device_id: &'static str| {
        let (store, captchas) = (store.clone(), &captchas);
        async move {
            store
                .create_captcha(&captcha("signup", device_id, "abcd"))
                .await
                .unwrap();
            let target = CaptchaTarget {
                scene: scene("signup"),
                device: device(device_id),
                ip: Some(ip.into()),
            };
            captchas.verify(&target, "abcd").await.unwrap().pass_token
        }
    };
    // Warm the instance's access token, as a running one has it.
    let warm = Client {
        ip: Some(ip.into()),
        openid: Some(rig.emu.openid_for("costs-warm")),
        ..Client::default()
    };
    let mut events = Events::default();
    let signup = Door::new(scene("signup"), PassRule::Auto);
    let warmed = guard.admit(&signup, None, None, &warm, &mut events);
    assert!(warmed.await.is_ok());
    let mut rows: Vec<(&str, Level, usize, f64, f64)> = Vec::new();
    let mut door =
        async |what: &'static str, scene_name: &str, client: &Client, token: Option<&str>| {
            requests.take();
            units.take();
            let admission = guard
                .admit(
                    &Door::new(scene(scene_name), PassRule::Auto),
                    token.map(Proof::Pass),
                    None,
                    client,
                    &mut Events::default(),
                )
                .await
                .unwrap_or_else(|refusal| panic!("{what}: {refusal:?}"));
            let billed = units.take();
            rows.push((
                what,
                admission.level,
                requests.take(),
                billed.write,
                billed.read,
            ));
        };
    let anonymous = Client {
        ip: Some(ip.into()),
        device: Some(device("costs-1")),
        ..Client::default()
    };
    door("level none (IP, device)", "signup", &anonymous, None).await;
    door("level none (IP, device)", "signup", &anonymous, None).await;
    for _ in 0..2 {
        let token = pass("costs-1").await;
        door(
            "level image, with its pass",
            "signup",
            &anonymous,
            Some(&token),
        )
        .await;
    }
    // A ticket pass is redeemed as a captcha pass is: one UpdateItem.
    let signed_in = Client {
        openid: Some(rig.emu.openid_for("costs-user")),
        device: Some(device("costs-2")),
        ..anonymous.clone()
    };
    door(
        "level none, wxRisk miss (IP, device, openid)",
        "signup",
        &signed_in,
        None,
    )
    .await;
    door(
        "level none, wxRisk hit (IP, device, openid)",
        "signup",
        &signed_in,
        None,
    )
    .await;
    door(
        "scene counting no request (a read)",
        "still",
        &anonymous,
        None,
    )
    .await;

    for (what, level, requests, write, read) in &rows {
        println!("{what:<48} {level:?}: {requests} requests, {write} WRU, {read} RRU");
    }
    let figures: Vec<(Level, usize, f64)> = rows.iter().map(|r| (r.1, r.2, r.3)).collect();
    assert_eq!(
        figures,
        [
            (Level::None, 2, 2.0),
            (Level::None, 2, 2.0),
            (Level::Image, 3, 3.0),
            (Level::Image, 3, 3.0),
            (Level::None, 5, 4.0),
            (Level::None, 4, 3.0),
            (Level::None, 1, 0.0),
        ]
    );
}
