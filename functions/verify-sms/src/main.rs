//! Lambda `verify-sms`: `POST /sms/verify`, a code checked and spent in one
//! conditional write, a pass of kind `sms`.

use gatehouse::api::Function;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::lambda::run(const { Function::VerifySms.lambda() }).await
}
