//! What the doors ask of a pass, on both stores (issue 21 points 3, 4 and
//! 7): a refused pass counts as a failure of the scene; a malformed device
//! is refused, never taken for none, and spends nothing; a route may bind
//! its passes to the device and the IP (IPv6: the /64) that earned them;
//! `POST /guard/check` with an `idempotencyKey` answers a retry with the
//! same admission, and refuses the pass under another key.

use std::sync::Arc;

use gatehouse::ApiError;
use gatehouse::clock::Clock;
use gatehouse::guard::pass::PassToken;
use gatehouse::guard::{
    Authorizer, Client, Door, Guard, GuardRoutes, IdempotencyKey, Level, PassRule, authorize,
    routes,
};
use gatehouse::options::ServiceOptions;
use gatehouse::ratelimit::RateLimitConfig;
use gatehouse::settings::Settings;
use gatehouse::store::{PassKind, Store};
use gatehouse::wechat::SessionService;
use gatehouse_e2e::{NOW, authorizer_event, device, pass_grant, post_json, scene, status_and_json};
use serde_json::{Value, json};

type Shared = Arc<dyn Store>;

/// `demo`: an image captcha from 3 failures, a ticket from 6, in windows of
/// a minute.
const CONFIG: &str = r#"{"scene": {"demo": {"guard": {"mode": "adaptive",
    "imageAfterFailures": 3, "tencentAfterFailures": 6, "failureWindowSeconds": 60}}}}"#;
const IP: &str = "203.0.113.60";

struct Rig {
    store: Shared,
    guard: Guard,
}

fn rig(store: Shared) -> Rig {
    // The failures' window starts on a minute: none ends mid-test.
    let clock = Clock::manual((*NOW).div_euclid(60_000) * 60_000 + 1);
    let settings = Settings::from_json(CONFIG).unwrap();
    Rig {
        guard: Guard::new(
            settings.guard,
            store.clone(),
            &ServiceOptions::new(RateLimitConfig::disabled()).with_clock(clock),
        ),
        store,
    }
}

impl Rig {
    /// A pass of `kind` earned in `scene_name` with `device_id` from `ip`.
    async fn pass(
        &self,
        kind: PassKind,
        scene_name: &str,
        device_id: Option<&str>,
        ip: &str,
    ) -> String {
        let token = PassToken::issue(kind);
        let grant = pass_grant(&token, scene_name, device_id, ip);
        self.store.grant_pass(&grant).await.unwrap();
        token.encode()
    }

    async fn level(&self, client: &Client) -> Level {
        self.guard.level(&scene("demo"), client).await.unwrap()
    }

    /// `POST /guard/check` with `body`.
    async fn check(&self, body: Value) -> (u16, Value) {
        status_and_json(&routes::check(&self.guard, post_json(&body, IP)).await)
    }
}

fn client(device_id: &str) -> Client {
    Client {
        ip: Some(IP.into()),
        device: Some(device(device_id)),
        ..Client::default()
    }
}

mod cases {
    use super::*;

    pub async fn refused_passes_count_as_failures_of_the_scene(store: Shared) {
        let rig = rig(store);
        let door = Door::new(scene("demo"), PassRule::Always);
        let me = client("d1");
        let refuse = |token: String| {
            let (rig, door, me) = (&rig, &door, &me);
            async move {
                assert_eq!(
                    rig.guard.check(door, Some(&token), None, me).await,
                    Err(ApiError::GuardPassInvalid)
                );
            }
        };
        // Not a token, and a well-formed one nobody granted.
        refuse("made-up".into()).await;
        refuse(PassToken::issue(PassKind::Captcha).encode()).await;
        assert_eq!(rig.level(&me).await, Level::None, "two failures");
        // Of another scene: the third failure.
        let elsewhere = rig.pass(PassKind::Captcha, "login", Some("d1"), IP).await;
        refuse(elsewhere).await;
        assert_eq!(rig.level(&me).await, Level::Image);
        // Used, and of another device: counted likewise, for the IP too.
        let spent = rig.pass(PassKind::Captcha, "demo", Some("d1"), IP).await;
        assert!(
            rig.guard
                .check(&door, Some(&spent), None, &me)
                .await
                .is_ok()
        );
        refuse(spent).await;
        let theirs = rig.pass(PassKind::Captcha, "demo", Some("d2"), IP).await;
        refuse(theirs).await;
        assert_eq!(rig.level(&client("d3")).await, Level::Image, "by IP");
        let ticket = rig.pass(PassKind::Ticket, "demo", None, IP).await;
        refuse(PassToken::issue(PassKind::Ticket).encode()).await;
        assert_eq!(rig.level(&me).await, Level::Tencent, "six failures");
        // A captcha pass where a ticket will do is refused unspent and not
        // counted: it is a real pass at the wrong level.
        let captcha = rig.pass(PassKind::Captcha, "demo", Some("d1"), IP).await;
        assert_eq!(
            rig.guard.check(&door, Some(&captcha), None, &me).await,
            Err(ApiError::GuardPassInvalid)
        );
        assert!(
            rig.guard
                .check(&door, Some(&ticket), None, &me)
                .await
                .is_ok()
        );
    }

