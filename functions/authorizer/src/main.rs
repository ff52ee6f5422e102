//! HTTP API Lambda authorizer (payload 2.0, simple responses): admits a
//! request whose bearer token is a live session.

use std::sync::Arc;

use gatehouse::clock::Clock;
use gatehouse::store::dynamo::DynamoStore;
use gatehouse::wechat::{self, AuthorizerRequest, LoginService, WxConfig};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = WxConfig::from_env()?;
    let store = Arc::new(DynamoStore::from_env().await?);
    let svc: &'static LoginService =
        Box::leak(Box::new(LoginService::new(config, store, Clock::system())?));
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<AuthorizerRequest>| async move {
            Ok::<_, Error>(wechat::authorize(svc, event.payload).await)
        },
    ))
    .await
}
