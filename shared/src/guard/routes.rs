//! The guard's routes: `GET /guard/status` (public), `POST /guard/check`
//! and `POST /guard/report` (IAM-authorized in the template: back ends call
//! them), and the example business route `POST /demo/guarded`.

use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::authorizer::authorizer_context;
use super::challenge::{Challenge, from_parts};
use super::config::{Door, Level, PassRule};
use super::level::{Reasons, Standing};
use super::service::{Admission, Client, Guard, IdempotencyKey, Proof, Refusal, named_device};
use crate::domain::Scene;
use crate::error::ApiError;
use crate::http::{bearer_token, error_response_with, json_body, query_param, respond, source_ip};
use crate::lang::Lang;
use crate::metrics::Events;
use crate::store::RedeemedPass;
use crate::wechat::SessionService;

/// Longest `userIp` a back end may send.
pub const MAX_USER_IP_CHARS: usize = 64;
/// Longest `openid` a back end may send (WeChat's are 28 characters).
pub const MAX_OPENID_CHARS: usize = 128;

/// The level a client stands at.
#[derive(Debug, Serialize)]
struct LevelData {
    level: &'static str,
}

/// Where a client stands: its level and the reasons that set it (what
/// `GET /guard/status` answers, and a refusal of `POST /guard/check` says).
#[derive(Debug, Serialize)]
struct StandingData {
    level: &'static str,
    reasons: Reasons,
}

impl From<Standing> for StandingData {
    fn from(standing: Standing) -> Self {
        Self {
            level: standing.level.as_str(),
            reasons: standing.reasons,
        }
    }
}

/// `POST /guard/check` body: a `passToken`, or the challenge itself
/// (SPEC §13): `captcha` (with the device), or `ticket` and `randstr`, the
/// latter also as Tencent's whole callback object (`ret`, `appid`,
/// `CaptchaAppId`, `bizState`, `errorCode`, `errorMessage`, as
/// `POST /ticket/verify` takes it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CheckRequest {
    scene: Option<String>,
    pass_token: Option<String>,
    device_id: Option<String>,
    user_ip: Option<String>,
    idempotency_key: Option<String>,
    /// The signed-in user's openid, when the back end knows it: counted,
    /// as a device is.
    openid: Option<String>,
    captcha: Option<Answer>,
    ticket: Option<String>,
    randstr: Option<String>,
    ret: Option<i64>,
    appid: Option<AppId>,
    #[serde(rename = "CaptchaAppId")]
    captcha_app_id: Option<AppId>,
    #[allow(dead_code)] // the caller's own, accepted and not read
    biz_state: Option<Value>,
    #[allow(dead_code)] // accepted and not read (the ticket says it too)
    error_code: Option<i64>,
    #[allow(dead_code)]
    error_message: Option<String>,
}

/// An answer as typed: text, or a number from a numeric input in math mode.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Answer {
    Text(String),
    Number(i64),
}

/// An app id as Tencent's SDKs send it: a string or a number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AppId {
    Number(u64),
    Text(String),
}

impl CheckRequest {
    /// The challenge the body brings, if any; a callback whose `ret` is not
    /// 0 is `ticket-not-solved`, callback fields without a ticket and a
    /// pass with a challenge are `invalid-request`.
    fn challenge(&mut self) -> Result<Option<Challenge>, ApiError> {
        if let Some(ret) = self.ret.filter(|ret| *ret != 0) {
            return Err(ApiError::TicketNotSolved { ret });
        }
        let answer = self.captcha.take().map(|answer| match answer {
            Answer::Text(text) => text,
            Answer::Number(n) => n.to_string(),
        });
        let ticket = self.ticket.take().map(|t| t.trim().to_owned());
        let randstr = self
            .randstr
            .take()
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        let mut challenge = from_parts(answer, ticket, randstr)?;
        let app_ids: Vec<String> = [self.appid.take(), self.captcha_app_id.take()]
            .into_iter()
            .flatten()
            .map(|id| match id {
                AppId::Number(n) => n.to_string(),
                AppId::Text(text) => text,
            })
            .collect();
        match &mut challenge {
            Some(Challenge::Ticket { app_ids: named, .. }) => *named = app_ids,
            _ if !app_ids.is_empty() || self.ret.is_some() => {
                return Err(ApiError::InvalidRequest(
                    "the captcha callback's fields go with a ticket".into(),
                ));
            }
            _ => {}
        }
        if challenge.is_some() && self.pass_token.is_some() {
            return Err(ApiError::InvalidRequest(
                "send a passToken or a challenge, not both".into(),
            ));
        }
        Ok(challenge)
    }
}

