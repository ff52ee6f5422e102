//! Velocity (SPEC §11, issue 21.1, 21.8): every request a door sees counts
//! for the client's IP (IPv6 by /64), device and openid; past a threshold
//! the next request needs an image pass, later a ticket pass; an IP's
//! thresholds are `ipRequestFactor` times a device's. On both stores, and
//! a simulated campaign under the default configuration whose table is
//! `docs/guard.md`'s ("Velocity"):
//! `cargo test -p gatehouse-e2e --test e2e -- velocity::campaign --nocapture`.

use std::sync::Arc;

use gatehouse::clock::Clock;
use gatehouse::guard::{Client, Door, Guard, Level, PassRule, Reason};
use gatehouse::metrics::Events;
use gatehouse::options::ServiceOptions;
use gatehouse::settings::Settings;
use gatehouse::store::Store;
use gatehouse::store::memory::MemoryStore;
use gatehouse_e2e::{NOW, device, scene};

type Shared = Arc<dyn Store>;

/// The clock starts on a request window (ten minutes) so a test knows when
/// the window ends.
fn clock() -> Clock {
    Clock::manual((*NOW).div_euclid(600_000) * 600_000)
}

fn guard(store: Shared, config: &str, clock: &Clock) -> Guard {
    let settings = Settings::from_json(config).unwrap();
    let options = ServiceOptions::new(settings.rate_limits.clone()).with_clock(clock.clone());
    Guard::new(settings.guard, store, &options)
}

fn client(ip: &str, device_id: Option<&str>, openid: Option<&str>) -> Client {
    Client {
        ip: Some(ip.into()),
        device: device_id.map(device),
        openid: openid.map(str::to_owned),
        phone_number: None,
    }
}

/// The level a request of `client` at an `auto` door of `scene_name` is
/// asked for (the request counted, no pass sent), and its reasons.
async fn door(guard: &Guard, scene_name: &str, client: &Client) -> (Level, Vec<&'static str>) {
    let standing = match guard
        .admit(
            &Door::new(scene(scene_name), PassRule::Auto),
            None,
            None,
            client,
            &mut Events::default(),
        )
        .await
    {
        Ok(admission) => (admission.level, admission.reasons),
        Err(refusal) => (refusal.standing.level, refusal.standing.reasons),
    };
    (standing.0, standing.1.iter().map(Reason::as_str).collect())
}

mod cases {
    use super::*;
    use Level::{Image, Tencent};
    /// No pass.
    const NO: Level = Level::None;

    /// imageAfterRequests 3, tencentAfterRequests 5, an IP's thresholds
    /// twice a device's.
    const CONFIG: &str = r#"{"rateLimit": {"enabled": false}, "scene": {
        "signup": {"guard": {"mode": "adaptive", "imageAfterRequests": 3,
                             "tencentAfterRequests": 5, "ipRequestFactor": 2,
                             "requestWindowSeconds": 600}}}}"#;

    pub async fn a_device_passes_its_first_requests_then_needs_an_image_then_a_ticket(
        store: Shared,
    ) {
        let clock = clock();
        let guard = guard(store, CONFIG, &clock);
        let bot = client("203.0.113.1", Some("dev-1"), None);
        // What the next request will need, before it is sent: nothing yet.
        let status = guard.standing(&scene("signup"), &bot).await.unwrap();
        assert_eq!(status.level, NO);
        let mut levels = Vec::new();
        for _ in 0..6 {
            levels.push(door(&guard, "signup", &bot).await.0);
        }
        assert_eq!(levels, [NO, NO, NO, Image, Tencent, Tencent]);
        assert_eq!(
            door(&guard, "signup", &bot).await,
            (Tencent, vec!["requests"])
        );
        // Status reads without counting, and tells the next request's level.
        for _ in 0..3 {
            let status = guard.standing(&scene("signup"), &bot).await.unwrap();
            assert_eq!(
                (status.level, status.reasons.joined()),
                (Tencent, "requests".into())
            );
        }
        // A new window: the counts start over.
        clock.advance(600_000);
        assert_eq!(door(&guard, "signup", &bot).await, (NO, vec![]));
    }

    pub async fn an_ip_counts_every_device_behind_it_at_its_own_thresholds(store: Shared) {
        let clock = clock();
        let guard = guard(store, CONFIG, &clock);
        // Six devices, one request each: the IP's image threshold (6) not
        // passed; the seventh is past it; the tenth at its ticket one.
        let mut levels = Vec::new();
        for n in 0..10 {
            let device_id = format!("dev-{n}");
            let user = client("203.0.113.2", Some(&device_id), None);
            levels.push(door(&guard, "signup", &user).await.0);
        }
        assert_eq!(
            levels,
            [NO, NO, NO, NO, NO, NO, Image, Image, Image, Tencent]
        );
        // Rotating addresses within one /64 is one IP.
        let guard = super::guard(Arc::new(MemoryStore::new()), CONFIG, &clock);
        let mut levels = Vec::new();
        for n in 0..7 {
            let ip = format!("2001:db8:7:8::{n:x}");
            let device_id = format!("dev-{n}");
            levels.push(
                door(&guard, "signup", &client(&ip, Some(&device_id), None))
                    .await
                    .0,
            );
        }
        assert_eq!(levels.last(), Some(&Image));
    }

    pub async fn an_openid_is_counted_whatever_device_and_ip_it_comes_from(store: Shared) {
        let clock = clock();
        let guard = guard(store, CONFIG, &clock);
        let mut levels = Vec::new();
        for n in 0..5 {
            let (ip, device_id) = (format!("198.51.100.{n}"), format!("dev-{n}"));
            let user = client(&ip, Some(&device_id), Some("o-hopper"));
            levels.push(door(&guard, "signup", &user).await.0);
        }
        assert_eq!(levels, [NO, NO, NO, Image, Tencent]);
        // The session door learns the openid late and counts it apart.
        let mut events = Events::default();
        let by_openid = guard
            .count_openid(&scene("signup"), "o-hopper", &mut events)
            .await
            .unwrap();
        assert_eq!(by_openid.counts.user_requests, 6);
    }
}

