//! An emulator of WeChat's `jscode2session` (README, "The WeChat emulator") and of the client-side
//! `wx.login` / `wx.getUserInfo` that feed it, over loopback HTTP.
//!
//! ## Endpoints
//!
//! - `GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code`
//!   answers like WeChat, always HTTP 200 with `Content-Type: text/plain`:
//!   `{"session_key":"<base64 of 16 bytes>","openid":"…","unionid":"…"}` or
//!   `{"errcode":N,"errmsg":"… rid: …"}`. Checks in order: `appid` (40013),
//!   `secret` (40125), `grant_type` (40002), `js_code` present (41008), then
//!   the code.
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
//!
//! ## Codes
//!
//! An issued code lives 5 minutes and works once: a second exchange is
//! 40163, an expired or unknown code 40029. These patterns need no issuing
//! and reach every other path:
//!
//! | js_code | answer |
//! |---|---|
//! | `errcode-<N>` (e.g. `errcode-45011`, `errcode-40226`, `errcode--1`) | `{"errcode":N}` every time |
//! | `flaky-<N>-<user>` | errcode -1 for the first N exchanges of this code, then a success for `<user>`, then 40163 |
//! | `slow-<ms>-<user>` | waits `<ms>` milliseconds (at most 60 000), then a success for `<user>` |
//! | `not-json` | HTTP 200, `<html>…</html>` |
//! | `replay-<user>` | a success for `<user>` every time (so `events/wx-login.json` replays) |
//!
//! From Rust, [`WechatEmulator::issue_code`] and
//! [`WechatEmulator::user_data`] do what the two `/emulator/` endpoints do,
//! and [`WechatEmulator::session_key_for_code`] tells a test the session_key
//! handed out for a code.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gatehouse::clock::Clock;
use hyper::body::Bytes;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::serve::{HttpResponse, Served, plain, serve, with_body};

/// How long an issued code can be exchanged.
pub const CODE_LIFETIME_MS: i64 = 5 * 60 * 1000;
/// Longest wait a `slow-<ms>-…` code can ask for.
pub const MAX_SLOW_MS: u64 = 60_000;

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;

#[derive(Debug, Clone)]
struct Issued {
    user: String,
    unionid: bool,
    session_key: String,
    issued_ms: i64,
    used: bool,
}

#[derive(Debug, Default)]
struct State {
    codes: HashMap<String, Issued>,
    /// Exchanges seen so far of each `flaky-…` code.
    flaky_seen: HashMap<String, u32>,
    /// session_key handed out per pattern code (`flaky-`, `slow-`, `replay-`).
    pattern_keys: HashMap<String, String>,
    requests: u64,
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

fn random_key() -> String {
    let mut key = [0u8; 16];
    rand::rng().fill_bytes(&mut key);
    STANDARD.encode(key)
}

fn rid() -> String {
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    format!("rid: {}", hex::encode(bytes))
}

fn text(body: String) -> HttpResponse {
    with_body(http::StatusCode::OK, "text/plain", body)
}

fn errcode(code: i64, msg: &str) -> HttpResponse {
    text(json!({"errcode": code, "errmsg": format!("{msg}, {}", rid())}).to_string())
}

fn errmsg_for(code: i64) -> &'static str {
    match code {
        40029 => "invalid code",
        40163 => "code been used",
        45011 => "api minute-quota reach limit  mustslower  retry next minute",
        40226 => "code blocked",
        -1 => "system error",
        40013 => "invalid appid",
        40125 => "invalid appsecret",
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

    /// Starts on `addr` with `clock` deciding when codes expire.
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
        issue(&self.inner, user, unionid)
    }

    /// The openid this emulator gives `user` (stable per appid and user).
    pub fn openid_for(&self, user: &str) -> String {
        derived_id(&self.inner.appid, "openid", user, 'o')
    }

    /// The unionid this emulator gives `user` (when it gives one).
    pub fn unionid_for(&self, user: &str) -> String {
        derived_id(&self.inner.appid, "unionid", user, 'u')
    }

    /// The session_key issued with `code` (issued or pattern code), if any.
    pub fn session_key_for_code(&self, code: &str) -> Option<String> {
        let state = self.inner.state();
        state
            .codes
            .get(code)
            .map(|c| c.session_key.clone())
            .or_else(|| state.pattern_keys.get(code).cloned())
    }

