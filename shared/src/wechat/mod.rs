//! WeChat mini-program login: `jscode2session`, our own session tokens, the
//! user-data checks, the phone number and the shared access token.
//!
//! - [`config::WxConfig`] reads `WX_APPID`, `WX_SECRET`, `WX_API_BASE` and
//!   `SESSION_TTL_SECONDS` once, at start-up.
//! - [`client::WxClient`] calls `jscode2session`, `stable_token` and
//!   `getuserphonenumber` (5 s time-out, errcode -1 retried at most twice
//!   with backoff) and maps every errcode to an [`ApiError`](crate::ApiError).
//! - [`service::LoginService`] turns a code into a session token;
//!   [`sessions::SessionService`] checks, ends (one or all of a user's) and
//!   refreshes tokens; [`phone::PhoneService`] gets the user's phone number
//!   with the access token that [`token::AccessTokens`] shares between
//!   instances through the table. [`routes`] holds one handler per route.
//!   (The Lambda authorizer that checks sessions for protected routes is
//!   the guard's, [`crate::guard::authorizer`].)
//!
//! Neither `WX_SECRET`, a `session_key` nor the access token is ever logged
//! or sent to a client: each is held in [`Secret`](crate::secret::Secret),
//! whose `Debug` and `Display` print `***`.

pub mod client;
pub mod config;
pub mod crypto;
pub mod phone;
pub mod risk;
pub mod risk_rank;
pub mod routes;
pub mod service;
pub mod sessions;
pub mod token;

pub use client::{WxClient, WxSession};
pub use config::WxConfig;
pub use phone::PhoneService;
pub use routes::{check_session, end_session, end_sessions, login, phone, refresh_session};
pub use service::{LoginService, SessionService};
pub use token::AccessTokens;
