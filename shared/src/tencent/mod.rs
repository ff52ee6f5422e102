//! Tencent Cloud Captcha: server-side verification of the `ticket`/`randstr`
//! that the captcha front end (web, app, or the captcha mini-program
//! `wx5a3a7366fd07e119`) hands the client, once per ticket.
//!
//! - [`tc3`]: the TC3-HMAC-SHA256 request signature.
//! - [`client`]: configuration and the signed API call.
//! - [`service`]: the replay guard, the verdict mapping and the handler.

pub mod client;
pub mod service;
pub mod tc3;

pub use client::{TencentConfig, TencentConfigError};
pub use service::{TicketService, TicketVerified, verify_ticket};
