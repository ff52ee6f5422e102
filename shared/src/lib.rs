//! gatehouse: image captchas, WeChat mini-program login and Tencent Cloud
//! Captcha tickets for mini-program and uni-app back ends, as AWS Lambda
//! handlers over one store trait.
//!
//! # Layout
//!
//! A route is one row of the route table ([`api::ROUTES`]: method, path,
//! function, access, handler) and one async fn in its domain's `routes`
//! module, all of one shape: the handler parses the request into domain
//! values, a service method does the work (rate limits included), and
//! [`http::respond`] maps the result into uniCloud's envelope. Every service
//! is built once, from its settings, the store traits it uses and one
//! [`options::ServiceOptions`] (rate limits, clock, upstream time-out).
//! Every Lambda (`functions/*/main.rs`, one call to [`lambda::run`]), the
//! dev server (`local/`) and the tests dispatch through that table to the
//! very same handlers.
//!
//! | route | handler | service |
//! |---|---|---|
//! | `POST /captcha/create`, `/refresh`, `/verify` | [`captcha::routes`] | [`captcha::CaptchaService`] |
//! | `POST /wx/login`, `GET`/`DELETE /wx/session`, `DELETE /wx/sessions`, `POST /wx/session/refresh`, `GET /me` | [`wechat::routes`] | [`wechat::LoginService`], [`wechat::SessionService`] |
//! | `POST /wx/phone` | [`wechat::routes`] | [`wechat::PhoneService`] (with [`wechat::AccessTokens`]) |
//! | `POST /ticket/verify` | [`tencent::routes`] | [`tencent::TicketService`] |
//! | `GET /guard/status`, `POST /guard/check`, `/guard/report`, `/demo/guarded` | [`guard::routes`] | [`guard::Guard`] |
//! | the Lambda authorizer (`GUARD_ROUTES` and session-protected routes) | [`guard::authorizer`] | [`guard::Guard`], [`wechat::SessionService`] |
//!
//! - [`api`]: the route table (method, path, function, access, handler),
//!   the [`api::Services`] every handler gets, and the dispatch under a
//!   route's deadline; `template.yaml` is tested against it.
//! - [`lambda`]: every function's `main` in one call, [`lambda::run`]:
//!   logging, metrics, its services from its environment, and every request
//!   routed through its own rows under its deadline, measured. Each
//!   function's start-up and rows are picked at compile time, so a
//!   binary links its own domain only.
//! - [`store`]: one narrow trait per kind of row (sessions, each user's
//!   session index, the shared access token …) and the set of them each
//!   service holds ([`store::GuardStore`]: counters and passes …), on
//!   DynamoDB ([`store::dynamo`]) or in memory ([`store::memory`]).
//! - [`error`]: the one error type, mapped to errCode, HTTP status and a
//!   zh/en message in one table; [`http`]: the envelope and request helpers;
//!   [`lang`]: the client's language.
//! - [`config`]: configuration errors and the JSON toolkit every config
//!   block is read with ([`config::blocks`]: `CAPTCHA_CONFIG` read once,
//!   each domain parsing its own part); [`settings`]: the parts each
//!   function reads; [`secret`]: values never logged; [`secrets`]: the
//!   WeChat and Tencent secrets from AWS Secrets Manager at start-up;
//!   [`domain`]: the values checked at the boundary ([`domain::Scene`],
//!   [`domain::DeviceId`]).
//! - [`door`]: the judge of the challenge brought to a door in place of a
//!   pass (an answer, a ticket), over the captcha and ticket services.
//! - [`deadline`]: one deadline per request, from the Lambda's own, so
//!   every function answers within its time-out.
//! - [`options`]: what every service takes besides its settings and store
//!   (the rate limits, without which no options exist; the clock; the
//!   upstream time-out); [`ratelimit`]: fixed-window limits; [`clock`]:
//!   injectable time; [`telemetry`]: Lambda logging; [`metrics`]:
//!   CloudWatch metrics (EMF), from plain values (a leaf: [`lambda`]
//!   records every request, and the [`metrics::Events`] a handler hands
//!   back in its response).

pub mod api;
pub mod captcha;
pub mod clock;
pub mod config;
pub mod deadline;
pub mod domain;
pub mod door;
pub mod error;
pub mod guard;
pub mod http;
pub mod lambda;
pub mod lang;
pub mod metrics;
pub mod options;
pub mod ratelimit;
pub mod secret;
pub mod secrets;
pub mod settings;
pub mod sms;
pub mod store;
pub mod telemetry;
pub mod tencent;
pub mod wechat;

pub use error::{ApiError, StoreError};
