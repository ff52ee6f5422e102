//! Lambda `session`: `GET /wx/session` checks a token, `DELETE /wx/session`
//! ends it, `DELETE /wx/sessions` ends every session of its user,
//! `POST /wx/session/refresh` swaps it for a new one. Needs only the table:
//! no WeChat secret, and it never reads a `session_key`.

use gatehouse::api::Function;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::lambda::run(const { Function::Session.lambda() }).await
}
