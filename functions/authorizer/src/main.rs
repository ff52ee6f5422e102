//! Lambda `authorizer`: the HTTP API Lambda authorizer (payload 2.0, simple
//! responses) in front of guarded routes (`GUARD_ROUTES`: a pass, a session
//! or both) and session-protected ones (a live bearer session). Needs the
//! table and the configuration: no WeChat or Tencent secret.

use gatehouse::guard::{Authorizer, AuthorizerRequest, authorize};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let authorizer = Authorizer::from_lambda_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<AuthorizerRequest>| async {
        Ok::<_, Error>(authorize(&authorizer, event.payload).await)
    }))
    .await
}
