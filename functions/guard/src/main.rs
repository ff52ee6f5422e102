//! Lambda `guard`: `GET /guard/status` (public), `POST /guard/check` and
//! `POST /guard/report` (IAM: for back ends), and the guarded example route
//! `POST /demo/guarded` behind the authorizer.

use gatehouse::api::Function;
use gatehouse::guard::{Guard, routes};
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let guard = Guard::from_lambda_env().await?;
    gatehouse::metrics::run_http(Function::Guard, |req| routes::handle(&guard, req)).await
}
