//! Lambda `refresh-captcha`: `POST /captcha/refresh`.

use gatehouse::api::Function;
use gatehouse::captcha::{CaptchaService, refresh};
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let service = CaptchaService::from_lambda_env().await?;
    gatehouse::metrics::run_http(Function::RefreshCaptcha, |req| refresh(&service, req)).await
}