gatehouse_e2e::on_both_stores!(
    a_device_passes_its_first_requests_then_needs_an_image_then_a_ticket,
    an_ip_counts_every_device_behind_it_at_its_own_thresholds,
    an_openid_is_counted_whatever_device_and_ip_it_comes_from,
);

/// The default configuration (imageAfterRequests 10, tencentAfterRequests
/// 30, requestWindowSeconds 600, ipRequestFactor 50) of an adaptive scene.
const DEFAULTS: &str = r#"{"scene": {
    "signup": {"guard": {"mode": "adaptive"}},
    "login": {"guard": {"mode": "adaptive"}}}}"#;

/// How many of a campaign's requests in one window were asked for
/// nothing, an image pass and a ticket pass.
#[derive(Debug, Default, PartialEq, Eq)]
struct Row {
    none: usize,
    image: usize,
    tencent: usize,
}

impl Row {
    fn add(&mut self, level: Level) {
        match level {
            Level::None => self.none += 1,
            Level::Image => self.image += 1,
            Level::Tencent => self.tencent += 1,
        }
    }
}

/// `requests` requests, the `n`-th from `who(n)`, at the `auto` door of
/// `scene_name`, all in one window (a bot with a perfect solver presents
/// whatever is asked: what it is asked is what counts).
async fn campaign(
    guard: &Guard,
    scene_name: &str,
    requests: usize,
    who: impl Fn(usize) -> Client,
) -> Row {
    let mut row = Row::default();
    for n in 0..requests {
        row.add(door(guard, scene_name, &who(n)).await.0);
    }
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_under_the_default_configuration() {
    let clock = clock();
    let fresh = || guard(Arc::new(MemoryStore::new()), DEFAULTS, &clock);
    let mut table = Vec::new();

    // A bot at one IP with rotating devices and a perfect solver.
    let rotating_devices = campaign(&fresh(), "signup", 2000, |n| {
        client("203.0.113.9", Some(&format!("bot-{n}")), None)
    })
    .await;
    table.push((
        "bot, one IPv4, a new device each request",
        2000,
        rotating_devices,
    ));

    // A bot rotating IPs within one /64 (and devices).
    let rotating_v6 = campaign(&fresh(), "signup", 2000, |n| {
        let ip = format!("2001:db8:1:2:{:x}:{:x}::1", n / 65536, n % 65536);
        client(&ip, Some(&format!("bot-{n}")), None)
    })
    .await;
    table.push((
        "bot, a new IPv6 in one /64 and device each request",
        2000,
        rotating_v6,
    ));

    // One device hammering from one IP.
    let hammer = campaign(&fresh(), "signup", 2000, |_| {
        client("203.0.113.10", Some("hammer"), None)
    })
    .await;
    table.push(("bot, one device and IP", 2000, hammer));

    // A carrier-grade NAT: 450 honest users behind one IP, one sign-up
    // each; then one device behind it hammering.
    let nat = fresh();
    let honest = campaign(&nat, "signup", 450, |n| {
        client("100.64.0.1", Some(&format!("user-{n}")), None)
    })
    .await;
    table.push(("450 users behind one NAT IP, one request each", 450, honest));
    let hammer_behind_nat = campaign(&nat, "signup", 40, |_| {
        client("100.64.0.1", Some("nat-hammer"), None)
    })
    .await;
    table.push(("then one device behind that IP", 40, hammer_behind_nat));

    // A real user: signs up once, logs in three times.
    let person = fresh();
    let me = || client("198.51.100.77", Some("phone-1"), Some("o-person"));
    let mut real = campaign(&person, "signup", 1, |_| me()).await;
    let logins = campaign(&person, "login", 3, |_| me()).await;
    real.none += logins.none;
    real.image += logins.image;
    real.tencent += logins.tencent;
    table.push(("a person: one sign-up, three log-ins", 4, real));

    println!("| client (one 10-minute window) | requests | no pass | image pass | ticket pass |");
    println!("|---|---:|---:|---:|---:|");
    for (who, requests, row) in &table {
        println!(
            "| {who} | {requests} | {} | {} | {} |",
            row.none, row.image, row.tencent
        );
    }
    let counts: Vec<(usize, usize, usize)> = table
        .iter()
        .map(|(_, _, row)| (row.none, row.image, row.tencent))
        .collect();
    assert_eq!(
        counts,
        [
            // The IP's thresholds: 10 × 50 and 30 × 50.
            (500, 999, 501),
            (500, 999, 501),
            // A device's: 10 and 30.
            (10, 19, 1971),
            // No honest user behind the NAT meets a captcha …
            (450, 0, 0),
            // … the hammering device does (the IP, at 490, is not past 500).
            (10, 19, 11),
            (4, 0, 0),
        ]
    );
}
