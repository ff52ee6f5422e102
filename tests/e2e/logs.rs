//! Log capture is per test (`gatehouse_e2e::capture_logs`): lines another
//! test logs at the same time, on its own thread, with or without a capture
//! of its own, never reach this one's. With one process-wide capture (as
//! before), this test's capture held the other test's lines, so a test
//! asserting that a line was logged could pass on another test's line.

use gatehouse_e2e::capture_logs;

#[test]
fn a_capture_holds_its_own_tests_lines_and_no_others() {
    let ours = capture_logs();
    tracing::warn!("a line of this test");
    std::thread::spawn(|| {
        let theirs = capture_logs();
        tracing::warn!("a line of another test");
        let text = theirs.text();
        assert!(text.contains("a line of another test"), "{text}");
        assert!(!text.contains("a line of this test"), "{text}");
    })
    .join()
    .unwrap();
    std::thread::spawn(|| tracing::error!("a line of an uncaptured test"))
        .join()
        .unwrap();
    tracing::info!("another line of this test");

    let text = ours.text();
    assert!(text.contains("a line of this test"), "{text}");
    assert!(text.contains("another line of this test"), "{text}");
    assert!(!text.contains("another test"), "{text}");
    assert!(!text.contains("uncaptured"), "{text}");
}

#[test]
fn a_capture_ends_with_its_guard() {
    let first = capture_logs();
    tracing::warn!("while the first capture lives");
    let kept = first.text();
    drop(first);
    let second = capture_logs();
    tracing::warn!("after the first capture ended");
    assert!(kept.contains("while the first capture lives"), "{kept}");
    assert!(
        !second.text().contains("while the first"),
        "{}",
        second.text()
    );
    assert!(second.text().contains("after the first capture ended"));
}
