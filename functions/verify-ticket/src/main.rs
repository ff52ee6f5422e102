//! Lambda `verify-ticket`: `POST /ticket/verify` checks a Tencent Cloud
//! Captcha ticket, once.

use gatehouse::tencent::{TicketService, verify_ticket};
use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let service = TicketService::from_lambda_env().await?;
    lambda_http::run(service_fn(|req| async {
        Ok::<_, Error>(verify_ticket(&service, req).await)
    }))
    .await
}
