//! gatehouse: image captchas, WeChat mini-program login and Tencent Cloud
//! Captcha tickets for mini-program and uni-app back ends, as AWS Lambda
//! handlers over one store trait.

pub mod captcha;
pub mod clock;
pub mod error;
pub mod http;
pub mod ratelimit;
pub mod store;
pub mod telemetry;
pub mod tencent;
pub mod wechat;

pub use error::{ApiError, StoreError};
