//! `getuserriskrank` (获取用户安全等级): WeChat's verdict on how risky a
//! user is for what they are about to do, with no consent asked of them.
//!
//! `POST {WX_API_BASE}/wxa/getuserriskrank?access_token=…` with `{appid,
//! openid, scene: 0 | 1, client_ip, mobile_no?, is_test?}` answers `{errcode:
//! 0, errmsg, risk_rank: 0..4, unoin_id}` (sic: `unoin_id`, a request id, not
//! read). Every other answer is a [`RiskFailure`], one per case, so that
//! each is counted on its own:
//!
//! | WeChat | outcome |
//! |---|---|
//! | `risk_rank` 0-4 | `Ok(rank)` |
//! | 40001 / 42001 (stale access token) | [`TokenCallError::StaleToken`]: the caller refreshes the token and asks once more |
//! | 61010 (the user has not used the mini-program in the last two hours) | [`RiskFailure::NotSeenLately`] |
//! | -1 (busy; not retried: the caller caches the failure briefly) | [`RiskFailure::Busy`] |
//! | 48001 (the mini-program has not been granted the API) | [`RiskFailure::NoPermission`] |
//! | 40003, 40129, 43104, 44002, 47001, 9410009 | [`RiskFailure::InvalidOpenid`] … [`RiskFailure::TestQuotaUsedUp`] |
//! | any other errcode | [`RiskFailure::OtherErrcode`] |
//! | no answer in time, no connection | [`RiskFailure::TimedOut`], [`RiskFailure::Unreachable`] |
//! | an HTTP error status without errcode | [`RiskFailure::HttpError`] |
//! | not JSON; errcode 0 without a rank 0-4 | [`RiskFailure::NotJson`], [`RiskFailure::MalformedAnswer`] |

use serde_json::{Value, json};

use super::client::{TokenCallError, Unanswered};

/// WeChat's scene of a rank: what the user is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskScene {
    /// Signing up, logging in (scene 0, 注册).
    Register,
    /// Coupons, lotteries, first-order discounts (scene 1, 营销作弊).
    Marketing,
}

impl RiskScene {
    /// The `scene` number WeChat takes.
    pub fn number(self) -> u8 {
        match self {
            RiskScene::Register => 0,
            RiskScene::Marketing => 1,
        }
    }

    /// The name configuration uses (`wxRisk.scene`).
    pub fn as_str(self) -> &'static str {
        match self {
            RiskScene::Register => "register",
            RiskScene::Marketing => "marketing",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "register" => Some(RiskScene::Register),
            "marketing" => Some(RiskScene::Marketing),
            _ => None,
        }
    }
}

/// One question to WeChat about one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskRankRequest<'a> {
    pub openid: &'a str,
    pub scene: RiskScene,
    /// The IP the user's request came from.
    pub client_ip: &'a str,
    /// The user's phone number, when known (`POST /wx/phone` kept one with
    /// the session), as WeChat gave it.
    pub mobile_no: Option<&'a str>,
    /// WeChat's test mode (`is_test`), for trying the API out.
    pub is_test: bool,
}

impl RiskRankRequest<'_> {
    /// The JSON body, for the mini-program `appid`.
    pub fn body(&self, appid: &str) -> Value {
        let mut body = json!({
            "appid": appid,
            "openid": self.openid,
            "scene": self.scene.number(),
            "client_ip": self.client_ip,
        });
        if let Some(mobile_no) = self.mobile_no {
            body["mobile_no"] = json!(mobile_no);
        }
        if self.is_test {
            body["is_test"] = json!(true);
        }
        body
    }
}

/// Why WeChat gave no rank: the guard's counters then decide alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskFailure {
    /// 61010: the user has not used the mini-program in the last two hours.
    NotSeenLately,
    /// -1: WeChat is busy.
    Busy,
    /// 48001: the mini-program has not been granted the API (a
    /// configuration error: apply for it, see `docs/wechat.md`).
    NoPermission,
    /// 40003: not an openid.
    InvalidOpenid,
    /// 40129: a scene other than 0 and 1.
    InvalidScene,
    /// 43104: the openid is not a user of this appid.
    AppidMismatch,
    /// 44002: a parameter was empty.
    EmptyParameter,
    /// 47001: a parameter was malformed.
    MalformedParameter,
    /// 9410009: the test-mode quota is used up.
    TestQuotaUsedUp,
    /// Any other errcode.
    OtherErrcode,
    /// No answer within the time budget.
    TimedOut,
    /// No connection, or it broke.
    Unreachable,
    /// An HTTP error status (a 5xx …) without errcode.
    HttpError,
    /// An answer that is not a JSON object.
    NotJson,
    /// errcode 0, but no `risk_rank` from 0 to 4.
    MalformedAnswer,
    /// No usable access token (`stable_token` failed, or WeChat refused
    /// the token again after a refresh).
    NoAccessToken,
}