    /// What `wx.getUserInfo` returns after the login that issued `code`:
    /// `user_info` signed and encrypted under that code's session_key.
    pub fn user_data(&self, code: &str, user_info: &Value) -> Option<UserData> {
        user_data(&self.inner, code, user_info)
    }

    /// `jscode2session` requests received so far.
    pub fn request_count(&self) -> u64 {
        self.inner.state().requests
    }
}

fn derived_id(appid: &str, kind: &str, user: &str, prefix: char) -> String {
    let digest = Sha256::digest(format!("{kind}\0{appid}\0{user}").as_bytes());
    let mut id = String::from(prefix);
    id.push_str(&URL_SAFE_NO_PAD.encode(digest)[..27]);
    id
}

fn issue(inner: &Inner, user: &str, unionid: bool) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let code = format!("emu{}", hex::encode(bytes));
    inner.state().codes.insert(
        code.clone(),
        Issued {
            user: user.to_owned(),
            unionid,
            session_key: random_key(),
            issued_ms: inner.clock.now_ms(),
            used: false,
        },
    );
    code
}

fn user_data(inner: &Inner, code: &str, user_info: &Value) -> Option<UserData> {
    let (user, unionid, key) = {
        let state = inner.state();
        let issued = state.codes.get(code)?;
        (
            issued.user.clone(),
            issued.unionid,
            issued.session_key.clone(),
        )
    };
    let raw_data = user_info.to_string();
    let mut hasher = Sha1::new();
    hasher.update(raw_data.as_bytes());
    hasher.update(key.as_bytes());
    let signature = hex::encode(hasher.finalize());

    let mut full = user_info.as_object().cloned().unwrap_or_default();
    full.insert(
        "openId".into(),
        derived_id(&inner.appid, "openid", &user, 'o').into(),
    );
    if unionid {
        full.insert(
            "unionId".into(),
            derived_id(&inner.appid, "unionid", &user, 'u').into(),
        );
    }
    full.insert(
        "watermark".into(),
        json!({"appid": inner.appid, "timestamp": inner.clock.now_ms() / 1000}),
    );
    let key_bytes: [u8; 16] = STANDARD.decode(&key).ok()?.try_into().ok()?;
    let mut iv = [0u8; 16];
    rand::rng().fill_bytes(&mut iv);
    let ciphertext = Aes128CbcEnc::new(&key_bytes.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(Value::Object(full).to_string().as_bytes());
    Some(UserData {
        raw_data,
        signature,
        encrypted_data: STANDARD.encode(ciphertext),
        iv: STANDARD.encode(iv),
    })
}

fn success(inner: &Inner, user: &str, unionid: bool, session_key: &str) -> HttpResponse {
    let mut body = json!({
        "session_key": session_key,
        "openid": derived_id(&inner.appid, "openid", user, 'o'),
    });
    if unionid {
        body["unionid"] = derived_id(&inner.appid, "unionid", user, 'u').into();
    }
    text(body.to_string())
}

async fn handle(inner: &Inner, req: http::Request<Bytes>) -> HttpResponse {
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/sns/jscode2session") => {
            let query = query_pairs(req.uri().query().unwrap_or(""));
            jscode2session(inner, &query).await
        }
        ("POST", "/emulator/wx.login") => emulate_login(inner, req.body()),
        ("POST", "/emulator/wx.getUserInfo") => emulate_get_user_info(inner, req.body()),
        _ => plain(http::StatusCode::NOT_FOUND, "not found"),
    }
}

