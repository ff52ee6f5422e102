//! The guard on both stores: levels that rise with wrong answers, rejected
//! tickets and reported failures and fall when their window ends (a manual
//! clock, no sleeps); what a door answers at each level and for each kind of
//! pass; and a pass that opens one door once however many requests race.

use std::sync::Arc;

use gatehouse::ApiError;
use gatehouse::captcha::service::CaptchaTarget;
use gatehouse::captcha::{CaptchaService, Renderer};
use gatehouse::clock::Clock;
use gatehouse::guard::{Admission, Client, Door, Guard, Level, PassRule};
use gatehouse::metrics::Events;
use gatehouse::options::ServiceOptions;
use gatehouse::ratelimit::RateLimitConfig;
use gatehouse::settings::Settings;
use gatehouse::store::Store;
use gatehouse::tencent::service::{PresentedTicket, TicketVerified};
use gatehouse::tencent::{TencentConfig, TicketService};
use gatehouse_e2e::{NOW, captcha, device, scene};
use gatehouse_local::tencent_emulator::{EmulatorConfig, TencentEmulator};

type Shared = Arc<dyn Store>;

/// `demo`: adaptive, an image captcha from 2 failures, a ticket from 4, in
/// windows of a minute. `quiet`: the same without Tencent. `lenient`: the
/// same as `demo`, admitting with a degraded pass every ticket Tencent could
/// not vouch for. `open`: off.
const CONFIG: &str = r#"{"rateLimit": {"enabled": false}, "scene": {
    "demo": {"guard": {"mode": "adaptive", "imageAfterFailures": 2,
                       "tencentAfterFailures": 4, "failureWindowSeconds": 60}},
    "quiet": {"guard": {"mode": "adaptive", "imageAfterFailures": 2,
                        "tencentAfterFailures": 4, "failureWindowSeconds": 60},
              "tencent": {"enabled": false}},
    "lenient": {"guard": {"mode": "adaptive", "imageAfterFailures": 2,
                          "tencentAfterFailures": 4, "failureWindowSeconds": 60},
                "tencent": {"disasterTicket": "admit", "code21": "admit",
                            "code26": "admit", "unreachable": "admit"}}}}"#;

const IP: &str = "203.0.113.50";

struct Rig {
    store: Shared,
    clock: Clock,
    guard: Guard,
    captchas: CaptchaService,
    tickets: TicketService,
    _tencent: TencentEmulator,
}

async fn rig(store: Shared) -> Rig {
    // The windows of the manual clock start on a minute, so a test knows
    // when its window ends.
    let start = (*NOW).div_euclid(60_000) * 60_000;
    let clock = Clock::manual(start);
    let settings = Settings::from_json(CONFIG).unwrap();
    let tencent = TencentEmulator::start_with(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        EmulatorConfig {
            secret_id: "AKIDguard".into(),
            secret_key: "guard-key".into(),
            captcha_app_id: 190000001,
            app_secret_key: "guard-app-key".into(),
            clock: clock.clone(),
        },
    )
    .await
    .unwrap();
    let tencent_config = TencentConfig::from_lookup(|key| {
        Some(match key {
            "TENCENT_SECRET_ID" => "AKIDguard".into(),
            "TENCENT_SECRET_KEY" => "guard-key".into(),
            "CAPTCHA_APP_ID" => "190000001".into(),
            "CAPTCHA_APP_SECRET_KEY" => "guard-app-key".into(),
            "TENCENT_CAPTCHA_ENDPOINT" => tencent.base_url(),
            _ => return None,
        })
    })
    .unwrap();
    let options = ServiceOptions::new(settings.rate_limits.clone()).with_clock(clock.clone());
    // Tickets at the default limits, as ever: a few tickets a window.
    let ticket_options = ServiceOptions::new(RateLimitConfig::default()).with_clock(clock.clone());
    Rig {
        guard: Guard::new(settings.guard.clone(), store.clone(), &options),
        tickets: TicketService::new(
            tencent_config,
            settings.ticket_settings(),
            store.clone(),
            &ticket_options,
        )
        .unwrap(),
        captchas: CaptchaService::new(
            settings.captcha_settings(),
            Renderer::builtin(),
            store.clone(),
            &options,
        ),
        store,
        clock,
        _tencent: tencent,
    }
}

fn client(device_id: &str) -> Client {
    Client {
        ip: Some(IP.into()),
        device: Some(device(device_id)),
        openid: None,
        phone_number: None,
    }
}

