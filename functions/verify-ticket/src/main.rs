//! `POST /ticket/verify`: checks a Tencent Cloud Captcha ticket once.

use std::sync::Arc;

use gatehouse::clock::Clock;
use gatehouse::store::dynamo::DynamoStore;
use gatehouse::tencent::{self, TencentConfig, TicketService};
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = TencentConfig::from_env()?;
    let store = Arc::new(DynamoStore::from_env().await?);
    let svc: &'static TicketService = Box::leak(Box::new(TicketService::new(
        config,
        store,
        Clock::system(),
    )?));
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(tencent::verify_ticket(svc, req).await)
    }))
    .await
}
