//! Cold-start measurement: the time from a function binary's process spawn to
//! its first handled event, through a local Lambda Runtime API.
//!
//! For every function it binds a Runtime API (`AWS_LAMBDA_RUNTIME_API`) and a
//! fake upstream on loopback (DynamoDB via `DYNAMODB_ENDPOINT`, Secrets
//! Manager via `AWS_ENDPOINT_URL_SECRETS_MANAGER`, WeChat via `WX_API_BASE`,
//! Tencent via `TENCENT_CAPTCHA_ENDPOINT`), spawns the binary
//! with a clean environment holding only what that function needs, hands it
//! one event from `events/`, and stops the clock when the function POSTs its
//! response. Each function is started `--runs` times, each time a fresh
//! process.
//!
//! ```text
//! cargo build --release -p create-captcha …   # or scripts/coldstart.sh
//! cargo run --release -p gatehouse-local --bin coldstart -- --bin-dir target/release
//! ```
//!
//! Arguments: `--bin-dir DIR` (default `$CARGO_TARGET_DIR/release` or
//! `target/release`), `--events DIR` (default `events`), `--runs N` (default
//! 5), `--target-ms MS` (default 30), then function names (default: all),
//! each optionally `name=events/file.json`. `--list` prints the functions of
//! the route table, one per line (what `scripts/coldstart.sh` builds).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gatehouse::api::Function;
use gatehouse_local::serve::{HttpResponse, Served, plain, serve, with_body};
use hyper::body::Bytes;
use tokio::sync::mpsc;

/// How long one start may take before it counts as a failure.
const START_LIMIT: Duration = Duration::from_secs(30);
const RUNTIME_PREFIX: &str = "/2018-06-01/runtime";

struct Options {
    bin_dir: PathBuf,
    events_dir: PathBuf,
    runs: usize,
    target_ms: f64,
    functions: Vec<(Function, Option<PathBuf>)>,
}

fn parse_args() -> Result<Options, String> {
    let default_target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let mut opts = Options {
        bin_dir: default_target.join("release"),
        events_dir: PathBuf::from("events"),
        runs: 5,
        target_ms: 30.0,
        functions: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--bin-dir" => opts.bin_dir = PathBuf::from(value("--bin-dir")?),
            "--events" => opts.events_dir = PathBuf::from(value("--events")?),
            "--runs" => {
                let raw = value("--runs")?;
                opts.runs = raw
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or(format!(
                        "--runs={raw:?}: expected a whole number from 1 to 1000"
                    ))?;
            }
            "--target-ms" => {
                let raw = value("--target-ms")?;
                opts.target_ms = raw
                    .parse()
                    .ok()
                    .filter(|n: &f64| *n > 0.0)
                    .ok_or(format!("--target-ms={raw:?}: expected a positive number"))?;
            }
            "--list" => {
                for function in Function::ALL {
                    println!("{}", function.name());
                }
                std::process::exit(0);
            }
            "-h" | "--help" => {
                return Err(
                    "usage: coldstart [--bin-dir DIR] [--events DIR] [--runs N] \
                            [--target-ms MS] [FUNCTION[=EVENT.json] …] | --list"
                        .into(),
                );
            }
            name if name.starts_with('-') => return Err(format!("unknown option {name}")),
            spec => {
                let (name, event) = match spec.split_once('=') {
                    Some((name, event)) => (name, Some(PathBuf::from(event))),
                    None => (spec, None),
                };
                let Some(function) = Function::from_name(name) else {
                    let names: Vec<&str> = Function::ALL.iter().map(|f| f.name()).collect();
                    return Err(format!(
                        "unknown function {name:?}; expected one of {}",
                        names.join(", ")
                    ));
                };
                opts.functions.push((function, event));
            }
        }
    }
    if opts.functions.is_empty() {
        opts.functions = Function::ALL.iter().map(|f| (*f, None)).collect();
    }
    Ok(opts)
}

/// The event each function is started with unless the command line names
/// one, where `events/<name>.json` is not it.
fn default_event_file(function: Function) -> Option<&'static str> {
    match function {
        Function::Session => Some("session-get.json"),
        Function::Authorizer => Some("authorizer-request.json"),
        Function::VerifyTicket => Some("ticket-verify.json"),
        Function::Guard => Some("guard-status.json"),
        Function::SendSms => Some("sms-send.json"),
        Function::VerifySms => Some("sms-verify.json"),
        _ => None,
    }
}

