//! Lambda `wx-phone`: `POST /wx/phone` exchanges the code of
//! `<button open-type="getPhoneNumber">` for the session user's phone
//! number, with the access token every instance shares through the table.

use gatehouse::api::Function;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::lambda::run(const { Function::WxPhone.lambda() }).await
}
