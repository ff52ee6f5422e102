//! `POST /ticket/verify`: parses the ticket, randstr and client IP, then
//! [`TicketService::verify`] does the rest.

use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use super::callback::{AppIdField, Callback};
use super::service::{PresentedTicket, TicketService, TicketVerified};
use crate::domain::Scene;
use crate::error::ApiError;
use crate::http::{device_id, json_body, respond, source_ip};
use crate::lang::Lang;
use crate::metrics::Events;

/// Longest `ticket` accepted (real ones are a few hundred characters).
pub const MAX_TICKET_CHARS: usize = 2048;
/// Longest `randstr` accepted (real ones are about a dozen characters).
pub const MAX_RANDSTR_CHARS: usize = 128;

/// The request body of `POST /ticket/verify`: the ticket and randstr, or
/// Tencent's whole callback object as it comes (see [`super::callback`]);
/// any other field is refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct VerifyTicketRequest {
    pub ticket: Option<String>,
    pub randstr: Option<String>,
    /// The scene the pass is for (default `default`).
    #[serde(default)]
    pub scene: Option<String>,
    #[serde(default)]
    pub device_id: Option<String>,
    /// The callback's fields: `ret`, `appid`, `CaptchaAppId` are checked;
    /// `bizState` (the caller's own), `errorCode` and `errorMessage` are
    /// accepted and not read.
    #[serde(default)]
    pub ret: Option<i64>,
    #[serde(default)]
    pub appid: Option<AppIdField>,
    #[serde(default, rename = "CaptchaAppId")]
    pub captcha_app_id: Option<AppIdField>,
    #[serde(default)]
    pub biz_state: Option<serde_json::Value>,
    #[serde(default)]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub error_message: Option<String>,
}

impl VerifyTicketRequest {
    /// The callback's fields that decide anything.
    pub fn callback(&self) -> Callback<'_> {
        Callback {
            ret: self.ret,
            appid: self.appid.as_ref(),
            captcha_app_id: self.captcha_app_id.as_ref(),
        }
    }
}

/// The scene of a ticket that names none.
pub const DEFAULT_SCENE: &str = "default";

/// Checks a request body: the ticket (required) and the optional randstr,
/// trimmed; an empty randstr counts as none.
pub fn validate(body: &VerifyTicketRequest) -> Result<(&str, Option<&str>), ApiError> {
    let ticket = body
        .ticket
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::TicketRequired)?;
    check_field("ticket", ticket, MAX_TICKET_CHARS)?;
    let randstr = body
        .randstr
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if let Some(randstr) = randstr {
        check_field("randstr", randstr, MAX_RANDSTR_CHARS)?;
    }
    Ok((ticket, randstr))
}

fn check_field(name: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.len() > max {
        return Err(ApiError::InvalidRequest(format!(
            "{name} is longer than {max} characters"
        )));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::InvalidRequest(format!(
            "{name} may hold only visible ASCII characters"
        )));
    }
    Ok(())
}

/// `POST /ticket/verify` → `{errCode: 0, errMsg, passToken, passExpired,
/// evilLevel?}` or an error; Tencent's verdict rides along in the response's
/// [`Events`] for the metrics.
pub async fn verify_ticket(svc: &TicketService, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let mut events = Events::default();
    let mut resp = respond(lang, verify(svc, &req, &mut events).await);
    events.attach_to(&mut resp);
    resp
}

async fn verify(
    svc: &TicketService,
    req: &Request,
    events: &mut Events,
) -> Result<TicketVerified, ApiError> {
    let body: VerifyTicketRequest = json_body(req)?;
    body.callback().check(svc.config().captcha_app_id)?;
    let (ticket, randstr) = validate(&body)?;
    let Some(user_ip) = source_ip(req).filter(|ip| !ip.is_empty()) else {
        // API Gateway always sets it; a request without one did not come
        // through it (or the API is not an HTTP API): refuse it as input.
        tracing::error!("request has no requestContext.http.sourceIp: cannot send UserIp");
        return Err(ApiError::InvalidRequest(
            "the request carries no client IP (requestContext.http.sourceIp)".into(),
        ));
    };
    // The device is optional: a ticket pass then fits any device.
    let device = match device_id(body.device_id.as_deref(), req) {
        Ok(device) => Some(device),
        Err(ApiError::DeviceIdRequired) => None,
        Err(err) => return Err(err),
    };
    let presented = PresentedTicket {
        ticket: ticket.to_owned(),
        randstr: randstr.map(str::to_owned),
        scene: Scene::parse(body.scene.as_deref().unwrap_or(DEFAULT_SCENE))?,
        user_ip: user_ip.to_owned(),
        device,
    };
    svc.verify(&presented, events).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(ticket: Option<&str>, randstr: Option<&str>) -> VerifyTicketRequest {
        VerifyTicketRequest {
            ticket: ticket.map(str::to_owned),
            randstr: randstr.map(str::to_owned),
            ..VerifyTicketRequest::default()
        }
    }

    #[test]
    fn ticket_is_required_trimmed_and_bounded() {
        for missing in [None, Some(""), Some("   ")] {
            assert_eq!(
                validate(&body(missing, Some("r"))),
                Err(ApiError::TicketRequired)
            );
        }
        let good = body(Some(" t03abc* "), Some(" @xY "));
        assert_eq!(validate(&good), Ok(("t03abc*", Some("@xY"))));
        let no_randstr = body(Some("t"), Some(" "));
        assert_eq!(validate(&no_randstr), Ok(("t", None)));

        let at_cap = "t".repeat(MAX_TICKET_CHARS);
        assert!(validate(&body(Some(&at_cap), None)).is_ok());
        let long = "t".repeat(MAX_TICKET_CHARS + 1);
        let long_randstr = "r".repeat(MAX_RANDSTR_CHARS + 1);
        for bad in [
            body(Some(&long), None),
            body(Some("a b"), None),
            body(Some("t\u{7f}"), None),
            body(Some("票据"), None),
            body(Some("t"), Some(&long_randstr)),
            body(Some("t"), Some("r\nx")),
        ] {
            assert_eq!(
                validate(&bad).unwrap_err().code(),
                "invalid-request",
                "{bad:?}"
            );
        }
    }
}