    pub async fn a_malformed_device_is_refused_and_spends_nothing(store: Shared) {
        let rig = rig(store);
        let pass = rig.pass(PassKind::Captcha, "other", Some("d1"), IP).await;
        let long = "d".repeat(129);
        for bad in ["Y Z", long.as_str(), "", "dév"] {
            let body = json!({"scene": "other", "passToken": pass, "deviceId": bad});
            let (status, reply) = rig.check(body).await;
            assert_eq!(
                (status, reply["errCode"].as_str()),
                (400, Some("guard-invalid-device")),
                "{bad:?}: {reply}"
            );
        }
        // In the header (when the body names none) likewise, and on the
        // other guard routes.
        let with_header = |path: &str, body: Option<Value>| {
            let mut req = post_json(&body.unwrap_or(json!({})), IP);
            *req.uri_mut() = path.parse().unwrap();
            req.headers_mut()
                .insert("x-device-id", http::HeaderValue::from_static("a b"));
            req
        };
        let answers = [
            routes::check(
                &rig.guard,
                with_header(
                    "/guard/check",
                    Some(json!({"scene": "other", "passToken": pass})),
                ),
            )
            .await,
            routes::report(
                &rig.guard,
                with_header("/guard/report", Some(json!({"scene": "other"}))),
            )
            .await,
            routes::status(
                &rig.guard,
                None,
                with_header("/guard/status?scene=other", None),
            )
            .await,
        ];
        for answer in answers {
            let (status, reply) = status_and_json(&answer);
            assert_eq!(
                reply["errCode"], "guard-invalid-device",
                "{status}: {reply}"
            );
        }
        // None of it spent the pass.
        let body = json!({"scene": "other", "passToken": pass, "deviceId": "d1"});
        let (status, reply) = rig.check(body).await;
        assert_eq!(status, 200, "{reply}");
    }

    pub async fn bound_routes_want_the_earning_device_and_network(store: Shared) {
        let rig = rig(store.clone());
        let routes = GuardRoutes::from_json(
            r#"{"POST /pay": {"scene": "pay", "pass": "always", "bindDevice": true},
                "POST /vote": {"scene": "pay", "pass": "always", "bindIp": true}}"#,
        )
        .unwrap();
        let sessions =
            SessionService::new(store, &ServiceOptions::new(RateLimitConfig::disabled()));
        let auth = Authorizer::new(sessions, rig.guard.clone(), routes);
        let at = |route: &str, ip: &str, pass: &str, device: Option<&str>| {
            let mut headers = vec![("x-gatehouse-pass", pass.to_owned())];
            if let Some(device) = device {
                headers.push(("x-device-id", device.to_owned()));
            }
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            authorizer_event(route, ip, &headers)
        };
        let admitted = async |event| authorize(&auth, event).await.is_authorized;

