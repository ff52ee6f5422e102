//! `getuserriskrank`, and `/emulator/riskRank`, which sets what a user's
//! calls answer (module docs of [`super`]).

use std::collections::HashMap;
use std::time::Duration;

use hyper::body::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::token::check_token;
use super::{Inner, MAX_SLOW_MS, errcode, errmsg_for, login};
use crate::serve::{HttpResponse, plain, with_body};

/// What one openid's calls answer, besides rank 0 (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// `errcode-<N>`: `{"errcode": N}`.
    Errcode(i64),
    /// `slow-<ms>`: the rank, after `<ms>` milliseconds.
    Slow(u64),
    /// `http-<status>`: that status, with an HTML body.
    Http(u16),
    /// `not-json`: HTTP 200 with an HTML body.
    NotJson,
}

impl Failure {
    fn parse(pattern: &str) -> Option<Self> {
        if pattern == "not-json" {
            return Some(Failure::NotJson);
        }
        if let Some(n) = pattern.strip_prefix("errcode-") {
            return n.parse().ok().map(Failure::Errcode);
        }
        if let Some(ms) = pattern.strip_prefix("slow-") {
            return ms.parse().ok().map(Failure::Slow);
        }
        let status = pattern.strip_prefix("http-")?.parse().ok()?;
        http::StatusCode::from_u16(status)
            .is_ok()
            .then_some(Failure::Http(status))
    }
}

/// A `getuserriskrank` request as received (after its checks passed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskRequest {
    pub openid: String,
    pub scene: u8,
    pub client_ip: String,
    pub mobile_no: Option<String>,
    pub is_test: bool,
}

/// What `getuserriskrank` keeps.
#[derive(Debug, Default)]
pub(super) struct RiskState {
    /// Per openid: its rank (0 when unset).
    ranks: HashMap<String, u8>,
    /// Per openid: a failure its calls answer instead, while set.
    failures: HashMap<String, Failure>,
    /// `getuserriskrank` requests received (every one, refused or not).
    pub(super) calls: u64,
    /// Those that passed the checks, in order.
    pub(super) requests: Vec<RiskRequest>,
}

/// `openid`'s calls answer `rank` from now on (once no failure is set).
pub(super) fn set_rank(inner: &Inner, openid: &str, rank: u8) {
    inner.state().risk.ranks.insert(openid.to_owned(), rank);
}

/// `openid`'s calls answer the failure `pattern` from now on (`None`:
/// their rank again); `Err` says what a pattern must be.
pub(super) fn set_failure(
    inner: &Inner,
    openid: &str,
    pattern: Option<&str>,
) -> Result<(), String> {
    let failures = &mut inner.state().risk.failures;
    let Some(pattern) = pattern else {
        failures.remove(openid);
        return Ok(());
    };
    let failure = Failure::parse(pattern).ok_or_else(|| {
        format!("fail must be errcode-<N>, slow-<ms>, http-<status> or not-json, not {pattern:?}")
    })?;
    failures.insert(openid.to_owned(), failure);
    Ok(())
}

fn html(status: http::StatusCode) -> HttpResponse {
    with_body(status, "text/html", "<html><body>system busy</body></html>")
}

/// Whether `openid` has an openid's shape (the emulator's are 28 of
/// `[A-Za-z0-9_-]`; any 1 to 128 pass).
fn openid_shaped(openid: &str) -> bool {
    (1..=128).contains(&openid.len())
        && openid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// The request's fields, checked in WeChat's order of errcodes: appid
/// (missing 44002, another app's 43104), openid (missing 44002, malformed
/// 40003), scene (missing 44002, not a number 47001, not 0 or 1 40129),
/// client_ip (missing 44002, not an IP 47001), then the optional
/// mobile_no and is_test (wrong type: 47001).
fn checked(inner: &Inner, request: &Map<String, Value>) -> Result<RiskRequest, i64> {
    let text = |key: &str| match request.get(key) {
        None | Some(Value::Null) => Err(44002),
        Some(Value::String(s)) if s.is_empty() => Err(44002),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(47001),
    };
    if text("appid")? != inner.appid {
        return Err(43104);
    }
    let openid = text("openid")?;
    if !openid_shaped(&openid) {
        return Err(40003);
    }
    let scene = match request.get("scene") {
        None | Some(Value::Null) => return Err(44002),
        Some(value) => value.as_u64().ok_or(47001)?,
    };
    let scene = u8::try_from(scene).ok().filter(|s| *s <= 1).ok_or(40129)?;
    let client_ip = text("client_ip")?;
    if client_ip.parse::<std::net::IpAddr>().is_err() {
        return Err(47001);
    }
    let mobile_no = match request.get("mobile_no") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(47001),
    };
    let is_test = match request.get("is_test") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(47001),
    };
    Ok(RiskRequest {
        openid,
        scene,
        client_ip,
        mobile_no,
        is_test,
    })
}

