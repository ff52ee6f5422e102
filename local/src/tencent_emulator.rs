//! An emulator of the Tencent Cloud Captcha API 3.0 (`captcha.tencentcloudapi.com`,
//! version `2019-07-22`) for the dev server and the tests, over loopback.
//!
//! It checks what the real API checks, for real:
//!
//! - `POST /` with `Authorization: TC3-HMAC-SHA256 Credential=<id>/<date>/captcha/tc3_request,
//!   SignedHeaders=…, Signature=…`, recomputed with its own [`crate::tc3_check`] (not the
//!   client's `gatehouse::tencent::tc3`, which it is there to check) over the
//!   method, query, every signed header as received and the body byte for byte
//!   (`content-type` and `host` must be signed). Errors, as `{"Response":{"Error":{…},"RequestId":…}}`
//!   with HTTP 200 like the real API:
//!   `AuthFailure.InvalidAuthorization` (header missing or malformed),
//!   `AuthFailure.SecretIdNotFound` (another SecretId),
//!   `AuthFailure.SignatureExpire` (`X-TC-Timestamp` more than 5 minutes off the emulator's clock),
//!   `AuthFailure.SignatureFailure` (wrong signature, date or service in the credential),
//!   `InvalidAction` (`X-TC-Action` not `DescribeCaptchaResult`/`DescribeCaptchaMiniResult`),
//!   `NoSuchVersion` (`X-TC-Version` not `2019-07-22`), `MissingParameter`,
//!   `UnknownParameter`, `InvalidParameter` (`CaptchaType`/`CaptchaAppId` not JSON integers,
//!   body not a JSON object), `InvalidParameterValue` (`CaptchaType` ≠ 9).
//! - `CaptchaAppId` other than the configured one → `CaptchaCode` 16;
//!   `AppSecretKey` other than the configured one → 100.
//! - Tickets are issued as the captcha front end would issue them: `POST /emulator/ticket`
//!   answers `{"ret":0,"ticket":"t03…","randstr":"@…","appid":"<CaptchaAppId>"}` (the shape of
//!   the web `TencentCaptcha` callback; CORS open for the demo page), or
//!   [`TencentEmulator::issue_ticket`] from Rust. An issued ticket lives 5 minutes
//!   (then 8), passes once (then 9), and with `DescribeCaptchaResult` needs its own
//!   randstr (else 7, which does not use the ticket up). An unknown ticket is 15.
//!
//! Ticket patterns that force an answer (after the signature, parameter, app id and
//! secret key checks; the same answer every time; append `~anything` to make
//! distinct tickets of one pattern, e.g. `force-pass~2`):
//!
//! | ticket | answer |
//! |---|---|
//! | `force-pass` | `CaptchaCode` 1, `EvilLevel` 0 |
//! | `force-evil` | `CaptchaCode` 1, `EvilLevel` 100 |
//! | `force-<n>` (e.g. `force-7`, `force-8`, `force-9`, `force-15`, `force-16`, `force-100`) | `CaptchaCode` n |
//! | `force-error` / `force-error-<Code>` | `Response.Error` with `InternalError` / `<Code>` |
//! | `force-slow` | `CaptchaCode` 1 after [`SLOW_ANSWER`] (longer than the client's 5 s time-out) |
//! | `force-notjson` | HTTP 200 with an HTML body |
//! | `force-status-<n>` (e.g. `force-status-500`) | HTTP n, plain-text body |
//! | `force-huge` | HTTP 200 with a JSON body over 64 KiB |
//! | `trerror_…` / `terror_…` (a front end's disaster-recovery ticket) | `CaptchaCode` 21, "diff", as Tencent answers them |
//!
//! [`TencentEmulator::calls`] counts every request to `POST /`, so tests can
//! assert that a reused ticket made no call.
//!
//! For pages, `GET /TJCaptcha.js` (and `/TCaptcha.js`) serves a stand-in of
//! Tencent's web SDK with the real API (`new TencentCaptcha(appId, callback,
//! options).show()`, callback `{ret, ticket, randstr, appid}`, `ret` 2 when
//! closed) whose tickets come from `POST /emulator/ticket`; the demo page
//! of the dev server loads it from here (see `tencent_captcha.js`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use gatehouse::clock::Clock;
use gatehouse::tencent::client::{API_VERSION, Action, SERVICE};
use http::{Method, StatusCode};
use hyper::body::Bytes;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Map, json};

