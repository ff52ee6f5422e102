//! The HTTP envelope shared by every route: request parsing with size caps,
//! the client's language, device id and IP, and the uniCloud response shape.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::domain::DeviceId;
use crate::error::ApiError;
use crate::lang::Lang;

/// Largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest header value we read (`Authorization`, `X-Device-Id`, `Accept-Language`).
pub const MAX_HEADER_VALUE_BYTES: usize = 1024;

impl Lang {
    /// The language the request's `Accept-Language` prefers.
    pub fn from_request(req: &Request) -> Lang {
        Lang::from_accept_language(header_str(req, "accept-language"))
    }
}

/// A header's value as text, if present, valid UTF-8 and not over the cap.
pub fn header_str<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    let value = req.headers().get(name)?;
    if value.len() > MAX_HEADER_VALUE_BYTES {
        return None;
    }
    value.to_str().ok().map(str::trim)
}

/// The raw body bytes, refusing anything over [`MAX_BODY_BYTES`].
pub fn body_bytes(req: &Request) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => return Err(ApiError::InvalidRequest("unsupported body".into())),
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::InvalidRequest(format!(
            "body is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

/// Parses the JSON body into `T`. Request types use
/// `#[serde(deny_unknown_fields)]`, so unknown keys are refused here too,
/// and so is a `null` member: openapi.yaml types no field as nullable, so a
/// field is sent with its value or left out. An empty body reads as `{}` so
/// that missing-field errors stay specific.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes = body_bytes(req)?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let parsed = serde_json::from_slice(bytes).map_err(|err| {
        // serde's message names the field and the expected type, never a secret.
        ApiError::InvalidRequest(match err.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "body is not valid JSON".to_owned()
            }
            _ => err.to_string(),
        })
    })?;
    let members: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).unwrap_or_default();
    if let Some((key, _)) = members.iter().find(|(_, value)| value.is_null()) {
        let key: String = key.chars().take(64).collect();
        return Err(ApiError::InvalidRequest(format!(
            "`{key}` is null: send a value or leave the field out"
        )));
    }
    Ok(parsed)
}

/// The first value of query parameter `name`, percent-decoded. Read from the
/// URI, which holds the raw query string of an API Gateway event as of a dev
/// server request.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The route API Gateway matched (`requestContext.routeKey`, such as
/// `POST /guard/check`), else the request's own method and path: the path
/// an integration sees may carry a custom domain's base path.
pub fn route_key(req: &Request) -> String {
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref()
        && let Some(key) = ctx.route_key.as_deref()
        && key.contains(' ')
    {
        return key.to_owned();
    }
    format!("{} {}", req.method(), req.uri().path())
}

/// The client IP that API Gateway saw (`requestContext.http.sourceIp`).
pub fn source_ip(req: &Request) -> Option<&str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The device id from the body or, failing that, the `X-Device-Id` header
/// (see [`DeviceId::parse`]). A header that is sent must hold a device id
/// even when the body names one: an empty or malformed header is a client
/// bug to answer with 400, not to skip over.
pub fn device_id(from_body: Option<&str>, req: &Request) -> Result<DeviceId, ApiError> {
    let from_header = match req.headers().get("x-device-id") {
        None => None,
        Some(_) => match header_str(req, "x-device-id").filter(|id| !id.is_empty()) {
            Some(id) => Some(DeviceId::parse(id)?),
            None => {
                return Err(ApiError::InvalidRequest(
                    "X-Device-Id is empty or unreadable".into(),
                ));
            }
        },
    };
    match from_body.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => DeviceId::parse(id),
        None => from_header.ok_or(ApiError::DeviceIdRequired),
    }
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(req: &Request) -> Option<&str> {
    parse_bearer(header_str(req, "authorization")?)
}

/// The token of a `Bearer <token>` credential (scheme case-insensitive).
pub fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A success body with no data beyond `errCode` and `errMsg`.
#[derive(Debug, Serialize)]
pub struct NoData {}

/// Builds the response for a route's result in the uniCloud shape:
/// `{"errCode":0,"errMsg":…,…data}` or `{"errCode":"<code>","errMsg":…}`.
pub fn respond<T: Serialize>(lang: Lang, result: Result<T, ApiError>) -> Response<Body> {
    match result {
        Ok(data) => match serde_json::to_value(data) {
            Ok(Value::Object(fields)) => {
                let mut body = Map::with_capacity(fields.len() + 2);
                body.insert("errCode".into(), Value::from(0));
                body.insert("errMsg".into(), Value::from(lang.pick("成功", "OK")));
                body.extend(fields);
                json_response(http::StatusCode::OK, &Value::Object(body))
            }
            _ => {
                tracing::error!("route data did not serialise to a JSON object");
                error_response(lang, &ApiError::Internal)
            }
        },
        Err(err) => error_response(lang, &err),
    }
}

/// The failure body and status for `err`.
pub fn error_response(lang: Lang, err: &ApiError) -> Response<Body> {
    error_response_with(lang, err, Map::new())
}

