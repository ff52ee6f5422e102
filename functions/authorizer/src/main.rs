//! Lambda `authorizer`: the HTTP API Lambda authorizer (payload 2.0, simple
//! responses) in front of guarded routes (`GUARD_ROUTES`: a pass, a session
//! or both) and session-protected ones (a live bearer session). Needs the
//! table and the configuration: no WeChat or Tencent secret.

use gatehouse::api::Function;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::lambda::run(const { Function::Authorizer.lambda() }).await
}
