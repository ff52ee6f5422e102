//! Log capture for the tests that check what is (and is not) logged.
//!
//! One global subscriber, installed on first use, so no event is missed for
//! a call-site interest that another test thread cached (installing a global
//! dispatcher rebuilds that cache; a thread-scoped one does not). It records
//! every event at every level, but only while a [`LogCapture`] is alive, so
//! the rest of the suite neither pays for formatting nor fills the buffer.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::Metadata;
use tracing::subscriber::Interest;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Live captures; events are recorded only while it is above zero.
static CAPTURING: AtomicUsize = AtomicUsize::new(0);
static SINK: OnceLock<CapturedLogs> = OnceLock::new();

/// A log sink that tests read back to check what was (not) logged.
#[derive(Clone, Default)]
pub struct CapturedLogs(pub Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Passes every event while a capture is alive. Its interest is always
/// "sometimes", so the decision is taken per event and never cached for a
/// call site while nothing was capturing.
struct WhileCapturing;

impl<S> Filter<S> for WhileCapturing {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        CAPTURING.load(Ordering::SeqCst) > 0
    }

    fn callsite_enabled(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
}

/// Records every log line of this process while it lives (lines of tests
/// running at the same time included).
pub struct LogCapture {
    sink: CapturedLogs,
    start: usize,
}

/// Starts recording.
pub fn capture_logs() -> LogCapture {
    let sink = SINK
        .get_or_init(|| {
            let sink = CapturedLogs::default();
            let writer = sink.clone();
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_filter(WhileCapturing);
            tracing_subscriber::registry().with(layer).init();
            sink
        })
        .clone();
    CAPTURING.fetch_add(1, Ordering::SeqCst);
    let start = sink.0.lock().unwrap().len();
    LogCapture { sink, start }
}

impl LogCapture {
    /// What was logged since this capture started.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.sink.0.lock().unwrap()[self.start..]).into_owned()
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        CAPTURING.fetch_sub(1, Ordering::SeqCst);
    }
}
