//! What a guarded flow costs, the short way (the challenge at the door,
//! SPEC §13) against the pass way (verify for a pass, then the door), on
//! the dev server over real HTTP: once on the embedded store and once on
//! DynamoDB Local, each flow from its own loopback address and device (so
//! that no rate limit or velocity counter of one flow meets another's).
//!
//! Per flow it counts the HTTP requests the client sends, the Lambda
//! invocations they would be in AWS (one per gatehouse route, one more for
//! the authorizer in front of the guarded route; the business route's own
//! function is left out, the same in both ways), and on DynamoDB Local the
//! DynamoDB requests and the units DynamoDB bills (see [`CapacityMeter`]);
//! it prices them at list prices ([`PRICES`]) and times the whole flow
//! (every request of it, in turn; the lookup of the answer, which stands
//! in for the person reading the image, is not timed).
//!
//! `cargo run --release -p gatehouse-e2e --bin flow-costs` (`docs/guard.md`,
//! "The short way": "What it costs"); `tests/e2e/flow_costs.rs` runs a few flows of each
//! and holds the counts, never the times.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use gatehouse::domain::{DeviceId, Scene};
use gatehouse::store::Store;
use gatehouse::store::memory::MemoryStore;
use gatehouse_local::emulators::Emulators;
use gatehouse_local::serve::Served;
use gatehouse_local::server::{self, App};
use serde_json::{Value, json};

use crate::capacity::{CapacityMeter, RequestCounter, Units};

/// us-east-1 list prices (on demand), in dollars.
pub struct Prices {
    /// Per million write request units.
    pub wru: f64,
    /// Per million read request units.
    pub rru: f64,
    /// Per million Lambda requests (arm64).
    pub lambda_request: f64,
    /// Per GB-second of Lambda (arm64).
    pub lambda_gb_second: f64,
    /// Per million HTTP API requests (the first 300 million a month).
    pub http_api: f64,
}

/// The prices the figures use (`docs/performance.md`, "DynamoDB cost").
pub const PRICES: Prices = Prices {
    wru: 0.625,
    rru: 0.125,
    lambda_request: 0.20,
    lambda_gb_second: 0.000_013_333_4,
    http_api: 1.00,
};

/// A stated Lambda duration (not measured in AWS): 20 ms for one DynamoDB
/// round trip in-region and our own code, 5 ms for each further round
/// trip, and a stated 50 ms for a call to Tencent's API.
const ONE_ROUND_TRIP_MS: f64 = 20.0;
const MORE_ROUND_TRIP_MS: f64 = 5.0;
const TENCENT_CALL_MS: f64 = 50.0;

/// The scene every flow runs in, and the route it guards.
pub const SCENE: &str = "signup";
pub const GUARDED: &str = "/demo/guarded";

/// What a flow proves itself with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An image captcha: create, then the answer.
    Image,
    /// A Tencent ticket (solved in Tencent's own widget, not our request).
    Ticket,
}

/// How the proof reaches the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// The answer or the ticket at the door itself (`X-Gatehouse-Captcha`,
    /// `X-Gatehouse-Ticket`): no verify, no pass.
    Short,
    /// Verify for a pass, then the pass at the door (`X-Gatehouse-Pass`).
    Pass,
}

impl Way {
    pub fn name(self) -> &'static str {
        match self {
            Way::Short => "short",
            Way::Pass => "pass",
        }
    }
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Ticket => "ticket",
        }
    }
}

/// Where the dev server keeps its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    DynamoLocal,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::DynamoLocal => "DynamoDB Local",
        }
    }
}

/// The scene's guard: off (the route's `pass: always` asks for the
/// challenge), or on (`mode: always`: the door also counts each request of
/// the IP and the device, velocity's rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarding {
    Off,
    On,
}

impl Guarding {
    pub fn name(self) -> &'static str {
        match self {
            Guarding::Off => "guard off, route pass: always",
            Guarding::On => "guard mode: always (velocity rows)",
        }
    }

    fn captcha_config(self) -> String {
        match self {
            Guarding::Off => json!({"scene": {SCENE: {}}}),
            Guarding::On => json!({"scene": {SCENE: {"guard": {"mode": "always"}}}}),
        }
        .to_string()
    }
}

/// One step of a flow, as a Lambda would bill it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Step {
    /// The function's memory (template.yaml), in MB.
    memory_mb: f64,
    /// Its stated duration, in ms.
    ms: f64,
}

