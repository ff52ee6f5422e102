//! The fuzz corpus kept in `fuzz/corpus/<target>/` (seeds and the inputs
//! libFuzzer found that reached new code), replayed through the same harness
//! as the cargo-fuzz targets (`tests/support/fuzz_harness.rs`): no panic, a
//! well-formed envelope, no 5xx but 503 (and 502 from the deliberately
//! unreachable WeChat and Tencent). Runs in seconds, so CI checks it on every
//! build; `fuzz/README.md` tells how to fuzz for longer.

use std::path::PathBuf;

use gatehouse_e2e::fuzz_harness::{self, Rig};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
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

fn replay(target: &str, run: impl Fn(&[u8])) {
    for (path, data) in corpus(target) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data)));
        if let Err(panic) = result {
            eprintln!("corpus input {} failed", path.display());
            std::panic::resume_unwind(panic);
        }
    }
}

// Each test builds its own rig (and tokio runtime) on a plain thread: the
// harness blocks on its runtime, as libFuzzer's driver does.

#[test]
fn captcha_request_corpus() {
    let rig = Rig::new();
    replay("captcha_request", |d| rig.captcha(d));
}

#[test]
fn wx_login_request_corpus() {
    let rig = Rig::new();
    replay("wx_login_request", |d| rig.wx_login(d));
}

#[test]
fn session_request_corpus() {
    let rig = Rig::new();
    replay("session_request", |d| rig.session(d));
}

#[test]
fn ticket_request_corpus() {
    let rig = Rig::new();
    replay("ticket_request", |d| rig.ticket(d));
}

#[test]
fn config_parse_corpus() {
    replay("config_parse", fuzz_harness::config);
}