/// [`error_response`] with `data`'s fields in the envelope too: a refusal
/// that tells more (the guard's level and reasons), as a success does.
pub fn error_response_with(lang: Lang, err: &ApiError, data: Map<String, Value>) -> Response<Body> {
    let mut body = data;
    body.insert("errCode".into(), Value::from(err.code()));
    body.insert("errMsg".into(), Value::from(err.message(lang)));
    if let ApiError::TicketRejected {
        captcha_code,
        captcha_msg,
        evil_level,
    } = err
    {
        body.insert("captchaCode".into(), Value::from(*captcha_code));
        body.insert("captchaMsg".into(), Value::from(captcha_msg.as_str()));
        if let Some(evil_level) = evil_level {
            body.insert("evilLevel".into(), Value::from(*evil_level));
        }
    }
    if let ApiError::TicketNotSolved { ret } = err {
        body.insert("ret".into(), Value::from(*ret));
    }
    let mut response = json_response(err.status(), &Value::Object(body));
    let headers = response.headers_mut();
    if let Some(secs) = err.retry_after() {
        headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    }
    if let ApiError::MethodNotAllowed { allow, .. } = err
        && let Ok(value) = http::HeaderValue::from_str(allow)
    {
        headers.insert(http::header::ALLOW, value);
    }
    response
}

fn json_response(status: http::StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("cache-control", "no-store")
        .body(Body::Text(body.to_string()))
        .expect("static headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(headers: &[(&str, &str)], body: &str) -> Request {
        let mut builder = http::Request::builder()
            .method("POST")
            .uri("/captcha/create");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::Text(body.to_owned())).unwrap()
    }

    #[test]
    fn language_defaults_to_chinese_and_follows_q_values() {
        let cases = [
            (None, Lang::Zh),
            (Some("en-US,en;q=0.9"), Lang::En),
            (Some("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh),
            (Some("en;q=0.9,zh;q=0.95"), Lang::Zh),
            (Some("fr-FR, en;q=0.5"), Lang::En),
            (Some("fr-FR"), Lang::Zh),
            (Some("en;q=0"), Lang::Zh),
        ];
        for (header, want) in cases {
            let headers: Vec<(&str, &str)> =
                header.map(|h| ("accept-language", h)).into_iter().collect();
            assert_eq!(
                Lang::from_request(&request_with(&headers, "")),
                want,
                "{header:?}"
            );
        }
    }

    #[test]
    fn oversized_and_malformed_bodies_are_invalid_requests() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Body1 {
            scene: Option<String>,
        }
        let big = format!("{{\"scene\":\"{}\"}}", "a".repeat(MAX_BODY_BYTES));
        for body in [big.as_str(), "{", "[1]", "{\"scene\":3}", "{\"other\":1}"] {
            let err = json_body::<Body1>(&request_with(&[], body)).unwrap_err();
            assert_eq!(err.code(), "invalid-request", "{body:.40}");
        }
        assert!(
            json_body::<Body1>(&request_with(&[], ""))
                .unwrap()
                .scene
                .is_none()
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Optional {
        scene: String,
        device_id: Option<String>,
    }

    #[test]
    fn a_null_member_is_refused_by_name() {
        let body = |text: &str| json_body::<Optional>(&request_with(&[], text));
        assert!(body(r#"{"scene": "a"}"#).is_ok());
        assert_eq!(
            body(r#"{"scene": "a", "device_id": null}"#).unwrap_err(),
            ApiError::InvalidRequest(
                "`device_id` is null: send a value or leave the field out".into()
            )
        );
        assert_eq!(
            body(r#"{"scene": null}"#).unwrap_err().code(),
            "invalid-request"
        );
    }

    #[test]
    fn device_id_prefers_body_then_header_and_is_bounded() {
        let req = request_with(&[("x-device-id", "hdr-1")], "");
        assert_eq!(device_id(Some("body-1"), &req).unwrap().as_str(), "body-1");
        assert_eq!(device_id(None, &req).unwrap().as_str(), "hdr-1");
        assert_eq!(device_id(Some("  "), &req).unwrap().as_str(), "hdr-1");
        let bare = request_with(&[], "");
        assert_eq!(device_id(None, &bare), Err(ApiError::DeviceIdRequired));
        // A header that is sent is checked even beside a body's device id.
        for bad in ["", " ", "a b"] {
            let req = request_with(&[("x-device-id", bad)], "");
            assert_eq!(
                device_id(Some("body-1"), &req).unwrap_err().code(),
                "invalid-request",
                "{bad:?}"
            );
        }
        let long = "d".repeat(crate::domain::MAX_DEVICE_ID_CHARS + 1);
        assert_eq!(
            device_id(Some(&long), &bare).unwrap_err().code(),
            "invalid-request"
        );
        assert_eq!(
            device_id(Some("a b"), &bare).unwrap_err().code(),
            "invalid-request"
        );
    }

    #[test]
    fn bearer_token_needs_the_scheme() {
        let req = request_with(&[("authorization", "Bearer abc")], "");
        assert_eq!(bearer_token(&req), Some("abc"));
        let req = request_with(&[("authorization", "Basic abc")], "");
        assert_eq!(bearer_token(&req), None);
        let req = request_with(&[("authorization", "Bearer ")], "");
        assert_eq!(bearer_token(&req), None);
    }

    #[test]
    fn responses_have_the_unicloud_shape() {
        #[derive(Serialize)]
        struct Data {
            token: &'static str,
        }
        let ok = respond(Lang::En, Ok(Data { token: "t" }));
        assert_eq!(ok.status(), 200);
        let Body::Text(text) = ok.body() else {
            panic!()
        };
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["errCode"], 0);
        assert_eq!(v["token"], "t");

        let err = respond::<NoData>(
            Lang::Zh,
            Err(ApiError::RateLimited {
                retry_after_secs: 7,
            }),
        );
        assert_eq!(err.status(), 429);
        assert_eq!(err.headers()["retry-after"], "7");
        let Body::Text(text) = err.body() else {
            panic!()
        };
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["errCode"], "rate-limited");
    }
}