/// What one kind of flow, one way, on one backend came to.
#[derive(Debug, Clone)]
pub struct Measured {
    pub backend: Backend,
    pub guarding: Guarding,
    pub kind: Kind,
    pub way: Way,
    pub flows: usize,
    /// Per flow.
    pub http_requests: f64,
    pub lambda_invocations: f64,
    /// Per flow, on DynamoDB Local only.
    pub dynamo_requests: Option<f64>,
    pub units: Option<Units>,
    /// Lambda GB-seconds per flow, from the stated durations.
    pub gb_seconds: f64,
    /// Whole-flow latencies, sorted.
    pub latencies: Vec<Duration>,
}

impl Measured {
    /// Dollars per million flows (DynamoDB from `units`, else none).
    pub fn dollars_per_million(&self, units: Units) -> f64 {
        units.write * PRICES.wru
            + units.read * PRICES.rru
            + self.lambda_invocations * PRICES.lambda_request
            + self.gb_seconds * PRICES.lambda_gb_second * 1e6
            + self.http_requests * PRICES.http_api
    }

    /// The `p`-th percentile (0-100) of the flow latencies, nearest rank.
    pub fn percentile(&self, p: f64) -> Duration {
        let n = self.latencies.len();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.latencies[rank.clamp(1, n) - 1]
    }
}

/// The dev server on one backend, with what a flow needs to answer its
/// challenges and what it meters.
struct Rig {
    guarding: Guarding,
    served: Served,
    emulators: Emulators,
    answers: Answers,
    meter: Option<(RequestCounter, CapacityMeter)>,
}

enum Answers {
    Memory(Arc<MemoryStore>),
    Table {
        client: aws_sdk_dynamodb::Client,
        name: String,
    },
}

impl Answers {
    /// The stored answer of the captcha of `device` (the person reading the
    /// image); on DynamoDB Local a read of a client that is not metered.
    async fn of(&self, device: &str) -> Result<String, String> {
        let scene = Scene::parse(SCENE).map_err(|e| e.to_string())?;
        let device = DeviceId::parse(device).map_err(|e| e.to_string())?;
        match self {
            Answers::Memory(store) => store
                .captcha(SCENE, device.as_str())
                .map(|record| record.code)
                .ok_or_else(|| "no captcha stored".to_owned()),
            Answers::Table { client, name } => {
                let key = gatehouse::store::captcha_key(&scene, &device);
                let item = client
                    .get_item()
                    .table_name(name)
                    .key("pk", AttributeValue::S(key))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))?
                    .item
                    .ok_or("no captcha stored")?;
                let code = item.get("code").and_then(|v| v.as_s().ok());
                code.cloned()
                    .ok_or_else(|| "a captcha row without code".into())
            }
        }
    }
}

async fn rig(backend: Backend, guarding: Guarding) -> Result<Rig, String> {
    let (store, answers, meter): (Arc<dyn Store>, _, _) = match backend {
        Backend::Embedded => {
            let store = Arc::new(MemoryStore::new());
            (store.clone(), Answers::Memory(store), None)
        }
        Backend::DynamoLocal => {
            let local = crate::dynamodb_local().await;
            let (requests, units) = (RequestCounter::default(), CapacityMeter::default());
            let client = aws_sdk_dynamodb::Client::from_conf(
                local
                    .config_builder()
                    .interceptor(requests.clone())
                    .interceptor(units.clone())
                    .build(),
            );
            let table = local.fresh_table_with(client).await;
            let answers = Answers::Table {
                client: local.client(),
                name: table.name.clone(),
            };
            (Arc::new(table.store()), answers, Some((requests, units)))
        }
    };
    let config = guarding.captcha_config();
    let routes = json!({format!("POST {GUARDED}"): {"scene": SCENE, "pass": "always"}}).to_string();
    let (app, emulators) = App::from_lookup(store, move |key| match key {
        "CAPTCHA_CONFIG" => Some(config.clone()),
        "GUARD_ROUTES" => Some(routes.clone()),
        _ => None,
    })
    .await
    .map_err(|e| e.to_string())?;
    let served = server::start(app, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Rig {
        guarding,
        served,
        emulators,
        answers,
        meter,
    })
}

/// The `n`-th flow's own loopback address (127.1.0.1 on): rate limits and
/// velocity count per IP, and the flows must not meet.
fn address(n: usize) -> IpAddr {
    let n = n + 1;
    IpAddr::V4(Ipv4Addr::new(
        127,
        1 + (n / 65_025) as u8,
        (n / 255 % 255) as u8,
        (n % 255) as u8 + 1,
    ))
}

/// What one flow did.
struct Flow {
    http_requests: usize,
    steps: Vec<Step>,
    took: Duration,
}