/// `POST /guard/report` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReportRequest {
    scene: Option<String>,
    device_id: Option<String>,
    user_ip: Option<String>,
}

/// `POST /guard/check` success data.
#[derive(Debug, Serialize)]
struct CheckData {
    level: &'static str,
    reasons: Reasons,
    #[serde(skip_serializing_if = "Option::is_none")]
    pass: Option<PassData>,
    /// Admitted without the store (`onStoreError: "admit"`; named only
    /// when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    degraded: bool,
}

/// A redeemed pass as `/guard/check` tells it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PassData {
    kind: &'static str,
    scene: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<String>,
    ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    evil_level: Option<i64>,
    /// Earned without Tencent's word, by the scene's policy (named only
    /// when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    degraded: bool,
    /// The number (E.164) an SMS pass proved the client holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    mobile: Option<String>,
    /// Epoch milliseconds at which the pass was earned.
    created: i64,
}

impl From<RedeemedPass> for PassData {
    fn from(pass: RedeemedPass) -> Self {
        Self {
            kind: pass.kind.as_str(),
            scene: pass.scene.to_string(),
            device_id: pass.device.map(|d| d.to_string()),
            ip: pass.ip,
            evil_level: pass.evil_level,
            degraded: pass.degraded,
            mobile: pass.mobile.map(|m| m.to_string()),
            created: pass.created_ms,
        }
    }
}

/// `GET /guard/status?scene=<scene>[&deviceId=<device>]`: the level the
/// client (its IP, its device from the query or `X-Device-Id`, and with a
/// bearer session its user) must pass at its next request in `scene`, and
/// why, so it shows a captcha only when one will be asked for. It counts
/// nothing. A session is checked with `sessions` (the guard function's);
/// a user WeChat's rank refuses is answered `guard-refused`.
pub async fn status(
    guard: &Guard,
    sessions: Option<&SessionService>,
    req: Request,
) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = async {
        let scene = Scene::parse(&query_param(&req, "scene").unwrap_or_default())?;
        let device = named_device(query_param(&req, "deviceId").as_deref(), req.headers())?;
        let mut client = Client {
            ip: source_ip(&req).map(str::to_owned),
            device,
            ..Client::default()
        };
        if let Some(token) = bearer_token(&req) {
            let sessions = sessions.ok_or_else(|| {
                tracing::error!("GET /guard/status: the session service was not built");
                ApiError::Internal
            })?;
            let record = sessions.check(token).await?;
            client.phone_number = record.phone.map(|phone| phone.phone_number);
            client.openid = Some(record.openid);
        }
        Ok(guard.standing(&scene, &client).await)
    };
    match result.await {
        Ok(Ok(standing)) => respond(lang, Ok(StandingData::from(standing))),
        Ok(Err(refusal)) => refusal_response(lang, &refusal),
        Err(err) => respond::<()>(lang, Err(err)),
    }
}

/// A refusal's answer: its errCode, with the level and reasons in its data
/// (none for a store failure, where no level is known).
pub(crate) fn refusal_response(lang: Lang, refusal: &Refusal) -> Response<Body> {
    let mut data = Map::new();
    if refusal.error != ApiError::StoreUnavailable {
        data.insert("level".into(), Value::from(refusal.standing.level.as_str()));
        let reasons = refusal.standing.reasons.iter().map(|r| r.as_str());
        data.insert("reasons".into(), reasons.collect());
    }
    error_response_with(lang, &refusal.error, data)
}

