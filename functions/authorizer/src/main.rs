//! Lambda `authorizer`: the HTTP API Lambda authorizer (payload 2.0, simple
//! responses) that admits a request whose bearer token is a live session.
//! Needs only the table: no WeChat secret.

use gatehouse::wechat::{AuthorizerRequest, SessionService, authorize};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let service = SessionService::from_lambda_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<AuthorizerRequest>| async {
        Ok::<_, Error>(authorize(&service, event.payload).await)
    }))
    .await
}
