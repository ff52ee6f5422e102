//! `POST /sms/send {mobile, scene, deviceId?}` (a door of its scene's
//! guard: the pass in `X-Gatehouse-Pass`, or the challenge itself in
//! `X-Gatehouse-Captcha` or `X-Gatehouse-Ticket` + `-Randstr`) and `POST /sms/verify {mobile,
//! scene, code}`. Each parses the request into domain values, calls its
//! service and answers with [`respond`].

use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use super::mobile::Mobile;
use super::service::{SendRefusal, SmsSender, SmsTarget, SmsVerifier};
use crate::domain::{DeviceId, Scene};
use crate::error::ApiError;
use crate::guard::Client;
use crate::guard::authorizer::PASS_HEADER;
use crate::guard::challenge;
use crate::guard::routes::refusal_response;
use crate::guard::service::Proof;
use crate::guard::service::Refusal;
use crate::http::{device_id, header_str, json_body, respond, source_ip};
use crate::lang::Lang;
use crate::metrics::Events;

/// Longest `mobile` looked at (an E.164 number is 16 characters).
pub const MAX_MOBILE_CHARS: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SendRequest {
    mobile: Option<String>,
    scene: Option<String>,
    device_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VerifyRequest {
    mobile: Option<String>,
    scene: Option<String>,
    /// A string: a code may start with 0, which a number would lose.
    code: Option<String>,
    device_id: Option<String>,
}

/// `POST /sms/send` → `{errCode: 0, resendAfter, expiresIn}`; what Tencent
/// said and the guard's reasons ride along in the response's [`Events`]
/// for the metrics. The guard's refusal at the door answers its level and
/// reasons, as `POST /guard/check` does. The door takes a pass or, in its
/// place, the challenge itself (SPEC §13), as a guarded route does; a
/// malformed challenge, or one beside a pass, is `invalid-request` with
/// nothing spent or counted.
pub async fn send(svc: &SmsSender, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let mut events = Events::default();
    let result = async {
        let body: SendRequest = json_body(&req)?;
        let target = target(&req, body.scene, body.mobile, body.device_id)?;
        let challenge = challenge::from_headers(req.headers())?;
        let pass_sent = req.headers().contains_key(PASS_HEADER);
        let proof = match (&challenge, header_str(&req, PASS_HEADER)) {
            (Some(_), _) if pass_sent => {
                return Err(ApiError::InvalidRequest(
                    "send X-Gatehouse-Pass or a challenge, not both".into(),
                )
                .into());
            }
            (Some(challenge), _) => Some(Proof::Challenge(challenge)),
            (None, token) => Proof::pass(token),
        };
        svc.send(&target, proof, &mut events).await
    };
    let mut resp = match result.await {
        Ok(sent) => respond(lang, Ok(sent)),
        Err(SendRefusal {
            error,
            standing: Some(standing),
        }) => refusal_response(lang, &Refusal { error, standing }),
        Err(SendRefusal {
            error,
            standing: None,
        }) => respond::<()>(lang, Err(error)),
    };
    events.attach_to(&mut resp);
    resp
}

/// `POST /sms/verify` → `{errCode: 0, passToken, passExpired}`.
pub async fn verify(svc: &SmsVerifier, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = async {
        let body: VerifyRequest = json_body(&req)?;
        let code = body
            .code
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        let target = target(&req, body.scene, body.mobile, body.device_id)?;
        svc.verify(&target, &code).await
    };
    respond(lang, result.await)
}

/// The scene, number and client of an SMS request. The device is optional,
/// but a malformed one is refused, never taken as absent.
fn target(
    req: &Request,
    scene: Option<String>,
    mobile: Option<String>,
    device: Option<String>,
) -> Result<SmsTarget, ApiError> {
    let scene = Scene::parse(scene.as_deref().unwrap_or_default())?;
    let mobile = mobile.unwrap_or_default();
    if mobile.chars().count() > MAX_MOBILE_CHARS {
        return Err(ApiError::SmsMobileInvalid);
    }
    let mobile = Mobile::parse(&mobile)?;
    let device: Option<DeviceId> = match device_id(device.as_deref(), req) {
        Ok(device) => Some(device),
        Err(ApiError::DeviceIdRequired) => None,
        Err(err) => return Err(err),
    };
    Ok(SmsTarget {
        scene,
        mobile,
        client: Client {
            ip: source_ip(req).map(str::to_owned),
            device,
            ..Client::default()
        },
    })
}