impl RiskFailure {
    pub const ALL: [RiskFailure; 16] = [
        RiskFailure::NotSeenLately,
        RiskFailure::Busy,
        RiskFailure::NoPermission,
        RiskFailure::InvalidOpenid,
        RiskFailure::InvalidScene,
        RiskFailure::AppidMismatch,
        RiskFailure::EmptyParameter,
        RiskFailure::MalformedParameter,
        RiskFailure::TestQuotaUsedUp,
        RiskFailure::OtherErrcode,
        RiskFailure::TimedOut,
        RiskFailure::Unreachable,
        RiskFailure::HttpError,
        RiskFailure::NotJson,
        RiskFailure::MalformedAnswer,
        RiskFailure::NoAccessToken,
    ];

    /// The failure's name: in metrics, logs and the cache row.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskFailure::NotSeenLately => "NotSeenLately",
            RiskFailure::Busy => "Busy",
            RiskFailure::NoPermission => "NoPermission",
            RiskFailure::InvalidOpenid => "InvalidOpenid",
            RiskFailure::InvalidScene => "InvalidScene",
            RiskFailure::AppidMismatch => "AppidMismatch",
            RiskFailure::EmptyParameter => "EmptyParameter",
            RiskFailure::MalformedParameter => "MalformedParameter",
            RiskFailure::TestQuotaUsedUp => "TestQuotaUsedUp",
            RiskFailure::OtherErrcode => "OtherErrcode",
            RiskFailure::TimedOut => "TimedOut",
            RiskFailure::Unreachable => "Unreachable",
            RiskFailure::HttpError => "HttpError",
            RiskFailure::NotJson => "NotJson",
            RiskFailure::MalformedAnswer => "MalformedAnswer",
            RiskFailure::NoAccessToken => "NoAccessToken",
        }
    }

    /// The failure named `name` ([`RiskFailure::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The failure of errcode `errcode` (not 0, -1 included).
    fn of_errcode(errcode: i64) -> Self {
        match errcode {
            61010 => RiskFailure::NotSeenLately,
            -1 => RiskFailure::Busy,
            48001 => RiskFailure::NoPermission,
            40003 => RiskFailure::InvalidOpenid,
            40129 => RiskFailure::InvalidScene,
            43104 => RiskFailure::AppidMismatch,
            44002 => RiskFailure::EmptyParameter,
            47001 => RiskFailure::MalformedParameter,
            9410009 => RiskFailure::TestQuotaUsedUp,
            _ => RiskFailure::OtherErrcode,
        }
    }
}

impl From<Unanswered> for RiskFailure {
    fn from(unanswered: Unanswered) -> Self {
        match unanswered {
            Unanswered::TimedOut => RiskFailure::TimedOut,
            Unanswered::Unreachable => RiskFailure::Unreachable,
            Unanswered::NotJson { status } if !status.is_success() => RiskFailure::HttpError,
            Unanswered::NotJson { .. } => RiskFailure::NotJson,
        }
    }
}

