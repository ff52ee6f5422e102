//! Lambda `verify-captcha`: `POST /captcha/verify`.

use gatehouse::api::Function;
use gatehouse::captcha::{CaptchaService, verify};
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let service = CaptchaService::from_lambda_env().await?;
    gatehouse::metrics::run_http(Function::VerifyCaptcha, |req| verify(&service, req)).await
}