impl Rig {
    /// The door of `scene_name` under `rule`, checked with `pass` for `who`.
    async fn open(
        &self,
        scene_name: &str,
        rule: PassRule,
        pass: Option<&str>,
        who: &Client,
    ) -> Result<Admission, ApiError> {
        self.guard
            .check(&Door::new(scene(scene_name), rule), pass, None, who)
            .await
    }

    /// `times` failures of `who` reported by a back end.
    async fn report_failures(&self, scene_name: &str, who: &Client, times: usize) {
        for _ in 0..times {
            self.guard.report(&scene(scene_name), who).await.unwrap();
        }
    }

    async fn level(&self, scene_name: &str, device_id: &str) -> Level {
        self.guard
            .level(&scene(scene_name), &client(device_id))
            .await
            .unwrap()
    }

    /// A captcha of `device_id` in `scene_name` answered `answer` (its code
    /// is `abcd`): a pass when right.
    async fn answer(
        &self,
        scene_name: &str,
        device_id: &str,
        answer: &str,
    ) -> Result<String, ApiError> {
        let now = self.clock.now_ms();
        self.store
            .create_captcha(&gatehouse::store::CaptchaRecord {
                created_date: now,
                expired_date: now + 60_000,
                ..captcha(scene_name, device_id, "abcd")
            })
            .await
            .unwrap();
        let target = CaptchaTarget {
            scene: scene(scene_name),
            device: device(device_id),
            ip: Some(IP.into()),
        };
        self.captchas
            .verify(&target, answer)
            .await
            .map(|issued| issued.pass_token)
    }

    /// A Tencent ticket for `scene_name` (the emulator's forced patterns
    /// decide the verdict): a pass when it passes.
    async fn ticket(
        &self,
        scene_name: &str,
        device_id: &str,
        ticket: &str,
    ) -> Result<String, ApiError> {
        self.ticket_from(scene_name, Some(device_id), ticket)
            .await
            .map(|verified| verified.pass.pass_token)
    }

    /// As [`Rig::ticket`] from no device, with the whole answer.
    async fn ticket_answer(
        &self,
        scene_name: &str,
        ticket: &str,
    ) -> Result<TicketVerified, ApiError> {
        self.ticket_from(scene_name, None, ticket).await
    }

    async fn ticket_from(
        &self,
        scene_name: &str,
        device_id: Option<&str>,
        ticket: &str,
    ) -> Result<TicketVerified, ApiError> {
        let presented = PresentedTicket {
            ticket: ticket.into(),
            randstr: Some("@r".into()),
            scene: scene(scene_name),
            user_ip: IP.into(),
            device: device_id.map(device),
        };
        self.tickets
            .verify(&presented, &mut Events::default())
            .await
    }
}

mod cases {
    use super::*;

    pub async fn levels_rise_with_failures_and_fall_when_the_window_ends(store: Shared) {
        let rig = rig(store).await;
        assert_eq!(rig.level("demo", "d1").await, Level::None);
        // A wrong answer counts for the device and its IP.
        assert_eq!(
            rig.answer("demo", "d1", "zzzz").await,
            Err(ApiError::VerifyFail)
        );
        assert_eq!(rig.level("demo", "d1").await, Level::None, "1 failure");
        // A rejected ticket counts too (CaptchaCode 7 from the emulator).
        assert!(matches!(
            rig.ticket("demo", "d1", "force-7").await,
            Err(ApiError::TicketRejected { .. })
        ));
        assert_eq!(rig.level("demo", "d1").await, Level::Image, "2 failures");
        // Another device behind the same IP shares the IP's count.
        assert_eq!(rig.level("demo", "d2").await, Level::Image);
        // A back end's reports count, and answer the new level.
        let demo = scene("demo");
        assert_eq!(
            rig.guard.report(&demo, &client("d1")).await.unwrap(),
            Level::Image
        );
        assert_eq!(
            rig.guard.report(&demo, &client("d1")).await.unwrap(),
            Level::Tencent,
            "4 failures"
        );
        assert_eq!(rig.level("demo", "d1").await, Level::Tencent);
        // Other scenes are untouched; without Tencent a scene stops at image.
        assert_eq!(rig.level("open", "d1").await, Level::None);
        for _ in 0..5 {
            rig.guard
                .report(&scene("quiet"), &client("d1"))
                .await
                .unwrap();
        }
        assert_eq!(rig.level("quiet", "d1").await, Level::Image);
        // Nothing lowers a count but the end of its window.
        rig.clock.advance(59_999);
        assert_eq!(rig.level("demo", "d1").await, Level::Tencent);
        rig.clock.advance(1);
        assert_eq!(rig.level("demo", "d1").await, Level::None);
        assert_eq!(rig.level("quiet", "d1").await, Level::None);
    }

