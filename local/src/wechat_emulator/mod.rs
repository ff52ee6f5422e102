//! An emulator of the WeChat server APIs gatehouse calls (`docs/wechat.md`,
//! "The WeChat emulator"): `jscode2session`, `stable_token`,
//! `getuserphonenumber` and `getuserriskrank`, and of the client-side `wx.login`,
//! `wx.getUserInfo` and getPhoneNumber button that feed them, over loopback
//! HTTP.
//!
//! ## Endpoints
//!
//! - `GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code`
//!   answers like WeChat, always HTTP 200 with `Content-Type: text/plain`:
//!   `{"session_key":"<base64 of 16 bytes>","openid":"…","unionid":"…"}` or
//!   `{"errcode":N,"errmsg":"… rid: …"}`. Checks in order: `appid` (40013),
//!   `secret` (40125), `grant_type` (40002), `js_code` present (41008), then
//!   the code.
//! - `POST /cgi-bin/stable_token` with
//!   `{"grant_type":"client_credential","appid","secret","force_refresh"?}`
//!   (not JSON: 47001; then `appid` 40013, `secret` 40125, `grant_type`
//!   40002) answers `{"access_token":"…","expires_in":N}`. Normal mode
//!   hands out the current token while it has more than 5 minutes left
//!   (`expires_in` = what is left), else a new one for 7200 s, the old one
//!   staying valid until it expires. Force-refresh mode invalidates every
//!   earlier token and hands out a new one; within 30 s of the last force
//!   refresh it refreshes nothing (the current token comes back), and past
//!   20 a day (China time) it answers 45009.
//! - `POST /wxa/business/getuserphonenumber?access_token=…` with
//!   `{"code":"…"}`: the token first (missing 41001, unknown or invalidated
//!   40001, expired 42001), then the code (see below). Success:
//!   `{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber","purePhoneNumber",
//!   "countryCode","watermark":{"timestamp","appid"}}}`.
//! - `POST /wxa/getuserriskrank?access_token=…` with `{"appid", "openid",
//!   "scene", "client_ip", "mobile_no"?, "is_test"?}`: the token first (as
//!   above), then the body (not a JSON object: 47001), `appid` (missing
//!   44002, not this app's 43104), `openid` (missing 44002, not 1 to 128 of
//!   `[A-Za-z0-9_-]` 40003), `scene` (missing 44002, not a number 47001,
//!   not 0 or 1 40129), `client_ip` (missing 44002, not an IP 47001),
//!   `mobile_no` and `is_test` (wrong type 47001). Then the user's rank
//!   (0 unless set) as `{"errcode":0,"errmsg":"getuserriskrank
//!   succ","risk_rank":N,"unoin_id":…}`, or the failure set for the user.
//! - `POST /emulator/riskRank` with `{"openid":"…"}` or `{"user":"alice"}`
//!   and `"rank": 0-4` and/or `"fail"`: what that user's `getuserriskrank`
//!   calls answer from now on. `fail` is `errcode-<N>` (`errcode-61010`,
//!   `errcode--1`, `errcode-48001` …: that errcode), `slow-<ms>` (the rank
//!   after `<ms>` milliseconds, at most 60 000), `http-<status>` (that
//!   status with an HTML body) or `not-json` (HTTP 200, HTML); `"fail":
//!   null` clears it. Answers `{"openid","rank","failing"}`.
//! - `POST /emulator/wx.login` with an optional body
//!   `{"user":"alice","unionid":true}` issues a code the way `wx.login` does:
//!   `{"code":"…","errMsg":"login:ok"}`. The same user always gets the same
//!   openid (and unionid, unless `"unionid":false`); each code carries a fresh
//!   session_key.
//! - `POST /emulator/wx.getUserInfo` with `{"code":"…","userInfo":{…}?}`
//!   answers like `wx.getUserInfo` after that login: `userInfo`, `rawData`,
//!   `signature` = sha1(rawData + session_key), and `encryptedData` / `iv`
//!   (AES-128-CBC, PKCS#7, with `openId`, `unionId` and
//!   `watermark.appid`).
//! - `POST /emulator/getPhoneNumber` with an optional body
//!   `{"purePhoneNumber":"13800138000","countryCode":"86"}` issues a phone
//!   code the way `<button open-type="getPhoneNumber">` does (`e.detail`):
//!   `{"code":"…","errMsg":"getPhoneNumber:ok"}`.
//! - `GET /emulator/calls` answers the request counters
//!   `{"jscode2session","stableToken","forceRefresh","getuserphonenumber",
//!   "getuserriskrank"}`;
//!   `POST /emulator/access_token/revoke` and `/expire` make every token
//!   handed out answer 40001 or 42001; `POST /emulator/stable_token/fail`
//!   with `{"errcodes":[-1,45009]}` makes the next `stable_token` calls
//!   answer those errcodes.
//!
//! ## Codes
//!
//! An issued login code lives 5 minutes and works once: a second exchange is
//! 40163, an expired or unknown code 40029. A phone code lives 5 minutes and
//! works once too (used, expired or unknown: 40029). These patterns need no
//! issuing and reach every other path:
//!
//! | js_code (jscode2session) | answer |
//! |---|---|
//! | `errcode-<N>` (e.g. `errcode-45011`, `errcode-40226`, `errcode--1`) | `{"errcode":N}` every time |
//! | `flaky-<N>-<user>` | errcode -1 for the first N exchanges of this code, then a success for `<user>`, then 40163 |
//! | `slow-<ms>-<user>` | waits `<ms>` milliseconds (at most 60 000), then a success for `<user>` |
//! | `not-json` | HTTP 200, `<html>…</html>` |
//! | `replay-<user>` | a success for `<user>` every time (so `events/wx-login.json` replays) |
//!
//! | code (getuserphonenumber) | answer |
//! |---|---|
//! | `errcode-<N>` (e.g. `errcode-40029`, `errcode-45011`, `errcode--1`) | `{"errcode":N}` every time |
//! | `flaky-<N>-<digits>` | errcode -1 for the first N exchanges, then the mainland number `<digits>`, then 40029 |
//! | `slow-<ms>-<digits>` | waits `<ms>` milliseconds (at most 60 000), then `<digits>` |
//! | `not-json` | HTTP 200, `<html>…</html>` |
//! | `replay-<digits>` | the mainland number `<digits>` every time (so `events/wx-phone.json` replays) |
//! | `other-app-<digits>` | `<digits>`, but with the watermark of another AppID |
//!
//! From Rust, [`WechatEmulator::issue_code`], [`WechatEmulator::user_data`]
//! and [`WechatEmulator::issue_phone_code`] do what the `/emulator/`
//! endpoints do, [`WechatEmulator::session_key_for_code`] tells a test the
//! session_key handed out for a code, [`WechatEmulator::calls`] counts
//! requests, and [`WechatEmulator::revoke_access_tokens`],
//! [`WechatEmulator::expire_access_tokens`] and
//! [`WechatEmulator::fail_stable_token`] steer the token paths;
//! [`WechatEmulator::set_risk_rank`] and [`WechatEmulator::set_risk_failure`]
//! do what `/emulator/riskRank` does, and [`WechatEmulator::risk_requests`]
//! lists the `getuserriskrank` requests received.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use gatehouse::clock::Clock;
use hyper::body::Bytes;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::serve::{HttpResponse, Served, allow_cors, plain, serve, with_body};

