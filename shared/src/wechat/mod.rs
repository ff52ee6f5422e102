//! WeChat mini-program login: `jscode2session`, our own session tokens, the
//! user-data checks, and the HTTP API authorizer.
//!
//! - [`config::WxConfig`] reads `WX_APPID`, `WX_SECRET`, `WX_API_BASE` and
//!   `SESSION_TTL_SECONDS` once, at start-up.
//! - [`client::WxClient`] calls `jscode2session` (5 s time-out, errcode -1
//!   retried at most twice with backoff) and maps every errcode to an
//!   [`ApiError`](crate::ApiError).
//! - [`service::LoginService`] turns a code into a session token;
//!   [`service::SessionService`] checks or ends a token. [`routes`] holds the
//!   handlers of `POST /wx/login` and `GET`/`DELETE /wx/session`; the
//!   Lambda authorizer that checks sessions for protected routes is
//!   [`crate::guard::authorizer`].
//!
//! Neither `WX_SECRET` nor a `session_key` is ever logged or sent to a client:
//! both are held in [`Secret`](crate::secret::Secret), whose `Debug` and
//! `Display` print `***`.

pub mod client;
pub mod config;
pub mod crypto;
pub mod routes;
pub mod service;

pub use client::{WxClient, WxSession};
pub use config::WxConfig;
pub use routes::{login, session};
pub use service::{LoginService, SessionService};