    pub async fn doors_answer_by_level_and_kind_of_pass(store: Shared) {
        let rig = rig(store).await;
        let (demo, me) = (scene("demo"), client("d1"));
        // Level none: an auto door opens without a pass, an always door
        // asks for an image captcha.
        let free = rig.open("demo", PassRule::Auto, None, &me).await.unwrap();
        assert_eq!((free.level, free.pass), (Level::None, None));
        assert_eq!(
            rig.open("demo", PassRule::Always, None, &me).await,
            Err(ApiError::GuardCaptchaRequired)
        );
        assert_eq!(
            rig.guard
                .check(
                    &Door::new(demo.clone(), PassRule::Always),
                    Some("junk"),
                    None,
                    &me
                )
                .await,
            Err(ApiError::GuardPassInvalid)
        );
        rig.report_failures("demo", &me, 2).await;
        assert_eq!(
            rig.open("demo", PassRule::Auto, None, &me).await,
            Err(ApiError::GuardCaptchaRequired)
        );
        let pass = rig.answer("demo", "d1", "abcd").await.unwrap();
        let admitted = rig
            .open("demo", PassRule::Auto, Some(&pass), &me)
            .await
            .unwrap();
        assert_eq!(admitted.level, Level::Image);
        assert_eq!(admitted.pass.unwrap().device, Some(device("d1")));
        // At the tencent level a captcha pass is refused and left unspent;
        // a ticket pass opens the door.
        rig.report_failures("demo", &me, 2).await;
        assert_eq!(
            rig.open("demo", PassRule::Auto, None, &me).await,
            Err(ApiError::GuardTencentRequired)
        );
        let captcha_pass = rig.answer("demo", "d1", "abcd").await.unwrap();
        assert_eq!(
            rig.open("demo", PassRule::Auto, Some(&captcha_pass), &me)
                .await,
            Err(ApiError::GuardPassInvalid)
        );
        let ticket_pass = rig.ticket("demo", "d1", "force-pass").await.unwrap();
        let admitted = rig
            .open("demo", PassRule::Auto, Some(&ticket_pass), &me)
            .await
            .unwrap();
        let redeemed = admitted.pass.unwrap();
        assert_eq!(redeemed.kind.as_str(), "ticket");
        assert_eq!(redeemed.ip, IP);
        assert_eq!(redeemed.evil_level, Some(0));
        // Once the failures' window ends, the unspent captcha pass still
        // opens an image-level door; no pass opens a door twice.
        rig.clock.advance(60_000);
        rig.report_failures("demo", &me, 2).await;
        assert!(
            rig.open("demo", PassRule::Auto, Some(&captcha_pass), &me)
                .await
                .is_ok()
        );
        assert_eq!(
            rig.open("demo", PassRule::Auto, Some(&ticket_pass), &me)
                .await,
            Err(ApiError::GuardPassInvalid)
        );
        // A pass of one scene opens no door of another.
        let other = rig.answer("login", "d1", "abcd").await.unwrap();
        assert_eq!(
            rig.open("demo", PassRule::Always, Some(&other), &me).await,
            Err(ApiError::GuardPassInvalid)
        );
    }

