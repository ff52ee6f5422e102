//! The challenge itself at the door (SPEC §13): a captcha answer
//! (`X-Gatehouse-Captcha` with `X-Device-Id`) or a Tencent ticket
//! (`X-Gatehouse-Ticket`, `X-Gatehouse-Randstr`) in place of a pass. The
//! door judges it under the rules of `POST /captcha/verify` or
//! `POST /ticket/verify` and admits at once: no pass is written, none
//! redeemed, so a guarded flow is the captcha's create and the business
//! request.
//!
//! The judging lives with the captcha and ticket services, which sit above
//! the guard; they meet it through [`ChallengeJudge`] (`crate::door`
//! builds the one the doors use), so the guard imports neither.

use async_trait::async_trait;

use super::service::Client;
use crate::domain::Scene;
use crate::error::ApiError;
use crate::http::MAX_HEADER_VALUE_BYTES;
use crate::store::PassKind;

/// Header names of the challenge at a door (lower case, as HTTP APIs hand
/// headers over).
pub const CAPTCHA_HEADER: &str = "x-gatehouse-captcha";
pub const TICKET_HEADER: &str = "x-gatehouse-ticket";
pub const RANDSTR_HEADER: &str = "x-gatehouse-randstr";

/// A challenge brought to a door, checked for shape (the answer normalised
/// as verify does it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// The answer to the device's current captcha of the door's scene.
    Answer(String),
    /// A Tencent ticket, with its randstr (web, app) or without (the
    /// captcha mini-program).
    Ticket {
        ticket: String,
        randstr: Option<String>,
        /// The app ids Tencent's callback object named (`appid`,
        /// `CaptchaAppId`), when it was posted whole: each must be ours.
        app_ids: Vec<String>,
    },
}

impl Challenge {
    /// The kind of pass it stands for (`passKind` in the door's context).
    pub fn kind(&self) -> PassKind {
        match self {
            Challenge::Answer(_) => PassKind::Captcha,
            Challenge::Ticket { .. } => PassKind::Ticket,
        }
    }
}

/// A challenge judged good: what the context says of it beyond its kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judged {
    /// Tencent's `EvilLevel` (tickets; none from the mini-program action).
    pub evil_level: Option<i64>,
    /// Admitted without Tencent's word, by the scene's policy.
    pub degraded: bool,
}

/// Judges a challenge on the spot, spending it: a captcha in verify's one
/// conditional write (attempts, `maxAttempts`, expiry, case and math rules,
/// a wrong answer counted as a failure), a ticket once (the replay guard,
/// Tencent, `EvilLevel`, the degraded policy). Errors are verify's and
/// ticket verify's own.
#[async_trait]
pub trait ChallengeJudge: Send + Sync {
    async fn judge(
        &self,
        scene: &Scene,
        challenge: &Challenge,
        client: &Client,
    ) -> Result<Judged, ApiError>;
}

/// The challenge a request's headers carry, if any: `X-Gatehouse-Captcha`,
/// or `X-Gatehouse-Ticket` with `X-Gatehouse-Randstr` (optional, as in
/// ticket verify). Trimmed, not yet judged for shape (the judge does that,
/// under verify's rules). A header over [`MAX_HEADER_VALUE_BYTES`] or not
/// valid text, both an answer and a ticket, an empty randstr, or a randstr
/// without a ticket is `invalid-request`.
pub fn from_headers(headers: &http::HeaderMap) -> Result<Option<Challenge>, ApiError> {
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        let Some(value) = headers.get(name) else {
            return Ok(None);
        };
        let bad = || {
            ApiError::InvalidRequest(format!(
                "{name} must be visible ASCII of at most {MAX_HEADER_VALUE_BYTES} bytes"
            ))
        };
        if value.len() > MAX_HEADER_VALUE_BYTES {
            return Err(bad());
        }
        Ok(Some(value.to_str().map_err(|_| bad())?.trim().to_owned()))
    };
    let answer = text(CAPTCHA_HEADER)?;
    let ticket = text(TICKET_HEADER)?;
    let randstr = text(RANDSTR_HEADER)?;
    if randstr.as_deref() == Some("") {
        // Sent, so meant: a randstr of nothing is none (leave the header
        // out where the ticket has none, as the mini-program's).
        return Err(ApiError::InvalidRequest(format!(
            "{RANDSTR_HEADER} is empty: leave it out or send the randstr"
        )));
    }
    from_parts(answer, ticket, randstr)
}

/// The challenge of an answer, a ticket and a randstr however they came
/// (headers, or `/guard/check`'s body): at most one kind.
pub fn from_parts(
    answer: Option<String>,
    ticket: Option<String>,
    randstr: Option<String>,
) -> Result<Option<Challenge>, ApiError> {
    match (answer, ticket, randstr) {
        (Some(_), Some(_), _) => Err(ApiError::InvalidRequest(
            "send a captcha answer or a ticket, not both".into(),
        )),
        (Some(answer), None, None) => Ok(Some(Challenge::Answer(answer))),
        (_, None, Some(_)) => Err(ApiError::InvalidRequest(
            "a randstr goes with a ticket".into(),
        )),
        (None, Some(ticket), randstr) => Ok(Some(Challenge::Ticket {
            ticket,
            randstr,
            app_ids: Vec::new(),
        })),
        (None, None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn an_answer_or_a_ticket_with_its_randstr() {
        assert_eq!(from_headers(&headers(&[])), Ok(None));
        assert_eq!(
            from_headers(&headers(&[(CAPTCHA_HEADER, b" aB3d ")])),
            Ok(Some(Challenge::Answer("aB3d".into())))
        );
        assert_eq!(
            from_headers(&headers(&[
                (TICKET_HEADER, b"t03"),
                (RANDSTR_HEADER, b"@r")
            ])),
            Ok(Some(Challenge::Ticket {
                ticket: "t03".into(),
                randstr: Some("@r".into()),
                app_ids: vec![]
            }))
        );
        assert_eq!(
            from_headers(&headers(&[(TICKET_HEADER, b"t03")])),
            Ok(Some(Challenge::Ticket {
                ticket: "t03".into(),
                randstr: None,
                app_ids: vec![]
            }))
        );
    }

    #[test]
    fn malformed_or_mixed_headers_are_invalid_requests() {
        let long = vec![b'a'; MAX_HEADER_VALUE_BYTES + 1];
        for bad in [
            headers(&[(CAPTCHA_HEADER, b"ab"), (TICKET_HEADER, b"t")]),
            headers(&[(CAPTCHA_HEADER, b"ab"), (RANDSTR_HEADER, b"@r")]),
            headers(&[(RANDSTR_HEADER, b"@r")]),
            headers(&[(RANDSTR_HEADER, b"")]),
            headers(&[(TICKET_HEADER, b"t03"), (RANDSTR_HEADER, b" ")]),
            headers(&[(CAPTCHA_HEADER, &long)]),
            headers(&[(TICKET_HEADER, b"t\xff")]),
        ] {
            let err = from_headers(&bad).unwrap_err();
            assert_eq!(err.code(), "invalid-request", "{bad:?}");
        }
    }
}
