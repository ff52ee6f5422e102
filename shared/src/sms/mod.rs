//! SMS verification codes behind the guard: the other half of uniCloud's
//! `opendb-verify-codes` (uni-id's `sendSmsCode` / `loginBySms`).
//!
//! - [`mobile`]: the number, parsed once into E.164 ([`Mobile`]).
//! - [`code`]: six digits from the CSPRNG, and the keyed hash that is all
//!   the table holds of one.
//! - [`config`]: `SMS_*` and the Tencent key ([`SmsConfig`]), and each
//!   scene's `sms` block ([`SmsSettings`]).
//! - [`client`]: Tencent Cloud's `SendSms`.
//! - [`service`]: the send (a door of its scene's guard; the resend
//!   window, the per-number, per-IP and per-day limits and the scene's
//!   daily budget; Tencent's answer mapped) and the verify (one conditional
//!   write, a pass of kind `sms`); [`routes`]: `POST /sms/send` and
//!   `POST /sms/verify`.

pub mod client;
pub mod code;
pub mod config;
pub mod mobile;
pub mod routes;
pub mod service;

pub use config::{SmsConfig, SmsSettings};
pub use mobile::Mobile;
pub use service::{CodeSent, SmsRouteSettings, SmsSender, SmsTarget, SmsVerifier};