/// What one `getuserriskrank` answer says: the rank, why there is none, or
/// (`Err`) that the access token is stale.
pub(super) fn interpret(
    answer: &Value,
    status: reqwest::StatusCode,
) -> Result<Result<u8, RiskFailure>, TokenCallError> {
    match answer.get("errcode").and_then(Value::as_i64) {
        Some(40001 | 42001) => return Err(TokenCallError::StaleToken),
        Some(0) | None => {}
        Some(errcode) => {
            let failure = RiskFailure::of_errcode(errcode);
            let errmsg = answer["errmsg"].as_str().unwrap_or_default();
            if failure != RiskFailure::NoPermission {
                // 48001 is the caller's to report, once per instance.
                tracing::warn!(errcode, errmsg, "getuserriskrank gave no rank");
            }
            return Ok(Err(failure));
        }
    }
    if !status.is_success() {
        tracing::error!(%status, "getuserriskrank answered an HTTP error without errcode");
        return Ok(Err(RiskFailure::HttpError));
    }
    match answer
        .get("risk_rank")
        .and_then(Value::as_u64)
        .filter(|rank| *rank <= 4)
    {
        Some(rank) => Ok(Ok(rank as u8)),
        None => {
            tracing::error!("getuserriskrank success answer has no risk_rank 0-4");
            Ok(Err(RiskFailure::MalformedAnswer))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn read(answer: Value) -> Result<Result<u8, RiskFailure>, TokenCallError> {
        interpret(&answer, StatusCode::OK)
    }

    #[test]
    fn every_rank_and_errcode_has_its_outcome() {
        for rank in 0..=4u8 {
            let answer = json!({"errcode": 0, "errmsg": "getuserriskrank succ",
                                "risk_rank": rank, "unoin_id": 123456});
            assert_eq!(read(answer), Ok(Ok(rank)));
        }
        assert_eq!(read(json!({"risk_rank": 2})), Ok(Ok(2)), "errcode left out");
        let cases = [
            (61010, RiskFailure::NotSeenLately),
            (-1, RiskFailure::Busy),
            (48001, RiskFailure::NoPermission),
            (40003, RiskFailure::InvalidOpenid),
            (40129, RiskFailure::InvalidScene),
            (43104, RiskFailure::AppidMismatch),
            (44002, RiskFailure::EmptyParameter),
            (47001, RiskFailure::MalformedParameter),
            (9410009, RiskFailure::TestQuotaUsedUp),
            (43302, RiskFailure::OtherErrcode),
            (12345, RiskFailure::OtherErrcode),
        ];
        for (errcode, failure) in cases {
            let answer = json!({"errcode": errcode, "errmsg": "x, rid: 1"});
            assert_eq!(read(answer), Ok(Err(failure)), "{errcode}");
        }
        for errcode in [40001, 42001] {
            let answer = json!({"errcode": errcode, "errmsg": "x"});
            assert_eq!(read(answer), Err(TokenCallError::StaleToken), "{errcode}");
        }
    }

    #[test]
    fn malformed_and_http_error_answers_are_failures() {
        for bad in [
            json!({"errcode": 0}),
            json!({"errcode": 0, "risk_rank": 5}),
            json!({"errcode": 0, "risk_rank": -1}),
            json!({"errcode": 0, "risk_rank": "2"}),
        ] {
            assert_eq!(
                read(bad.clone()),
                Ok(Err(RiskFailure::MalformedAnswer)),
                "{bad}"
            );
        }
        let server = interpret(&json!({"risk_rank": 0}), StatusCode::BAD_GATEWAY);
        assert_eq!(server, Ok(Err(RiskFailure::HttpError)));
        // An errcode says more than the status it came with.
        let busy = interpret(&json!({"errcode": -1}), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy, Ok(Err(RiskFailure::Busy)));
        let html = Unanswered::NotJson {
            status: StatusCode::BAD_GATEWAY,
        };
        assert_eq!(RiskFailure::from(html), RiskFailure::HttpError);
        let text = Unanswered::NotJson {
            status: StatusCode::OK,
        };
        assert_eq!(RiskFailure::from(text), RiskFailure::NotJson);
        assert_eq!(
            RiskFailure::from(Unanswered::TimedOut),
            RiskFailure::TimedOut
        );
    }

    #[test]
    fn failure_names_are_distinct_and_round_trip() {
        let names: std::collections::BTreeSet<_> =
            RiskFailure::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(names.len(), RiskFailure::ALL.len());
        for failure in RiskFailure::ALL {
            assert_eq!(RiskFailure::from_name(failure.as_str()), Some(failure));
        }
        assert_eq!(RiskFailure::from_name("Rank2"), None);
    }

    #[test]
    fn the_body_carries_the_phone_and_test_mode_only_when_set() {
        let mut request = RiskRankRequest {
            openid: "o1",
            scene: RiskScene::Marketing,
            client_ip: "203.0.113.7",
            mobile_no: None,
            is_test: false,
        };
        assert_eq!(
            request.body("wxapp"),
            json!({"appid": "wxapp", "openid": "o1", "scene": 1, "client_ip": "203.0.113.7"})
        );
        request.mobile_no = Some("13800138000");
        request.is_test = true;
        let body = request.body("wxapp");
        assert_eq!(
            (body["mobile_no"].as_str(), body["is_test"].as_bool()),
            (Some("13800138000"), Some(true))
        );
        assert_eq!(RiskScene::parse("register"), Some(RiskScene::Register));
        assert_eq!(RiskScene::Register.number(), 0);
        assert_eq!(RiskScene::parse("Register"), None);
    }
}
