//! Lambda `authorizer`: the HTTP API Lambda authorizer (payload 2.0, simple
//! responses) in front of guarded routes (`GUARD_ROUTES`: a pass, a session
//! or both) and session-protected ones (a live bearer session). Needs the
//! table and the configuration: no WeChat or Tencent secret.

use gatehouse::guard::{Authorizer, authorize_within};
use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let authorizer = Authorizer::from_lambda_env().await?;
    gatehouse::metrics::run_authorizer(|event, budget| authorize_within(&authorizer, event, budget))
        .await
}
