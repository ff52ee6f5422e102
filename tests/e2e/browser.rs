//! The demo page in a real browser: Debian's headless Chromium, driven over
//! WebDriver (chromedriver), against gatehouse-local started in this process.
//!
//! It goes through every door the page shows, all through the JS client the
//! page loads from the dev server:
//!
//! - the sign-up guarded in adaptive mode: admitted with no captcha at
//!   first; after two wrong passwords refused, then the image captcha
//!   appears (a click loads a new one); the short way, the answer goes to
//!   the door with the sign-up: a wrong one is refused there and a new
//!   captcha asked for, the right one admits it (the door checked it: the
//!   guard context says `passKind: captcha`); after four failures the
//!   stand-in Tencent captcha appears, closing it leaves the 403, and
//!   solving it hands the door the callback object, whose ticket the door
//!   verifies with the emulator once and admits the sign-up;
//! - WeChat login against the emulator: a session token, `GET /me` with the
//!   emulator's openid, and a logout that ends the session server-side.
//!
//! The right captcha answer comes from the embedded store this test handed
//! the server, never through an HTTP route. Screenshots are saved under
//! `target/browser/`: `demo.png` (both doors passed, logged in),
//! `demo-captcha.png` and `demo-tencent.png`.
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
use gatehouse_local::emulators::Emulators;
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
                    "--window-size=900,1500",
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

/// Everything the test reads off the page, at once.
const PAGE_STATE: &str = r#"
const $ = (id) => document.getElementById(id);
const img = $('captcha-img');
const verdict = (el) => ({ n: Number(el.dataset.n || 0), cls: el.className, text: el.textContent });
return {
  ready: document.body.dataset.ready,
  device: $('device-id').textContent,
  client: performance.getEntriesByType('resource')
    .some((e) => new URL(e.name).pathname === '/gatehouse-client.js'),
  level: $('level').textContent,
  ladder: [...$('ladder').children].filter((li) => li.classList.contains('on')).map((li) => li.dataset.level),
  signup: verdict($('signup-result')),
  guard: $('signup-guard').textContent,
  panel: !$('captcha-panel').hidden,
  image: { loads: Number(img.dataset.loads || 0), width: img.complete ? img.naturalWidth : 0,
           src: img.getAttribute('src') || '' },
  captchaError: $('captcha-error').textContent,
  tencent: !!document.getElementById('tcaptcha-stand-in'),
  wx: verdict($('wx-result')),
  openid: $('wx-openid').textContent,
  stored: JSON.parse(localStorage.getItem('gatehouse:token') || 'null'),
};"#;

/// `state` for a message: the image's data URL cut short.
fn shown(state: &Value) -> Value {
    let mut state = state.clone();
    if let Some(src) = state.pointer_mut("/image/src")
        && let Some(text) = src.as_str()
    {
        *src = json!(format!("{:.40}… ({} characters)", text, text.len()));
    }
    state
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), Error> {
    if ok { Ok(()) } else { Err(what().into()) }
}

