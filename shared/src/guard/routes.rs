//! The guard's routes: `GET /guard/status` (public), `POST /guard/check`
//! and `POST /guard/report` (IAM-authorized in the template: back ends call
//! them), and the example business route `POST /demo/guarded`.

use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::authorizer::authorizer_context;
use super::config::{Door, Level, PassRule};
use super::service::{Admission, Client, Guard, IdempotencyKey, named_device};
use crate::domain::Scene;
use crate::error::ApiError;
use crate::http::{json_body, query_param, respond, source_ip};
use crate::lang::Lang;
use crate::store::RedeemedPass;

/// Longest `userIp` a back end may send.
pub const MAX_USER_IP_CHARS: usize = 64;

/// The level a client stands at.
#[derive(Debug, Serialize)]
struct LevelData {
    level: &'static str,
}

/// `POST /guard/check` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CheckRequest {
    scene: Option<String>,
    pass_token: Option<String>,
    device_id: Option<String>,
    user_ip: Option<String>,
    idempotency_key: Option<String>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pass: Option<PassData>,
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
            created: pass.created_ms,
        }
    }
}

/// `GET /guard/status?scene=<scene>[&deviceId=<device>]`: the level the
/// client (its IP, and its device from the query or `X-Device-Id`) must
/// pass in `scene`, so it shows a captcha only when one will be asked for.
pub async fn status(guard: &Guard, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = async {
        let scene = Scene::parse(&query_param(&req, "scene").unwrap_or_default())?;
        let device = named_device(query_param(&req, "deviceId").as_deref(), req.headers())?;
        let client = Client {
            ip: source_ip(&req).map(str::to_owned),
            device,
        };
        let level = guard.level(&scene, &client).await?;
        Ok(LevelData {
            level: level.as_str(),
        })
    };
    respond(lang, result.await)
}

/// `POST /guard/check`: for a back end about to do what the scene guards.
/// Admitted (with the redeemed pass, when one was needed) or
/// `guard-captcha-required`, `guard-tencent-required`, `guard-pass-invalid`;
/// `guard-invalid-device` for a malformed `deviceId` or `X-Device-Id`. With
/// an `idempotencyKey`, a retry of an admitted check (same key, same pass,
/// within its lifetime) is admitted again.
pub async fn check(guard: &Guard, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = async {
        let body: CheckRequest = json_body(&req)?;
        let scene = Scene::parse(body.scene.as_deref().unwrap_or_default())?;
        let client = back_end_client(body.device_id.as_deref(), body.user_ip, &req)?;
        let key = body
            .idempotency_key
            .as_deref()
            .map(IdempotencyKey::parse)
            .transpose()?;
        let door = Door::new(scene, PassRule::Auto);
        let Admission { level, pass } = guard
            .check(&door, body.pass_token.as_deref(), key.as_ref(), &client)
            .await?;
        Ok(CheckData {
            level: level.as_str(),
            pass: pass.map(PassData::from),
        })
    };
    respond(lang, result.await)
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
    })
}
