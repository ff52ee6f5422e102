//! Support library of the end-to-end tests (crate gatehouse-e2e).

pub mod dynamodb_local;
pub mod fuzz_harness;
pub mod watch_backends;

pub use dynamodb_local::{DynamoLocal, LocalTable, TableDefinition, dynamodb_local};

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Runs each named `cases::<name>(Arc<dyn Store>)` of the calling test file
/// twice: on the embedded `MemoryStore` (module `memory`) and on a fresh
/// DynamoDB Local table (module `dynamo`), so both stores meet one suite.
#[macro_export]
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::cases::$case(std::sync::Arc::new(
                        gatehouse::store::memory::MemoryStore::new(),
                    ))
                    .await;
                }
            )*
        }

        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let table = $crate::dynamodb_local().await.fresh_table().await;
                    super::cases::$case(std::sync::Arc::new(table.store())).await;
                }
            )*
        }
    };
}

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