/// `POST /wxa/getuserriskrank?access_token=…`.
pub(super) async fn get_user_risk_rank(
    inner: &Inner,
    query: &HashMap<String, String>,
    body: &Bytes,
) -> HttpResponse {
    inner.state().risk.calls += 1;
    let token = query.get("access_token").map(String::as_str).unwrap_or("");
    if let Err(code) = check_token(inner, token) {
        return errcode(code, errmsg_for(code));
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return errcode(47001, errmsg_for(47001));
    };
    let request = match checked(inner, &request) {
        Ok(request) => request,
        Err(code) => return errcode(code, errmsg_for(code)),
    };
    let (rank, failure) = {
        let mut state = inner.state();
        state.risk.requests.push(request.clone());
        let rank = state.risk.ranks.get(&request.openid).copied().unwrap_or(0);
        (rank, state.risk.failures.get(&request.openid).copied())
    };
    match failure {
        Some(Failure::Errcode(code)) => return errcode(code, errmsg_for(code)),
        Some(Failure::Http(status)) => {
            return html(
                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY),
            );
        }
        Some(Failure::NotJson) => return html(http::StatusCode::OK),
        Some(Failure::Slow(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms.min(MAX_SLOW_MS))).await;
        }
        None => {}
    }
    let body = json!({
        "errcode": 0,
        "errmsg": "getuserriskrank succ",
        "risk_rank": rank,
        "unoin_id": rand::random::<u32>(),
    });
    with_body(
        http::StatusCode::OK,
        "application/json; encoding=utf-8",
        body.to_string(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RiskBody {
    #[serde(default)]
    openid: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    rank: Option<u8>,
    /// Absent: unchanged; `null`: cleared.
    #[serde(default, deserialize_with = "present")]
    fail: Option<Option<String>>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `POST /emulator/riskRank` with `{"openid" | "user", "rank"?: 0-4,
/// "fail"?: pattern | null}`.
pub(super) fn emulate_set_risk(inner: &Inner, body: &Bytes) -> HttpResponse {
    const USAGE: &str = "body must be {\"openid\" or \"user\": \"…\", \"rank\"?: 0-4, \
                         \"fail\"?: \"errcode-<N>\" | \"slow-<ms>\" | \"http-<status>\" | \"not-json\" | null}";
    let Ok(parsed) = serde_json::from_slice::<RiskBody>(body) else {
        return plain(http::StatusCode::BAD_REQUEST, USAGE);
    };
    let openid = match (parsed.openid, parsed.user) {
        (Some(openid), None) if openid_shaped(&openid) => openid,
        (None, Some(user)) if !user.is_empty() => {
            login::derived_id(&inner.appid, "openid", &user, 'o')
        }
        _ => return plain(http::StatusCode::BAD_REQUEST, USAGE),
    };
    if parsed.rank.is_some_and(|rank| rank > 4) {
        return plain(http::StatusCode::BAD_REQUEST, "rank must be 0 to 4");
    }
    if let Some(fail) = &parsed.fail
        && let Err(message) = set_failure(inner, &openid, fail.as_deref())
    {
        return plain(http::StatusCode::BAD_REQUEST, &message);
    }
    if let Some(rank) = parsed.rank {
        set_rank(inner, &openid, rank);
    }
    let state = inner.state();
    let rank = state.risk.ranks.get(&openid).copied().unwrap_or(0);
    let failing = state.risk.failures.contains_key(&openid);
    with_body(
        http::StatusCode::OK,
        "application/json",
        json!({"openid": openid, "rank": rank, "failing": failing}).to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_patterns_parse() {
        assert_eq!(
            Failure::parse("errcode-61010"),
            Some(Failure::Errcode(61010))
        );
        assert_eq!(Failure::parse("errcode--1"), Some(Failure::Errcode(-1)));
        assert_eq!(Failure::parse("slow-2000"), Some(Failure::Slow(2000)));
        assert_eq!(Failure::parse("http-502"), Some(Failure::Http(502)));
        assert_eq!(Failure::parse("not-json"), Some(Failure::NotJson));
        for bad in ["errcode-x", "slow-", "http-99", "http-1000", "fast-1", ""] {
            assert_eq!(Failure::parse(bad), None, "{bad}");
        }
    }
}
