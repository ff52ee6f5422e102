//! Lambda `create-captcha`: `POST /captcha/create`.

use gatehouse::captcha::{CaptchaService, create};
use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let service = CaptchaService::from_lambda_env().await?;
    lambda_http::run(service_fn(|req| async {
        Ok::<_, Error>(create(&service, req).await)
    }))
    .await
}
