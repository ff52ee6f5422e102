//! Tencent Cloud Captcha: server-side verification of the `ticket`/`randstr`
//! that the captcha front end (web, app, or the captcha mini-program
//! `wx5a3a7366fd07e119`) hands the client, once per ticket.
//!
//! - [`config`]: credentials and the captcha app, and each scene's ticket
//!   policy (the `tencent` block of `CAPTCHA_CONFIG`), validated once.
//! - [`tc3`]: the TC3-HMAC-SHA256 request signature.
//! - [`api`]: one signed call of Tencent Cloud API 3.0, for every product.
//! - [`client`]: the Captcha API call.
//! - [`callback`]: Tencent's callback object, as posted whole.
//! - [`service`]: the replay guard, the per-IP limit and the verdict
//!   mapping; [`routes`]: the handler that parses requests for it.

pub mod api;
pub mod callback;
pub mod client;
pub mod config;
pub mod routes;
pub mod service;
pub mod tc3;

pub use config::TencentConfig;
pub use routes::verify_ticket;
pub use service::{TicketService, TicketSettings, TicketVerified};
