//! Lambda `wx-login`: `POST /wx/login` exchanges a `wx.login` code for a
//! gatehouse session token.

use gatehouse::api::Function;
use gatehouse::wechat::{LoginService, login};
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let service = LoginService::from_lambda_env().await?;
    gatehouse::metrics::run_http(Function::WxLogin, |req| login(&service, req)).await
}