impl Rig {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.served.addr)
    }

    /// One flow of `kind`, `way`, as flow number `n`: its requests in turn,
    /// each checked, the answer looked up untimed.
    async fn flow(&self, n: usize, kind: Kind, way: Way) -> Result<Flow, String> {
        let http = reqwest::Client::builder()
            .local_address(address(n))
            .build()
            .map_err(|e| e.to_string())?;
        let device = format!("flow-{}-{}-{n}", kind.name(), way.name());
        let post = |path: &str, body: Value| {
            http.post(self.url(path))
                .header("x-device-id", &device)
                .json(&body)
        };
        let mut took = Duration::ZERO;
        let mut steps = Vec::new();
        let mut http_requests = 0;
        // Sends `req`, timed and counted; the JSON answer, or why not.
        let send = async |req: reqwest::RequestBuilder,
                          took: &mut Duration,
                          http_requests: &mut usize|
               -> Result<Value, String> {
            let start = Instant::now();
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = resp.text().await.map_err(|e| e.to_string())?;
            *took += start.elapsed();
            *http_requests += 1;
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if status != 200 || json["errCode"] != json!(0) {
                return Err(format!("{status} {body}"));
            }
            Ok(json)
        };
        let trips = |n: f64| ONE_ROUND_TRIP_MS + MORE_ROUND_TRIP_MS * (n - 1.0);
        let authorizer = |round_trips: f64, tencent: bool| Step {
            memory_mb: 128.0,
            ms: trips(round_trips) + if tencent { TENCENT_CALL_MS } else { 0.0 },
        };
        // The door counts its velocity rows before it judges (one round
        // trip more) where the scene's guard is on.
        let door_trips = |rig: &Rig| match rig.guarding {
            Guarding::Off => 1.0,
            Guarding::On => 2.0,
        };
        let guarded = match kind {
            Kind::Image => {
                let create = post("/captcha/create", json!({"scene": SCENE}));
                send(create, &mut took, &mut http_requests).await?;
                steps.push(Step {
                    memory_mb: 256.0,
                    ms: trips(1.0),
                });
                let answer = self.answers.of(&device).await?;
                match way {
                    Way::Short => {
                        steps.push(authorizer(door_trips(self), false));
                        post(GUARDED, json!({})).header("x-gatehouse-captcha", answer)
                    }
                    Way::Pass => {
                        let verify = post(
                            "/captcha/verify",
                            json!({"scene": SCENE, "captcha": answer}),
                        );
                        let pass = send(verify, &mut took, &mut http_requests).await?;
                        // One round trip: the transaction that judges the
                        // answer and writes the pass, with the counter.
                        steps.push(Step {
                            memory_mb: 128.0,
                            ms: trips(1.0),
                        });
                        steps.push(authorizer(door_trips(self), false));
                        let token = pass["passToken"].as_str().ok_or("no passToken")?;
                        post(GUARDED, json!({})).header("x-gatehouse-pass", token)
                    }
                }
            }
            Kind::Ticket => {
                let tencent = self
                    .emulators
                    .tencent
                    .as_ref()
                    .ok_or("no Tencent emulator")?;
                let issued = tencent.issue_ticket();
                match way {
                    Way::Short => {
                        // The claim, then Tencent, then the door.
                        steps.push(authorizer(door_trips(self) + 1.0, true));
                        post(GUARDED, json!({}))
                            .header("x-gatehouse-ticket", issued.ticket)
                            .header("x-gatehouse-randstr", issued.randstr)
                    }
                    Way::Pass => {
                        let verify = post(
                            "/ticket/verify",
                            json!({"scene": SCENE, "ticket": issued.ticket, "randstr": issued.randstr}),
                        );
                        let pass = send(verify, &mut took, &mut http_requests).await?;
                        // The claim (with its counter), Tencent, the pass.
                        steps.push(Step {
                            memory_mb: 128.0,
                            ms: trips(2.0) + TENCENT_CALL_MS,
                        });
                        steps.push(authorizer(door_trips(self), false));
                        let token = pass["passToken"].as_str().ok_or("no passToken")?;
                        post(GUARDED, json!({})).header("x-gatehouse-pass", token)
                    }
                }
            }
        };
        let admitted = send(guarded, &mut took, &mut http_requests).await?;
        let pass_kind = admitted["guard"]["passKind"].as_str().unwrap_or_default();
        let want = match kind {
            Kind::Image => "captcha",
            Kind::Ticket => "ticket",
        };
        if pass_kind != want {
            return Err(format!("admitted with passKind {pass_kind:?}: {admitted}"));
        }
        Ok(Flow {
            http_requests,
            steps,
            took,
        })
    }
}

