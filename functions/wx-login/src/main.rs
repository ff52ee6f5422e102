//! Lambda `wx-login`: `POST /wx/login` exchanges a `wx.login` code for a
//! gatehouse session token.

use gatehouse::wechat::{LoginService, login};
use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let service = LoginService::from_lambda_env().await?;
    lambda_http::run(service_fn(|req| async {
        Ok::<_, Error>(login(&service, req).await)
    }))
    .await
}
