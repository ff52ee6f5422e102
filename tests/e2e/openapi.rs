//! `openapi.yaml` is the contract of the HTTP API, and these tests keep it
//! from drifting from the code:
//!
//! - its paths and methods are exactly the route table's
//!   (`gatehouse::api::ROUTES`);
//! - its `ErrCode` enum is exactly the error table's codes
//!   (`shared/src/error.rs`), and each code is answered by some operation;
//! - the answer of every replayed event in `events/`, and of a tour of
//!   every route on the dev server (successes, the guard's refusals, a rate
//!   limit), validates against the schema of its route and status, with the
//!   headers the contract requires (`Retry-After` on 429); the request of
//!   every answer that succeeded validates against the route's request body
//!   and required query parameters, so the contract is not stricter than
//!   the code either.
//!
//! The document is hand-written (see `docs/clients.md`, "Clients") and validated
//! with the `jsonschema` crate as JSON Schema 2020-12, OpenAPI 3.1's
//! dialect; `scripts/test.sh` lints it with Redocly.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gatehouse::api::{self, Access, ROUTES};
use gatehouse::store::memory::MemoryStore;
use gatehouse_e2e::{clear_of_failure_window_end, repo_path};
use gatehouse_local::emulators::Emulators;
use gatehouse_local::server::{self, App};
use gatehouse_local::sigv4;
use jsonschema::{Draft, Validator};
use lambda_http::Body;
use serde_json::{Value, json};

use crate::replay::replay_every_event;

/// One answer of a route, with the request that got it.
struct Exchange {
    label: String,
    method: String,
    uri: http::Uri,
    request_body: Option<String>,
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

/// `openapi.yaml`, parsed, with its validators compiled as they are needed.
struct Contract {
    doc: Arc<Value>,
    validators: RefCell<HashMap<String, Arc<Validator>>>,
}

/// A JSON pointer token: `~` and `/` escaped.
fn token(text: &str) -> String {
    text.replace('~', "~0").replace('/', "~1")
}

impl Contract {
    fn load() -> Self {
        let text = std::fs::read_to_string(repo_path("openapi.yaml")).expect("read openapi.yaml");
        let doc: Value = serde_yaml_ng::from_str(&text).expect("openapi.yaml is YAML");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1.")),
            "openapi.yaml is OpenAPI 3.1"
        );
        Self {
            doc: Arc::new(doc),
            validators: RefCell::default(),
        }
    }

    fn at(&self, pointer: &str) -> Option<&Value> {
        self.doc.pointer(pointer)
    }

    /// The pointer of the object at `pointer`, following one `$ref` to
    /// the components (responses, headers and parameters are shared so).
    fn resolve(&self, pointer: String) -> Option<String> {
        match self.at(&pointer)?.get("$ref").and_then(Value::as_str) {
            Some(target) => {
                let target = target.strip_prefix('#')?.to_owned();
                self.at(&target).map(|_| target)
            }
            None => Some(pointer),
        }
    }

