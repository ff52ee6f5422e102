//! The conformance suite of the pass rows, on both stores (as
//! `store_conformance.rs`): a pass granted once, redeemed once however many
//! redemptions race, refused (and left unspent) when unknown, used, expired,
//! of another scene, device or IP, again under the same idempotency key;
//! and a device's verified pass that a new captcha for the device leaves
//! alone.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use gatehouse::captcha::service::CaptchaTarget;
use gatehouse::captcha::{CaptchaService, Renderer};
use gatehouse::clock::Clock;
use gatehouse::guard::pass::{PassToken, ip_net};
use gatehouse::guard::{Client, Door, Guard, PassRule};
use gatehouse::options::ServiceOptions;
use gatehouse::settings::Settings;
use gatehouse::store::{
    IssueMode, PassClaim, PassGrant, PassKind, Redemption, Store, VerifyOutcome,
};
use gatehouse_e2e::{NOW, captcha, device, pass_grant, scene};

type Shared = Arc<dyn Store>;

const IP: &str = "203.0.113.7";

/// A pass of `kind` granted now in `scene` (with `device`, from `ip`),
/// living five minutes.
async fn grant(
    store: &Shared,
    kind: PassKind,
    scene_name: &str,
    device_id: Option<&str>,
    ip: &str,
) -> PassToken {
    let token = PassToken::issue(kind);
    let pass = pass_grant(&token, scene_name, device_id, ip);
    store.grant_pass(&pass).await.unwrap();
    token
}

/// How a test presents a pass: the defaults of a door that binds nothing,
/// with no idempotency key, a moment after the grant.
#[derive(Clone, Copy)]
struct Presenting<'a> {
    scene: &'a str,
    device: Option<&'a str>,
    bind_device: bool,
    bind_ip: Option<&'a str>,
    key: Option<&'a str>,
    replay_only: bool,
    now_ms: i64,
}

fn at(scene: &str) -> Presenting<'_> {
    Presenting {
        scene,
        device: None,
        bind_device: false,
        bind_ip: None,
        key: None,
        replay_only: false,
        now_ms: *NOW + 1,
    }
}

async fn redeem(store: &Shared, token: &PassToken, how: Presenting<'_>) -> Redemption {
    let secret_hash = token.secret_hash();
    let scene = scene(how.scene);
    let device = how.device.map(device);
    let net = how.bind_ip.map(|ip| ip_net(Some(ip)).unwrap());
    store
        .redeem_pass(&PassClaim {
            kind: token.kind(),
            secret_hash: &secret_hash,
            scene: &scene,
            device: device.as_ref(),
            bind_device: how.bind_device,
            bind_ip_net: net.as_deref(),
            idempotency_key: how.key,
            replay_only: how.replay_only,
            now_ms: how.now_ms,
        })
        .await
        .unwrap()
}

fn redeemed(outcome: &Redemption) -> bool {
    matches!(outcome, Redemption::Redeemed(_))
}

mod cases {
    use super::*;

