//! An emulator of Tencent Cloud SMS API 3.0 `SendSms` (`sms.tencentcloudapi.com`,
//! version `2021-01-11`) for the dev server and the tests, over loopback,
//! with an inbox that plays the phones.
//!
//! It checks what the real API checks, for real:
//!
//! - `POST /` signed TC3-HMAC-SHA256 with service `sms`, checked with the
//!   emulators' own [`crate::tc3_check`] (never the client's signer):
//!   `AuthFailure.*` as the Captcha emulator answers them;
//!   `InvalidAction` (`X-TC-Action` not `SendSms`), `NoSuchVersion`
//!   (`X-TC-Version` not `2021-01-11`), `MissingParameter` (no
//!   `X-TC-Region`), `UnsupportedRegion` (not `ap-guangzhou`, `ap-beijing`
//!   or `ap-nanjing`), `UnknownParameter`, `MissingParameter`,
//!   `InvalidParameter` (wrong types, body not a JSON object),
//!   `UnauthorizedOperation.SmsSdkAppIdVerifyFail` (another `SmsSdkAppId`)
//!   as `Response.Error`, with HTTP 200 like the real API.
//! - Per number, in `SendStatusSet` (`Fee` 1 when sent, else 0): another
//!   `SignName` is `FailedOperation.SignatureIncorrectOrUnapproved`, another
//!   `TemplateId` `FailedOperation.TemplateIncorrectOrUnapproved`,
//!   `TemplateParamSet` other than two parameters of 0 to 6 digits
//!   `InvalidParameterValue.TemplateParameterFormatError` (Tencent's rule
//!   for verification-code templates), a number not in E.164
//!   `InvalidParameterValue.IncorrectPhoneNumber`.
//!
//! A sent message lands in the number's inbox: `GET /emulator/sms?mobile=<E.164>`
//! (`%2B86…`, or the 11 mainland digits) answers `{"mobile", "messages":
//! [{"text", "params", "sentAt"}]}`, oldest first (CORS open, for the demo
//! page), so the demo and the tests read the code as a phone would.
//!
//! Numbers that force an answer (after the checks above; mainland numbers
//! `+86 199 0000 00NN`, which no carrier assigns):
//!
//! | number | answer |
//! |---|---|
//! | `+8619900000001` | `LimitExceeded.PhoneNumberThirtySecondLimit` |
//! | `+8619900000002` | `LimitExceeded.PhoneNumberOneHourLimit` |
//! | `+8619900000003` | `LimitExceeded.PhoneNumberDailyLimit` |
//! | `+8619900000004` | `InvalidParameterValue.IncorrectPhoneNumber` |
//! | `+8619900000005` | `FailedOperation.InsufficientBalanceInSmsPackage` |
//! | `+8619900000006` | `FailedOperation.PhoneNumberInBlacklist` |
//! | `+8619900000007` | `Response.Error` `InternalError.Timeout` |
//! | `+8619900000008` | sent, but the answer comes after [`SLOW_ANSWER`] (past the client's 5 s time-out) |
//! | `+8619900000009` | HTTP 200 with an HTML body |
//! | `+8619900000010` | HTTP 502, plain text |
//!
//! [`SmsEmulator::calls`] counts every request to `POST /`, so tests can
//! assert that a refused send made no call.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse::clock::Clock;
use gatehouse::sms::client::{ACTION, API_VERSION, SENT, SERVICE};
use http::{Method, StatusCode};
use hyper::body::Bytes;
use serde_json::{Map, Value, json};

use crate::serve::{Handle, HttpResponse, Served, allow_cors, plain, serve_state, with_body};
use crate::tc3_api::{self, ApiError, Endpoint, json_answer, string_param};
use crate::tc3_check;

/// Where the inbox is read.
pub const INBOX_PATH: &str = "/emulator/sms";
/// How long `+8619900000008` takes to answer.
pub const SLOW_ANSWER: Duration = Duration::from_secs(8);
/// The regions the SMS API serves mainland messages from.
pub const REGIONS: [&str; 3] = ["ap-guangzhou", "ap-beijing", "ap-nanjing"];
/// Body parameters the real action accepts.
const KNOWN_PARAMETERS: [&str; 8] = [
    "PhoneNumberSet",
    "SmsSdkAppId",
    "TemplateId",
    "SignName",
    "TemplateParamSet",
    "ExtendCode",
    "SessionContext",
    "SenderId",
];