/// Polls the page until `done` holds for its state; returns that state.
async fn page_until(
    client: &Client,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value, Error> {
    wait_for(client, what, PAGE_STATE, done).await
}

/// A verdict after the `n` earlier ones in the status `key` (`signup`, `wx`).
fn verdict_after(key: &'static str, n: u64) -> impl Fn(&Value) -> bool {
    move |v| v[key]["n"].as_u64().is_some_and(|m| m > n)
}

fn str_of<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The guard context the page showed for the last admitted sign-up.
fn guard_of(state: &Value) -> Value {
    serde_json::from_str(str_of(state, "/guard")).unwrap_or(Value::Null)
}

/// Clicks `css` and waits for the next verdict in the status `key`.
async fn click_and_wait(client: &Client, css: &str, key: &'static str) -> Result<Value, Error> {
    let before = js(client, PAGE_STATE).await?[key]["n"]
        .as_u64()
        .unwrap_or(0);
    click(client, css).await?;
    page_until(
        client,
        &format!("the verdict after {css}"),
        verdict_after(key, before),
    )
    .await
}

fn loaded(n: u64) -> impl Fn(&Value) -> bool {
    move |v| v["image"]["loads"] == json!(n) && v["image"]["width"].as_u64().is_some_and(|w| w > 0)
}

async fn drive_demo(
    client: &Client,
    base: &str,
    store: &MemoryStore,
    emulators: &Emulators,
    out_dir: &Path,
) -> Result<(), Error> {
    // The page runs the package itself.
    let served = reqwest::get(format!("{base}gatehouse-client.js"))
        .await?
        .text()
        .await?;
    let package = std::fs::read_to_string(gatehouse_e2e::repo_path("clients/js/dist/index.mjs"))?;
    ensure(served == package, || {
        "/gatehouse-client.js is not clients/js/dist/index.mjs".into()
    })?;

    client.goto(base).await?;
    let state = page_until(client, "the page to be ready", |v| v["ready"] == "1").await?;
    ensure(state["client"] == true, || {
        "the page did not load /gatehouse-client.js".into()
    })?;
    ensure(
        state["level"] == "none" && state["ladder"] == json!(["none"]),
        || format!("a new device starts at level none: {}", shown(&state)),
    )?;
    let device = str_of(&state, "/device").to_owned();
    let scene = "demo";

    // 1. No failures yet: the sign-up needs no captcha.
    let state = click_and_wait(client, "#signup-submit", "signup").await?;
    let guard = guard_of(&state);
    ensure(
        state["signup"]["cls"] == "status ok"
            && guard["level"] == "none"
            && guard.get("passKind").is_none(),
        || {
            format!(
                "the first sign-up did not pass without a captcha: {}",
                shown(&state)
            )
        },
    )?;
    ensure(
        state["panel"] == false && store.captcha(scene, &device).is_none(),
        || "a captcha was shown where none was needed".into(),
    )?;

    // Two wrong passwords: the level rises to image.
    click_and_wait(client, "#wrong-password", "signup").await?;
    let state = click_and_wait(client, "#wrong-password", "signup").await?;
    ensure(
        state["level"] == "image" && state["ladder"] == json!(["image"]),
        || {
            format!(
                "two failures did not raise the level to image: {}",
                shown(&state)
            )
        },
    )?;

    // The sign-up is refused, the client asks the guard, the captcha appears.
    let before = state["signup"]["n"].as_u64().unwrap_or(0);
    click(client, "#signup-submit").await?;
    let first = page_until(client, "the captcha the guard asks for", |v| {
        v["panel"] == true && loaded(1)(v)
    })
    .await?;
    let first_src = str_of(&first, "/image/src").to_owned();
    ensure(first_src.starts_with("data:image/png;base64,"), || {
        format!("the image is not a PNG data URL: {first_src:.60}")
    })?;
    ensure(store.captcha(scene, &device).is_some(), || {
        format!("no captcha stored for scene {scene:?}, device {device:?}")
    })?;
    // A click on the image loads a new one.
    click(client, "#captcha-img").await?;
    let second = page_until(client, "a new image after the click", loaded(2)).await?;
    ensure(str_of(&second, "/image/src") != first_src, || {
        "the click loaded the very same image".into()
    })?;
    // A wrong answer goes to the door with the sign-up (the short way: no
    // verify), which refuses it; the page asks again: a new captcha, and
    // why.
    let record = store
        .captcha(scene, &device)
        .ok_or("the refreshed captcha is not stored")?;
    let wrong: String = record
        .code
        .chars()
        .map(|c| if c == 'z' { 'y' } else { 'z' })
        .collect();
    type_text(client, "#answer", &wrong).await?;
    click(client, "#verify").await?;
    let failed = page_until(client, "the reply to a wrong answer", |v| {
        v["captchaError"]
            .as_str()
            .is_some_and(|t| t.contains("refused"))
            && v["panel"] == true
            && loaded(1)(v)
    })
    .await?;
    ensure(
        str_of(&failed, "/captchaError").contains("The door refused that answer"),
        || {
            format!(
                "the page does not say the door refused the answer: {}",
                failed["captchaError"]
            )
        },
    )?;
    screenshot(client, &out_dir.join("demo-captcha.png")).await?;
    // The right answer, read from the store, goes with the retried
    // sign-up; the door checks it and admits.
    let record = store
        .captcha(scene, &device)
        .ok_or("the new captcha is not stored")?;
    ensure(record.state == CaptchaState::Pending, || {
        format!("the new captcha is not pending: {:?}", record.state)
    })?;
    type_text(client, "#answer", &record.code).await?;
    click(client, "#verify").await?;
    let state = page_until(
        client,
        "the sign-up with a captcha pass",
        verdict_after("signup", before),
    )
    .await?;
    let guard = guard_of(&state);
    ensure(
        state["signup"]["cls"] == "status ok"
            && guard["passKind"] == "captcha"
            && guard["level"] == "image"
            && guard["deviceId"] == device.as_str(),
        || {
            format!(
                "the sign-up with a captcha pass was not admitted: {}",
                shown(&state)
            )
        },
    )?;
    ensure(state["panel"] == false, || {
        "the captcha panel stayed open".into()
    })?;
    let stored = store.captcha(scene, &device).map(|r| r.state);
    ensure(stored == Some(CaptchaState::Verified), || {
        format!("the store does not hold the captcha as verified: {stored:?}")
    })?;

    // Failures so far: two wrong passwords and one wrong answer. One more
    // wrong password makes four: the Tencent captcha.
    let state = click_and_wait(client, "#wrong-password", "signup").await?;
    ensure(
        state["level"] == "tencent" && state["ladder"] == json!(["tencent"]),
        || {
            format!(
                "four failures did not raise the level to tencent: {}",
                shown(&state)
            )
        },
    )?;
    // Closing the stand-in gives no pass: API Gateway's 403 stands.
    let before = state["signup"]["n"].as_u64().unwrap_or(0);
    click(client, "#signup-submit").await?;
    page_until(client, "the stand-in Tencent captcha", |v| {
        v["tencent"] == true
    })
    .await?;
    screenshot(client, &out_dir.join("demo-tencent.png")).await?;
    click(client, "#tcaptcha-stand-in-close").await?;
    let state = page_until(
        client,
        "the verdict after closing",
        verdict_after("signup", before),
    )
    .await?;
    ensure(
        state["signup"]["cls"] == "status fail"
            && str_of(&state, "/signup/text").contains("403")
            && state["tencent"] == false,
        || {
            format!(
                "closing the Tencent captcha did not leave the 403: {}",
                shown(&state)
            )
        },
    )?;
    // Solved, its ticket is verified with Tencent once, server-side, and
    // the ticket pass admits the sign-up.
    let tencent = emulators.tencent.as_ref().ok_or("no Tencent emulator")?;
    let calls = tencent.calls();
    let before = state["signup"]["n"].as_u64().unwrap_or(0);
    click(client, "#signup-submit").await?;
    page_until(client, "the stand-in Tencent captcha again", |v| {
        v["tencent"] == true
    })
    .await?;
    click(client, "#tcaptcha-stand-in-verify").await?;
    let state = page_until(
        client,
        "the sign-up with a ticket pass",
        verdict_after("signup", before),
    )
    .await?;
    let guard = guard_of(&state);
    ensure(
        state["signup"]["cls"] == "status ok"
            && guard["passKind"] == "ticket"
            && guard["level"] == "tencent"
            && guard["evilLevel"] == 0,
        || {
            format!(
                "the sign-up with a ticket pass was not admitted: {}",
                shown(&state)
            )
        },
    )?;
    ensure(tencent.calls() == calls + 1, || {
        format!(
            "{} calls to the Tencent API for one ticket",
            tencent.calls() - calls
        )
    })?;

    // 2. WeChat login through the client's own flow, against the emulator.
    let state = click_and_wait(client, "#wx-login", "wx").await?;
    let token = str_of(&state, "/stored/token").to_owned();
    ensure(
        state["wx"]["cls"] == "status ok" && token.len() == 43,
        || format!("wx.login did not keep a session token: {}", shown(&state)),
    )?;
    let state = click_and_wait(client, "#wx-me", "wx").await?;
    let wechat = emulators.wechat.as_ref().ok_or("no WeChat emulator")?;
    ensure(
        state["openid"] == wechat.openid_for("demo-newcomer").as_str(),
        || {
            format!(
                "GET /me did not show the emulator's openid: {}",
                shown(&state)
            )
        },
    )?;
    ensure(session_status(base, &token).await? == 200, || {
        "the page's token is not a live session".into()
    })?;
    // The risky user: WeChat rates the card's user 3, and the back end's
    // door (POST /guard/check with the session's openid) asks them for the
    // Tencent captcha, the rank among its reasons.
    let state = click_and_wait(client, "#wx-risky", "wx").await?;
    ensure(state["wx"]["cls"] == "status ok", || {
        format!("the emulator did not rate the user: {}", shown(&state))
    })?;
    let calls = tencent.calls();
    let before = state["wx"]["n"].as_u64().unwrap_or(0);
    click(client, "#wx-signup").await?;
    page_until(client, "the Tencent captcha for the risky user", |v| {
        v["tencent"] == true
    })
    .await?;
    click(client, "#tcaptcha-stand-in-verify").await?;
    let state = page_until(
        client,
        "the risky user's sign-up",
        verdict_after("wx", before),
    )
    .await?;
    let said = str_of(&state, "/wx/text");
    ensure(
        state["wx"]["cls"] == "status ok"
            && said.contains("your ticket pass (level tencent")
            && said.contains("wxRisk"),
        || {
            format!(
                "the risky user's sign-up did not go through the Tencent captcha: {}",
                shown(&state)
            )
        },
    )?;
    ensure(tencent.calls() == calls + 1, || {
        "the risky user's ticket was not verified with Tencent once".into()
    })?;
    // The newcomer's view: both doors passed, logged in.
    js(client, "window.scrollTo(0, 0); return null;").await?;
    screenshot(client, &out_dir.join("demo.png")).await?;
    let state = click_and_wait(client, "#wx-logout", "wx").await?;
    ensure(state["stored"].is_null(), || {
        format!("the token was kept after logout: {}", shown(&state))
    })?;
    ensure(session_status(base, &token).await? == 401, || {
        "the session lives on after logout".into()
    })?;

    Ok(())
}

/// `GET /wx/session` with `token`: its HTTP status.
async fn session_status(base: &str, token: &str) -> Result<u16, Error> {
    let resp = reqwest::Client::new()
        .get(format!("{base}wx/session"))
        .bearer_auth(token)
        .send()
        .await?;
    Ok(resp.status().as_u16())
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
    let (app, emulators) = App::from_env(store.clone())
        .await
        .expect("build the dev server's services");
    let app_guard = app.services.guard.clone();
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

    // The drive counts on the demo scene's level rising with its failures.
    let guard = app_guard.expect("the dev server's guard");
    gatehouse_e2e::clear_of_failure_window_end(&guard, "demo", Duration::from_secs(90)).await;
    let base = format!("http://{}/", served.addr);
    let outcome = tokio::time::timeout(
        DRIVE_LIMIT,
        drive_demo(&client, &base, &store, &emulators, &out_dir),
    )
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
