//! Lambda `send-sms`: `POST /sms/send`, a door of its scene's guard (the
//! pass decided in-process), one Tencent `SendSms` per code.

use gatehouse::api::Function;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::lambda::run(const { Function::SendSms.lambda() }).await
}
