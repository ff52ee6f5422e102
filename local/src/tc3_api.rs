//! What the Tencent Cloud API 3.0 emulators (Captcha, SMS) share: the
//! `POST /` endpoint's call count and request ids, the `Response.Error`
//! answer (HTTP 200, like the real API), the check of the signature and the
//! `X-TC-Action`/`X-TC-Version`/`Content-Type` headers, and the body as a
//! JSON object of known parameters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use http::{Method, StatusCode};
use hyper::body::Bytes;
use serde_json::{Map, Value, json};

use crate::serve::{HttpResponse, with_body};
use crate::tc3_check;

/// An error code and its message, as `Response.Error` carries them.
pub type ApiError = (&'static str, String);

/// An emulated API endpoint's counters.
pub struct Endpoint {
    calls: AtomicUsize,
    request_seq: AtomicU64,
    /// Starts every `RequestId` (`emu`, `sms`).
    id_prefix: &'static str,
}

impl Endpoint {
    pub fn new(id_prefix: &'static str) -> Self {
        Self {
            calls: AtomicUsize::new(0),
            request_seq: AtomicU64::new(0),
            id_prefix,
        }
    }

    /// Requests received at `/` so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Counts a request to `/`; the answer to anything but `POST`
    /// (`UnsupportedOperation`), none to a `POST`.
    pub fn refusal(&self, req: &http::Request<Bytes>) -> Option<HttpResponse> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        (req.method() != Method::POST)
            .then(|| self.error("UnsupportedOperation", "the emulator answers POST only"))
    }

    /// A fresh `RequestId` (also the SMS API's `SerialNo`).
    pub fn request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::SeqCst);
        format!(
            "{}-{:08x}-0000-4000-8000-{n:012x}",
            self.id_prefix,
            std::process::id()
        )
    }

    /// `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`.
    pub fn error(&self, code: &str, message: &str) -> HttpResponse {
        json_answer(&json!({
            "Response": {
                "Error": {"Code": code, "Message": message},
                "RequestId": self.request_id(),
            }
        }))
    }
}

/// HTTP 200 with `body` as JSON.
pub fn json_answer(body: &Value) -> HttpResponse {
    with_body(StatusCode::OK, "application/json", body.to_string())
}

/// What a call must carry besides its signature.
pub struct Expected<'a> {
    pub account: tc3_check::Account<'a>,
    /// The actions the emulator answers.
    pub actions: &'a [&'static str],
    pub version: &'static str,
    /// The emulator's time, in seconds.
    pub now_secs: i64,
}

/// Checks the signature, its freshness, `X-TC-Action` and `X-TC-Version`;
/// returns the action.
pub fn check_call(
    req: &http::Request<Bytes>,
    expected: &Expected<'_>,
) -> Result<&'static str, ApiError> {
    tc3_check::authenticate(req, &expected.account, expected.now_secs)
        .map_err(|(code, message)| (code, message.to_owned()))?;
    let action = header(req, "x-tc-action")
        .and_then(|a| expected.actions.iter().find(|known| **known == a))
        .ok_or(("InvalidAction", "the action is not emulated".to_owned()))?;
    if header(req, "x-tc-version") != Some(expected.version) {
        return Err((
            "NoSuchVersion",
            format!("X-TC-Version must be {}", expected.version),
        ));
    }
    Ok(action)
}

/// `Content-Type` must be JSON.
pub fn require_json(req: &http::Request<Bytes>) -> Result<(), ApiError> {
    if header(req, "content-type").is_some_and(|ct| ct.starts_with("application/json")) {
        Ok(())
    } else {
        Err((
            "InvalidParameter",
            "Content-Type must be application/json".to_owned(),
        ))
    }
}

/// A header's value, when it is text.
pub fn header<'r>(req: &'r http::Request<Bytes>, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The body as a JSON object whose keys are all in `known`.
pub fn parameters(body: &[u8], known: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err((
            "InvalidParameter",
            "the body is not a JSON object".to_owned(),
        ));
    };
    if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(("UnknownParameter", format!("unknown parameter {unknown}")));
    }
    Ok(map)
}

/// A string parameter, if there: `InvalidParameter` when not a string.
pub fn string_param(map: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(("InvalidParameter", format!("{name} must be a string"))),
    }
}

/// A string parameter that must be there (`MissingParameter` otherwise).
pub fn required_string(map: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    string_param(map, name)?.ok_or_else(|| missing(name))
}

/// `MissingParameter` for `name`.
pub fn missing(name: &str) -> ApiError {
    ("MissingParameter", format!("{name} is required"))
}

/// For the emulators' unit tests: requests signed by the client's own
/// module (what the emulators check), and answers read back.
#[cfg(test)]
pub mod testing {
    use gatehouse::tencent::tc3;
    use http::StatusCode;
    use hyper::body::Bytes;
    use serde_json::Value;

    use crate::serve::HttpResponse;

    pub const HOST: &str = "127.0.0.1:9";
    pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

    /// A `POST /` carrying `body`, signed over `content-type`, `host` and
    /// `x-tc-action` with `secret_key` for `secret_id` at `timestamp`;
    /// the caller adds the unsigned headers (`X-TC-Version`, …).
    pub struct Signed<'a> {
        pub service: &'a str,
        pub action: &'a str,
        pub secret_id: &'a str,
        pub secret_key: &'a str,
        pub timestamp: i64,
    }

    impl Signed<'_> {
        pub fn post(&self, body: &Value) -> (http::request::Builder, Bytes) {
            let payload = body.to_string();
            let signed = tc3::sign(
                self.secret_key,
                &tc3::SignInput {
                    method: "POST",
                    uri: "/",
                    query: "",
                    headers: &[
                        ("content-type", CONTENT_TYPE),
                        ("host", HOST),
                        ("x-tc-action", self.action),
                    ],
                    payload: payload.as_bytes(),
                    service: self.service,
                    timestamp: self.timestamp,
                },
            );
            let builder = http::Request::post("/")
                .header("host", HOST)
                .header("content-type", CONTENT_TYPE)
                .header("x-tc-action", self.action)
                .header("x-tc-timestamp", self.timestamp.to_string())
                .header(
                    "authorization",
                    signed.authorization(self.secret_id, self.service),
                );
            (builder, Bytes::from(payload))
        }
    }

    /// The status and the JSON body (`Null` when not JSON).
    pub async fn read(response: HttpResponse) -> (StatusCode, Value) {
        let status = response.status();
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }
}
