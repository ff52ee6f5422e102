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
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use gatehouse::store::CaptchaState;
use gatehouse::store::memory::MemoryStore;
use gatehouse_local::server::{self, App};
use serde_json::{Value, json};

/// How long any one wait (driver start, page state) may take before the test
/// gives up: a guard against hanging, not a performance assertion.
const WAIT_LIMIT: Duration = Duration::from_secs(30);
/// WebDriver's key for an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

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

/// chromedriver, killed when dropped.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(binary: &Path, log: &Path) -> Result<Self, String> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port for chromedriver: {e}"))?
            .port();
        let log_file = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let http = reqwest::Client::builder()
            .timeout(WAIT_LIMIT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let mut driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http,
        };
        let started = Instant::now();
        loop {
            if let Ok(resp) = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                && let Ok(status) = resp.json::<Value>().await
                && status["value"]["ready"] == json!(true)
            {
                return Ok(driver);
            }
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
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status();
        let value: Value = resp
            .json()
            .await
            .map_err(|e| format!("{method} {path}: not JSON: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "{method} {path}: HTTP {status}: {}",
                value["value"]
            ));
        }
        Ok(value["value"].clone())
    }

    async fn new_session(&self, chromium: &Path, profile: &Path) -> Result<Session<'_>, String> {
        let caps = json!({
            "capabilities": { "alwaysMatch": {
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
            }},
        });
        let value = self
            .call(reqwest::Method::POST, "/session", Some(caps))
            .await?;
        let id = value["sessionId"]
            .as_str()
            .ok_or(format!("no sessionId in {value}"))?
            .to_owned();
        Ok(Session { driver: self, id })
    }
}

/// One browser session.
struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.driver
            .call(
                reqwest::Method::POST,
                &format!("/session/{}{path}", self.id),
                Some(body),
            )
            .await
    }

    async fn goto(&self, url: &str) -> Result<(), String> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    async fn element(&self, css: &str) -> Result<String, String> {
        let value = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await?;
        value[ELEMENT_KEY]
            .as_str()
            .map(str::to_owned)
            .ok_or(format!("no element {css}: {value}"))
    }

    async fn click(&self, css: &str) -> Result<(), String> {
        let id = self.element(css).await?;
        self.post(&format!("/element/{id}/click"), json!({}))
            .await
            .map(drop)
    }

    async fn type_text(&self, css: &str, text: &str) -> Result<(), String> {
        let id = self.element(css).await?;
        self.post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await
            .map(drop)
    }

    async fn js(&self, script: &str) -> Result<Value, String> {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    /// Polls `script` until `done` holds for its value; returns that value.
    async fn wait_for(
        &self,
        what: &str,
        script: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let started = Instant::now();
        loop {
            let value = self.js(script).await?;
            if done(&value) {
                return Ok(value);
            }
            if started.elapsed() > WAIT_LIMIT {
                return Err(format!(
                    "gave up waiting for {what} after {} s; page state: {value}",
                    WAIT_LIMIT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self, path: &Path) -> Result<(), String> {
        let value = self
            .driver
            .call(
                reqwest::Method::GET,
                &format!("/session/{}/screenshot", self.id),
                None,
            )
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot is not base64: {e}"))?;
        std::fs::write(path, png).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    async fn delete(&self) {
        let _ = self
            .driver
            .call(
                reqwest::Method::DELETE,
                &format!("/session/{}", self.id),
                None,
            )
            .await;
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
    session: &Session<'_>,
    base: &str,
    store: &MemoryStore,
    out_dir: &Path,
) -> Result<(), String> {
    session.goto(base).await?;

    // The captcha image appears.
    let first = session
        .wait_for("the first captcha image", IMAGE_STATE, loaded(1))
        .await?;
    let first_src = first["src"].as_str().unwrap_or_default().to_owned();
    if !first_src.starts_with("data:image/png;base64,") {
        return Err(format!(
            "the image is not a PNG data URL: {:.60}",
            first_src
        ));
    }
    let device = session
        .js("return document.getElementById('device-id').textContent;")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let scene = session
        .js("return document.getElementById('scene').value;")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if store.captcha(&scene, &device).is_none() {
        return Err(format!(
            "no captcha stored for scene {scene:?}, device {device:?}"
        ));
    }

    // A click on the image loads a new one.
    session.click("#captcha-img").await?;
    let second = session
        .wait_for("a new image after the click", IMAGE_STATE, loaded(2))
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
    session.type_text("#answer", &wrong).await?;
    session.click("#verify").await?;
    let failed = session
        .wait_for("the reply to a wrong answer", RESULT_STATE, answered)
        .await?;
    let text = failed["text"].as_str().unwrap_or_default();
    if failed["cls"] != "fail" || !text.contains("uni-captcha-verify-fail") {
        return Err(format!(
            "the error shown is not uni-captcha-verify-fail: {text:?}"
        ));
    }
    // The page loads a new captcha after a failure.
    session
        .wait_for("the image loaded after the failure", IMAGE_STATE, loaded(3))
        .await?;

    // The right answer, read from the store, passes.
    let record = store
        .captcha(&scene, &device)
        .ok_or("the captcha after the failure is not in the store")?;
    if record.state != CaptchaState::Pending {
        return Err(format!(
            "the new captcha is not pending: {:?}",
            record.state
        ));
    }
    session.type_text("#answer", &record.code).await?;
    session.click("#verify").await?;
    let passed = session
        .wait_for("the reply to the right answer", RESULT_STATE, answered)
        .await?;
    if passed["cls"] != "ok" {
        return Err(format!("the right answer did not pass: {passed}"));
    }
    let state = store.captcha(&scene, &device).map(|r| r.state);
    if state != Some(CaptchaState::Verified) {
        return Err(format!(
            "the store does not hold the captcha as verified: {state:?}"
        ));
    }
    session.screenshot(&out_dir.join("demo.png")).await
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
    let session = driver
        .new_session(&chromium, &profile)
        .await
        .unwrap_or_else(|e| panic!("browser test: cannot start {}: {e}", chromium.display()));

    let base = format!("http://{}/", served.addr);
    let outcome = drive_demo(&session, &base, &store, &out_dir).await;
    if outcome.is_err() {
        let _ = session.screenshot(&out_dir.join("failure.png")).await;
    }
    session.delete().await;
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
