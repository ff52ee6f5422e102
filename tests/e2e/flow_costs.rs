//! The flow-costs command (`cargo run --release -p gatehouse-e2e --bin
//! flow-costs`, `docs/guard.md`, "The short way": "What it costs") on a few flows: each way
//! runs to an admission on both stores, and what it counts holds (issue 22
//! point 5: the short way is two HTTP requests and at most 5 WRU with the
//! default limits, at most $5.00 per million flows). Times are printed by
//! the command, never held here.

use gatehouse_e2e::flow_costs::{self, Backend, Guarding, Kind, Measured, Plan, Way};

fn find(all: &[Measured], guarding: Guarding, kind: Kind, way: Way) -> &Measured {
    all.iter()
        .find(|m| {
            m.backend == Backend::DynamoLocal
                && m.guarding == guarding
                && m.kind == kind
                && m.way == way
        })
        .expect("measured")
}

#[tokio::test]
async fn the_short_way_against_the_pass_way_on_both_stores() {
    let plan = Plan {
        flows: 3,
        warmup: 0,
        ..Plan::default()
    };
    let all = flow_costs::run(plan).await.unwrap();
    eprintln!("{}", flow_costs::report(&all));
    assert_eq!(all.len(), 2 * 2 * 2 * 2, "backends × guard × kinds × ways");
    assert!(all.iter().all(|m| m.flows == 3 && m.latencies.len() == 3));

    // (guard, kind, way): HTTP requests, Lambda invocations, DynamoDB
    // requests, WRU.
    let want = [
        (Guarding::Off, Kind::Image, Way::Short, (2.0, 2.0, 4.0, 4.0)),
        (Guarding::Off, Kind::Image, Way::Pass, (3.0, 3.0, 6.0, 9.0)),
        (
            Guarding::Off,
            Kind::Ticket,
            Way::Short,
            (1.0, 1.0, 2.0, 2.0),
        ),
        (Guarding::Off, Kind::Ticket, Way::Pass, (2.0, 2.0, 4.0, 4.0)),
        (Guarding::On, Kind::Image, Way::Short, (2.0, 2.0, 6.0, 6.0)),
        (Guarding::On, Kind::Image, Way::Pass, (3.0, 3.0, 8.0, 11.0)),
        (Guarding::On, Kind::Ticket, Way::Short, (1.0, 1.0, 4.0, 4.0)),
        (Guarding::On, Kind::Ticket, Way::Pass, (2.0, 2.0, 6.0, 6.0)),
    ];
    for (guarding, kind, way, counts) in want {
        let m = find(&all, guarding, kind, way);
        let units = m.units.unwrap();
        assert_eq!(
            (
                m.http_requests,
                m.lambda_invocations,
                m.dynamo_requests.unwrap(),
                units.write
            ),
            counts,
            "{guarding:?} {kind:?} {way:?}"
        );
        assert_eq!(units.read, 0.0);
    }
    let short = find(&all, Guarding::Off, Kind::Image, Way::Short);
    let pass = find(&all, Guarding::Off, Kind::Image, Way::Pass);
    assert!(short.units.unwrap().write <= 5.0, "create 3, door ≤ 2");
    let dollars = |m: &Measured| m.dollars_per_million(m.units.unwrap());
    // In cents, as the command prints them (the GB-second price has more
    // digits than a cent).
    let cents = |m: &Measured| (dollars(m) * 100.0).round();
    assert!(cents(short) <= 500.0, "{}", dollars(short));
    assert_eq!(cents(pass), 936.0, "{}", dollars(pass));
}
