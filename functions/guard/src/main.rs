//! Lambda `guard`: `GET /guard/status` (public), `POST /guard/check` and
//! `POST /guard/report` (IAM: for back ends), and the guarded example route
//! `POST /demo/guarded` behind the authorizer.

use gatehouse::guard::{Guard, routes};
use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init();
    let guard = Guard::from_lambda_env().await?;
    lambda_http::run(service_fn(|req| async {
        Ok::<_, Error>(routes::handle(&guard, req).await)
    }))
    .await
}
