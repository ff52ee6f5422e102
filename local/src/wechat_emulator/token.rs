//! `stable_token` (normal and force-refresh modes, with WeChat's limits),
//! and the access-token check of every API that takes a token (module docs
//! of [`super`]).

use std::collections::VecDeque;

use hyper::body::Bytes;
use rand::RngCore;
use serde_json::{Value, json};

use super::{Inner, errcode, errmsg_for};
use crate::serve::{HttpResponse, with_body};

/// Lifetime of a new token, as WeChat gives it.
pub const TOKEN_LIFETIME_SECS: i64 = 7200;
/// In normal mode, a token this close to expiry is renewed (the old one
/// stays valid until it expires).
pub const RENEW_WINDOW_MS: i64 = 5 * 60 * 1000;
/// Force refreshes allowed per China day.
pub const FORCE_PER_DAY: u32 = 20;
/// A force refresh within this long of the last one refreshes nothing.
pub const FORCE_SPACING_MS: i64 = 30_000;
/// Length of an emulated token (real ones are about 150 characters).
const TOKEN_CHARS: usize = 150;

#[derive(Debug, Clone)]
struct IssuedToken {
    value: String,
    expires_ms: i64,
}

/// Every token handed out, and the force-refresh bookkeeping.
#[derive(Debug, Default)]
pub(super) struct TokenState {
    current: Option<IssuedToken>,
    /// Tokens replaced in normal mode: valid until they expire, then 42001.
    previous: Vec<IssuedToken>,
    force_day: i64,
    force_count: u32,
    last_force_ms: Option<i64>,
    /// Errcodes the next `stable_token` calls answer (a test hook).
    pub(super) queued_errors: VecDeque<i64>,
    /// `stable_token` requests received, and those in force-refresh mode.
    pub(super) calls: u64,
    pub(super) force_calls: u64,
    /// Every token handed out (tests look for them in logs).
    pub(super) issued: Vec<String>,
}

impl TokenState {
    fn mint(&mut self, now_ms: i64) -> IssuedToken {
        let mut bytes = [0u8; TOKEN_CHARS / 2];
        rand::rng().fill_bytes(&mut bytes);
        let token = IssuedToken {
            value: format!("{}_{}", TOKEN_CHARS, &hex::encode(bytes)[4..]),
            expires_ms: now_ms + TOKEN_LIFETIME_SECS * 1000,
        };
        self.issued.push(token.value.clone());
        self.current = Some(token.clone());
        token
    }

    /// Invalidates every token handed out so far: forgotten, they answer
    /// 40001 as any unknown token does.
    pub(super) fn revoke_all(&mut self) {
        self.current = None;
        self.previous.clear();
    }

    /// Makes every live token expire at `now_ms` (42001 from now on).
    pub(super) fn expire_all(&mut self, now_ms: i64) {
        for token in self.current.iter_mut().chain(self.previous.iter_mut()) {
            token.expires_ms = token.expires_ms.min(now_ms);
        }
    }
}

fn china_day(ms: i64) -> i64 {
    (ms + 8 * 3_600_000).div_euclid(86_400_000)
}

fn answer(token: &IssuedToken, now_ms: i64) -> HttpResponse {
    let secs = (token.expires_ms - now_ms).max(0) / 1000;
    with_body(
        http::StatusCode::OK,
        "application/json; encoding=utf-8",
        json!({"access_token": token.value, "expires_in": secs}).to_string(),
    )
}

/// `POST /cgi-bin/stable_token`.
pub(super) fn stable_token(inner: &Inner, body: &Bytes) -> HttpResponse {
    let now = inner.clock.now_ms();
    let mut state = inner.state();
    let tokens = &mut state.tokens;
    tokens.calls += 1;
    if let Some(code) = tokens.queued_errors.pop_front() {
        return errcode(code, errmsg_for(code));
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return errcode(47001, errmsg_for(47001));
    };
    let field = |k: &str| request.get(k).and_then(Value::as_str).unwrap_or("");
    if field("appid") != inner.appid {
        return errcode(40013, errmsg_for(40013));
    }
    if field("secret") != inner.secret {
        return errcode(40125, errmsg_for(40125));
    }
    if field("grant_type") != "client_credential" {
        return errcode(40002, "invalid grant_type");
    }
    let force = match request.get("force_refresh") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(force)) => *force,
        Some(_) => return errcode(47001, errmsg_for(47001)),
    };
    if !force {
        if let Some(current) = &tokens.current
            && current.expires_ms - now > RENEW_WINDOW_MS
        {
            return answer(current, now);
        }
        if let Some(old) = tokens.current.take() {
            tokens.previous.push(old);
        }
        let token = tokens.mint(now);
        return answer(&token, now);
    }
    tokens.force_calls += 1;
    if let (Some(last), Some(current)) = (tokens.last_force_ms, &tokens.current)
        && now - last < FORCE_SPACING_MS
    {
        // "连续使用该模式时，请保证调用时间隔至少为30s，否则不会刷新"
        return answer(current, now);
    }
    let day = china_day(now);
    if tokens.force_day != day {
        tokens.force_day = day;
        tokens.force_count = 0;
    }
    if tokens.force_count >= FORCE_PER_DAY {
        return errcode(45009, errmsg_for(45009));
    }
    tokens.force_count += 1;
    tokens.last_force_ms = Some(now);
    tokens.revoke_all();
    let token = tokens.mint(now);
    answer(&token, now)
}

/// Whether `token` may call an API now: `Err` with WeChat's errcode when it
/// is missing (41001), invalid or superseded by a force refresh (40001), or
/// expired (42001).
pub(super) fn check_token(inner: &Inner, token: &str) -> Result<(), i64> {
    let now = inner.clock.now_ms();
    let state = inner.state();
    let tokens = &state.tokens;
    if token.is_empty() {
        return Err(41001);
    }
    let known = tokens
        .current
        .iter()
        .chain(tokens.previous.iter())
        .find(|t| t.value == token);
    match known {
        Some(t) if t.expires_ms > now => Ok(()),
        Some(_) => Err(42001),
        None => Err(40001),
    }
}