        // bindDevice: another device, or none, is denied; the pass stays
        // good for its own.
        let pass = rig.pass(PassKind::Captcha, "pay", Some("d1"), IP).await;
        assert!(!admitted(at("POST /pay", IP, &pass, Some("d2"))).await);
        assert!(!admitted(at("POST /pay", IP, &pass, None)).await);
        assert!(admitted(at("POST /pay", "198.51.100.1", &pass, Some("d1"))).await);
        // A ticket pass earned without a device opens no such door.
        let ticket = rig.pass(PassKind::Ticket, "pay", None, IP).await;
        assert!(!admitted(at("POST /pay", IP, &ticket, Some("d1"))).await);

        // bindIp: another address is denied, any device is fine; IPv6 by
        // its /64.
        assert!(!admitted(at("POST /vote", "198.51.100.1", &ticket, None)).await);
        assert!(admitted(at("POST /vote", IP, &ticket, None)).await);
        let v6 = rig
            .pass(PassKind::Captcha, "pay", Some("d1"), "2001:db8:7:8::1")
            .await;
        assert!(!admitted(at("POST /vote", "2001:db8:7:9::1", &v6, Some("d1"))).await);
        assert!(admitted(at("POST /vote", "2001:db8:7:8:aaaa::2", &v6, Some("d1"))).await);
    }

    pub async fn an_idempotent_check_answers_its_retry_the_same(store: Shared) {
        let rig = rig(store);
        let pass = rig.pass(PassKind::Captcha, "other", Some("d1"), IP).await;
        let keyed = |key: &str| {
            json!({"scene": "other", "passToken": pass, "deviceId": "d1",
                   "idempotencyKey": key})
        };
        // `other` has no guard of its own: level none, nothing spent.
        let (status, free) = rig.check(keyed("order-1")).await;
        assert_eq!((status, free.get("pass")), (200, None), "{free}");

        let door = Door::new(scene("other"), PassRule::Always);
        let key = IdempotencyKey::parse("order-1").unwrap();
        let first = rig
            .guard
            .check(&door, Some(&pass), Some(&key), &client("d1"))
            .await
            .unwrap();
        let again = rig
            .guard
            .check(&door, Some(&pass), Some(&key), &client("d1"))
            .await
            .unwrap();
        assert_eq!(first, again, "the retry answers the same admission");
        let other = IdempotencyKey::parse("order-2").unwrap();
        for key in [Some(&other), None] {
            assert_eq!(
                rig.guard
                    .check(&door, Some(&pass), key, &client("d1"))
                    .await,
                Err(ApiError::GuardPassInvalid)
            );
        }
        // Keys are checked: 1 to 64 of [A-Za-z0-9_-].
        for bad in ["", "a b", "ключ", &"k".repeat(65)] {
            let (status, reply) = rig.check(keyed(bad)).await;
            assert_eq!(
                (status, reply["errCode"].as_str()),
                (400, Some("invalid-request")),
                "{bad:?}: {reply}"
            );
        }
        let (status, _) = rig.check(keyed(&"k".repeat(64))).await;
        assert_eq!(status, 200);
    }

    /// Through the route, at a scene that asks for a pass: the answer of a
    /// retry is the first answer.
    pub async fn the_check_route_replays_an_admission(store: Shared) {
        let rig = rig(store);
        for _ in 0..3 {
            rig.guard
                .report(&scene("demo"), &client("d1"))
                .await
                .unwrap();
        }
        let pass = rig.pass(PassKind::Captcha, "demo", Some("d1"), IP).await;
        let body = |key: &str| {
            json!({"scene": "demo", "passToken": pass, "deviceId": "d1", "userIp": IP,
                   "idempotencyKey": key})
        };
        let (status, first) = rig.check(body("K-1")).await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(first["pass"]["deviceId"], "d1");
        let (status, again) = rig.check(body("K-1")).await;
        assert_eq!((status, &again), (200, &first));
        let (status, other) = rig.check(body("K-2")).await;
        assert_eq!(
            (status, other["errCode"].as_str()),
            (403, Some("guard-pass-invalid"))
        );
    }
}

gatehouse_e2e::on_both_stores!(
    refused_passes_count_as_failures_of_the_scene,
    a_malformed_device_is_refused_and_spends_nothing,
    bound_routes_want_the_earning_device_and_network,
    an_idempotent_check_answers_its_retry_the_same,
    the_check_route_replays_an_admission,
);