/// How many flows of each kind and way, and how many untimed before them.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub flows: usize,
    pub warmup: usize,
    pub backends: &'static [Backend],
    pub guardings: &'static [Guarding],
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            flows: 300,
            warmup: 20,
            backends: &[Backend::Embedded, Backend::DynamoLocal],
            guardings: &[Guarding::Off, Guarding::On],
        }
    }
}

/// Runs `plan`: for each backend and guard setting a dev server of its own,
/// and on it the flows of each kind, the short way and the pass way taking
/// turns (so that neither has the warmer server).
pub async fn run(plan: Plan) -> Result<Vec<Measured>, String> {
    let mut all = Vec::new();
    let mut n = 0;
    for &backend in plan.backends {
        for &guarding in plan.guardings {
            let rig = rig(backend, guarding).await?;
            for kind in [Kind::Image, Kind::Ticket] {
                let mut measured: Vec<Measured> = [Way::Short, Way::Pass]
                    .into_iter()
                    .map(|way| Measured {
                        backend,
                        guarding,
                        kind,
                        way,
                        flows: 0,
                        http_requests: 0.0,
                        lambda_invocations: 0.0,
                        dynamo_requests: rig.meter.as_ref().map(|_| 0.0),
                        units: rig.meter.as_ref().map(|_| Units::default()),
                        gb_seconds: 0.0,
                        latencies: Vec::new(),
                    })
                    .collect();
                for i in 0..plan.warmup + plan.flows {
                    for m in measured.iter_mut() {
                        n += 1;
                        if let Some((requests, units)) = &rig.meter {
                            requests.take();
                            units.take();
                        }
                        let flow = rig.flow(n, kind, m.way).await.map_err(|e| {
                            format!(
                                "{} {} {} flow {i}: {e}",
                                backend.name(),
                                kind.name(),
                                m.way.name()
                            )
                        })?;
                        if i < plan.warmup {
                            continue;
                        }
                        m.flows += 1;
                        m.http_requests += flow.http_requests as f64;
                        m.lambda_invocations += flow.steps.len() as f64;
                        m.gb_seconds += flow
                            .steps
                            .iter()
                            .map(|s| s.memory_mb / 1024.0 * s.ms / 1000.0)
                            .sum::<f64>();
                        if let Some((requests, units)) = &rig.meter {
                            *m.dynamo_requests.as_mut().unwrap() += requests.take() as f64;
                            let billed = units.take();
                            let total = m.units.as_mut().unwrap();
                            total.write += billed.write;
                            total.read += billed.read;
                        }
                        m.latencies.push(flow.took);
                    }
                }
                for m in measured.iter_mut() {
                    let per = m.flows.max(1) as f64;
                    m.http_requests /= per;
                    m.lambda_invocations /= per;
                    m.gb_seconds /= per;
                    if let Some(requests) = m.dynamo_requests.as_mut() {
                        *requests /= per;
                    }
                    if let Some(units) = m.units.as_mut() {
                        units.write /= per;
                        units.read /= per;
                    }
                    m.latencies.sort();
                }
                all.extend(measured);
            }
        }
    }
    Ok(all)
}

/// The figures as Markdown tables: the costs (DynamoDB figures from
/// DynamoDB Local), then the latencies on each backend.
pub fn report(measured: &[Measured]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scene | flow | way | HTTP requests | Lambda invocations | DynamoDB requests | WRU | RRU | Lambda GB-s | $ per million flows |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in measured
        .iter()
        .filter(|m| m.backend == Backend::DynamoLocal)
    {
        let units = m.units.unwrap_or_default();
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.5} | {:.2} |\n",
            m.guarding.name(),
            m.kind.name(),
            m.way.name(),
            m.http_requests,
            m.lambda_invocations,
            m.dynamo_requests.unwrap_or_default(),
            units.write,
            units.read,
            m.gb_seconds,
            m.dollars_per_million(units),
        ));
    }
    out.push_str(
        "\n| store | scene | flow | way | flows | p50 (ms) | p99 (ms) |\n|---|---|---|---|---:|---:|---:|\n",
    );
    for m in measured {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} |\n",
            m.backend.name(),
            m.guarding.name(),
            m.kind.name(),
            m.way.name(),
            m.flows,
            m.percentile(50.0).as_secs_f64() * 1000.0,
            m.percentile(99.0).as_secs_f64() * 1000.0,
        ));
    }
    out
}
