//! gatehouse-local: the one-process dev server, and the WeChat, Tencent
//! captcha and Tencent SMS emulators that it and the tests talk to over
//! loopback.

pub mod demo;
pub mod emulators;
pub mod serve;
pub mod server;
pub mod sigv4;
pub mod sms_emulator;
pub mod tc3_api;
pub mod tc3_check;
pub mod tencent_emulator;
pub mod test_hooks;
pub mod wechat_emulator;