const ACTION_RESULT: &str = Action::Result.as_str();
const ACTION_MINI_RESULT: &str = Action::MiniResult.as_str();

use crate::serve::{Handle, HttpResponse, Served, allow_cors, plain, serve_state, with_body};
use crate::tc3_api::{self, ApiError, Endpoint, json_answer, required_string};
use crate::tc3_check;

/// How long an issued ticket can be verified.
pub const TICKET_LIFETIME_MS: i64 = 5 * 60 * 1000;
pub use crate::tc3_check::TIMESTAMP_WINDOW_SECS;
/// How long `force-slow` takes to answer.
pub const SLOW_ANSWER: Duration = Duration::from_secs(8);
/// Where the front end's tickets are issued.
pub const ISSUE_PATH: &str = "/emulator/ticket";
/// Where the stand-in web SDK is served (the real one is
/// `https://turing.captcha.qcloud.com/TJCaptcha.js`).
pub const SCRIPT_PATH: &str = "/TJCaptcha.js";
/// The stand-in of Tencent's web SDK.
pub const STAND_IN_SCRIPT: &str = include_str!("tencent_captcha.js");
/// Body parameters the real actions accept.
const KNOWN_PARAMETERS: [&str; 11] = [
    "CaptchaType",
    "Ticket",
    "UserIp",
    "Randstr",
    "CaptchaAppId",
    "AppSecretKey",
    "BusinessId",
    "SceneId",
    "MacAddress",
    "Imei",
    "NeedGetCaptchaTime",
];

/// The account and captcha app the emulator plays.
#[derive(Clone)]
pub struct EmulatorConfig {
    pub secret_id: String,
    pub secret_key: String,
    pub captcha_app_id: u64,
    pub app_secret_key: String,
    /// The emulator's time: ticket lifetimes and the timestamp window.
    pub clock: Clock,
}

/// A ticket as the captcha front end hands it to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTicket {
    pub ticket: String,
    pub randstr: String,
}

struct TicketState {
    randstr: String,
    issued_ms: i64,
    used: bool,
}

struct State {
    config: EmulatorConfig,
    tickets: Mutex<HashMap<String, TicketState>>,
    endpoint: Endpoint,
}

/// A running emulator; stops when dropped.
pub struct TencentEmulator {
    served: Served,
    state: Arc<State>,
}

impl TencentEmulator {
    /// Starts on a free loopback port with the system clock.
    pub async fn start(
        secret_id: &str,
        secret_key: &str,
        captcha_app_id: u64,
        app_secret_key: &str,
    ) -> std::io::Result<Self> {
        Self::start_with(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            EmulatorConfig {
                secret_id: secret_id.to_owned(),
                secret_key: secret_key.to_owned(),
                captcha_app_id,
                app_secret_key: app_secret_key.to_owned(),
                clock: Clock::system(),
            },
        )
        .await
    }

    /// Starts on `addr` (port 0 for a free one) with the given config and clock.
    pub async fn start_with(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<Self> {
        let state = Arc::new(State {
            config,
            tickets: Mutex::new(HashMap::new()),
            endpoint: Endpoint::new("emu"),
        });
        let served = serve_state(addr, &state).await?;
        Ok(Self { served, state })
    }

    /// `http://127.0.0.1:<port>`: the value for `TENCENT_CAPTCHA_ENDPOINT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.served.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.served.addr
    }

    /// Issues a fresh ticket and randstr, as a solved captcha would.
    pub fn issue_ticket(&self) -> IssuedTicket {
        self.state.issue()
    }

    /// Requests received at `POST /` (the API) so far.
    pub fn calls(&self) -> usize {
        self.state.endpoint.calls()
    }
}