mod login;
mod phone;
mod risk;
mod token;

pub use phone::{DEFAULT_PHONE, EmulatedPhone, OTHER_APPID};
pub use risk::RiskRequest;
pub use token::{FORCE_PER_DAY, FORCE_SPACING_MS, RENEW_WINDOW_MS, TOKEN_LIFETIME_SECS};

/// How long an issued code (login or phone) can be exchanged.
pub const CODE_LIFETIME_MS: i64 = 5 * 60 * 1000;
/// Longest wait a `slow-<ms>-…` code can ask for.
pub const MAX_SLOW_MS: u64 = 60_000;

#[derive(Debug, Default)]
struct State {
    login: login::LoginState,
    tokens: token::TokenState,
    phones: phone::PhoneState,
    risk: risk::RiskState,
}

struct Inner {
    appid: String,
    secret: String,
    clock: Clock,
    state: Mutex<State>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn calls(&self) -> Calls {
        let state = self.state();
        Calls {
            jscode2session: state.login.requests,
            stable_token: state.tokens.calls,
            force_refresh: state.tokens.force_calls,
            getuserphonenumber: state.phones.calls,
            getuserriskrank: state.risk.calls,
        }
    }
}

/// The data `wx.getUserInfo` hands a mini-program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    pub raw_data: String,
    pub signature: String,
    pub encrypted_data: String,
    pub iv: String,
}