/// A number's forced answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forced {
    /// This `Code` in the number's status.
    Code(&'static str),
    /// `Response.Error` with this code.
    RequestError(&'static str),
    /// Sent, answered after [`SLOW_ANSWER`].
    Slow,
    /// HTTP 200, not JSON.
    NotJson,
    /// HTTP 502.
    BadGateway,
}

/// The numbers that force an answer (see the module).
pub const FORCED: [(&str, Forced); 10] = [
    (
        "+8619900000001",
        Forced::Code("LimitExceeded.PhoneNumberThirtySecondLimit"),
    ),
    (
        "+8619900000002",
        Forced::Code("LimitExceeded.PhoneNumberOneHourLimit"),
    ),
    (
        "+8619900000003",
        Forced::Code("LimitExceeded.PhoneNumberDailyLimit"),
    ),
    (
        "+8619900000004",
        Forced::Code("InvalidParameterValue.IncorrectPhoneNumber"),
    ),
    (
        "+8619900000005",
        Forced::Code("FailedOperation.InsufficientBalanceInSmsPackage"),
    ),
    (
        "+8619900000006",
        Forced::Code("FailedOperation.PhoneNumberInBlacklist"),
    ),
    (
        "+8619900000007",
        Forced::RequestError("InternalError.Timeout"),
    ),
    ("+8619900000008", Forced::Slow),
    ("+8619900000009", Forced::NotJson),
    ("+8619900000010", Forced::BadGateway),
];

/// The account, application, signature and template the emulator plays.
#[derive(Clone)]
pub struct SmsEmulatorConfig {
    pub secret_id: String,
    pub secret_key: String,
    pub sdk_app_id: String,
    pub sign_name: String,
    pub template_id: String,
    /// The emulator's time: the timestamp window and `sentAt`.
    pub clock: Clock,
}

/// A message in a number's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// As the phone shows it: `【<sign>】您的验证码为<code>，<minutes>分钟内有效。`
    pub text: String,
    /// The template's parameters as sent.
    pub params: Vec<String>,
    /// Epoch milliseconds.
    pub sent_ms: i64,
}

struct State {
    config: SmsEmulatorConfig,
    inbox: Mutex<HashMap<String, Vec<Message>>>,
    endpoint: Endpoint,
}

/// A running emulator; stops when dropped.
pub struct SmsEmulator {
    served: Served,
    state: Arc<State>,
}

impl SmsEmulator {
    /// Starts on a free loopback port.
    pub async fn start(config: SmsEmulatorConfig) -> std::io::Result<Self> {
        Self::start_with(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts on `addr` (the local replays of `docs/deploy-and-operations.md` pin the port).
    pub async fn start_with(addr: SocketAddr, config: SmsEmulatorConfig) -> std::io::Result<Self> {
        let state = Arc::new(State {
            config,
            inbox: Mutex::new(HashMap::new()),
            endpoint: Endpoint::new("sms"),
        });
        let served = serve_state(addr, &state).await?;
        Ok(Self { served, state })
    }

    /// `http://127.0.0.1:<port>`: the value for `TENCENT_SMS_ENDPOINT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.served.addr)
    }

    /// Requests received at `POST /` (the API) so far.
    pub fn calls(&self) -> usize {
        self.state.endpoint.calls()
    }

    /// The messages `mobile` (E.164) received, oldest first.
    pub fn inbox(&self, mobile: &str) -> Vec<Message> {
        self.state.inbox_of(mobile)
    }

    /// The code of the last message `mobile` received (its first
    /// parameter), as a phone's user would read it.
    pub fn last_code(&self, mobile: &str) -> Option<String> {
        self.inbox(mobile)
            .last()
            .and_then(|m| m.params.first().cloned())
    }
}

/// A number as a tester types it into the inbox query: E.164 (a `+` that
/// arrived as a space included), or 11 mainland digits.
fn inbox_key(query: &str) -> String {
    let digits: String = query.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = digits.trim_start_matches('+');
    if digits.len() == 11 && digits.starts_with('1') {
        format!("+86{digits}")
    } else {
        format!("+{digits}")
    }
}

impl State {
    fn inbox_of(&self, mobile: &str) -> Vec<Message> {
        let inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        inbox.get(mobile).cloned().unwrap_or_default()
    }
}

impl Handle for State {
    async fn handle(&self, req: http::Request<Bytes>) -> HttpResponse {
        match (req.method(), req.uri().path()) {
            (_, "/") => match self.endpoint.refusal(&req) {
                Some(refused) => refused,
                None => self.api(&req).await,
            },
            (&Method::GET, INBOX_PATH) => {
                let mobile = req
                    .uri()
                    .query()
                    .and_then(|q| {
                        form_urlencoded::parse(q.as_bytes())
                            .find(|(k, _)| k == "mobile")
                            .map(|(_, v)| inbox_key(&v))
                    })
                    .unwrap_or_default();
                let messages: Vec<Value> = self
                    .inbox_of(&mobile)
                    .into_iter()
                    .map(|m| json!({"text": m.text, "params": m.params, "sentAt": m.sent_ms}))
                    .collect();
                let mut response = json_answer(&json!({"mobile": mobile, "messages": messages}));
                allow_cors(&mut response, "GET, OPTIONS");
                response
            }
            (&Method::OPTIONS, INBOX_PATH) => {
                let mut response = plain(StatusCode::NO_CONTENT, "");
                allow_cors(&mut response, "GET, OPTIONS");
                response
            }
            _ => plain(StatusCode::NOT_FOUND, "not an emulated route"),
        }
    }
}

impl State {
    fn error(&self, code: &str, message: &str) -> HttpResponse {
        self.endpoint.error(code, message)
    }

