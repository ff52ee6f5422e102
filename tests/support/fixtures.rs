//! Fixtures shared by the end-to-end tests.

use std::path::PathBuf;
use std::sync::LazyLock;

use gatehouse::clock::Clock;
use gatehouse::domain::{DeviceId, Scene};
use gatehouse::guard::pass::{PassToken, ip_net};
use gatehouse::store::{CaptchaRecord, CaptchaState, PassGrant, PassKind};

/// The fixtures' "now": a day after the test binary started. DynamoDB Local
/// really deletes rows whose TTL has passed, in the background, as DynamoDB
/// does; one binary runs every test for minutes, so a row dated by the real
/// start time could be gone before a late test reads it. A day ahead, no
/// fixture row expires in real time while the suite runs, and the stores
/// judge expiry by the `now_ms` they are given, never by the wall clock.
pub static NOW: LazyLock<i64> = LazyLock::new(|| Clock::system().now_ms() + 86_400_000);

/// How long a fixture captcha lives.
pub const CAPTCHA_LIFETIME_MS: i64 = 180_000;

/// A path of the repository, from its root.
pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The documentation, each file with its text: `README.md` (the front door)
/// and the guides of `docs/`, in the order of their names. The tests that
/// hold an example or a table to the code read it from here, from whichever
/// file holds it now.
pub fn docs() -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(repo_path("docs"))
        .expect("docs/")
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    names.sort();
    names.insert(0, "README.md".to_owned());
    names
        .into_iter()
        .map(|name| {
            let text =
                std::fs::read_to_string(repo_path(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, text)
        })
        .collect()
}

/// The text of the one documentation file (see [`docs`]) that holds
/// `needle`; panics when none does, or more than one (an example or table
/// the tests read must have one home).
pub fn doc_holding(needle: &str) -> String {
    let mut holders: Vec<(String, String)> = docs()
        .into_iter()
        .filter(|(_, text)| text.contains(needle))
        .collect();
    match holders.len() {
        1 => holders.pop().unwrap().1,
        0 => panic!("no documentation file holds {needle:?}"),
        _ => panic!(
            "{needle:?} is in several documentation files: {:?}",
            holders.iter().map(|(name, _)| name).collect::<Vec<_>>()
        ),
    }
}

pub fn scene(name: &str) -> Scene {
    Scene::parse(name).expect("a fixture scene name")
}

pub fn device(id: &str) -> DeviceId {
    DeviceId::parse(id).expect("a fixture device id")
}

/// A pending captcha for `scene` and `device` with answer `code`, created
/// [`NOW`] and living [`CAPTCHA_LIFETIME_MS`].
pub fn captcha(scene_name: &str, device_id: &str, code: &str) -> CaptchaRecord {
    CaptchaRecord {
        device_uuid: device(device_id),
        scene: scene(scene_name),
        code: code.to_owned(),
        state: CaptchaState::Pending,
        ip: "203.0.113.7".to_owned(),
        created_date: *NOW,
        expired_date: *NOW + CAPTCHA_LIFETIME_MS,
        attempts: 0,
    }
}

/// The pass a verify grants for `token` in `scene_name` (earned with
/// `device_id`, from `ip`) at [`NOW`], living five minutes; Tencent's word
/// (`evilLevel` 0) on a ticket's.
pub fn pass_grant(
    token: &PassToken,
    scene_name: &str,
    device_id: Option<&str>,
    ip: &str,
) -> PassGrant {
    PassGrant {
        kind: token.kind(),
        secret_hash: token.secret_hash(),
        scene: scene(scene_name),
        device: device_id.map(device),
        ip: Some(ip.to_owned()),
        ip_net: ip_net(Some(ip)),
        evil_level: (token.kind() == PassKind::Ticket).then_some(0),
        degraded: false,
        mobile: (token.kind() == PassKind::Sms)
            .then(|| gatehouse::sms::Mobile::parse("+8613800138000").unwrap()),
        created_ms: *NOW,
        expires_ms: *NOW + 300_000,
    }
}

/// Runs `n` attempts at once, each its own task (`attempt(i)` for the
/// `i`th); their outcomes, in order.
pub async fn race<T, Fut>(n: usize, attempt: impl Fn(usize) -> Fut) -> Vec<T>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(attempt(i))).collect();
    let mut outcomes = Vec::with_capacity(n);
    for task in tasks {
        outcomes.push(task.await.expect("a racing task ends"));
    }
    outcomes
}

/// How many of racing verifies of one right answer (`what`) passed; each
/// of the others must have found it no longer pending.
pub fn passes_of_racing_right_answers(
    outcomes: Vec<gatehouse::store::VerifyOutcome>,
    what: &str,
) -> usize {
    use gatehouse::store::VerifyOutcome::{NotPending, Passed};
    let mut passed = 0;
    for outcome in outcomes {
        match outcome {
            Passed => passed += 1,
            NotPending => {}
            other => panic!("a racing right {what} came to {other:?}"),
        }
    }
    passed
}
