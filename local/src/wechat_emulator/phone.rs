//! `getuserphonenumber`, and the client-side
//! `<button open-type="getPhoneNumber">` that hands out its codes (module
//! docs of [`super`]).

use std::collections::HashMap;
use std::time::Duration;

use hyper::body::Bytes;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};

use super::token::check_token;
use super::{
    CODE_LIFETIME_MS, Inner, MAX_SLOW_MS, errcode, errmsg_for, failure_pattern, flaky_answer,
    sent_again,
};
use crate::serve::{HttpResponse, plain, with_body};

/// The AppID `other-app-…` codes put in their watermark.
pub const OTHER_APPID: &str = "wxotherapp00000000";
/// The number a code is issued for when the request names none.
pub const DEFAULT_PHONE: &str = "13800138000";

/// A phone number as the emulator hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedPhone {
    pub pure_phone_number: String,
    pub country_code: String,
}

impl EmulatedPhone {
    /// WeChat's `phoneNumber`: local for mainland numbers, else with the
    /// country code.
    pub fn phone_number(&self) -> String {
        if self.country_code == "86" {
            self.pure_phone_number.clone()
        } else {
            format!("+{}{}", self.country_code, self.pure_phone_number)
        }
    }

    fn mainland(pure: &str) -> Self {
        Self {
            pure_phone_number: pure.to_owned(),
            country_code: "86".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct IssuedPhone {
    phone: EmulatedPhone,
    issued_ms: i64,
    used: bool,
}

/// What `getuserphonenumber` keeps.
#[derive(Debug, Default)]
pub(super) struct PhoneState {
    codes: HashMap<String, IssuedPhone>,
    /// Exchanges seen so far of each `flaky-…` code.
    flaky_seen: HashMap<String, u32>,
    /// `getuserphonenumber` requests received.
    pub(super) calls: u64,
}

/// A new phone code for `phone`, as the button hands one out.
pub(super) fn issue_phone_code(inner: &Inner, phone: EmulatedPhone) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let code = hex::encode(bytes);
    inner.state().phones.codes.insert(
        code.clone(),
        IssuedPhone {
            phone,
            issued_ms: inner.clock.now_ms(),
            used: false,
        },
    );
    code
}

fn success(inner: &Inner, phone: &EmulatedPhone, appid: &str) -> HttpResponse {
    let body = json!({
        "errcode": 0,
        "errmsg": "ok",
        "phone_info": {
            "phoneNumber": phone.phone_number(),
            "purePhoneNumber": phone.pure_phone_number,
            "countryCode": phone.country_code,
            "watermark": {"timestamp": inner.clock.now_ms() / 1000, "appid": appid},
        },
    });
    with_body(
        http::StatusCode::OK,
        "application/json; encoding=utf-8",
        body.to_string(),
    )
}

/// `<n>-<pure>` of a pattern code, `None` when it does not parse.
fn count_and_phone(rest: &str) -> Option<(u64, EmulatedPhone)> {
    let (n, pure) = rest.split_once('-')?;
    Some((n.parse().ok()?, EmulatedPhone::mainland(pure)))
}

/// `POST /wxa/business/getuserphonenumber?access_token=…` with `{"code":…}`.
pub(super) async fn get_user_phone_number(
    inner: &Inner,
    query: &HashMap<String, String>,
    body: &Bytes,
) -> HttpResponse {
    inner.state().phones.calls += 1;
    let token = query.get("access_token").map(String::as_str).unwrap_or("");
    if let Err(code) = check_token(inner, token) {
        return errcode(code, errmsg_for(code));
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return errcode(47001, errmsg_for(47001));
    };
    let code = request["code"].as_str().unwrap_or("");
    if code.is_empty() {
        return errcode(41008, "missing code");
    }
    if let Some(failure) = failure_pattern(code) {
        return failure;
    }
    if let Some(pure) = code.strip_prefix("replay-") {
        return success(inner, &EmulatedPhone::mainland(pure), &inner.appid);
    }
    if let Some(pure) = code.strip_prefix("other-app-") {
        return success(inner, &EmulatedPhone::mainland(pure), OTHER_APPID);
    }
    if let Some(rest) = code.strip_prefix("slow-") {
        let Some((ms, phone)) = count_and_phone(rest) else {
            return errcode(40029, errmsg_for(40029));
        };
        tokio::time::sleep(Duration::from_millis(ms.min(MAX_SLOW_MS))).await;
        return success(inner, &phone, &inner.appid);
    }
    if let Some(rest) = code.strip_prefix("flaky-") {
        let Some((n, phone)) = count_and_phone(rest) else {
            return errcode(40029, errmsg_for(40029));
        };
        let seen = sent_again(&mut inner.state().phones.flaky_seen, code);
        return flaky_answer(seen, n, 40029, || success(inner, &phone, &inner.appid));
    }
    let now = inner.clock.now_ms();
    let issued = {
        let mut state = inner.state();
        match state.phones.codes.get_mut(code) {
            Some(c) if !c.used && now - c.issued_ms < CODE_LIFETIME_MS => {
                c.used = true;
                Some(c.phone.clone())
            }
            _ => None,
        }
    };
    match issued {
        Some(phone) => success(inner, &phone, &inner.appid),
        // Unknown, expired and used codes alike.
        None => errcode(40029, errmsg_for(40029)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PhoneCodeBody {
    pure_phone_number: Option<String>,
    country_code: Option<String>,
}

/// `POST /emulator/getPhoneNumber`: what the button's `e.detail` holds.
pub(super) fn emulate_get_phone_number(inner: &Inner, body: &Bytes) -> HttpResponse {
    let parsed: PhoneCodeBody = if body.iter().all(u8::is_ascii_whitespace) {
        PhoneCodeBody::default()
    } else {
        match serde_json::from_slice(body) {
            Ok(b) => b,
            Err(_) => {
                return plain(
                    http::StatusCode::BAD_REQUEST,
                    "body must be {\"purePhoneNumber\"?:\"…\",\"countryCode\"?:\"…\"}",
                );
            }
        }
    };
    let digits = |s: &str, range: std::ops::RangeInclusive<usize>| {
        range.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    let phone = EmulatedPhone {
        pure_phone_number: parsed
            .pure_phone_number
            .unwrap_or_else(|| DEFAULT_PHONE.into()),
        country_code: parsed.country_code.unwrap_or_else(|| "86".into()),
    };
    if !digits(&phone.pure_phone_number, 5..=15) || !digits(&phone.country_code, 1..=3) {
        return plain(
            http::StatusCode::BAD_REQUEST,
            "purePhoneNumber must be 5 to 15 digits, countryCode 1 to 3",
        );
    }
    let code = issue_phone_code(inner, phone);
    with_body(
        http::StatusCode::OK,
        "application/json",
        json!({"code": code, "errMsg": "getPhoneNumber:ok"}).to_string(),
    )
}
