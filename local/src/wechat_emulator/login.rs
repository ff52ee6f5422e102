//! `jscode2session`, and the client-side `wx.login` and `wx.getUserInfo`
//! that feed it (module docs of [`super`]).

use std::collections::HashMap;
use std::time::Duration;

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hyper::body::Bytes;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::{
    CODE_LIFETIME_MS, Inner, MAX_SLOW_MS, UserData, errcode, errmsg_for, failure_pattern,
    flaky_answer, sent_again, text,
};
use crate::serve::{HttpResponse, plain, with_body};

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;

/// What `jscode2session` keeps.
#[derive(Debug, Default)]
pub(super) struct LoginState {
    pub(super) codes: HashMap<String, Issued>,
    /// Exchanges seen so far of each `flaky-…` code.
    pub(super) flaky_seen: HashMap<String, u32>,
    /// session_key handed out per pattern code (`flaky-`, `slow-`, `replay-`).
    pub(super) pattern_keys: HashMap<String, String>,
    /// `jscode2session` requests received.
    pub(super) requests: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Issued {
    pub(super) user: String,
    pub(super) unionid: bool,
    pub(super) session_key: String,
    pub(super) issued_ms: i64,
    pub(super) used: bool,
}

fn random_key() -> String {
    let mut key = [0u8; 16];
    rand::rng().fill_bytes(&mut key);
    STANDARD.encode(key)
}

pub(super) fn derived_id(appid: &str, kind: &str, user: &str, prefix: char) -> String {
    let digest = Sha256::digest(format!("{kind}\0{appid}\0{user}").as_bytes());
    let mut id = String::from(prefix);
    id.push_str(&URL_SAFE_NO_PAD.encode(digest)[..27]);
    id
}

pub(super) fn issue(inner: &Inner, user: &str, unionid: bool) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let code = format!("emu{}", hex::encode(bytes));
    inner.state().login.codes.insert(
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

pub(super) fn user_data(inner: &Inner, code: &str, user_info: &Value) -> Option<UserData> {
    let (user, unionid, key) = {
        let state = inner.state();
        let issued = state.login.codes.get(code)?;
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

pub(super) async fn jscode2session(inner: &Inner, query: &HashMap<String, String>) -> HttpResponse {
    inner.state().login.requests += 1;
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

    if let Some(failure) = failure_pattern(code) {
        return failure;
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
        let Ok(n) = n.parse::<u64>() else {
            return errcode(40029, errmsg_for(40029));
        };
        let seen = sent_again(&mut inner.state().login.flaky_seen, code);
        return flaky_answer(seen, n, 40163, || {
            success(inner, user, true, &pattern_key(inner, code))
        });
    }

    let now = inner.clock.now_ms();
    let issued = {
        let mut state = inner.state();
        match state.login.codes.get_mut(code) {
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
        .login
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

pub(super) fn emulate_login(inner: &Inner, body: &Bytes) -> HttpResponse {
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

pub(super) fn emulate_get_user_info(inner: &Inner, body: &Bytes) -> HttpResponse {
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
