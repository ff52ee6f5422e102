//! Lambda `session`: `GET /wx/session` checks a token, `DELETE /wx/session`
//! ends it, `DELETE /wx/sessions` ends every session of its user,
//! `POST /wx/session/refresh` swaps it for a new one. Needs only the table:
//! no WeChat secret, and it never reads a `session_key`.

use gatehouse::api::Function;
use gatehouse::wechat::{SessionService, session};
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let service = SessionService::from_lambda_env().await?;
    gatehouse::metrics::run_http(Function::Session, |req| session(&service, req)).await
}
