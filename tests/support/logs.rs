//! Log capture for the tests that check what is (and is not) logged, one
//! capture per test: a subscriber of its own, the thread's default while
//! the capture lives (`tracing::subscriber::set_default`), so that the lines
//! another test logs at the same time, on its own thread, never reach it
//! and cannot satisfy its assertions.
//!
//! The thread is the test's: a test that captures runs on a current-thread
//! runtime (`#[tokio::test]`'s default), where every task it spawns (the
//! emulators' servers included) runs on that thread too. Installing a
//! dispatcher rebuilds the call sites' cached interest, so no event is
//! missed for an interest cached while nothing was capturing.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;

/// Where one capture's lines go.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Records every event (every level) logged on this thread while it lives.
pub struct LogCapture {
    sink: Sink,
    _default: DefaultGuard,
}

/// Starts recording this thread's lines.
pub fn capture_logs() -> LogCapture {
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .with_ansi(false),
    );
    LogCapture {
        sink,
        _default: tracing::subscriber::set_default(subscriber),
    }
}

impl LogCapture {
    /// What was logged on this thread since this capture started.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.sink.0.lock().unwrap()).into_owned()
    }
}
