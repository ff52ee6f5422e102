//! Lambda `wx-login`: `POST /wx/login` exchanges a `wx.login` code for a
//! gatehouse session token.

use gatehouse::api::Function;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::lambda::run(const { Function::WxLogin.lambda() }).await
}