    pub async fn a_pass_redeems_once_under_32_racing_redemptions(store: Shared) {
        let token = grant(&store, PassKind::Captcha, "signup", Some("racer"), IP).await;
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (store, token) = (store.clone(), token.clone());
                tokio::spawn(async move {
                    let how = Presenting {
                        device: Some("racer"),
                        ..at("signup")
                    };
                    redeem(&store, &token, how).await
                })
            })
            .collect();
        let mut passes = Vec::new();
        let mut used = 0;
        for task in tasks {
            match task.await.unwrap() {
                Redemption::Redeemed(pass) => passes.push(pass),
                Redemption::Used => used += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((passes.len(), used), (1, 31), "exactly one of 32 redeems");
        let pass = &passes[0];
        assert_eq!(pass.kind, PassKind::Captcha);
        assert_eq!(pass.scene, scene("signup"));
        assert_eq!(pass.device, Some(device("racer")));
        assert_eq!(pass.ip, IP);
        assert_eq!((pass.evil_level, pass.degraded), (None, false));
        assert_eq!(pass.created_ms, *NOW);
    }

    pub async fn refused_passes_stay_unspent(store: Shared) {
        let token = grant(&store, PassKind::Captcha, "signup", Some("dev-1"), IP).await;
        let expired = Presenting {
            now_ms: *NOW + 300_000,
            ..at("signup")
        };
        assert_eq!(
            redeem(&store, &token, expired).await,
            Redemption::Expired,
            "expired even while its row exists"
        );
        assert_eq!(
            redeem(&store, &token, at("login")).await,
            Redemption::OtherScene
        );
        let stranger = Presenting {
            device: Some("dev-2"),
            ..at("signup")
        };
        assert_eq!(
            redeem(&store, &token, stranger).await,
            Redemption::OtherDevice
        );
        // Another secret, and the right secret claimed as another kind (its
        // row is under the captcha prefix), are unknown.
        let forged = PassToken::issue(PassKind::Captcha);
        assert_eq!(
            redeem(&store, &forged, at("signup")).await,
            Redemption::Unknown
        );
        let mut bytes = URL_SAFE_NO_PAD.decode(token.encode()).unwrap();
        bytes[0] = b't';
        let as_ticket = PassToken::parse(&URL_SAFE_NO_PAD.encode(bytes)).unwrap();
        assert_eq!(as_ticket.kind(), PassKind::Ticket);
        assert_eq!(
            redeem(&store, &as_ticket, at("signup")).await,
            Redemption::Unknown
        );
        // None of these spent it; a pass earned with a device fits a door
        // that names none.
        assert!(redeemed(&redeem(&store, &token, at("signup")).await));
        assert_eq!(redeem(&store, &token, at("signup")).await, Redemption::Used);
    }

    pub async fn a_ticket_pass_fits_any_device_and_says_what_tencent_said(store: Shared) {
        let token = grant(&store, PassKind::Ticket, "pay", None, "2001:db8::9").await;
        let how = Presenting {
            device: Some("any-device"),
            ..at("pay")
        };
        match redeem(&store, &token, how).await {
            Redemption::Redeemed(pass) => {
                assert_eq!(pass.kind, PassKind::Ticket);
                assert_eq!(pass.device, None);
                assert_eq!(pass.ip, "2001:db8::9", "the full IP, not its /64");
                assert_eq!(pass.evil_level, Some(0));
            }
            other => panic!("unexpected {other:?}"),
        }
        // A degraded one says so.
        let degraded = PassToken::issue(PassKind::Ticket);
        let pass = PassGrant {
            ip: None,
            ip_net: None,
            evil_level: None,
            degraded: true,
            ..pass_grant(&degraded, "pay", None, IP)
        };
        store.grant_pass(&pass).await.unwrap();
        match redeem(&store, &degraded, at("pay")).await {
            Redemption::Redeemed(redeemed) => {
                assert!(redeemed.degraded);
                assert_eq!((redeemed.evil_level, redeemed.ip.as_str()), (None, ""));
            }
            other => panic!("unexpected {other:?}"),
        }
        // A grant never replaces a row: the same key again is a fault.
        assert!(store.grant_pass(&pass).await.is_err());
    }

    pub async fn bound_doors_want_the_earning_device_and_network(store: Shared) {
        let token = grant(&store, PassKind::Captcha, "pay", Some("dev-1"), IP).await;
        let bound = Presenting {
            device: Some("dev-1"),
            bind_device: true,
            ..at("pay")
        };
        for (how, refusal) in [
            (
                Presenting {
                    device: Some("dev-2"),
                    ..bound
                },
                Redemption::OtherDevice,
            ),
            (
                Presenting {
                    device: None,
                    ..bound
                },
                Redemption::OtherDevice,
            ),
            (
                Presenting {
                    bind_ip: Some("203.0.113.8"),
                    ..bound
                },
                Redemption::OtherIp,
            ),
        ] {
            assert_eq!(redeem(&store, &token, how).await, refusal);
        }
        let same = Presenting {
            bind_ip: Some(IP),
            ..bound
        };
        assert!(redeemed(&redeem(&store, &token, same).await), "unspent");

        // A pass earned without a device opens no door that binds one.
        let ticket = grant(&store, PassKind::Ticket, "pay", None, IP).await;
        assert_eq!(
            redeem(&store, &ticket, bound).await,
            Redemption::OtherDevice
        );
        // An IPv6 pass opens a bound door from anywhere in its /64.
        let v6 = grant(
            &store,
            PassKind::Captcha,
            "pay",
            Some("dev-1"),
            "2001:db8:1:2::5",
        )
        .await;
        let next_net = Presenting {
            bind_ip: Some("2001:db8:1:3::5"),
            ..bound
        };
        assert_eq!(redeem(&store, &v6, next_net).await, Redemption::OtherIp);
        let same_net = Presenting {
            bind_ip: Some("2001:db8:1:2:ffff::1"),
            ..bound
        };
        assert!(redeemed(&redeem(&store, &v6, same_net).await));
    }

    pub async fn an_idempotency_key_redeems_again_and_no_other(store: Shared) {
        let token = grant(&store, PassKind::Captcha, "pay", Some("dev-1"), IP).await;
        let keyed = Presenting {
            key: Some("order-42"),
            ..at("pay")
        };
        let first = redeem(&store, &token, keyed).await;
        assert!(redeemed(&first));
        assert_eq!(
            redeem(&store, &token, keyed).await,
            first,
            "the same key: the same pass again"
        );
        let replay = Presenting {
            replay_only: true,
            ..keyed
        };
        assert_eq!(redeem(&store, &token, replay).await, first);
        for other in [
            Presenting {
                key: Some("order-43"),
                ..keyed
            },
            at("pay"),
        ] {
            assert_eq!(redeem(&store, &token, other).await, Redemption::Used);
        }
        let late = Presenting {
            now_ms: *NOW + 300_000,
            ..keyed
        };
        assert_eq!(
            redeem(&store, &token, late).await,
            Redemption::Expired,
            "within the pass's lifetime only"
        );
        // A replay never spends a pass that was not redeemed under its key.
        let fresh = grant(&store, PassKind::Captcha, "pay", Some("dev-1"), IP).await;
        assert_eq!(redeem(&store, &fresh, replay).await, Redemption::Unknown);
        assert!(redeemed(&redeem(&store, &fresh, at("pay")).await));
    }

    /// A right answer's pass is granted in the very write that judges the
    /// answer: of 32 answers racing (half right, each with a pass of its
    /// own at stake), exactly one passes and exactly its pass exists, and
    /// every wrong answer is counted once and grants nothing.
    pub async fn racing_answers_grant_exactly_one_pass(store: Shared) {
        store
            .create_captcha(&captcha("signup", "racer", "abcd"))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let right = i % 2 == 0;
                    let token = PassToken::issue(PassKind::Captcha);
                    let pass = pass_grant(&token, "signup", Some("racer"), IP);
                    let outcome = store
                        .verify_captcha_granting(
                            &scene("signup"),
                            &device("racer"),
                            if right { "abcd" } else { "dcba" },
                            *NOW + 5,
                            100,
                            Some(&pass),
                        )
                        .await
                        .unwrap();
                    (right, outcome, token)
                })
            })
            .collect();
        let (mut passes, mut refused, mut counted) = (Vec::new(), Vec::new(), Vec::new());
        for task in tasks {
            match task.await.unwrap() {
                (true, VerifyOutcome::Passed, token) => passes.push(token),
                (_, VerifyOutcome::NotPending, token) => refused.push(token),
                (false, VerifyOutcome::Wrong { attempts_left }, token) => {
                    counted.push(attempts_left);
                    refused.push(token);
                }
                (right, other, _) => panic!("an answer (right: {right}) came to {other:?}"),
            }
        }
        assert_eq!(passes.len(), 1, "exactly one right answer passes");
        assert!(redeemed(&redeem(&store, &passes[0], at("signup")).await));
        for token in &refused {
            assert_eq!(
                redeem(&store, token, at("signup")).await,
                Redemption::Unknown,
                "no answer that did not pass left a pass"
            );
        }
        counted.sort_unstable();
        let wrong = counted.len() as u32;
        assert_eq!(
            counted,
            (100 - wrong..100).collect::<Vec<_>>(),
            "every counted wrong answer counted once"
        );
    }

    /// A wrong answer, an answer to a used, voided, expired or missing
    /// captcha grant nothing; the right one grants its pass, as redeemable
    /// as any.
    pub async fn only_a_passing_answer_grants_its_pass(store: Shared) {
        let verify = |device_id: &'static str, answer: &'static str, now_ms: i64| {
            let store = store.clone();
            async move {
                let token = PassToken::issue(PassKind::Captcha);
                let pass = pass_grant(&token, "signup", Some(device_id), IP);
                let outcome = store
                    .verify_captcha_granting(
                        &scene("signup"),
                        &device(device_id),
                        answer,
                        now_ms,
                        2,
                        Some(&pass),
                    )
                    .await
                    .unwrap();
                (outcome, token)
            }
        };
        for device_id in ["one", "late"] {
            store
                .create_captcha(&captcha("signup", device_id, "abcd"))
                .await
                .unwrap();
        }
        let mut nothing = Vec::new();
        let (outcome, token) = verify("one", "zzzz", *NOW).await;
        assert_eq!(outcome, VerifyOutcome::Wrong { attempts_left: 1 });
        nothing.push(token);
        let (outcome, token) = verify("one", "abcd", *NOW).await;
        assert_eq!(outcome, VerifyOutcome::Passed);
        let found = redeem(&store, &token, at("signup")).await;
        let Redemption::Redeemed(pass) = found else {
            panic!("the right answer's pass: {found:?}");
        };
        assert_eq!(pass.device, Some(device("one")));
        assert_eq!(pass.kind, PassKind::Captcha);
        for (device_id, answer, now_ms, expected) in [
            ("one", "abcd", *NOW, VerifyOutcome::NotPending),
            ("nobody", "abcd", *NOW, VerifyOutcome::NotFound),
            ("late", "abcd", *NOW + 180_000, VerifyOutcome::Expired),
            ("late", "", *NOW, VerifyOutcome::Wrong { attempts_left: 1 }),
            ("late", "zzzz", *NOW, VerifyOutcome::Voided),
            ("late", "abcd", *NOW, VerifyOutcome::NotPending),
        ] {
            let (outcome, token) = verify(device_id, answer, now_ms).await;
            assert_eq!(outcome, expected, "{device_id} {answer:?}");
            nothing.push(token);
        }
        for token in &nothing {
            assert_eq!(
                redeem(&store, token, at("signup")).await,
                Redemption::Unknown
            );
        }
    }

    /// Issue 21 point 5: anyone who knows a device id may create or refresh
    /// a captcha for it, and that must not void the device's verified,
    /// unredeemed pass. The pass lives in a row of its own.
    pub async fn a_new_captcha_for_a_device_leaves_its_pass_valid(store: Shared) {
        let clock = Clock::manual(*NOW);
        let settings = Settings::from_json(r#"{"rateLimit": {"enabled": false}}"#).unwrap();
        let options = ServiceOptions::new(settings.rate_limits.clone()).with_clock(clock);
        let captchas = CaptchaService::new(
            settings.captcha_settings(),
            Renderer::builtin(),
            store.clone(),
            &options,
        );
        let guard = Guard::new(settings.guard.clone(), store.clone(), &options);
        let target = |ip: &str| CaptchaTarget {
            scene: scene("signup"),
            device: device("victim"),
            ip: Some(ip.to_owned()),
        };
        let size = Default::default();
        store
            .create_captcha(&captcha("signup", "victim", "abcd"))
            .await
            .unwrap();
        let pass = captchas.verify(&target(IP), "abcd").await.unwrap();
        // A stranger, from another IP, creates and refreshes the victim's
        // captcha.
        for mode in [IssueMode::Create, IssueMode::Refresh] {
            captchas
                .issue(mode, target("198.51.100.66"), size)
                .await
                .unwrap();
        }
        let victim = Client {
            ip: Some(IP.into()),
            device: Some(device("victim")),
            ..Client::default()
        };
        let admitted = guard
            .check(
                &Door::new(scene("signup"), PassRule::Always),
                Some(&pass.pass_token),
                None,
                &victim,
            )
            .await
            .expect("the verified pass survives the stranger's captchas");
        assert_eq!(admitted.pass.unwrap().device, Some(device("victim")));
    }
}

gatehouse_e2e::on_both_stores!(
    a_pass_redeems_once_under_32_racing_redemptions,
    refused_passes_stay_unspent,
    a_ticket_pass_fits_any_device_and_says_what_tencent_said,
    bound_doors_want_the_earning_device_and_network,
    an_idempotency_key_redeems_again_and_no_other,
    a_new_captcha_for_a_device_leaves_its_pass_valid,
    racing_answers_grant_exactly_one_pass,
    only_a_passing_answer_grants_its_pass,
);
