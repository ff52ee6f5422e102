//! Lambda `wx-phone`: `POST /wx/phone` exchanges the code of
//! `<button open-type="getPhoneNumber">` for the session user's phone
//! number, with the access token every instance shares through the table.

use gatehouse::wechat::{PhoneService, phone};
use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let service = PhoneService::from_lambda_env().await?;
    lambda_http::run(service_fn(|req| async {
        Ok::<_, Error>(phone(&service, req).await)
    }))
    .await
}