/// The function's [`default_event_file`], else `events/<name>.json`, else
/// the first `events/<name>-*.json` by name.
fn default_event(events_dir: &Path, function: Function) -> Result<PathBuf, String> {
    let name = function.name();
    if let Some(file) = default_event_file(function) {
        let path = events_dir.join(file);
        if path.is_file() {
            return Ok(path);
        }
    }
    let exact = events_dir.join(format!("{name}.json"));
    if exact.is_file() {
        return Ok(exact);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(events_dir)
        .map_err(|e| format!("cannot read {}: {e}", events_dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(&format!("{name}-")) && f.ends_with(".json"))
        })
        .collect();
    candidates.sort();
    candidates.into_iter().next().ok_or(format!(
        "no event for {name} in {}: name one as {name}=FILE.json",
        events_dir.display()
    ))
}

/// The environment of one function: the Lambda runtime's own variables,
/// dummy AWS credentials, and only the settings the function reads
/// ([`Function::settings`]), with its upstream pointed at the fake.
fn function_env(
    function: Function,
    runtime_api: SocketAddr,
    upstream: SocketAddr,
) -> Vec<(String, String)> {
    let name = function.name();
    let upstream_url = format!("http://{upstream}");
    let mut env: Vec<(&str, String)> = vec![
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart".into()),
        ("_HANDLER", "bootstrap".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "AKIDCOLDSTART".into()),
        ("AWS_SECRET_ACCESS_KEY", "coldstart-dummy-secret".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("TABLE_NAME", "gatehouse-coldstart".into()),
        ("DYNAMODB_ENDPOINT", upstream_url.clone()),
    ];
    for &key in function.settings() {
        let value = match key {
            // The scene of GUARD_ROUTES' demo route, declared as the
            // authorizer's start requires.
            "CAPTCHA_CONFIG" => r#"{"scene": {"demo": {}}}"#,
            "WX_APPID" => "wxcoldstart0000000",
            "WX_SECRET_ARN" => WX_SECRET_ARN,
            "SESSION_TTL_SECONDS" => "259200",
            "TENCENT_SECRET_ID" => "AKIDcoldstart",
            "TENCENT_SECRET_ARN" => TENCENT_SECRET_ARN,
            "CAPTCHA_APP_ID" => "2000000000",
            "GUARD_ROUTES" => gatehouse::guard::GuardRoutes::DEV_DEFAULT,
            "SMS_SDK_APP_ID" => "1400000000",
            "SMS_SIGN_NAME" => "gatehouse",
            "SMS_TEMPLATE_ID" => "100000",
            "SMS_REGION" => "ap-guangzhou",
            other => panic!("coldstart has no value for {other}: add one here"),
        };
        env.push((key, value.to_owned()));
        match key {
            "WX_APPID" => env.push(("WX_API_BASE", upstream_url.clone())),
            "TENCENT_SECRET_ID" => env.push(("TENCENT_CAPTCHA_ENDPOINT", upstream_url.clone())),
            "SMS_SDK_APP_ID" => env.push(("TENCENT_SMS_ENDPOINT", upstream_url.clone())),
            // The secret is fetched from the fake, as it would be from
            // Secrets Manager.
            key if key.ends_with("_SECRET_ARN") => {
                env.push(("AWS_ENDPOINT_URL_SECRETS_MANAGER", upstream_url.clone()));
            }
            _ => {}
        }
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The secrets the functions read from (the fake) Secrets Manager.
const WX_SECRET_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:coldstart-wx-AbCdEf";
const TENCENT_SECRET_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:coldstart-tencent-AbCdEf";

/// A `GetSecretValue` answer for `secret_id`, in Secrets Manager's JSON.
fn secret_value(secret_id: &str) -> Option<String> {
    let secret = match secret_id {
        WX_SECRET_ARN => serde_json::json!({"WX_SECRET": "coldstart-secret"}),
        TENCENT_SECRET_ARN => serde_json::json!({
            "TENCENT_SECRET_KEY": "coldstart-secret-key",
            "CAPTCHA_APP_SECRET_KEY": "coldstart-app-key"
        }),
        _ => return None,
    };
    Some(
        serde_json::json!({
            "ARN": secret_id,
            "Name": secret_id.rsplit(':').next(),
            "SecretString": secret.to_string(),
            "VersionId": "coldstart",
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": 1700000000
        })
        .to_string(),
    )
}

/// What the function POSTed back, and when.
struct Outcome {
    at: Instant,
    kind: &'static str,
    body: Bytes,
}

/// A Runtime API that hands out `event` once, then holds every later
/// `next` open (the process is killed before it matters).
async fn runtime_api(event: Bytes, tx: mpsc::UnboundedSender<Outcome>) -> std::io::Result<Served> {
    let handed_out = Arc::new(Mutex::new(false));
    serve(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        move |req, _peer| {
            let at = Instant::now();
            let event = event.clone();
            let tx = tx.clone();
            let handed_out = Arc::clone(&handed_out);
            async move {
                let path = req.uri().path().to_owned();
                let Some(rest) = path.strip_prefix(RUNTIME_PREFIX) else {
                    return plain(http::StatusCode::NOT_FOUND, "unknown path");
                };
                if req.method() == http::Method::GET && rest == "/invocation/next" {
                    let first = !std::mem::replace(&mut *handed_out.lock().expect("lock"), true);
                    if !first {
                        return std::future::pending::<HttpResponse>().await;
                    }
                    let deadline = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_millis()
                        + 10_000;
                    let mut resp = with_body(http::StatusCode::OK, "application/json", event);
                    let headers = resp.headers_mut();
                    headers.insert(
                        "lambda-runtime-aws-request-id",
                        http::HeaderValue::from_static("coldstart-request-1"),
                    );
                    headers.insert(
                        "lambda-runtime-deadline-ms",
                        http::HeaderValue::from(deadline as u64),
                    );
                    headers.insert(
                        "lambda-runtime-invoked-function-arn",
                        http::HeaderValue::from_static(
                            "arn:aws:lambda:us-east-1:123456789012:function:coldstart",
                        ),
                    );
                    headers.insert(
                        "lambda-runtime-trace-id",
                        http::HeaderValue::from_static(
                            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0",
                        ),
                    );
                    return resp;
                }
                if req.method() == http::Method::POST {
                    let kind = if rest.ends_with("/response") {
                        Some("response")
                    } else if rest == "/init/error" {
                        Some("init error")
                    } else if rest.ends_with("/error") {
                        Some("invocation error")
                    } else {
                        None
                    };
                    if let Some(kind) = kind {
                        let _ = tx.send(Outcome {
                            at,
                            kind,
                            body: req.into_body(),
                        });
                        return with_body(http::StatusCode::ACCEPTED, "application/json", "{}");
                    }
                }
                plain(http::StatusCode::NOT_FOUND, "unknown runtime API call")
            }
        },
    )
    .await
}

/// DynamoDB, Secrets Manager, WeChat and Tencent in one loopback server,
/// answering each call the simplest way that lets a handler finish: empty
/// DynamoDB results (no item, write accepted), the function's secret, a
/// jscode2session success, an access token, a phone number, a passing ticket.
async fn fake_upstream() -> std::io::Result<Served> {
    serve(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), |req, _peer| async move {
        let target = req.headers().get("x-amz-target");
        if target.is_some_and(|t| t == "secretsmanager.GetSecretValue") {
            let asked: serde_json::Value =
                serde_json::from_slice(req.body()).unwrap_or_default();
            return match secret_value(asked["SecretId"].as_str().unwrap_or_default()) {
                Some(body) => with_body(http::StatusCode::OK, "application/x-amz-json-1.1", body),
                None => with_body(
                    http::StatusCode::BAD_REQUEST,
                    "application/x-amz-json-1.1",
                    r#"{"__type":"ResourceNotFoundException","Message":"no such secret"}"#,
                ),
            };
        }
        if let Some(target) = target {
            // An UpdateItem is a rate-limit counter or a captcha verify: the
            // counter needs its new count back, the verify the row's new
            // state (1, verified: a right answer); each ignores the other.
            let body = if target.as_bytes().ends_with(b".UpdateItem") {
                r#"{"Attributes":{"count":{"N":"1"},"state":{"N":"1"}}}"#
            } else {
                "{}"
            };
            return with_body(http::StatusCode::OK, "application/x-amz-json-1.0", body);
        }
        if req.uri().path() == "/sns/jscode2session" {
            return with_body(
                http::StatusCode::OK,
                "text/plain",
                r#"{"session_key":"HyVFkGl5F5OQWJZZaNzBBg==","openid":"o-coldstart"}"#,
            );
        }
        if req.uri().path() == "/cgi-bin/stable_token" {
            return with_body(
                http::StatusCode::OK,
                "application/json",
                r#"{"access_token":"coldstart-access-token","expires_in":7200}"#,
            );
        }
        if req.uri().path() == "/wxa/business/getuserphonenumber" {
            return with_body(
                http::StatusCode::OK,
                "application/json",
                r#"{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"timestamp":1700000000,"appid":"wxcoldstart0000000"}}}"#,
            );
        }
        if req.headers().contains_key("x-tc-action") {
            return with_body(
                http::StatusCode::OK,
                "application/json",
                r#"{"Response":{"CaptchaCode":1,"CaptchaMsg":"OK","EvilLevel":0,"GetCaptchaTime":1700000000,"RequestId":"coldstart"}}"#,
            );
        }
        plain(http::StatusCode::NOT_FOUND, "coldstart: no fake for this call")
    })
    .await
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One cold start: milliseconds from spawn to the POSTed response, and the
/// HTTP status the function answered with (when it is an HTTP response).
async fn one_start(
    function: Function,
    binary: &Path,
    event: &Bytes,
    upstream: SocketAddr,
    log: &Path,
) -> Result<(f64, String), String> {
    let name = function.name();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let api = runtime_api(event.clone(), tx)
        .await
        .map_err(|e| format!("cannot bind the runtime API: {e}"))?;
    let log_file =
        std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| format!("cannot reopen {}: {e}", log.display()))?;
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs(function_env(function, api.addr, upstream))
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err);
    let started = Instant::now();
    let mut child = Killed(
        command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?,
    );
    loop {
        tokio::select! {
            outcome = rx.recv() => {
                let Some(outcome) = outcome else {
                    return Err("the runtime API stopped".into());
                };
                let ms = outcome.at.duration_since(started).as_secs_f64() * 1000.0;
                let body: serde_json::Value =
                    serde_json::from_slice(&outcome.body).unwrap_or(serde_json::Value::Null);
                if outcome.kind != "response" {
                    return Err(format!(
                        "{} after {ms:.1} ms: {} (log: {})",
                        outcome.kind,
                        String::from_utf8_lossy(&outcome.body),
                        log.display()
                    ));
                }
                let status = match (body.get("statusCode"), body.get("isAuthorized")) {
                    (Some(code), _) => format!("HTTP {code}"),
                    (None, Some(ok)) => format!("isAuthorized {ok}"),
                    _ => "response".to_owned(),
                };
                return Ok((ms, status));
            }
            _ = tokio::time::sleep(Duration::from_millis(5)) => {
                if let Ok(Some(exit)) = child.0.try_wait() {
                    return Err(format!(
                        "{name} exited ({exit}) before answering; see {}",
                        log.display()
                    ));
                }
                if started.elapsed() > START_LIMIT {
                    return Err(format!(
                        "{name} did not answer within {} s; see {}",
                        START_LIMIT.as_secs(),
                        log.display()
                    ));
                }
            }
        }
    }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(msg) => {
            eprintln!("coldstart: {msg}");
            return ExitCode::from(2);
        }
    };
    let upstream = match fake_upstream().await {
        Ok(served) => served,
        Err(e) => {
            eprintln!("coldstart: cannot bind the fake upstream: {e}");
            return ExitCode::FAILURE;
        }
    };
    let log_dir = std::env::temp_dir().join("gatehouse-coldstart");
    if let Err(e) = std::fs::create_dir_all(&log_dir) {
        eprintln!("coldstart: cannot create {}: {e}", log_dir.display());
        return ExitCode::FAILURE;
    }
    println!(
        "cold start = process spawn -> first response POSTed to the runtime API; {} runs each, binaries in {}",
        opts.runs,
        opts.bin_dir.display()
    );
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>9}  {:<18} event",
        "function", "median ms", "min ms", "max ms", "size MB", "answer"
    );
    let mut failed = false;
    let mut over_target = Vec::new();
    for &(function, ref event_path) in &opts.functions {
        let name = function.name();
        let binary = opts.bin_dir.join(name);
        let event_path = match event_path {
            Some(path) => path.clone(),
            None => match default_event(&opts.events_dir, function) {
                Ok(path) => path,
                Err(msg) => {
                    println!("{name:<16} FAILED: {msg}");
                    failed = true;
                    continue;
                }
            },
        };
        let event = match std::fs::read(&event_path) {
            Ok(bytes) => Bytes::from(bytes),
            Err(e) => {
                println!(
                    "{name:<16} FAILED: cannot read {}: {e}",
                    event_path.display()
                );
                failed = true;
                continue;
            }
        };
        let size_mb = std::fs::metadata(&binary)
            .map(|m| m.len() as f64 / 1_048_576.0)
            .unwrap_or(f64::NAN);
        let log = log_dir.join(format!("{name}.log"));
        let mut times = Vec::with_capacity(opts.runs);
        let mut answer = String::new();
        let mut error = None;
        for _ in 0..opts.runs {
            match one_start(function, &binary, &event, upstream.addr, &log).await {
                Ok((ms, status)) => {
                    times.push(ms);
                    answer = status;
                }
                Err(msg) => {
                    error = Some(msg);
                    break;
                }
            }
        }
        if let Some(msg) = error {
            println!("{name:<16} FAILED: {msg}");
            failed = true;
            continue;
        }
        times.sort_by(f64::total_cmp);
        let med = median(&times);
        if med > opts.target_ms {
            over_target.push(format!("{name} ({med:.1} ms)"));
        }
        println!(
            "{name:<16} {med:>9.1} {:>9.1} {:>9.1} {size_mb:>9.2}  {answer:<18} {}",
            times[0],
            times[times.len() - 1],
            event_path.display()
        );
    }
    if over_target.is_empty() {
        println!(
            "target: median <= {} ms for every function: met",
            opts.target_ms
        );
    } else {
        println!(
            "target: median <= {} ms: MISSED by {}",
            opts.target_ms,
            over_target.join(", ")
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
