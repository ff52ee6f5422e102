//! Lambda `create-captcha`: `POST /captcha/create`.

use gatehouse::api::Function;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::lambda::run(const { Function::CreateCaptcha.lambda() }).await
}