/// `POST /guard/check`: for a back end about to do what the scene guards
/// (counted as a request of the client, admitted or not). Admitted, with
/// the level, its reasons and the redeemed pass (or the challenge judged
/// in its place) when one was needed; or
/// `guard-captcha-required`, `guard-tencent-required`,
/// `guard-pass-invalid`, `guard-refused` (WeChat's rank of the `openid`
/// sent), each with the level and reasons in its data;
/// `guard-invalid-device` for a malformed `deviceId` or `X-Device-Id`. With
/// an `idempotencyKey`, a retry of an admitted check (same key, same pass,
/// within its lifetime) is admitted again.
pub async fn check(guard: &Guard, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let mut events = Events::default();
    let result = async {
        let mut body: CheckRequest = json_body(&req)?;
        let scene = Scene::parse(body.scene.as_deref().unwrap_or_default())?;
        let challenge = body.challenge()?;
        let mut client = back_end_client(body.device_id.as_deref(), body.user_ip, &req)?;
        client.openid = body.openid.as_deref().map(openid).transpose()?;
        let key = body
            .idempotency_key
            .as_deref()
            .map(IdempotencyKey::parse)
            .transpose()?;
        let door = Door::new(scene, PassRule::Auto);
        let proof = match (&challenge, body.pass_token.as_deref()) {
            (Some(challenge), _) => Some(Proof::Challenge(challenge)),
            (None, token) => Proof::pass(token),
        };
        Ok(guard
            .admit(&door, proof, key.as_ref(), &client, &mut events)
            .await)
    };
    let mut resp = match result.await {
        Ok(Ok(Admission {
            level,
            reasons,
            pass,
            degraded,
        })) => respond(
            lang,
            Ok(CheckData {
                level: level.as_str(),
                reasons,
                pass: pass.map(PassData::from),
                degraded,
            }),
        ),
        Ok(Err(refusal)) => refusal_response(lang, &refusal),
        Err(err) => respond::<()>(lang, Err(err)),
    };
    events.attach_to(&mut resp);
    resp
}

/// An `openid` a back end sent: 1 to [`MAX_OPENID_CHARS`] of
/// `[A-Za-z0-9_-]` (WeChat's alphabet).
fn openid(text: &str) -> Result<String, ApiError> {
    let valid = (1..=MAX_OPENID_CHARS).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(ApiError::InvalidRequest(format!(
            "openid must be 1-{MAX_OPENID_CHARS} of A-Z a-z 0-9 _ -"
        )));
    }
    Ok(text.to_owned())
}

/// `POST /guard/report`: a back end reports one failure (a wrong password,
/// say) of a client in a scene; answers the level the client now stands at.
pub async fn report(guard: &Guard, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = async {
        let body: ReportRequest = json_body(&req)?;
        let scene = Scene::parse(body.scene.as_deref().unwrap_or_default())?;
        let client = back_end_client(body.device_id.as_deref(), body.user_ip, &req)?;
        let level: Level = guard.report(&scene, &client).await?;
        Ok(LevelData {
            level: level.as_str(),
        })
    };
    respond(lang, result.await)
}

/// `POST /demo/guarded`, the example business route behind the guard
/// authorizer: it answers with what the authorizer handed it.
pub async fn demo(req: Request) -> Response<Body> {
    #[derive(Serialize)]
    struct Guarded {
        guard: Map<String, Value>,
    }
    let guard = authorizer_context(&req).unwrap_or_default();
    respond(Lang::from_request(&req), Ok(Guarded { guard }))
}

/// The client a back end asks about: the device and IP it names.
fn back_end_client(
    device: Option<&str>,
    user_ip: Option<String>,
    req: &Request,
) -> Result<Client, ApiError> {
    let ip = user_ip
        .map(|ip| ip.trim().to_owned())
        .filter(|ip| !ip.is_empty());
    if let Some(ip) = &ip
        && (ip.len() > MAX_USER_IP_CHARS || !ip.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(ApiError::InvalidRequest(format!(
            "userIp must be at most {MAX_USER_IP_CHARS} visible ASCII characters"
        )));
    }
    Ok(Client {
        ip,
        device: named_device(device, req.headers())?,
        openid: None,
        phone_number: None,
    })
}
