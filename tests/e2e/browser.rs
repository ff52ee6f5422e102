//! The demo page in a real browser: Debian's headless Chromium, driven over
//! WebDriver (chromedriver), against gatehouse-local started in this process.
//!
//! The captcha image must appear, a click on it must load a new one, a wrong
//! answer must show the error and the right answer must pass. The right
//! answer comes from the embedded store this test handed the server, never
//! through an HTTP route. A screenshot is saved as `target/browser/demo.png`.
//!
//! `scripts/test.sh` installs `chromium` and `chromium-driver`; without them
//! this test fails at once and says so. `CHROMIUM` and `CHROMEDRIVER` point
//! it at other binaries.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use gatehouse::store::CaptchaState;
use gatehouse::store::memory::MemoryStore;
use gatehouse_local::server::{self, App};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// How long any one wait (driver start, page state) may take before the test
/// gives up: a guard against hanging, not a performance assertion.
const WAIT_LIMIT: Duration = Duration::from_secs(30);
/// The whole drive, every WebDriver call included, is bounded by this.
const DRIVE_LIMIT: Duration = Duration::from_secs(180);

type Error = Box<dyn std::error::Error + Send + Sync>;

/// `target/` of this workspace (or `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// `$var` if set, else the first of `names` found on `PATH`.
fn find_program(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// chromedriver on a free loopback port, in a process group of its own so
/// that dropping it also ends any Chromium it started (a session that failed
/// half-way would otherwise leave the browser running).
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (process_group(0) below).
        let group = -(self.child.id() as libc::pid_t);
        // SAFETY: kill(2) with a negative pid signals that process group only.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts chromedriver and waits until it accepts connections.
    async fn start(binary: &Path, log: &Path) -> Result<Self, String> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port for chromedriver: {e}"))?
            .port();
        let log_file = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let child = Command::new(binary)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_err()
        {
            if let Ok(Some(exit)) = driver.child.try_wait() {
                return Err(format!(
                    "chromedriver exited ({exit}) before it was ready; see {}",
                    log.display()
                ));
            }
            if started.elapsed() > WAIT_LIMIT {
                return Err(format!(
                    "chromedriver not ready after {} s; see {}",
                    WAIT_LIMIT.as_secs(),
                    log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(driver)
    }

    /// A headless Chromium session with a fresh profile. chromedriver is
    /// plain HTTP on loopback, so no TLS connector.
    async fn session(&self, chromium: &Path, profile: &Path) -> Result<Client, Error> {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--lang=en-US",
                    "--window-size=800,800",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!("capabilities are a JSON object")
        };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        Ok(tokio::time::timeout(WAIT_LIMIT, builder.connect(&self.url))
            .await
            .map_err(|_| format!("no session after {} s", WAIT_LIMIT.as_secs()))??)
    }
}

async fn js(client: &Client, script: &str) -> Result<Value, Error> {
    Ok(client.execute(script, Vec::new()).await?)
}

async fn click(client: &Client, css: &str) -> Result<(), Error> {
    Ok(client.find(Locator::Css(css)).await?.click().await?)
}

async fn type_text(client: &Client, css: &str, text: &str) -> Result<(), Error> {
    Ok(client
        .find(Locator::Css(css))
        .await?
        .send_keys(text)
        .await?)
}

async fn screenshot(client: &Client, path: &Path) -> Result<(), Error> {
    let png = client.screenshot().await?;
    std::fs::write(path, png).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// Polls `script` until `done` holds for its value; returns that value.
/// (fantoccini's `Wait` only waits for elements and URLs; this needs the
/// page state, and says what it last saw when it gives up.)
async fn wait_for(
    client: &Client,
    what: &str,
    script: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value, Error> {
    let started = Instant::now();
    loop {
        let value = js(client, script).await?;
        if done(&value) {
            return Ok(value);
        }
        if started.elapsed() > WAIT_LIMIT {
            return Err(format!(
                "gave up waiting for {what} after {} s; page state: {value}",
                WAIT_LIMIT.as_secs()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The image's state: loads so far, decoded width, and its source.
const IMAGE_STATE: &str = "const i = document.getElementById('captcha-img'); \
     return { loads: Number(i.dataset.loads || 0), width: i.complete ? i.naturalWidth : 0, \
              src: i.getAttribute('src') || '' };";
/// The verdict shown; the page empties `#answer` once the reply is in.
const RESULT_STATE: &str = "const r = document.getElementById('result'); \
     return { cls: r.className, text: r.textContent, \
              answer: document.getElementById('answer').value };";

/// The reply to the answer just typed has been shown.
fn answered(v: &Value) -> bool {
    v["answer"] == "" && v["cls"] != ""
}

fn loaded(n: u64) -> impl Fn(&Value) -> bool {
    move |v| v["loads"] == json!(n) && v["width"].as_u64().is_some_and(|w| w > 0)
}

async fn drive_demo(
    client: &Client,
    base: &str,
    store: &MemoryStore,
    out_dir: &Path,
) -> Result<(), Error> {
    client.goto(base).await?;

    // The captcha image appears.
    let first = wait_for(client, "the first captcha image", IMAGE_STATE, loaded(1)).await?;
    let first_src = first["src"].as_str().unwrap_or_default().to_owned();
    if !first_src.starts_with("data:image/png;base64,") {
        return Err(format!("the image is not a PNG data URL: {:.60}", first_src).into());
    }
    let device = js(
        client,
        "return document.getElementById('device-id').textContent;",
    )
    .await?
    .as_str()
    .unwrap_or_default()
    .to_owned();
    let scene = js(client, "return document.getElementById('scene').value;")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if store.captcha(&scene, &device).is_none() {
        return Err(format!("no captcha stored for scene {scene:?}, device {device:?}").into());
    }

    // A click on the image loads a new one.
    click(client, "#captcha-img").await?;
    let second = wait_for(
        client,
        "a new image after the click",
        IMAGE_STATE,
        loaded(2),
    )
    .await?;
    if second["src"].as_str() == Some(first_src.as_str()) {
        return Err("the click loaded the very same image".into());
    }

    // A wrong answer shows the error (and voids that captcha).
    let record = store
        .captcha(&scene, &device)
        .ok_or("the refreshed captcha is not in the store")?;
    let wrong: String = record
        .code
        .chars()
        .map(|c| if c == 'z' { 'y' } else { 'z' })
        .collect();
    type_text(client, "#answer", &wrong).await?;
    click(client, "#verify").await?;
    let failed = wait_for(
        client,
        "the reply to a wrong answer",
        RESULT_STATE,
        answered,
    )
    .await?;
    let text = failed["text"].as_str().unwrap_or_default();
    if failed["cls"] != "fail" || !text.contains("uni-captcha-verify-fail") {
        return Err(format!("the error shown is not uni-captcha-verify-fail: {text:?}").into());
    }
    // The page loads a new captcha after a failure.
    wait_for(
        client,
        "the image loaded after the failure",
        IMAGE_STATE,
        loaded(3),
    )
    .await?;

    // The right answer, read from the store, passes.
    let record = store
        .captcha(&scene, &device)
        .ok_or("the captcha after the failure is not in the store")?;
    if record.state != CaptchaState::Pending {
        return Err(format!("the new captcha is not pending: {:?}", record.state).into());
    }
    type_text(client, "#answer", &record.code).await?;
    click(client, "#verify").await?;
    let passed = wait_for(
        client,
        "the reply to the right answer",
        RESULT_STATE,
        answered,
    )
    .await?;
    if passed["cls"] != "ok" {
        return Err(format!("the right answer did not pass: {passed}").into());
    }
    let state = store.captcha(&scene, &device).map(|r| r.state);
    if state != Some(CaptchaState::Verified) {
        return Err(format!("the store does not hold the captcha as verified: {state:?}").into());
    }
    screenshot(client, &out_dir.join("demo.png")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_in_headless_chromium() {
    let missing = |what: &str, var: &str| {
        format!(
            "browser test: {what} not found (set {var} or put it on PATH). \
             scripts/test.sh installs it: apt-get install chromium chromium-driver"
        )
    };
    let chromium = find_program(
        "CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    )
    .unwrap_or_else(|| panic!("{}", missing("chromium", "CHROMIUM")));
    let chromedriver = find_program("CHROMEDRIVER", &["chromedriver"])
        .unwrap_or_else(|| panic!("{}", missing("chromedriver", "CHROMEDRIVER")));

    let out_dir = target_dir().join("browser");
    std::fs::create_dir_all(&out_dir).expect("create target/browser");
    // chromedriver never sees the session of a profile path with `..` in it
    // (`tests/../target` when CARGO_TARGET_DIR is unset): use the real path.
    let out_dir = out_dir.canonicalize().expect("resolve target/browser");
    let profile = out_dir.join(format!("profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);

    let store = Arc::new(MemoryStore::new());
    // The dev server exactly as `cargo run -p gatehouse-local` builds it,
    // over a store this test keeps to read the answer from.
    let (app, _emulators) = App::from_env(store.clone())
        .await
        .expect("build the dev server's services");
    let served = server::start(app, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("start the dev server");

    let driver = Driver::start(&chromedriver, &out_dir.join("chromedriver.log"))
        .await
        .unwrap_or_else(|e| panic!("browser test: {e}"));
    let client = driver
        .session(&chromium, &profile)
        .await
        .unwrap_or_else(|e| panic!("browser test: cannot start {}: {e}", chromium.display()));

    let base = format!("http://{}/", served.addr);
    let outcome = tokio::time::timeout(DRIVE_LIMIT, drive_demo(&client, &base, &store, &out_dir))
        .await
        .unwrap_or_else(|_| Err(format!("no verdict after {} s", DRIVE_LIMIT.as_secs()).into()));
    if outcome.is_err() {
        let shot = out_dir.join("failure.png");
        let _ = tokio::time::timeout(WAIT_LIMIT, screenshot(&client, &shot)).await;
    }
    let _ = tokio::time::timeout(WAIT_LIMIT, client.close()).await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
    if let Err(e) = outcome {
        panic!(
            "browser test: {e} (screenshot: {})",
            out_dir.join("failure.png").display()
        );
    }
    assert!(out_dir.join("demo.png").is_file(), "no screenshot saved");
}
