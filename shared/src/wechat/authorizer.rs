//! The HTTP API Lambda authorizer (payload format 2.0, simple responses).
//!
//! Configure the authorizer with identity source
//! `$request.header.Authorization` and result caching off (TTL 0), so that a
//! session ended through `DELETE /wx/session` stops passing at once. An
//! admitted request reaches its route with `openid` (and `unionid` when
//! WeChat gave one, `phoneNumber` when `POST /wx/phone` kept one) in
//! `requestContext.authorizer.lambda`; read them with [`authorized_identity`]
//! and [`authorized_phone_number`]. The check is one DynamoDB GetItem that
//! projects the session's `session_key` out.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::{Map, Value};

pub use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerSimpleResponse as AuthorizerResponse;
pub use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request as AuthorizerRequest;

use super::service::SessionService;
use crate::http::{MAX_HEADER_VALUE_BYTES, parse_bearer};

fn bearer(value: &str) -> Option<&str> {
    if value.len() > MAX_HEADER_VALUE_BYTES {
        return None;
    }
    parse_bearer(value)
}

/// The bearer token of an authorizer request: from the `Authorization`
/// header, or failing that the first identity source.
fn token_of(event: &AuthorizerRequest) -> Option<&str> {
    if let Some(value) = event.headers.get(http::header::AUTHORIZATION) {
        return value.to_str().ok().and_then(bearer);
    }
    event
        .identity_source
        .as_ref()
        .and_then(|sources| sources.first())
        .and_then(|source| bearer(source))
}

fn deny() -> AuthorizerResponse {
    let mut response = AuthorizerResponse::default();
    response.is_authorized = false;
    response.context = Value::Object(Map::new());
    response
}

/// Admits the request when its bearer token is a live session, handing
/// `openid`, `unionid` and `phoneNumber` (when known) to the route in the
/// context. Anything
/// else — no token, unknown, expired, or a store failure (logged) — is denied,
/// which API Gateway answers with 403.
pub async fn authorize(svc: &SessionService, event: AuthorizerRequest) -> AuthorizerResponse {
    let Some(token) = token_of(&event) else {
        return deny();
    };
    match svc.check(token).await {
        Ok(record) => {
            let mut context = Map::new();
            context.insert("openid".into(), Value::from(record.openid));
            if let Some(unionid) = record.unionid {
                context.insert("unionid".into(), Value::from(unionid));
            }
            if let Some(phone) = record.phone {
                context.insert("phoneNumber".into(), Value::from(phone.phone_number));
            }
            let mut response = AuthorizerResponse::default();
            response.is_authorized = true;
            response.context = Value::Object(context);
            response
        }
        Err(err) => {
            tracing::info!(reason = err.code(), "authorizer denied a request");
            deny()
        }
    }
}

/// The `openid` and `unionid` the authorizer handed to a protected route
/// (`requestContext.authorizer.lambda`), if it ran.
pub fn authorized_identity(req: &Request) -> Option<(String, Option<String>)> {
    let RequestContext::ApiGatewayV2(ctx) = req.request_context_ref()? else {
        return None;
    };
    let fields = &ctx.authorizer.as_ref()?.fields;
    let openid = fields.get("openid")?.as_str()?.to_owned();
    let unionid = fields
        .get("unionid")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some((openid, unionid))
}

/// The `phoneNumber` the authorizer handed to a protected route, if the
/// session had one.
pub fn authorized_phone_number(req: &Request) -> Option<String> {
    let RequestContext::ApiGatewayV2(ctx) = req.request_context_ref()? else {
        return None;
    };
    let fields = &ctx.authorizer.as_ref()?.fields;
    fields.get("phoneNumber")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::Clock;
    use crate::store::memory::MemoryStore;
    use crate::store::{PhoneNumber, SessionRecord, SessionStore};
    use crate::wechat::{SessionService, crypto};

    fn event(auth: Option<&str>) -> AuthorizerRequest {
        let mut json = serde_json::json!({
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/GET/me",
            "routeKey": "GET /me",
            "rawPath": "/me",
            "rawQueryString": "",
            "headers": {},
            "requestContext": {
                "http": {"method": "GET", "path": "/me", "protocol": "HTTP/1.1",
                         "sourceIp": "203.0.113.9", "userAgent": "test"},
                "requestId": "r1", "routeKey": "GET /me", "stage": "$default",
                "time": "01/Jan/2025:00:00:00 +0000", "timeEpoch": 1735689600000i64
            }
        });
        if let Some(auth) = auth {
            json["headers"]["authorization"] = auth.into();
            json["identitySource"] = serde_json::json!([auth]);
        }
        serde_json::from_value(json).unwrap()
    }

    #[tokio::test]
    async fn admits_live_sessions_only() {
        let clock = Clock::manual(10_000);
        let store = Arc::new(MemoryStore::new());
        let svc = SessionService::new(store.clone()).with_clock(clock.clone());
        let token = crypto::new_token();
        let mut record = SessionRecord {
            token_hash: crypto::token_hash(&token),
            openid: "o-bob".into(),
            unionid: None,
            phone: None,
            created_ms: 0,
            expires_ms: 20_000,
        };
        store.put_session(&record, None).await.unwrap();

        let ok = authorize(&svc, event(Some(&format!("Bearer {token}")))).await;
        assert!(ok.is_authorized);
        assert_eq!(ok.context, serde_json::json!({"openid": "o-bob"}));
        let json = serde_json::to_value(&ok).unwrap();
        assert_eq!(json["isAuthorized"], true);
        assert!(!json.to_string().contains("HyVF"));

        record.phone = Some(PhoneNumber {
            phone_number: "+1 2025550123".into(),
            pure_phone_number: "2025550123".into(),
            country_code: "1".into(),
        });
        store.put_session(&record, None).await.unwrap();
        let with_phone = authorize(&svc, event(Some(&format!("Bearer {token}")))).await;
        assert_eq!(
            with_phone.context,
            serde_json::json!({"openid": "o-bob", "phoneNumber": "+1 2025550123"})
        );

        for auth in [None, Some("Bearer nope"), Some(token.as_str())] {
            let denied = authorize(&svc, event(auth)).await;
            assert!(!denied.is_authorized, "{auth:?}");
        }
        clock.advance(10_000);
        let expired = authorize(&svc, event(Some(&format!("Bearer {token}")))).await;
        assert!(!expired.is_authorized);
    }
}