/// A running emulator; it stops when dropped.
pub struct WechatEmulator {
    inner: Arc<Inner>,
    served: Served,
}

pub(super) fn rid() -> String {
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    format!("rid: {}", hex::encode(bytes))
}

pub(super) fn text(body: String) -> HttpResponse {
    with_body(http::StatusCode::OK, "text/plain", body)
}

pub(super) fn errcode(code: i64, msg: &str) -> HttpResponse {
    text(json!({"errcode": code, "errmsg": format!("{msg}, {}", rid())}).to_string())
}

/// What both code exchanges (`jscode2session`, `getuserphonenumber`)
/// answer the codes that ask for a failure: `errcode-<n>` that errcode
/// (40029 when `n` is no number), `not-json` an HTML page. `None` for any
/// other code.
pub(super) fn failure_pattern(code: &str) -> Option<HttpResponse> {
    if let Some(n) = code.strip_prefix("errcode-") {
        return Some(match n.parse::<i64>() {
            Ok(n) => errcode(n, errmsg_for(n)),
            Err(_) => errcode(40029, errmsg_for(40029)),
        });
    }
    (code == "not-json").then(|| {
        with_body(
            http::StatusCode::OK,
            "text/html",
            "<html><body>system busy</body></html>",
        )
    })
}

/// How many times `code` has been sent, this time included (counted in
/// `seen`, by code).
pub(super) fn sent_again(seen: &mut HashMap<String, u32>, code: &str) -> u64 {
    let seen = seen.entry(code.to_owned()).or_insert(0);
    *seen += 1;
    u64::from(*seen)
}

/// The answer to a `flaky-<n>-…` code sent the `seen`th time: a system
/// error (-1) the first `n` times, then `success`, then errcode `spent`
/// ever after.
pub(super) fn flaky_answer(
    seen: u64,
    n: u64,
    spent: i64,
    success: impl FnOnce() -> HttpResponse,
) -> HttpResponse {
    if seen <= n {
        errcode(-1, errmsg_for(-1))
    } else if seen == n + 1 {
        success()
    } else {
        errcode(spent, errmsg_for(spent))
    }
}

pub(super) fn errmsg_for(code: i64) -> &'static str {
    match code {
        40029 => "invalid code",
        40163 => "code been used",
        45011 => "api minute-quota reach limit  mustslower  retry next minute",
        40226 => "code blocked",
        -1 => "system error",
        40013 => "invalid appid",
        40125 => "invalid appsecret",
        40001 => "invalid credential, access_token is invalid or not latest",
        42001 => "access_token expired",
        41001 => "access_token missing",
        40164 => "invalid ip, not in whitelist",
        45009 => "reach max api daily quota limit",
        47001 => "data format error",
        40003 => "invalid openid",
        40129 => "invalid scene",
        43104 => "appid not match openid",
        43302 => "http method error, use post",
        44002 => "empty post data",
        48001 => "api unauthorized",
        61010 => "user access record expired",
        9410009 => "test quota used up",
        _ => "emulated error",
    }
}

