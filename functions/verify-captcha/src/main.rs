//! Lambda `verify-captcha`: `POST /captcha/verify`.

use gatehouse::api::Function;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::lambda::run(const { Function::VerifyCaptcha.lambda() }).await
}