    pub async fn a_pass_opens_one_door_under_32_racing_checks(store: Shared) {
        let rig = Arc::new(rig(store).await);
        let pass = rig.answer("demo", "racer", "abcd").await.unwrap();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (rig, pass) = (rig.clone(), pass.clone());
                tokio::spawn(async move {
                    rig.guard
                        .check(
                            &Door::new(scene("demo"), PassRule::Always),
                            Some(&pass),
                            None,
                            &client("racer"),
                        )
                        .await
                })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => admitted += 1,
                Err(err) => assert_eq!(err, ApiError::GuardPassInvalid),
            }
        }
        assert_eq!(admitted, 1);
    }

    pub async fn tencent_policy_rejects_by_default_and_admits_degraded_where_configured(
        store: Shared,
    ) {
        let rig = rig(store).await;
        // `demo` keeps the default, reject: today's errCodes, and each
        // rejected ticket counts as a failure.
        let disaster = "trerror_1001_190000001_1700000000";
        match rig.ticket_answer("demo", disaster).await {
            Err(ApiError::TicketRejected { captcha_code, .. }) => assert_eq!(captcha_code, 21),
            other => panic!("a disaster ticket is refused by default: {other:?}"),
        }
        for (ticket, code) in [("force-21", 21), ("force-26", 26)] {
            match rig.ticket_answer("demo", ticket).await {
                Err(ApiError::TicketRejected { captcha_code, .. }) => {
                    assert_eq!(captcha_code, code)
                }
                other => panic!("{ticket}: {other:?}"),
            }
        }
        for unreachable in ["force-error", "force-status-503"] {
            assert_eq!(
                rig.ticket_answer("demo", unreachable).await,
                Err(ApiError::TicketUpstreamError),
                "{unreachable}"
            );
        }
        assert_eq!(
            rig.level("demo", "anyone").await,
            Level::Image,
            "three rejected tickets counted"
        );
        // `lenient` admits each with a pass marked degraded, which the
        // door hands on; a normal pass is not degraded.
        let anyone = Client {
            ip: Some(IP.into()),
            device: None,
            openid: None,
            phone_number: None,
        };
        for ticket in [
            "trerror_1001_190000001_1700000001",
            "terror_1001_190000001_1700000001",
            "force-21~l",
            "force-26~l",
            "force-error~l",
            "force-status-503~l",
        ] {
            let verified = rig
                .ticket_answer("lenient", ticket)
                .await
                .unwrap_or_else(|err| panic!("{ticket}: {err:?}"));
            assert!(verified.degraded, "{ticket}");
            let admitted = rig
                .open(
                    "lenient",
                    PassRule::Always,
                    Some(&verified.pass.pass_token),
                    &anyone,
                )
                .await
                .unwrap();
            let pass = admitted.pass.expect("a pass was redeemed");
            assert!(pass.degraded, "{ticket}");
            assert_eq!(pass.ip, IP);
        }
        let fine = rig.ticket_answer("lenient", "force-pass~l").await.unwrap();
        assert!(!fine.degraded);
        let admitted = rig
            .open(
                "lenient",
                PassRule::Always,
                Some(&fine.pass.pass_token),
                &anyone,
            )
            .await
            .unwrap();
        assert!(!admitted.pass.unwrap().degraded);
        // Misconfiguration is never admitted: a bad key is not Tencent
        // being unreachable; other codes are still refused.
        assert_eq!(
            rig.ticket_answer("lenient", "force-error-AuthFailure.SignatureFailure")
                .await,
            Err(ApiError::TicketUpstreamError)
        );
        assert!(matches!(
            rig.ticket_answer("lenient", "force-15~l").await,
            Err(ApiError::TicketRejected {
                captcha_code: 15,
                ..
            })
        ));
        // A disaster ticket is claimed like any other: once.
        assert_eq!(
            rig.ticket_answer("lenient", "trerror_1001_190000001_1700000001")
                .await,
            Err(ApiError::TicketReused)
        );
    }

    pub async fn ipv6_clients_share_the_failures_of_their_64(store: Shared) {
        let rig = rig(store).await;
        let demo = scene("demo");
        let at = |ip: &str| Client {
            ip: Some(ip.into()),
            device: None,
            openid: None,
            phone_number: None,
        };
        rig.guard
            .report(&demo, &at("2001:db8:a:b::1"))
            .await
            .unwrap();
        assert_eq!(
            rig.guard
                .report(&demo, &at("2001:db8:a:b:ffff::9"))
                .await
                .unwrap(),
            Level::Image,
            "two failures from one /64"
        );
        assert_eq!(
            rig.guard
                .level(&demo, &at("2001:db8:a:b:1:2:3:4"))
                .await
                .unwrap(),
            Level::Image
        );
        assert_eq!(
            rig.guard
                .level(&demo, &at("2001:db8:a:c::1"))
                .await
                .unwrap(),
            Level::None,
            "the next /64 is someone else"
        );
        // IPv4 stays whole; an IPv4-mapped address is that IPv4 address.
        rig.guard.report(&demo, &at("198.51.100.20")).await.unwrap();
        rig.guard
            .report(&demo, &at("::ffff:198.51.100.20"))
            .await
            .unwrap();
        assert_eq!(
            rig.guard.level(&demo, &at("198.51.100.20")).await.unwrap(),
            Level::Image
        );
        assert_eq!(
            rig.guard.level(&demo, &at("198.51.100.21")).await.unwrap(),
            Level::None
        );
    }
}

gatehouse_e2e::on_both_stores!(
    tencent_policy_rejects_by_default_and_admits_degraded_where_configured,
    ipv6_clients_share_the_failures_of_their_64,
    levels_rise_with_failures_and_fall_when_the_window_ends,
    doors_answer_by_level_and_kind_of_pass,
    a_pass_opens_one_door_under_32_racing_checks,
);