/// Decodes one `application/x-www-form-urlencoded` component.
fn decode_component(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match raw.get(i + 1..i + 3) {
                Some(hex) if hex.bytes().all(|c| c.is_ascii_hexdigit()) => {
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_pairs(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

impl WechatEmulator {
    /// Starts on a free loopback port with the system clock.
    pub async fn start(appid: &str, secret: &str) -> std::io::Result<Self> {
        Self::start_with(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            appid,
            secret,
            Clock::system(),
        )
        .await
    }

    /// Starts on `addr` with `clock` deciding when codes and access tokens
    /// expire.
    pub async fn start_with(
        addr: SocketAddr,
        appid: &str,
        secret: &str,
        clock: Clock,
    ) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            appid: appid.to_owned(),
            secret: secret.to_owned(),
            clock,
            state: Mutex::new(State::default()),
        });
        let handler_inner = Arc::clone(&inner);
        let served = serve(addr, move |req, _peer| {
            let inner = Arc::clone(&handler_inner);
            async move { handle(&inner, req).await }
        })
        .await?;
        Ok(Self { inner, served })
    }

    /// `http://127.0.0.1:<port>`: the value for `WX_API_BASE`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.served.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.served.addr
    }

    /// What `wx.login` does: a new code for `user`, with a unionid.
    pub fn issue_code(&self, user: &str) -> String {
        self.issue_code_with(user, true)
    }

    /// A new code for `user`, with or without a unionid.
    pub fn issue_code_with(&self, user: &str, unionid: bool) -> String {
        login::issue(&self.inner, user, unionid)
    }

    /// The openid this emulator gives `user` (stable per appid and user).
    pub fn openid_for(&self, user: &str) -> String {
        login::derived_id(&self.inner.appid, "openid", user, 'o')
    }

    /// The unionid this emulator gives `user` (when it gives one).
    pub fn unionid_for(&self, user: &str) -> String {
        login::derived_id(&self.inner.appid, "unionid", user, 'u')
    }

    /// The session_key issued with `code` (issued or pattern code), if any.
    pub fn session_key_for_code(&self, code: &str) -> Option<String> {
        let state = self.inner.state();
        state
            .login
            .codes
            .get(code)
            .map(|c| c.session_key.clone())
            .or_else(|| state.login.pattern_keys.get(code).cloned())
    }

    /// What `wx.getUserInfo` returns after the login that issued `code`:
    /// `user_info` signed and encrypted under that code's session_key.
    pub fn user_data(&self, code: &str, user_info: &Value) -> Option<UserData> {
        login::user_data(&self.inner, code, user_info)
    }

    /// `jscode2session` requests received so far.
    pub fn request_count(&self) -> u64 {
        self.inner.state().login.requests
    }

    /// What the getPhoneNumber button does: a new phone code for
    /// `pure_phone_number` (country code 86), valid 5 minutes, once.
    pub fn issue_phone_code(&self, pure_phone_number: &str) -> String {
        self.issue_phone_code_with(EmulatedPhone {
            pure_phone_number: pure_phone_number.to_owned(),
            country_code: "86".into(),
        })
    }

    /// A new phone code for any number.
    pub fn issue_phone_code_with(&self, phone: EmulatedPhone) -> String {
        phone::issue_phone_code(&self.inner, phone)
    }

    /// Every request counted so far.
    pub fn calls(&self) -> Calls {
        self.inner.calls()
    }

    /// `getuserphonenumber` requests received so far.
    pub fn phone_number_count(&self) -> u64 {
        self.inner.state().phones.calls
    }

    /// Every access token handed out so far (tests look for them in logs).
    pub fn access_tokens_issued(&self) -> Vec<String> {
        self.inner.state().tokens.issued.clone()
    }

    /// Invalidates every access token handed out (as another back end's
    /// force refresh would): APIs answer 40001 for them.
    pub fn revoke_access_tokens(&self) {
        self.inner.state().tokens.revoke_all();
    }

    /// Makes every access token expire now: APIs answer 42001 for them.
    pub fn expire_access_tokens(&self) {
        let now = self.inner.clock.now_ms();
        self.inner.state().tokens.expire_all(now);
    }

    /// `openid`'s `getuserriskrank` calls answer `rank` (0-4) from now on.
    pub fn set_risk_rank(&self, openid: &str, rank: u8) {
        assert!(rank <= 4, "WeChat's ranks are 0 to 4");
        risk::set_rank(&self.inner, openid, rank);
    }

    /// `openid`'s `getuserriskrank` calls answer the failure `pattern`
    /// (`errcode-<N>`, `slow-<ms>`, `http-<status>`, `not-json`; `None`
    /// clears it) from now on.
    pub fn set_risk_failure(&self, openid: &str, pattern: Option<&str>) -> Result<(), String> {
        risk::set_failure(&self.inner, openid, pattern)
    }

    /// The `getuserriskrank` requests that passed the emulator's checks, in
    /// order.
    pub fn risk_requests(&self) -> Vec<RiskRequest> {
        self.inner.state().risk.requests.clone()
    }

    /// The next `stable_token` calls answer these errcodes, in order.
    pub fn fail_stable_token(&self, errcodes: &[i64]) {
        self.inner
            .state()
            .tokens
            .queued_errors
            .extend(errcodes.iter().copied());
    }
}