    /// The operations as `METHOD /path`.
    fn operations(&self) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if ["get", "put", "post", "delete", "patch", "head", "options"]
                    .contains(&method.as_str())
                {
                    found.insert(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        found
    }

    fn operation_pointer(&self, method: &str, path: &str) -> Option<String> {
        let pointer = format!("/paths/{}/{}", token(path), method.to_lowercase());
        self.at(&pointer).map(|_| pointer)
    }

    /// Validates `instance` against the schema at `pointer`, `$ref`s
    /// resolved within the document.
    fn validate(&self, pointer: &str, instance: &Value) -> Result<(), String> {
        let validator = self.validator(pointer)?;
        let problems: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", cut(&e.to_string()), e.instance_path()))
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn validator(&self, pointer: &str) -> Result<Arc<Validator>, String> {
        if let Some(v) = self.validators.borrow().get(pointer) {
            return Ok(Arc::clone(v));
        }
        // The whole document as the root, pointing at the schema: the
        // schema's `#/components/...` references resolve against it, and
        // the document's other keys are unknown keywords, which are ignored.
        let mut root = (*self.doc).clone();
        root["$ref"] = json!(format!("#{pointer}"));
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .build(&root)
            .map_err(|e| format!("the schema at {pointer} does not compile: {e}"))?;
        let validator = Arc::new(validator);
        self.validators
            .borrow_mut()
            .insert(pointer.to_owned(), Arc::clone(&validator));
        Ok(validator)
    }

    /// Where `exchange` breaks the contract: an undocumented route or
    /// status, a body off its schema, a required header missing or off
    /// its schema, and for a success, a request the contract would refuse.
    fn check(&self, exchange: &Exchange) -> Vec<String> {
        let mut problems = Vec::new();
        let label = &exchange.label;
        let Some(operation) = self.operation_pointer(&exchange.method, exchange.uri.path()) else {
            return vec![format!(
                "{label}: {} {} is not in openapi.yaml",
                exchange.method,
                exchange.uri.path()
            )];
        };
        let status = exchange.status;
        let Some(response) = self.resolve(format!("{operation}/responses/{status}")) else {
            return vec![format!(
                "{label}: {} {} answered {status}, which openapi.yaml does not list: {}",
                exchange.method,
                exchange.uri.path(),
                brief(&exchange.body)
            )];
        };
        let content_type = exchange
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("application/json") {
            problems.push(format!("{label}: content-type {content_type:?}"));
        }
        let schema = format!("{response}/content/application~1json/schema");
        if self.at(&schema).is_none() {
            problems.push(format!(
                "{label}: {response} has no application/json schema"
            ));
        } else if let Err(e) = self.validate(&schema, &exchange.body) {
            problems.push(format!("{label}: {status} {}: {e}", brief(&exchange.body)));
        }
        let headers = self
            .at(&format!("{response}/headers"))
            .and_then(Value::as_object);
        for name in headers.into_iter().flat_map(|h| h.keys()) {
            let Some(header) = self.resolve(format!("{response}/headers/{}", token(name))) else {
                continue;
            };
            let required = self.at(&format!("{header}/required")) == Some(&json!(true));
            match exchange.headers.get(name.as_str()).map(|v| v.to_str()) {
                None if required => problems.push(format!("{label}: no {name} header")),
                None => {}
                Some(Ok(value)) => {
                    let typed = value
                        .parse::<i64>()
                        .map(Value::from)
                        .unwrap_or_else(|_| json!(value));
                    if let Err(e) = self.validate(&format!("{header}/schema"), &typed) {
                        problems.push(format!("{label}: header {name}: {e}"));
                    }
                }
                Some(Err(_)) => problems.push(format!("{label}: header {name} is not text")),
            }
        }
        if (200..300).contains(&status) {
            problems.extend(self.check_request(&operation, exchange));
        }
        problems
    }

    /// A request that succeeded must be one the contract allows.
    fn check_request(&self, operation: &str, exchange: &Exchange) -> Vec<String> {
        let label = &exchange.label;
        let mut problems = Vec::new();
        let body_schema = format!("{operation}/requestBody/content/application~1json/schema");
        let text = exchange.request_body.as_deref().unwrap_or("").trim();
        if self.at(&body_schema).is_some() && !text.is_empty() {
            match serde_json::from_str::<Value>(text) {
                Ok(body) => {
                    if let Err(e) = self.validate(&body_schema, &body) {
                        problems.push(format!("{label}: request body {body}: {e}"));
                    }
                }
                Err(e) => problems.push(format!("{label}: request body is not JSON: {e}")),
            }
        } else if text.is_empty()
            && self.at(&format!("{operation}/requestBody/required")) == Some(&json!(true))
        {
            problems.push(format!("{label}: succeeded without the required body"));
        }
        let query: HashMap<String, String> =
            reqwest::Url::parse(&format!("http://h{}", exchange.uri))
                .map(|url| url.query_pairs().into_owned().collect())
                .unwrap_or_default();
        let parameters = self
            .at(&format!("{operation}/parameters"))
            .and_then(Value::as_array);
        for i in 0..parameters.map_or(0, Vec::len) {
            let Some(param) = self.resolve(format!("{operation}/parameters/{i}")) else {
                continue;
            };
            if self.at(&format!("{param}/in")) != Some(&json!("query")) {
                continue;
            }
            let name = self.at(&format!("{param}/name")).and_then(Value::as_str);
            let name = name.unwrap_or_default();
            match query.get(name) {
                Some(value) => {
                    if let Err(e) = self.validate(&format!("{param}/schema"), &json!(value)) {
                        problems.push(format!("{label}: query {name}: {e}"));
                    }
                }
                None if self.at(&format!("{param}/required")) == Some(&json!(true)) => {
                    problems.push(format!("{label}: succeeded without query {name}"));
                }
                None => {}
            }
        }
        problems
    }

    /// Every string in the document outside `components.schemas.ErrCode`.
    fn strings_outside_err_code(&self) -> BTreeSet<String> {
        fn walk(value: &Value, out: &mut BTreeSet<String>) {
            match value {
                Value::String(s) => {
                    out.insert(s.clone());
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                Value::Object(map) => map.values().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut doc = (*self.doc).clone();
        if let Some(schemas) = doc
            .pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut)
        {
            schemas.remove("ErrCode");
        }
        let mut out = BTreeSet::new();
        walk(&doc, &mut out);
        out
    }
}

/// A body for a message, cut short (captcha images are long).
fn brief(body: &Value) -> String {
    cut(&body.to_string())
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(300) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The errCodes of the error table: the first argument of every `row(…)`
/// in `shared/src/error.rs`, where every error is given its code.
fn error_table_codes() -> BTreeSet<String> {
    let source = std::fs::read_to_string(repo_path("shared/src/error.rs")).expect("error.rs");
    let mut codes = BTreeSet::new();
    for chunk in source.split("row(").skip(1) {
        let rest = chunk.trim_start();
        if let Some(rest) = rest.strip_prefix('"') {
            codes.insert(rest[..rest.find('"').expect("closing quote")].to_owned());
        }
    }
    codes
}

#[test]
fn openapi_paths_are_the_route_table() {
    let contract = Contract::load();
    let documented = contract.operations();
    let routed: BTreeSet<String> = ROUTES
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "routes missing from openapi.yaml: {undocumented:?}; \
         operations in openapi.yaml with no route: {stale:?}"
    );
}

#[test]
fn openapi_err_codes_are_the_error_table() {
    let contract = Contract::load();
    let codes = error_table_codes();
    assert!(codes.len() >= 29, "read the error table: {codes:?}");
    let listed: BTreeSet<String> = contract.doc["components"]["schemas"]["ErrCode"]["enum"]
        .as_array()
        .expect("ErrCode enum")
        .iter()
        .map(|v| v.as_str().expect("a code").to_owned())
        .collect();
    let unlisted: Vec<_> = codes.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&codes).collect();
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "errCodes missing from ErrCode: {unlisted:?}; in ErrCode but not in error.rs: {stale:?}"
    );
    let answered = contract.strings_outside_err_code();
    let orphans: Vec<_> = codes.iter().filter(|c| !answered.contains(*c)).collect();
    assert!(
        orphans.is_empty(),
        "errCodes no operation of openapi.yaml answers: {orphans:?}"
    );
}

#[tokio::test]
async fn every_replayed_answer_matches_openapi() {
    let contract = Contract::load();
    let (replayed, _) = replay_every_event().await;
    assert!(replayed.len() >= 20, "replayed {} events", replayed.len());
    let problems: Vec<String> = replayed
        .into_iter()
        .map(|r| Exchange {
            label: format!("events/{}", r.name),
            method: r.method,
            uri: r.uri,
            request_body: r.request_body,
            status: r.status,
            headers: r.headers,
            body: r.body,
        })
        .flat_map(|exchange| contract.check(&exchange))
        .collect();
    assert!(
        problems.is_empty(),
        "answers off openapi.yaml:\n{}",
        problems.join("\n")
    );
}

/// The dev server as `cargo run -p gatehouse-local` builds it, called
/// route by route as a client would.
struct Tour {
    app: App,
    emulators: Emulators,
    store: Arc<MemoryStore>,
    contract: Contract,
    seen: Vec<Exchange>,
}

const DEVICE: &str = "openapi-tour-device";

impl Tour {
    async fn start() -> Self {
        let store = Arc::new(MemoryStore::new());
        let (app, emulators) = App::from_env(store.clone())
            .await
            .expect("the dev server's services");
        Self {
            app,
            emulators,
            store,
            contract: Contract::load(),
            seen: Vec::new(),
        }
    }

    /// Sends one request (from 127.0.0.1, with `X-Device-Id`) and keeps
    /// the answer; returns its status and body.
    async fn call(
        &mut self,
        method: &str,
        uri: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("x-device-id", DEVICE);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let text = body.map(|b| b.to_string());
        let mut req: http::Request<_> = builder
            .body(text.clone().unwrap_or_default().into())
            .expect("a valid request");
        // The IAM routes, signed as a back end's SDK signs them, unless the
        // call brings an `Authorization` of its own.
        let path = req.uri().path().to_owned();
        let iam = api::find(method, &path).is_ok_and(|route| route.access == Access::Iam);
        if iam && !req.headers().contains_key("authorization") {
            let headers = req.headers_mut();
            headers.insert("host", "127.0.0.1:3000".parse().unwrap());
            sigv4::sign_request(
                (
                    sigv4::DEV_AWS_ACCESS_KEY_ID,
                    sigv4::DEV_AWS_SECRET_ACCESS_KEY,
                ),
                method,
                uri,
                headers,
                text.as_deref().unwrap_or_default().as_bytes(),
                std::time::SystemTime::now(),
            );
        }
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let resp = server::route(&self.app, server::to_lambda_request(req, peer)).await;
        let status = resp.status().as_u16();
        let value: Value = match resp.body() {
            Body::Text(text) => serde_json::from_str(text).expect("a JSON answer"),
            other => panic!("{method} {uri}: body {other:?}"),
        };
        self.seen.push(Exchange {
            label: format!("tour #{} {method} {uri}", self.seen.len() + 1),
            method: method.to_owned(),
            uri: uri.parse().expect("a valid URI"),
            request_body: text,
            status,
            headers: resp.headers().clone(),
            body: value.clone(),
        });
        (status, value)
    }

    async fn post(&mut self, uri: &str, body: Value) -> (u16, Value) {
        self.call("POST", uri, Some(body), &[]).await
    }

    /// A right answer to a fresh captcha of `scene`: its pass.
    async fn captcha_pass(&mut self, scene: &str) -> String {
        let (status, _) = self.post("/captcha/create", json!({"scene": scene})).await;
        assert_eq!(status, 200);
        let code = self.store.captcha(scene, DEVICE).expect("stored").code;
        let (status, body) = self
            .post("/captcha/verify", json!({"scene": scene, "captcha": code}))
            .await;
        assert_eq!(status, 200, "{body}");
        body["passToken"].as_str().expect("a pass").to_owned()
    }
}

#[tokio::test]
async fn a_tour_of_every_route_matches_openapi() {
    let mut tour = Tour::start().await;

    // Captchas: create, refresh, a wrong answer, a right one.
    // A size where the scene's clientSize is off (the default): refused.
    let (status, body) = tour
        .post("/captcha/create", json!({"scene": "login", "width": 200}))
        .await;
    assert_eq!(
        (status, &body["errCode"]),
        (400, &json!("uni-captcha-size-not-allowed"))
    );
    tour.post("/captcha/create", json!({"scene": "login"}))
        .await;
    tour.post("/captcha/refresh", json!({"scene": "login"}))
        .await;
    tour.post("/captcha/refresh", json!({"scene": "nothing-here"}))
        .await;
    tour.post(
        "/captcha/verify",
        json!({"scene": "login", "captcha": "zzzz"}),
    )
    .await;
    tour.captcha_pass("login").await;

    // The guard on the dev server's adaptive scene `demo`: no pass needed,
    // then failures raise the level to image, then to tencent.
    let guard = tour.app.services.guard.clone().expect("the guard");
    clear_of_failure_window_end(&guard, "demo", Duration::from_secs(30)).await;
    let status = "/guard/status?scene=demo";
    assert_eq!(tour.call("GET", status, None, &[]).await.1["level"], "none");
    let (code, body) = tour.post("/demo/guarded", json!({})).await;
    assert_eq!((code, &body["guard"]["level"]), (200, &json!("none")));
    for _ in 0..2 {
        tour.post("/guard/report", json!({"scene": "demo"})).await;
    }
    assert_eq!(
        tour.call("GET", status, None, &[]).await.1["level"],
        "image"
    );
    tour.post("/demo/guarded", json!({})).await;
    tour.post("/guard/check", json!({"scene": "demo"})).await;

    tour_sms(&mut tour).await;

    tour_guard_checks(&mut tour).await;

    tour_tickets(&mut tour).await;

    tour_wechat(&mut tour).await;

    // A rate limit: the default allows 20 creates per device a minute (in
    // fixed windows: should one end during the loop, the next fills up too).
    let mut limited = false;
    for _ in 0..42 {
        let (status, _) = tour.post("/captcha/create", json!({"scene": "busy"})).await;
        if status == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "creates past the limit are rate-limited");

    let mut problems = Vec::new();
    for exchange in &tour.seen {
        problems.extend(tour.contract.check(exchange));
    }
    // Every route succeeded at least once, and the refusals the contract
    // is most about were seen.
    let seen: BTreeSet<String> = tour
        .seen
        .iter()
        .map(|e| format!("{} {} {}", e.method, e.uri.path(), e.status))
        .collect();
    for route in ROUTES {
        let ok = format!("{} {} 200", route.method, route.path);
        if !seen.contains(&ok) {
            problems.push(format!("the tour never saw {ok}"));
        }
    }
    for wanted in [
        "POST /captcha/create 429",
        "POST /captcha/verify 400",
        "POST /captcha/refresh 404",
        "POST /demo/guarded 403",
        "POST /guard/check 400",
        "POST /guard/check 403",
        "POST /guard/report 400",
        "POST /ticket/verify 400",
        "POST /ticket/verify 409",
        "POST /wx/login 400",
        "POST /wx/phone 400",
        "GET /wx/session 401",
        "GET /me 401",
        "GET /me 403",
        "POST /sms/send 400",
        "POST /sms/send 403",
        "POST /sms/send 429",
        "POST /sms/send 502",
        "POST /sms/verify 400",
    ] {
        if !seen.contains(wanted) {
            problems.push(format!("the tour never saw {wanted}"));
        }
    }
    assert!(
        problems.is_empty(),
        "answers off openapi.yaml:\n{}",
        problems.join("\n")
    );
}

/// The answers of a scene whose Tencent policy admits degraded passes, and
/// a request past its deadline, match openapi.yaml too (the tour's dev
/// server keeps the default policy and generous deadlines).
#[tokio::test]
async fn degraded_passes_and_deadline_answers_match_openapi() {
    use gatehouse::api::{Function, Services};
    use gatehouse::guard::Guard;
    use gatehouse::options::ServiceOptions;
    use gatehouse::settings::Settings;
    use gatehouse::tencent::{TencentConfig, TicketService, TicketSettings};
    use gatehouse_local::tencent_emulator::TencentEmulator;
    use lambda_http::RequestExt;

    let (id, key, app, app_key) = ("AKIDopenapi", "openapi-key", 190_000_011, "openapi-app-key");
    let emu = TencentEmulator::start(id, key, app, app_key).await.unwrap();
    let tencent = |endpoint: &str| TencentConfig {
        secret_id: id.into(),
        secret_key: key.into(),
        captcha_app_id: app,
        app_secret_key: app_key.into(),
        endpoint: endpoint.into(),
        region: None,
    };
    let settings = Settings::from_json(
        r#"{"scene": {"login": {"guard": {"mode": "always"},
                                "tencent": {"disasterTicket": "admit", "code26": "admit"}}}}"#,
    )
    .unwrap();
    let store = Arc::new(MemoryStore::new());
    let options = ServiceOptions::new(settings.rate_limits.clone());
    let services = Services {
        tickets: Some(Arc::new(
            TicketService::new(
                tencent(&emu.base_url()),
                settings.ticket_settings(),
                store.clone(),
                &options,
            )
            .unwrap(),
        )),
        guard: Some(Arc::new(Guard::new(settings.guard, store, &options))),
        ..Services::default()
    };
    let contract = Contract::load();
    let exchange = |label: &str, path: &str, body: &Value, resp: lambda_http::Response<Body>| {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let Body::Text(text) = resp.body() else {
            panic!("{label}: a text body")
        };
        Exchange {
            label: label.into(),
            method: "POST".into(),
            uri: path.parse().unwrap(),
            request_body: Some(body.to_string()),
            status,
            headers,
            body: serde_json::from_str(text).unwrap(),
        }
    };
    let request = |path: &str, body: &Value| {
        let peer: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let req = http::Request::post(path)
            .header("content-type", "application/json")
            .body(body.to_string().into())
            .unwrap();
        server::to_lambda_request(req, peer)
    };
    let mut seen = Vec::new();
    for ticket in [format!("trerror_1001_{app}_1700000000"), "force-26".into()] {
        let body = json!({"ticket": ticket, "randstr": "@r", "scene": "login"});
        let resp = Function::VerifyTicket
            .lambda()
            .answer(&services, request("/ticket/verify", &body))
            .await;
        let verified = exchange(&ticket, "/ticket/verify", &body, resp);
        assert_eq!(verified.body["degraded"], true, "{}", verified.body);
        let check = json!({"scene": "login", "passToken": verified.body["passToken"]});
        let resp = Function::Guard
            .lambda()
            .answer(&services, request("/guard/check", &check))
            .await;
        let checked = exchange(&format!("check {ticket}"), "/guard/check", &check, resp);
        assert_eq!(checked.body["pass"]["degraded"], true, "{}", checked.body);
        seen.extend([verified, checked]);
    }
    // Past its deadline: 504 deadline-exceeded (a stalled Tencent).
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stalled_url = format!("http://{}", stalled.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = stalled.accept().await {
            held.push(socket);
        }
    });
    let slow = Services {
        tickets: Some(Arc::new(
            TicketService::new(
                tencent(&stalled_url),
                TicketSettings::default(),
                Arc::new(MemoryStore::new()),
                &options,
            )
            .unwrap(),
        )),
        ..Services::default()
    };
    let mut ctx = lambda_http::Context::default();
    ctx.deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + (gatehouse::deadline::MARGIN + Duration::from_millis(200)).as_millis() as u64;
    let body = json!({"ticket": "t03stalled", "randstr": "@r"});
    let req = request("/ticket/verify", &body).with_lambda_context(ctx);
    let resp = Function::VerifyTicket.lambda().answer(&slow, req).await;
    let late = exchange("past the deadline", "/ticket/verify", &body, resp);
    assert_eq!(late.status, 504, "{}", late.body);
    seen.push(late);
    holder.abort();
    let problems: Vec<String> = seen.iter().flat_map(|e| contract.check(e)).collect();
    assert!(
        problems.is_empty(),
        "answers off openapi.yaml:\n{}",
        problems.join("\n")
    );
}

