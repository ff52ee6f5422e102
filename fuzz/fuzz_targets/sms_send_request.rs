#![no_main]
//! See tests/support/fuzz_harness.rs for the input format and the checks.

#[path = "../../tests/support/fuzz_harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
static RIG: std::sync::LazyLock<harness::Rig> = std::sync::LazyLock::new(harness::Rig::new);

fuzz_target!(|data: &[u8]| {
    let _ = RIG.sms_send(data);
});