    async fn api(&self, req: &http::Request<Bytes>) -> HttpResponse {
        if let Err((code, message)) = self.authenticate(req) {
            return self.error(code, &message);
        }
        let params = match parse_params(req.body()) {
            Ok(params) => params,
            Err((code, message)) => return self.error(code, &message),
        };
        if params.sdk_app_id != self.config.sdk_app_id {
            return self.error(
                "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
                "the SmsSdkAppId is not the account's",
            );
        }
        let forced = params
            .numbers
            .iter()
            .find_map(|n| FORCED.iter().find(|(f, _)| f == n).map(|(_, f)| *f));
        match forced {
            Some(Forced::RequestError(code)) => return self.error(code, "forced by the emulator"),
            Some(Forced::NotJson) => {
                return with_body(
                    StatusCode::OK,
                    "text/html",
                    "<html><body>502 Bad Gateway</body></html>",
                );
            }
            Some(Forced::BadGateway) => return plain(StatusCode::BAD_GATEWAY, "forced status"),
            Some(Forced::Slow) => tokio::time::sleep(SLOW_ANSWER).await,
            Some(Forced::Code(_)) | None => {}
        }
        let statuses: Vec<Value> = params
            .numbers
            .iter()
            .map(|number| self.deliver(number, &params))
            .collect();
        json_answer(&json!({
            "Response": {"SendStatusSet": statuses, "RequestId": self.endpoint.request_id()}
        }))
    }

    /// One number's status, its message in its inbox when sent.
    fn deliver(&self, number: &str, params: &Params) -> Value {
        let forced = FORCED.iter().find(|(f, _)| *f == number).map(|(_, f)| *f);
        let refusal = if let Some(Forced::Code(code)) = forced {
            Some(code)
        } else if !is_e164(number) {
            Some("InvalidParameterValue.IncorrectPhoneNumber")
        } else if params.sign_name != self.config.sign_name {
            Some("FailedOperation.SignatureIncorrectOrUnapproved")
        } else if params.template_id != self.config.template_id {
            Some("FailedOperation.TemplateIncorrectOrUnapproved")
        } else if params.template_params.len() != 2
            || params
                .template_params
                .iter()
                .any(|p| p.len() > 6 || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            Some("InvalidParameterValue.TemplateParameterFormatError")
        } else {
            None
        };
        let (code, message, fee) = match refusal {
            Some(code) => (code, "forced or refused by the emulator", 0),
            None => {
                let text = format!(
                    "【{}】您的验证码为{}，{}分钟内有效。",
                    params.sign_name, params.template_params[0], params.template_params[1]
                );
                let message = Message {
                    text,
                    params: params.template_params.clone(),
                    sent_ms: self.config.clock.now_ms(),
                };
                let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
                inbox.entry(number.to_owned()).or_default().push(message);
                (SENT, "send success", 1)
            }
        };
        let mut status = Map::new();
        status.insert("SerialNo".into(), json!(self.endpoint.request_id()));
        status.insert("PhoneNumber".into(), json!(number));
        status.insert("Fee".into(), json!(fee));
        status.insert("SessionContext".into(), json!(""));
        status.insert("Code".into(), json!(code));
        status.insert("Message".into(), json!(message));
        status.insert(
            "IsoCode".into(),
            json!(if number.starts_with("+86") {
                "CN"
            } else {
                "DEF"
            }),
        );
        Value::Object(status)
    }

