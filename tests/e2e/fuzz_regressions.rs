//! The fuzz corpus kept in `fuzz/corpus/<target>/` (seeds and the inputs
//! libFuzzer found that reached new code), replayed through the same harness
//! as the cargo-fuzz targets (`tests/support/fuzz_harness.rs`): no panic, a
//! well-formed envelope, no 5xx but 503 (and 502 from the deliberately
//! unreachable WeChat and Tencent). Runs in seconds, so CI checks it on every
//! build; `fuzz/README.md` tells how to fuzz for longer.

use std::collections::BTreeSet;
use std::path::PathBuf;

use gatehouse_e2e::fuzz_harness::{self, Rig};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = gatehouse_e2e::repo_path("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect()
}

/// Runs every kept input; returns the statuses the route answered with.
fn replay(target: &str, run: impl Fn(&[u8]) -> Vec<u16>) -> BTreeSet<u16> {
    let mut statuses = BTreeSet::new();
    for (path, data) in corpus(target) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data)));
        match result {
            Ok(answers) => statuses.extend(answers),
            Err(panic) => {
                eprintln!("corpus input {} failed", path.display());
                std::panic::resume_unwind(panic);
            }
        }
    }
    statuses
}

/// The corpus reaches every answer that matters, not only the parse errors.
fn assert_reaches(target: &str, statuses: &BTreeSet<u16>, wanted: &[u16]) {
    for status in wanted {
        assert!(
            statuses.contains(status),
            "{target}: no kept input answers {status} (got {statuses:?})"
        );
    }
}

// Each test builds its own rig (and tokio runtime) on a plain thread: the
// harness blocks on its runtime, as libFuzzer's driver does.

#[test]
fn captcha_request_corpus() {
    let rig = Rig::new();
    let statuses = replay("captcha_request", |d| rig.captcha(d));
    assert_reaches("captcha_request", &statuses, &[200, 400, 404, 429]);
}

#[test]
fn wx_login_request_corpus() {
    let rig = Rig::new();
    let statuses = replay("wx_login_request", |d| rig.wx_login(d));
    assert_reaches("wx_login_request", &statuses, &[400, 429, 502]);
}

#[test]
fn session_request_corpus() {
    let rig = Rig::new();
    let statuses = replay("session_request", |d| rig.session(d));
    assert_reaches("session_request", &statuses, &[401, 405]);
}

#[test]
fn wx_phone_request_corpus() {
    let rig = Rig::new();
    let statuses = replay("wx_phone_request", |d| rig.wx_phone(d));
    assert_reaches("wx_phone_request", &statuses, &[400, 401, 429, 502]);
}

#[test]
fn ticket_request_corpus() {
    let rig = Rig::new();
    let statuses = replay("ticket_request", |d| rig.ticket(d));
    assert_reaches("ticket_request", &statuses, &[400, 429, 502]);
}

#[test]
fn sms_send_request_corpus() {
    let rig = Rig::new();
    let statuses = replay("sms_send_request", |d| rig.sms_send(d));
    assert_reaches("sms_send_request", &statuses, &[400, 403, 429, 502]);
}

#[test]
fn sms_verify_request_corpus() {
    let rig = Rig::new();
    let statuses = replay("sms_verify_request", |d| rig.sms_verify(d));
    assert_reaches("sms_verify_request", &statuses, &[400, 429]);
}

#[test]
fn guard_request_corpus() {
    let rig = Rig::new();
    let statuses = replay("guard_request", |d| rig.guard(d));
    assert_reaches("guard_request", &statuses, &[200, 400, 403]);
}

#[test]
fn authorizer_request_corpus() {
    let rig = Rig::new();
    replay("authorizer_request", |d| {
        rig.authorizer(d);
        Vec::new()
    });
}

#[test]
fn door_request_corpus() {
    let rig = Rig::new();
    replay("door_request", |d| {
        rig.door(d);
        Vec::new()
    });
}

#[test]
fn config_parse_corpus() {
    replay("config_parse", |d| {
        fuzz_harness::config(d);
        Vec::new()
    });
}

/// The kept corpus drives what the guard's newer inputs reach, not only
/// what the fuzzer happened to find: `GUARD_ROUTES` with `bindDevice` and
/// `bindIp` (config_parse), `POST /guard/check` with `idempotencyKey`, and
/// malformed device ids in the body, the header and the query
/// (guard_request), and a malformed `X-Device-Id` at the authorizer; the
/// challenge at the door (issue 22): an answer, a ticket, Tencent's callback
/// object at `/guard/check`, and non-UTF-8, mixed and lone challenge headers
/// (door_request).
#[test]
fn the_corpus_covers_the_guards_newer_keys() {
    let has = |target: &str, needle: &[u8]| {
        corpus(target)
            .iter()
            .any(|(_, data)| data.windows(needle.len()).any(|w| w == needle))
    };
    for (target, needle) in [
        ("config_parse", &b"\"bindDevice\": true"[..]),
        ("config_parse", b"\"bindIp\": true"),
        ("config_parse", b"\"bindIp\": \"yes\""),
        ("guard_request", b"\"idempotencyKey\":\"order-1\""),
        ("guard_request", b"\"idempotencyKey\":\"a b\""),
        ("guard_request", b"\"deviceId\":\"Y Z\""),
        ("guard_request", b"x-device-id:Y Z"),
        ("guard_request", b"?scene=demo&deviceId=\x00"),
        ("authorizer_request", b"\"x-device-id\": \"Y Z\""),
        ("authorizer_request", b"\"POST /bound\""),
        ("authorizer_request", b"\"x-gatehouse-captcha\": \"abcd\""),
        ("guard_request", b"\"captcha\":\"abcd\""),
        ("guard_request", b"\"ret\":0,\"ticket\""),
        ("guard_request", b"x-gatehouse-captcha:abcd"),
        ("door_request", b"x-gatehouse-captcha:ab\xff"),
        ("door_request", b"x-gatehouse-randstr:@xYz"),
        ("door_request", b"x-gatehouse-pass:"),
    ] {
        assert!(
            has(target, needle),
            "{target}: no kept input holds {}",
            String::from_utf8_lossy(needle)
        );
    }
}
