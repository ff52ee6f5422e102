#![no_main]
//! The challenge at the door: see `Rig::door` in
//! tests/support/fuzz_harness.rs for the input format and the checks.

#[path = "../../tests/support/fuzz_harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
static RIG: std::sync::LazyLock<harness::Rig> = std::sync::LazyLock::new(harness::Rig::new);

fuzz_target!(|data: &[u8]| {
    RIG.door(data);
});
