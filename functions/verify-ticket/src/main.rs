//! Lambda `verify-ticket`: `POST /ticket/verify` checks a Tencent Cloud
//! Captcha ticket, once.

use gatehouse::api::Function;
use gatehouse::tencent::{TicketService, verify_ticket};
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let service = TicketService::from_lambda_env().await?;
    gatehouse::metrics::run_http(Function::VerifyTicket, |req| verify_ticket(&service, req)).await
}
