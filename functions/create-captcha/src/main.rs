//! Lambda `create-captcha`: `POST /captcha/create`.

use gatehouse::api::Function;
use gatehouse::captcha::{CaptchaService, create};
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let service = CaptchaService::from_lambda_env().await?;
    gatehouse::metrics::run_http(Function::CreateCaptcha, |req| create(&service, req)).await
}