/// The tour's SMS stop, at the dev server's `demo` scene standing at the
/// image level (a function of its own: a debug build's frame of one long
/// tour outgrows a test thread's stack).
async fn tour_sms(tour: &mut Tour) {
    // SMS at the image level: the send is a door of its scene (a captcha
    // pass), the code earns an sms pass, and the door then knows the number.
    let mobile = "+8613800138000";
    let send = json!({"mobile": mobile, "scene": "demo"});
    let (code, body) = tour.post("/sms/send", send.clone()).await;
    assert_eq!(
        (code, &body["errCode"]),
        (403, &json!("guard-captcha-required"))
    );
    let pass = tour.captcha_pass("demo").await;
    let (code, body) = tour
        .call(
            "POST",
            "/sms/send",
            Some(send),
            &[("x-gatehouse-pass", &pass)],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let sms_code = tour
        .emulators
        .sms
        .as_ref()
        .expect("the SMS emulator")
        .last_code(mobile)
        .expect("a message");
    let verify = json!({"mobile": mobile, "scene": "demo", "code": sms_code});
    let (code, body) = tour.post("/sms/verify", verify).await;
    assert_eq!(code, 200, "{body}");
    let sms_pass = body["passToken"].as_str().unwrap().to_owned();
    let (code, body) = tour
        .call(
            "POST",
            "/demo/guarded",
            None,
            &[("x-gatehouse-pass", &sms_pass)],
        )
        .await;
    assert_eq!(
        (code, &body["guard"]["mobile"]),
        (200, &json!(mobile)),
        "{body}"
    );
    // And what a send and a verify refuse (a scene without a guard).
    for send in [
        json!({"mobile": "13800138001", "scene": "signup"}),
        json!({"mobile": "13800138001", "scene": "signup"}),
        json!({"mobile": "1380013800", "scene": "signup"}),
        json!({"mobile": "+85291234567", "scene": "signup"}),
        json!({"mobile": "+8619900000001", "scene": "signup"}),
        json!({"mobile": "+8619900000005", "scene": "signup"}),
    ] {
        tour.post("/sms/send", send).await;
    }
    for verify in [
        json!({"mobile": "13800138001", "scene": "signup", "code": "x"}),
        json!({"mobile": "13800138001", "scene": "signup"}),
    ] {
        tour.post("/sms/verify", verify).await;
    }
}

/// The tour's passes at the guard's doors, `/guard/check` and
/// `/guard/report` (the scene `demo` at the image level, then tencent).
async fn tour_guard_checks(tour: &mut Tour) {
    let pass = tour.captcha_pass("demo").await;
    let (code, body) = tour
        .call(
            "POST",
            "/demo/guarded",
            Some(json!({})),
            &[("x-gatehouse-pass", &pass)],
        )
        .await;
    assert_eq!((code, &body["guard"]["passKind"]), (200, &json!("captcha")));
    let pass = tour.captcha_pass("demo").await;
    let check =
        json!({"scene": "demo", "passToken": pass, "deviceId": DEVICE, "userIp": "127.0.0.1"});
    // A malformed device is refused (and spends nothing); an idempotency
    // key makes the check safe to retry, and is checked itself.
    let mut bad_device = check.clone();
    bad_device["deviceId"] = json!("Y Z");
    let (code, body) = tour.post("/guard/check", bad_device).await;
    assert_eq!(
        (code, &body["errCode"]),
        (400, &json!("guard-invalid-device"))
    );
    let mut keyed = check.clone();
    keyed["idempotencyKey"] = json!("tour-1");
    let (code, first) = tour.post("/guard/check", keyed.clone()).await;
    assert_eq!(code, 200, "{first}");
    assert_eq!(tour.post("/guard/check", keyed.clone()).await, (200, first));
    keyed["idempotencyKey"] = json!("not a key");
    assert_eq!(tour.post("/guard/check", keyed).await.0, 400);
    assert_eq!(tour.post("/guard/check", check).await.0, 403);
    for _ in 0..2 {
        tour.post(
            "/guard/report",
            json!({"scene": "demo", "userIp": "198.51.100.7"}),
        )
        .await;
    }
    let (_, body) = tour.post("/guard/report", json!({"scene": "demo"})).await;
    assert_eq!(body["level"], "tencent");
    tour.post("/guard/check", json!({"scene": "demo"})).await;
    let captcha_pass = tour.captcha_pass("demo").await;
    tour.post(
        "/guard/check",
        json!({"scene": "demo", "passToken": captcha_pass}),
    )
    .await;
    tour.post("/guard/report", json!({"scene": "bad scene"}))
        .await;
}

/// The tour's Tencent tickets and the ticket pass at a door.
async fn tour_tickets(tour: &mut Tour) {
    // Tencent tickets: a web ticket earns a ticket pass, once.
    let issued = tour
        .emulators
        .tencent
        .as_ref()
        .expect("the Tencent emulator")
        .issue_ticket();
    let ticket = json!({"ticket": issued.ticket, "randstr": issued.randstr, "scene": "demo"});
    let (code, body) = tour.post("/ticket/verify", ticket.clone()).await;
    assert_eq!(code, 200, "{body}");
    let ticket_pass = body["passToken"].as_str().unwrap().to_owned();
    tour.post("/ticket/verify", ticket).await;
    tour.post("/ticket/verify", json!({"ticket": "force-15~tour"}))
        .await;
    tour.post(
        "/ticket/verify",
        json!({"ticket": "force-evil~tour", "randstr": "@x"}),
    )
    .await;
    let (code, body) = tour
        .call(
            "POST",
            "/demo/guarded",
            None,
            &[("x-gatehouse-pass", &ticket_pass)],
        )
        .await;
    assert_eq!((code, &body["guard"]["passKind"]), (200, &json!("ticket")));
}

/// The tour's WeChat sessions, and API Gateway's own answers.
async fn tour_wechat(tour: &mut Tour) {
    // WeChat: log in, read the session and the protected route, log out.
    let code = tour
        .emulators
        .wechat
        .as_ref()
        .expect("the WeChat emulator")
        .issue_code("tour");
    let (status, body) = tour.post("/wx/login", json!({"code": code})).await;
    assert_eq!(status, 200, "{body}");
    let bearer = format!("Bearer {}", body["token"].as_str().unwrap());
    let auth = [("authorization", bearer.as_str())];
    tour.post("/wx/login", json!({"code": code})).await;
    tour.call("GET", "/wx/session", None, &auth).await;
    let phone_code = tour
        .emulators
        .wechat
        .as_ref()
        .expect("the WeChat emulator")
        .issue_phone_code("13800138000");
    let (status, body) = tour
        .call(
            "POST",
            "/wx/phone",
            Some(json!({"code": phone_code})),
            &auth,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    tour.call(
        "POST",
        "/wx/phone",
        Some(json!({"code": phone_code})),
        &auth,
    )
    .await;
    tour.call("GET", "/me", None, &auth).await;
    let (status, body) = tour.call("POST", "/wx/session/refresh", None, &auth).await;
    assert_eq!(status, 200, "{body}");
    let refreshed = format!("Bearer {}", body["token"].as_str().unwrap());
    let refreshed_auth = [("authorization", refreshed.as_str())];
    tour.call("GET", "/wx/session", None, &auth).await;
    tour.call("DELETE", "/wx/session", None, &refreshed_auth)
        .await;
    tour.call("GET", "/wx/session", None, &refreshed_auth).await;
    tour.call("GET", "/me", None, &refreshed_auth).await;
    // API Gateway's own answers: no identity source for the session
    // authorizer, and an IAM route without a SigV4 signature.
    let (code, body) = tour.call("GET", "/me", None, &[]).await;
    assert_eq!((code, body), (401, json!({"message": "Unauthorized"})));
    let bearer = [("authorization", "Bearer not-a-signature")];
    let (code, body) = tour
        .call(
            "POST",
            "/guard/check",
            Some(json!({"scene": "demo"})),
            &bearer,
        )
        .await;
    assert_eq!(
        (code, body),
        (403, json!({"message": "Missing Authentication Token"}))
    );

    // A second user logs in twice, the second time ending the first session,
    // then ends every session it has.
    let wechat = tour.emulators.wechat.as_ref().expect("the WeChat emulator");
    let (first, second) = (wechat.issue_code("tour-2"), wechat.issue_code("tour-2"));
    let (_, body) = tour.post("/wx/login", json!({"code": first})).await;
    let first_bearer = format!("Bearer {}", body["token"].as_str().unwrap());
    let (status, body) = tour
        .post("/wx/login", json!({"code": second, "single": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    let second_bearer = format!("Bearer {}", body["token"].as_str().unwrap());
    tour.call(
        "GET",
        "/wx/session",
        None,
        &[("authorization", &first_bearer)],
    )
    .await;
    let (status, body) = tour
        .call(
            "DELETE",
            "/wx/sessions",
            None,
            &[("authorization", &second_bearer)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
}