async fn jscode2session(inner: &Inner, query: &HashMap<String, String>) -> HttpResponse {
    inner.state().requests += 1;
    let get = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
    if get("appid") != inner.appid {
        return errcode(40013, errmsg_for(40013));
    }
    if get("secret") != inner.secret {
        return errcode(40125, errmsg_for(40125));
    }
    if get("grant_type") != "authorization_code" {
        return errcode(40002, "invalid grant_type");
    }
    let code = get("js_code");
    if code.is_empty() {
        return errcode(41008, "missing code");
    }

    if let Some(n) = code.strip_prefix("errcode-") {
        return match n.parse::<i64>() {
            Ok(n) => errcode(n, errmsg_for(n)),
            Err(_) => errcode(40029, errmsg_for(40029)),
        };
    }
    if code == "not-json" {
        return with_body(
            http::StatusCode::OK,
            "text/html",
            "<html><body>system busy</body></html>",
        );
    }
    if let Some(user) = code.strip_prefix("replay-") {
        let key = pattern_key(inner, code);
        return success(inner, user, true, &key);
    }
    if let Some(rest) = code.strip_prefix("slow-") {
        let Some((ms, user)) = rest.split_once('-') else {
            return errcode(40029, errmsg_for(40029));
        };
        let Ok(ms) = ms.parse::<u64>() else {
            return errcode(40029, errmsg_for(40029));
        };
        tokio::time::sleep(Duration::from_millis(ms.min(MAX_SLOW_MS))).await;
        let key = pattern_key(inner, code);
        return success(inner, user, true, &key);
    }
    if let Some(rest) = code.strip_prefix("flaky-") {
        let Some((n, user)) = rest.split_once('-') else {
            return errcode(40029, errmsg_for(40029));
        };
        let Ok(n) = n.parse::<u32>() else {
            return errcode(40029, errmsg_for(40029));
        };
        let seen = {
            let mut state = inner.state();
            let seen = state.flaky_seen.entry(code.to_owned()).or_insert(0);
            *seen += 1;
            *seen
        };
        return if seen <= n {
            errcode(-1, errmsg_for(-1))
        } else if seen == n + 1 {
            let key = pattern_key(inner, code);
            success(inner, user, true, &key)
        } else {
            errcode(40163, errmsg_for(40163))
        };
    }

    let now = inner.clock.now_ms();
    let issued = {
        let mut state = inner.state();
        match state.codes.get_mut(code) {
            None => None,
            Some(c) if now - c.issued_ms >= CODE_LIFETIME_MS => None,
            Some(c) if c.used => Some(Err(())),
            Some(c) => {
                c.used = true;
                Some(Ok(c.clone()))
            }
        }
    };
    match issued {
        None => errcode(40029, errmsg_for(40029)),
        Some(Err(())) => errcode(40163, errmsg_for(40163)),
        Some(Ok(c)) => success(inner, &c.user, c.unionid, &c.session_key),
    }
}

fn pattern_key(inner: &Inner, code: &str) -> String {
    inner
        .state()
        .pattern_keys
        .entry(code.to_owned())
        .or_insert_with(random_key)
        .clone()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginBody {
    user: Option<String>,
    unionid: Option<bool>,
}

fn emulate_login(inner: &Inner, body: &Bytes) -> HttpResponse {
    let parsed: LoginBody = if body.iter().all(u8::is_ascii_whitespace) {
        LoginBody::default()
    } else {
        match serde_json::from_slice(body) {
            Ok(b) => b,
            Err(_) => return plain(http::StatusCode::BAD_REQUEST, "body is not JSON"),
        }
    };
    let user = parsed
        .user
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "demo".to_owned());
    let code = issue(inner, &user, parsed.unionid.unwrap_or(true));
    with_body(
        http::StatusCode::OK,
        "application/json",
        json!({"code": code, "errMsg": "login:ok"}).to_string(),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetUserInfoBody {
    code: String,
    #[serde(default)]
    user_info: Option<Value>,
}

fn emulate_get_user_info(inner: &Inner, body: &Bytes) -> HttpResponse {
    let Ok(parsed) = serde_json::from_slice::<GetUserInfoBody>(body) else {
        return plain(
            http::StatusCode::BAD_REQUEST,
            "body must be {\"code\":…,\"userInfo\"?:{…}}",
        );
    };
    let info = parsed.user_info.unwrap_or_else(|| {
        json!({"nickName": "Demo", "gender": 0, "language": "zh_CN", "city": "",
               "province": "", "country": "", "avatarUrl": ""})
    });
    match user_data(inner, &parsed.code, &info) {
        Some(data) => with_body(
            http::StatusCode::OK,
            "application/json",
            json!({
                "userInfo": info,
                "rawData": data.raw_data,
                "signature": data.signature,
                "encryptedData": data.encrypted_data,
                "iv": data.iv,
                "errMsg": "getUserInfo:ok",
            })
            .to_string(),
        ),
        None => plain(http::StatusCode::NOT_FOUND, "no such code"),
    }
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
        assert_eq!(
            derived_id("wx1", "openid", "alice", 'o'),
            derived_id("wx1", "openid", "alice", 'o')
        );
        assert_ne!(
            derived_id("wx1", "openid", "alice", 'o'),
            derived_id("wx1", "openid", "bob", 'o')
        );
        assert_eq!(derived_id("wx1", "openid", "alice", 'o').len(), 28);
    }
}
