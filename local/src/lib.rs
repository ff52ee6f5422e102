//! gatehouse-local: the one-process dev server, and the WeChat and Tencent
//! emulators that it and the tests talk to over loopback.

pub mod demo;
pub mod emulators;
pub mod serve;
pub mod server;
pub mod sigv4;
pub mod tc3_check;
pub mod tencent_emulator;
pub mod test_hooks;
pub mod wechat_emulator;
