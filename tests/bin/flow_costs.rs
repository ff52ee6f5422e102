//! `cargo run --release -p gatehouse-e2e --bin flow-costs [-- --flows N]`:
//! a guarded flow the short way (the answer or the ticket at the door)
//! against the pass way (verify, then the pass at the door), on the dev
//! server with the embedded store and with DynamoDB Local: HTTP requests,
//! Lambda invocations, DynamoDB requests, write units, dollars per million
//! flows at list prices, and the whole flow's p50 and p99 latency. See
//! `gatehouse_e2e::flow_costs` and `docs/guard.md` ("The short way",
//! "What it costs").

use std::process::ExitCode;

use gatehouse_e2e::flow_costs::{self, Plan};

#[tokio::main]
async fn main() -> ExitCode {
    let mut plan = Plan::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let number = |value: Option<String>| value.and_then(|v| v.parse::<usize>().ok());
        match arg.as_str() {
            "--flows" => match number(args.next()) {
                Some(n) if n > 0 => plan.flows = n,
                _ => return usage(),
            },
            "--warmup" => match number(args.next()) {
                Some(n) => plan.warmup = n,
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    eprintln!(
        "flow-costs: {} flows of each kind and way (after {} untimed), {} build",
        plan.flows,
        plan.warmup,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    match flow_costs::run(plan).await {
        Ok(measured) => {
            println!("{}", flow_costs::report(&measured));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("flow-costs: {err}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: flow-costs [--flows N] [--warmup N]");
    ExitCode::from(2)
}
