//! `GET /wx/session` (check a token) and `DELETE /wx/session` (log out).

use std::sync::Arc;

use gatehouse::clock::Clock;
use gatehouse::store::dynamo::DynamoStore;
use gatehouse::wechat::{self, LoginService, WxConfig};
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = WxConfig::from_env()?;
    let store = Arc::new(DynamoStore::from_env().await?);
    let svc: &'static LoginService =
        Box::leak(Box::new(LoginService::new(config, store, Clock::system())?));
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(wechat::session(svc, req).await)
    }))
    .await
}