/// The emulator's request counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Calls {
    pub jscode2session: u64,
    /// `stable_token` requests, both modes.
    pub stable_token: u64,
    /// Those in force-refresh mode.
    pub force_refresh: u64,
    pub getuserphonenumber: u64,
    pub getuserriskrank: u64,
}

async fn handle(inner: &Inner, req: http::Request<Bytes>) -> HttpResponse {
    let query = || query_pairs(req.uri().query().unwrap_or(""));
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/sns/jscode2session") => login::jscode2session(inner, &query()).await,
        ("POST", "/cgi-bin/stable_token") => token::stable_token(inner, req.body()),
        ("POST", "/wxa/business/getuserphonenumber") => {
            phone::get_user_phone_number(inner, &query(), req.body()).await
        }
        ("POST", "/wxa/getuserriskrank") => {
            risk::get_user_risk_rank(inner, &query(), req.body()).await
        }
        (_, "/wxa/getuserriskrank") => errcode(43302, errmsg_for(43302)),
        ("POST", "/emulator/riskRank") => for_pages(risk::emulate_set_risk(inner, req.body())),
        ("POST", "/emulator/wx.login") => for_pages(login::emulate_login(inner, req.body())),
        ("POST", "/emulator/wx.getUserInfo") => {
            for_pages(login::emulate_get_user_info(inner, req.body()))
        }
        ("OPTIONS", "/emulator/wx.login" | "/emulator/wx.getUserInfo" | "/emulator/riskRank") => {
            for_pages(plain(http::StatusCode::NO_CONTENT, ""))
        }
        ("POST", "/emulator/getPhoneNumber") => phone::emulate_get_phone_number(inner, req.body()),
        ("GET", "/emulator/calls") => {
            json_ok(serde_json::to_value(inner.calls()).unwrap_or_default())
        }
        ("POST", "/emulator/access_token/revoke") => {
            inner.state().tokens.revoke_all();
            json_ok(json!({"revoked": true}))
        }
        ("POST", "/emulator/access_token/expire") => {
            let now = inner.clock.now_ms();
            inner.state().tokens.expire_all(now);
            json_ok(json!({"expired": true}))
        }
        ("POST", "/emulator/stable_token/fail") => {
            #[derive(Deserialize)]
            struct Fail {
                errcodes: Vec<i64>,
            }
            match serde_json::from_slice::<Fail>(req.body()) {
                Ok(fail) => {
                    let queued = fail.errcodes.len();
                    inner.state().tokens.queued_errors.extend(fail.errcodes);
                    json_ok(json!({ "queued": queued }))
                }
                Err(_) => plain(
                    http::StatusCode::BAD_REQUEST,
                    "body must be {\"errcodes\":[…]}",
                ),
            }
        }
        _ => plain(http::StatusCode::NOT_FOUND, "not found"),
    }
}

/// Opens an `/emulator/` answer to pages on any origin (the dev server's
/// demo, a uni-app H5 build play `wx.login` against it).
fn for_pages(mut response: HttpResponse) -> HttpResponse {
    allow_cors(&mut response, "POST, OPTIONS");
    response
}

fn json_ok(body: Value) -> HttpResponse {
    with_body(http::StatusCode::OK, "application/json", body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_components_decode() {
        let q = query_pairs(
            "appid=wx1&secret=a%2Bb%3D&js_code=x+y&grant_type=authorization_code&e=%zz",
        );
        assert_eq!(q["secret"], "a+b=");
        assert_eq!(q["js_code"], "x y");
        assert_eq!(q["e"], "%zz");
    }

    #[test]
    fn ids_are_stable_per_user() {
        let id = |user| login::derived_id("wx1", "openid", user, 'o');
        assert_eq!(id("alice"), id("alice"));
        assert_ne!(id("alice"), id("bob"));
        assert_eq!(id("alice").len(), 28);
    }

    #[test]
    fn phone_numbers_carry_their_country_code_abroad() {
        let mainland = EmulatedPhone {
            pure_phone_number: "13800138000".into(),
            country_code: "86".into(),
        };
        assert_eq!(mainland.phone_number(), "13800138000");
        let abroad = EmulatedPhone {
            pure_phone_number: "2025550123".into(),
            country_code: "1".into(),
        };
        assert_eq!(abroad.phone_number(), "+12025550123");
    }
}