impl State {
    fn issue(&self) -> IssuedTicket {
        let mut rng = rand::rng();
        let ticket: String = (&mut rng)
            .sample_iter(Alphanumeric)
            .take(96)
            .map(char::from)
            .collect();
        let randstr: String = (&mut rng)
            .sample_iter(Alphanumeric)
            .take(8)
            .map(char::from)
            .collect();
        let issued = IssuedTicket {
            ticket: format!("t03{ticket}"),
            randstr: format!("@{randstr}"),
        };
        self.tickets_lock().insert(
            issued.ticket.clone(),
            TicketState {
                randstr: issued.randstr.clone(),
                issued_ms: self.config.clock.now_ms(),
                used: false,
            },
        );
        issued
    }

    fn tickets_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TicketState>> {
        self.tickets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Handle for State {
    async fn handle(&self, req: http::Request<Bytes>) -> HttpResponse {
        match (req.method(), req.uri().path()) {
            (_, "/") => match self.endpoint.refusal(&req) {
                Some(refused) => refused,
                None => self.api(&req).await,
            },
            (&Method::POST, ISSUE_PATH) => {
                let issued = self.issue();
                let mut response = json_answer(&json!({
                    "ret": 0,
                    "ticket": issued.ticket,
                    "randstr": issued.randstr,
                    "appid": self.config.captcha_app_id.to_string(),
                }));
                allow_cors(&mut response, "POST, OPTIONS");
                response
            }
            (&Method::GET, SCRIPT_PATH | "/TCaptcha.js") => with_body(
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                STAND_IN_SCRIPT,
            ),
            (&Method::OPTIONS, ISSUE_PATH) => {
                let mut response = plain(StatusCode::NO_CONTENT, "");
                allow_cors(&mut response, "POST, OPTIONS");
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

    fn verdict(&self, captcha_code: i64, evil_level: Option<i64>) -> HttpResponse {
        let mut response = Map::new();
        response.insert("CaptchaCode".into(), json!(captcha_code));
        response.insert("CaptchaMsg".into(), json!(captcha_message(captcha_code)));
        if let Some(level) = evil_level {
            response.insert("EvilLevel".into(), json!(level));
            response.insert(
                "GetCaptchaTime".into(),
                json!(self.config.clock.now_ms() / 1000),
            );
        }
        response.insert("RequestId".into(), json!(self.endpoint.request_id()));
        json_answer(&json!({ "Response": response }))
    }

    async fn api(&self, req: &http::Request<Bytes>) -> HttpResponse {
        let action = match self.authenticate(req) {
            Ok(action) => action,
            Err((code, message)) => return self.error(code, &message),
        };
        let params = match parse_params(req.body(), action) {
            Ok(params) => params,
            Err((code, message)) => return self.error(code, &message),
        };
        // The mini-program action answers without EvilLevel.
        let evil = |level: i64| (action == ACTION_RESULT).then_some(level);
        if params.captcha_app_id != self.config.captcha_app_id {
            return self.verdict(16, None);
        }
        if params.app_secret_key != self.config.app_secret_key {
            return self.verdict(100, None);
        }
        if params.ticket.starts_with("trerror_") || params.ticket.starts_with("terror_") {
            return self.verdict(21, None);
        }
        if let Some(pattern) = params.ticket.strip_prefix("force-") {
            let pattern = pattern.split('~').next().unwrap_or_default();
            return self.forced(pattern, evil(0), evil(100)).await;
        }
        let now_ms = self.config.clock.now_ms();
        let mut tickets = self.tickets_lock();
        let Some(ticket) = tickets.get_mut(&params.ticket) else {
            return self.verdict(15, None);
        };
        if now_ms >= ticket.issued_ms + TICKET_LIFETIME_MS {
            return self.verdict(8, None);
        }
        if ticket.used {
            return self.verdict(9, None);
        }
        if let Some(randstr) = &params.randstr
            && *randstr != ticket.randstr
        {
            return self.verdict(7, None);
        }
        ticket.used = true;
        drop(tickets);
        self.verdict(1, evil(0))
    }

    async fn forced(
        &self,
        pattern: &str,
        pass_level: Option<i64>,
        evil_level: Option<i64>,
    ) -> HttpResponse {
        match pattern {
            "pass" => self.verdict(1, pass_level),
            "evil" => self.verdict(1, evil_level),
            "error" => self.error("InternalError", "forced by the emulator"),
            "slow" => {
                tokio::time::sleep(SLOW_ANSWER).await;
                self.verdict(1, pass_level)
            }
            "notjson" => with_body(
                StatusCode::OK,
                "text/html",
                "<html><body>502 Bad Gateway</body></html>",
            ),
            "huge" => {
                let padding = "x".repeat(100 * 1024);
                json_answer(&json!({"Response": {"CaptchaCode": 1, "CaptchaMsg": padding}}))
            }
            other => {
                if let Some(code) = other.strip_prefix("error-") {
                    return self.error(code, "forced by the emulator");
                }
                if let Some(status) = other
                    .strip_prefix("status-")
                    .and_then(|s| s.parse::<u16>().ok())
                    .and_then(|s| StatusCode::from_u16(s).ok())
                {
                    return plain(status, "forced status");
                }
                match other.parse::<i64>() {
                    Ok(code) => self.verdict(code, if code == 1 { pass_level } else { None }),
                    Err(_) => self.verdict(15, None),
                }
            }
        }
    }

    /// Checks the signature, its freshness and the X-TC-* headers; returns
    /// the action.
    fn authenticate(&self, req: &http::Request<Bytes>) -> Result<&'static str, ApiError> {
        let action = tc3_api::check_call(
            req,
            &tc3_api::Expected {
                account: tc3_check::Account {
                    secret_id: &self.config.secret_id,
                    secret_key: &self.config.secret_key,
                    service: SERVICE,
                },
                actions: &[ACTION_RESULT, ACTION_MINI_RESULT],
                version: API_VERSION,
                now_secs: self.config.clock.now_ms().div_euclid(1000),
            },
        )?;
        tc3_api::require_json(req)?;
        Ok(action)
    }
}

struct Params {
    ticket: String,
    randstr: Option<String>,
    captcha_app_id: u64,
    app_secret_key: String,
}

fn parse_params(body: &[u8], action: &str) -> Result<Params, ApiError> {
    let map = tc3_api::parameters(body, &KNOWN_PARAMETERS)?;
    if action == ACTION_MINI_RESULT && map.contains_key("Randstr") {
        return Err((
            "UnknownParameter",
            "DescribeCaptchaMiniResult takes no Randstr".to_owned(),
        ));
    }
    let integer = |name: &str| -> Result<u64, ApiError> {
        match map.get(name) {
            None => Err(tc3_api::missing(name)),
            Some(v) => v
                .as_u64()
                .ok_or(("InvalidParameter", format!("{name} must be an integer"))),
        }
    };
    let string = |name: &str| required_string(&map, name);
    if integer("CaptchaType")? != 9 {
        return Err(("InvalidParameterValue", "CaptchaType must be 9".to_owned()));
    }
    let captcha_app_id = integer("CaptchaAppId")?;
    let ticket = string("Ticket")?;
    string("UserIp")?;
    let app_secret_key = string("AppSecretKey")?;
    let randstr = if action == ACTION_RESULT {
        Some(string("Randstr")?)
    } else {
        None
    };
    Ok(Params {
        ticket,
        randstr,
        captcha_app_id,
        app_secret_key,
    })
}

/// `CaptchaMsg` for a `CaptchaCode`, as the real API words them.
pub fn captcha_message(code: i64) -> &'static str {
    match code {
        1 => "OK",
        6 => "first sig failed",
        7 => "captcha no match",
        8 => "verify timeout",
        9 => "Sequnce repeat",
        10 => "Sequnce invalid",
        12 => "sig len error",
        13 => "verify ip no match",
        15 => "decrypt fail",
        16 => "appid-ticket mismatch",
        21 => "diff",
        25 => "bad visitor",
        26 => "system internal error",
        100 => "appid-secretkey-ticket mismatch",
        _ => "forced by the emulator",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tc3_api::testing::{Signed, read};
    use serde_json::Value;

    const ID: &str = "AKIDemulator";
    const KEY: &str = "emulator-secret-key";
    const APP: u64 = 190_000_001;
    const APP_KEY: &str = "app-secret-key";
    const T0: i64 = 1_700_000_000_000;

    fn state(clock: Clock) -> State {
        State {
            config: EmulatorConfig {
                secret_id: ID.into(),
                secret_key: KEY.into(),
                captcha_app_id: APP,
                app_secret_key: APP_KEY.into(),
                clock,
            },
            tickets: Mutex::new(HashMap::new()),
            endpoint: Endpoint::new("emu"),
        }
    }

    struct Call<'a> {
        action: &'a str,
        version: &'a str,
        body: Value,
        timestamp: i64,
        secret_id: &'a str,
        secret_key: &'a str,
    }

    impl<'a> Call<'a> {
        fn new(action: &'a str, body: Value) -> Self {
            Self {
                action,
                version: API_VERSION,
                body,
                timestamp: T0 / 1000,
                secret_id: ID,
                secret_key: KEY,
            }
        }

        fn request(&self) -> http::Request<Bytes> {
            let (builder, payload) = Signed {
                service: SERVICE,
                action: self.action,
                secret_id: self.secret_id,
                secret_key: self.secret_key,
                timestamp: self.timestamp,
            }
            .post(&self.body);
            builder
                .header("x-tc-version", self.version)
                .body(payload)
                .unwrap()
        }
    }

    fn web_body(ticket: &str, randstr: &str) -> Value {
        json!({"CaptchaType": 9, "Ticket": ticket, "UserIp": "203.0.113.9",
               "Randstr": randstr, "CaptchaAppId": APP, "AppSecretKey": APP_KEY})
    }

    async fn answer(state: &State, req: http::Request<Bytes>) -> (StatusCode, Value) {
        read(state.handle(req).await).await
    }

    async fn code(state: &State, call: &Call<'_>) -> Value {
        let (status, body) = answer(state, call.request()).await;
        assert_eq!(status, StatusCode::OK);
        let response = &body["Response"];
        assert!(response["RequestId"].is_string(), "{body}");
        if response["Error"].is_object() {
            response["Error"]["Code"].clone()
        } else {
            response["CaptchaCode"].clone()
        }
    }

    #[tokio::test]
    async fn issued_ticket_passes_once_with_its_randstr() {
        let st = state(Clock::manual(T0));
        let issued = st.issue();
        let wrong = Call::new(ACTION_RESULT, web_body(&issued.ticket, "@wrong"));
        assert_eq!(code(&st, &wrong).await, 7);
        let right = Call::new(ACTION_RESULT, web_body(&issued.ticket, &issued.randstr));
        let (_, body) = answer(&st, right.request()).await;
        assert_eq!(body["Response"]["CaptchaCode"], 1);
        assert_eq!(body["Response"]["CaptchaMsg"], "OK");
        assert_eq!(body["Response"]["EvilLevel"], 0);
        assert_eq!(code(&st, &right).await, 9);
        let unknown = Call::new(ACTION_RESULT, web_body("t03unknown", "@x"));
        assert_eq!(code(&st, &unknown).await, 15);
        assert_eq!(st.endpoint.calls(), 4);
    }

    #[tokio::test]
    async fn mini_program_action_takes_no_randstr_and_sends_no_evil_level() {
        let st = state(Clock::manual(T0));
        let issued = st.issue();
        let body = json!({"CaptchaType": 9, "Ticket": issued.ticket, "UserIp": "203.0.113.9",
                          "CaptchaAppId": APP, "AppSecretKey": APP_KEY});
        let (_, answer_body) = answer(&st, Call::new(ACTION_MINI_RESULT, body).request()).await;
        assert_eq!(answer_body["Response"]["CaptchaCode"], 1);
        assert!(answer_body["Response"].get("EvilLevel").is_none());
        let with_randstr = Call::new(ACTION_MINI_RESULT, web_body("force-pass", "@r"));
        assert_eq!(code(&st, &with_randstr).await, "UnknownParameter");
    }

    #[tokio::test]
    async fn tickets_expire_after_five_minutes() {
        let clock = Clock::manual(T0);
        let st = state(clock.clone());
        let issued = st.issue();
        clock.advance(TICKET_LIFETIME_MS);
        let mut call = Call::new(ACTION_RESULT, web_body(&issued.ticket, &issued.randstr));
        call.timestamp = clock.now_ms() / 1000;
        assert_eq!(code(&st, &call).await, 8);

        let fresh = st.issue();
        clock.advance(TICKET_LIFETIME_MS - 1);
        let mut call = Call::new(ACTION_RESULT, web_body(&fresh.ticket, &fresh.randstr));
        call.timestamp = clock.now_ms() / 1000;
        assert_eq!(code(&st, &call).await, 1);
    }

    #[tokio::test]
    async fn timestamp_window_is_five_minutes_either_way() {
        let st = state(Clock::manual(T0));
        for (offset, want) in [
            (-TIMESTAMP_WINDOW_SECS, json!(1)),
            (TIMESTAMP_WINDOW_SECS, json!(1)),
            (
                -TIMESTAMP_WINDOW_SECS - 1,
                json!("AuthFailure.SignatureExpire"),
            ),
            (
                TIMESTAMP_WINDOW_SECS + 1,
                json!("AuthFailure.SignatureExpire"),
            ),
        ] {
            let mut call = Call::new(ACTION_RESULT, web_body("force-pass", "@r"));
            call.timestamp = T0 / 1000 + offset;
            assert_eq!(code(&st, &call).await, want, "offset {offset}");
        }
    }

    #[tokio::test]
    async fn signature_credentials_and_headers_are_checked_for_real() {
        let st = state(Clock::manual(T0));
        let body = web_body("force-pass", "@r");

        let mut wrong_key = Call::new(ACTION_RESULT, body.clone());
        wrong_key.secret_key = "another-key";
        assert_eq!(code(&st, &wrong_key).await, "AuthFailure.SignatureFailure");

        let mut wrong_id = Call::new(ACTION_RESULT, body.clone());
        wrong_id.secret_id = "AKIDother";
        assert_eq!(code(&st, &wrong_id).await, "AuthFailure.SecretIdNotFound");

        let good = Call::new(ACTION_RESULT, body.clone());
        let (parts, _) = good.request().into_parts();
        let tampered = http::Request::from_parts(
            parts,
            Bytes::from(web_body("force-pass~x", "@r").to_string()),
        );
        let (_, answer_body) = answer(&st, tampered).await;
        assert_eq!(
            answer_body["Response"]["Error"]["Code"],
            "AuthFailure.SignatureFailure"
        );

        // A signed header changed after signing (action lower-cased is the
        // same canonical value, another host is not).
        let mut req = good.request();
        req.headers_mut()
            .insert("host", http::HeaderValue::from_static("evil.example"));
        let (_, answer_body) = answer(&st, req).await;
        assert_eq!(
            answer_body["Response"]["Error"]["Code"],
            "AuthFailure.SignatureFailure"
        );

        let mut req = good.request();
        req.headers_mut().remove("authorization");
        let (_, answer_body) = answer(&st, req).await;
        assert_eq!(
            answer_body["Response"]["Error"]["Code"],
            "AuthFailure.InvalidAuthorization"
        );

        let mut old_version = Call::new(ACTION_RESULT, body.clone());
        old_version.version = "2018-01-01";
        assert_eq!(code(&st, &old_version).await, "NoSuchVersion");

        let other_action = Call::new("DescribeInstances", body);
        assert_eq!(code(&st, &other_action).await, "InvalidAction");
        assert_eq!(code(&st, &good).await, 1);
    }

    #[tokio::test]
    async fn parameters_must_have_their_types() {
        let st = state(Clock::manual(T0));
        let mut as_string = web_body("force-pass", "@r");
        as_string["CaptchaAppId"] = json!(APP.to_string());
        let mut type_string = web_body("force-pass", "@r");
        type_string["CaptchaType"] = json!("9");
        let mut type_eight = web_body("force-pass", "@r");
        type_eight["CaptchaType"] = json!(8);
        let mut no_randstr = web_body("force-pass", "@r");
        no_randstr.as_object_mut().unwrap().remove("Randstr");
        let mut extra = web_body("force-pass", "@r");
        extra["Secret"] = json!(1);
        for (body, want) in [
            (as_string, "InvalidParameter"),
            (type_string, "InvalidParameter"),
            (type_eight, "InvalidParameterValue"),
            (no_randstr, "MissingParameter"),
            (extra, "UnknownParameter"),
            (json!([1]), "InvalidParameter"),
        ] {
            assert_eq!(code(&st, &Call::new(ACTION_RESULT, body)).await, want);
        }
    }

    #[tokio::test]
    async fn app_id_and_app_secret_key_mismatches_are_16_and_100() {
        let st = state(Clock::manual(T0));
        let mut other_app = web_body("force-pass", "@r");
        other_app["CaptchaAppId"] = json!(APP + 1);
        assert_eq!(code(&st, &Call::new(ACTION_RESULT, other_app)).await, 16);
        let mut other_key = web_body("force-pass", "@r");
        other_key["AppSecretKey"] = json!("nope");
        assert_eq!(code(&st, &Call::new(ACTION_RESULT, other_key)).await, 100);
    }

    #[tokio::test]
    async fn forced_patterns_answer_as_documented() {
        let st = state(Clock::manual(T0));
        for (ticket, want) in [
            ("force-pass", json!(1)),
            ("force-pass~2", json!(1)),
            ("force-7", json!(7)),
            ("force-8", json!(8)),
            ("force-9", json!(9)),
            ("force-15", json!(15)),
            ("force-16", json!(16)),
            ("force-100", json!(100)),
            ("force-error", json!("InternalError")),
            ("force-error-LimitExceeded", json!("LimitExceeded")),
        ] {
            let call = Call::new(ACTION_RESULT, web_body(ticket, "@r"));
            assert_eq!(code(&st, &call).await, want, "{ticket}");
        }
        let (_, evil) = answer(
            &st,
            Call::new(ACTION_RESULT, web_body("force-evil", "@r")).request(),
        )
        .await;
        assert_eq!(evil["Response"]["EvilLevel"], 100);
        let (status, _) = answer(
            &st,
            Call::new(ACTION_RESULT, web_body("force-status-500", "@r")).request(),
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let (status, body) = answer(
            &st,
            Call::new(ACTION_RESULT, web_body("force-notjson", "@r")).request(),
        )
        .await;
        assert_eq!((status, body), (StatusCode::OK, Value::Null));
    }

    #[tokio::test]
    async fn the_stand_in_sdk_is_served_as_javascript() {
        let st = state(Clock::manual(T0));
        for path in [SCRIPT_PATH, "/TCaptcha.js"] {
            let resp = st
                .handle(http::Request::get(path).body(Bytes::new()).unwrap())
                .await;
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(
                resp.headers()["content-type"],
                "text/javascript; charset=utf-8"
            );
        }
        assert!(STAND_IN_SCRIPT.contains("window.TencentCaptcha = TencentCaptcha"));
        assert!(STAND_IN_SCRIPT.contains(ISSUE_PATH));
        assert_eq!(st.endpoint.calls(), 0, "not an API call");
    }

    #[tokio::test]
    async fn ticket_endpoint_issues_tickets_in_the_callback_shape() {
        let st = state(Clock::manual(T0));
        let req = http::Request::post(ISSUE_PATH).body(Bytes::new()).unwrap();
        let (status, body) = answer(&st, req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["ret"], 0);
        assert_eq!(body["appid"], APP.to_string());
        let ticket = body["ticket"].as_str().unwrap();
        let randstr = body["randstr"].as_str().unwrap();
        let call = Call::new(ACTION_RESULT, web_body(ticket, randstr));
        assert_eq!(code(&st, &call).await, 1);
        assert_eq!(st.endpoint.calls(), 1, "issuing is not an API call");
    }
}