    /// Checks the signature, its freshness and the X-TC-* headers.
    fn authenticate(&self, req: &http::Request<Bytes>) -> Result<(), ApiError> {
        tc3_api::check_call(
            req,
            &tc3_api::Expected {
                account: tc3_check::Account {
                    secret_id: &self.config.secret_id,
                    secret_key: &self.config.secret_key,
                    service: SERVICE,
                },
                actions: &[ACTION],
                version: API_VERSION,
                now_secs: self.config.clock.now_ms().div_euclid(1000),
            },
        )?;
        match tc3_api::header(req, "x-tc-region") {
            None => {
                return Err((
                    "MissingParameter",
                    "the request is missing X-TC-Region".to_owned(),
                ));
            }
            Some(region) if !REGIONS.contains(&region) => {
                return Err((
                    "UnsupportedRegion",
                    "SendSms is not served in this region".to_owned(),
                ));
            }
            Some(_) => {}
        }
        tc3_api::require_json(req)
    }
}

/// `+` and 8 to 15 digits, not starting with 0.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

struct Params {
    numbers: Vec<String>,
    sdk_app_id: String,
    template_id: String,
    sign_name: String,
    template_params: Vec<String>,
}

fn parse_params(body: &[u8]) -> Result<Params, ApiError> {
    let map = tc3_api::parameters(body, &KNOWN_PARAMETERS)?;
    let string = |name: &str, required: bool| -> Result<String, ApiError> {
        match string_param(&map, name)? {
            None if required => Err(tc3_api::missing(name)),
            found => Ok(found.unwrap_or_default()),
        }
    };
    let strings = |name: &str, required: bool| -> Result<Vec<String>, ApiError> {
        match map.get(name) {
            None if required => Err(tc3_api::missing(name)),
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or(("InvalidParameter", format!("{name} must hold strings"))),
            Some(_) => Err(("InvalidParameter", format!("{name} must be an array"))),
        }
    };
    let numbers = strings("PhoneNumberSet", true)?;
    if numbers.is_empty() {
        return Err((
            "MissingParameter.EmptyPhoneNumberSet",
            "PhoneNumberSet is empty".to_owned(),
        ));
    }
    Ok(Params {
        numbers,
        sdk_app_id: string("SmsSdkAppId", true)?,
        template_id: string("TemplateId", true)?,
        sign_name: string("SignName", false)?,
        template_params: strings("TemplateParamSet", false)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tc3_api::testing::{Signed, read};

    const T0: i64 = 1_700_000_000_000;

    fn state() -> State {
        State {
            config: SmsEmulatorConfig {
                secret_id: "AKIDsms".into(),
                secret_key: "sms-key".into(),
                sdk_app_id: "1400000001".into(),
                sign_name: "网关".into(),
                template_id: "1000001".into(),
                clock: Clock::manual(T0),
            },
            inbox: Mutex::new(HashMap::new()),
            endpoint: Endpoint::new("sms"),
        }
    }

    fn body(number: &str) -> Value {
        json!({"PhoneNumberSet": [number], "SmsSdkAppId": "1400000001", "SignName": "网关",
               "TemplateId": "1000001", "TemplateParamSet": ["012345", "5"]})
    }

    fn request(body: &Value, headers: &[(&str, &str)], key: &str) -> http::Request<Bytes> {
        let (mut builder, payload) = Signed {
            service: SERVICE,
            action: ACTION,
            secret_id: "AKIDsms",
            secret_key: key,
            timestamp: T0 / 1000,
        }
        .post(body);
        let mut defaults = vec![
            ("x-tc-version", API_VERSION),
            ("x-tc-region", "ap-guangzhou"),
        ];
        defaults.retain(|(name, _)| !headers.iter().any(|(h, _)| h == name));
        for (name, value) in defaults.iter().chain(headers) {
            if !value.is_empty() {
                builder = builder.header(*name, *value);
            }
        }
        builder.body(payload).unwrap()
    }

    async fn answer(st: &State, req: http::Request<Bytes>) -> (StatusCode, Value) {
        read(st.handle(req).await).await
    }

    /// The number's `Code`, or the request's `Error.Code`.
    async fn code(st: &State, req: http::Request<Bytes>) -> String {
        let (_, body) = answer(st, req).await;
        let response = &body["Response"];
        let code = if response["Error"].is_object() {
            &response["Error"]["Code"]
        } else {
            &response["SendStatusSet"][0]["Code"]
        };
        code.as_str().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn a_signed_send_lands_in_the_inbox() {
        let st = state();
        let (status, body) = answer(&st, request(&body("+8613800138000"), &[], "sms-key")).await;
        assert_eq!(status, StatusCode::OK);
        let sent = &body["Response"]["SendStatusSet"][0];
        assert_eq!(
            (sent["Code"].as_str(), sent["Fee"].as_u64()),
            (Some("Ok"), Some(1))
        );
        assert_eq!(sent["IsoCode"], "CN");
        let inbox = st.inbox_of("+8613800138000");
        assert_eq!(inbox.len(), 1);
        assert_eq!(inbox[0].text, "【网关】您的验证码为012345，5分钟内有效。");
        let read = http::Request::get(format!("{INBOX_PATH}?mobile=%2B8613800138000"))
            .body(Bytes::new())
            .unwrap();
        let (_, listed) = answer(&st, read).await;
        assert_eq!(listed["messages"][0]["params"], json!(["012345", "5"]));
        let by_digits = http::Request::get(format!("{INBOX_PATH}?mobile=13800138000"))
            .body(Bytes::new())
            .unwrap();
        assert_eq!(
            answer(&st, by_digits).await.1["messages"],
            listed["messages"]
        );
        assert_eq!(st.endpoint.calls(), 1, "the inbox is no API call");
    }

    #[tokio::test]
    async fn signature_region_version_and_app_are_checked() {
        let st = state();
        let good = body("+8613800138000");
        for (req, want) in [
            (
                request(&good, &[], "another-key"),
                "AuthFailure.SignatureFailure",
            ),
            (
                request(&good, &[("x-tc-region", "")], "sms-key"),
                "MissingParameter",
            ),
            (
                request(&good, &[("x-tc-region", "ap-tokyo")], "sms-key"),
                "UnsupportedRegion",
            ),
            (
                request(&good, &[("x-tc-version", "2019-07-11")], "sms-key"),
                "NoSuchVersion",
            ),
        ] {
            assert_eq!(code(&st, req).await, want);
        }
        let mut other_app = good.clone();
        other_app["SmsSdkAppId"] = json!("1400000002");
        let mut unknown = good.clone();
        unknown["Extra"] = json!(1);
        let mut as_number = good.clone();
        as_number["SmsSdkAppId"] = json!(1400000001);
        for (body, want) in [
            (other_app, "UnauthorizedOperation.SmsSdkAppIdVerifyFail"),
            (unknown, "UnknownParameter"),
            (as_number, "InvalidParameter"),
        ] {
            assert_eq!(code(&st, request(&body, &[], "sms-key")).await, want);
        }
        assert!(st.inbox_of("+8613800138000").is_empty());
    }

    #[tokio::test]
    async fn sign_template_and_parameters_are_checked_per_number() {
        let st = state();
        let cases = [
            (
                "SignName",
                json!("其他"),
                "FailedOperation.SignatureIncorrectOrUnapproved",
            ),
            (
                "TemplateId",
                json!("9"),
                "FailedOperation.TemplateIncorrectOrUnapproved",
            ),
            (
                "TemplateParamSet",
                json!(["1234567", "5"]),
                "InvalidParameterValue.TemplateParameterFormatError",
            ),
            (
                "TemplateParamSet",
                json!(["123456"]),
                "InvalidParameterValue.TemplateParameterFormatError",
            ),
            (
                "PhoneNumberSet",
                json!(["13800138000"]),
                "InvalidParameterValue.IncorrectPhoneNumber",
            ),
        ];
        for (key, value, want) in cases {
            let mut changed = body("+8613800138000");
            changed[key] = value;
            assert_eq!(
                code(&st, request(&changed, &[], "sms-key")).await,
                want,
                "{key}"
            );
        }
        assert!(st.inbox_of("+8613800138000").is_empty());
    }

    #[tokio::test]
    async fn forced_numbers_answer_as_documented() {
        let st = state();
        for (number, forced) in FORCED {
            let req = request(&body(number), &[], "sms-key");
            match forced {
                Forced::Code(want) | Forced::RequestError(want) => {
                    assert_eq!(code(&st, req).await, want, "{number}");
                }
                Forced::NotJson => {
                    assert_eq!(answer(&st, req).await, (StatusCode::OK, Value::Null))
                }
                Forced::BadGateway => {
                    assert_eq!(answer(&st, req).await.0, StatusCode::BAD_GATEWAY);
                }
                // Its wait is real time: covered end to end (tests/e2e/sms.rs).
                Forced::Slow => {}
            }
            assert!(st.inbox_of(number).is_empty(), "{number}");
        }
    }
}
