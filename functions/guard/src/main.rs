//! Lambda `guard`: `GET /guard/status` (public), `POST /guard/check` and
//! `POST /guard/report` (IAM: for back ends), and the guarded example route
//! `POST /demo/guarded` behind the authorizer.

use gatehouse::api::Function;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::lambda::run(const { Function::Guard.lambda() }).await
}
