//! Lambda `refresh-captcha`: `POST /captcha/refresh`.

use gatehouse::captcha::{CaptchaService, refresh};
use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let service = CaptchaService::from_lambda_env().await?;
    lambda_http::run(service_fn(|req| async {
        Ok::<_, Error>(refresh(&service, req).await)
    }))
    .await
}
