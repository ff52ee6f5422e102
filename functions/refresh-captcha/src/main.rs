//! Lambda `refresh-captcha`: `POST /captcha/refresh`.

use gatehouse::api::Function;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::lambda::run(const { Function::RefreshCaptcha.lambda() }).await
}
