//! Lambda `wx-login`: `POST /wx/login` exchanges a `wx.login` code for a
//! gatehouse session token.

use gatehouse::wechat::{LoginService, login};
use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let service = LoginService::from_lambda_env().await?;
    lambda_http::run(service_fn(|req| async {
        Ok::<_, Error>(login(&service, req).await)
    }))
    .await
}
