//! The guard: a solved challenge (an image captcha or a Tencent ticket)
//! becomes a one-time pass that the business route redeems server-side, and
//! a challenge is asked for only when a client's failures or requests say
//! it is needed.
//!
//! - [`pass`]: the pass token a verify answers with (`passToken`,
//!   `passExpired`), stored only as a hash: the key of the pass's own row.
//! - [`config`]: per scene `guard` (`mode`, thresholds, window),
//!   `passTtlSeconds` and `tencent.enabled`; `GUARD_ROUTES` (each route a
//!   [`Door`]: its scene, pass rule and bindings).
//! - [`level`]: how the requests and failures a client's counters hold,
//!   the scene's mode and the door's rule make its level, and its reasons.
//! - [`wx_risk`]: a scene's `guard.wxRisk` block, and what a WeChat risk
//!   rank asks of a user.
//! - [`challenge`]: the challenge itself (an answer, a ticket) brought to
//!   a door in place of a pass, and the [`ChallengeJudge`] that spends it.
//! - [`service::Guard`]: the level a client must pass, the redemption of
//!   its pass, reported failures. Rust business Lambdas call it directly.
//! - [`authorizer`]: the Lambda authorizer in front of guarded (and
//!   session-protected) routes; [`routes`]: `GET /guard/status`,
//!   `POST /guard/check`, `POST /guard/report`, `POST /demo/guarded`.

pub mod authorizer;
pub mod challenge;
pub mod config;
mod counters;
pub mod level;
pub mod pass;
pub mod routes;
pub mod service;
pub mod wx_risk;

pub use authorizer::{
    Authorizer, AuthorizerRequest, AuthorizerResponse, Verdict, authorize, authorized_identity,
    authorized_phone_number, authorizer_context, judge, judge_within,
};
pub use challenge::{Challenge, ChallengeJudge, Judged};
pub use config::{Door, GuardConfig, GuardRoutes, Level, PassRule};
pub use level::{Counts, Reason, Reasons, Standing};
pub use service::{Admission, Client, Guard, IdempotencyKey, Proof, Refusal};
