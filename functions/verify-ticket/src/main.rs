//! Lambda `verify-ticket`: `POST /ticket/verify` checks a Tencent Cloud
//! Captcha ticket, once.

use gatehouse::api::Function;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::lambda::run(const { Function::VerifyTicket.lambda() }).await
}
