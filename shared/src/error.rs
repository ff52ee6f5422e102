//! The one error type of every route, and the one place that maps it to an
//! errCode, an HTTP status and a message in Chinese or English.

use http::StatusCode;

use crate::http::Lang;

/// Everything a route can answer with other than success.
///
/// Variants carry only what may be shown to a client: never a secret, a stack
/// trace or an upstream body. Detail for operators goes to the log where the
/// error is raised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Body not JSON, wrong types, unknown fields, over the size cap.
    /// The string is a short, safe description of what was wrong.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("scene required")]
    SceneRequired,
    #[error("deviceId required")]
    DeviceIdRequired,
    #[error("captcha text required")]
    TextRequired,
    #[error("captcha verification failed")]
    VerifyFail,
    #[error("captcha expired")]
    VerifyOverdue,
    #[error("no captcha to refresh")]
    RefreshFail,
    #[error("captcha rendering failed")]
    CreateFail,
    #[error("rate limited, retry after {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    #[error("store unavailable")]
    StoreUnavailable,
    #[error("wx code required")]
    WxCodeRequired,
    #[error("wx code invalid or used")]
    WxCodeInvalid,
    #[error("wx user blocked")]
    WxUserBlocked,
    #[error("wx rate limited")]
    WxRateLimited,
    #[error("wx upstream error")]
    WxUpstreamError,
    #[error("wx user data does not decrypt")]
    WxDecryptFailed,
    #[error("wx user data signature mismatch")]
    WxSignatureMismatch,
    #[error("session required")]
    SessionRequired,
    #[error("session invalid")]
    SessionInvalid,
    #[error("session expired")]
    SessionExpired,
    #[error("ticket required")]
    TicketRequired,
    #[error("ticket reused")]
    TicketReused,
    #[error("ticket expired")]
    TicketExpired,
    #[error("ticket rejected with CaptchaCode {captcha_code}")]
    TicketRejected {
        captcha_code: i64,
        captcha_msg: String,
    },
    #[error("ticket upstream error")]
    TicketUpstreamError,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The `errCode` string; uni-captcha's names where one exists.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid-request",
            Self::SceneRequired => "uni-captcha-scene-required",
            Self::DeviceIdRequired => "uni-captcha-deviceId-required",
            Self::TextRequired => "uni-captcha-text-required",
            Self::VerifyFail => "uni-captcha-verify-fail",
            Self::VerifyOverdue => "uni-captcha-verify-overdue",
            Self::RefreshFail => "uni-captcha-refresh-fail",
            Self::CreateFail => "uni-captcha-create-fail",
            Self::RateLimited { .. } => "rate-limited",
            Self::StoreUnavailable => "store-unavailable",
            Self::WxCodeRequired => "wx-code-required",
            Self::WxCodeInvalid => "wx-code-invalid",
            Self::WxUserBlocked => "wx-user-blocked",
            Self::WxRateLimited => "wx-rate-limited",
            Self::WxUpstreamError => "wx-upstream-error",
            Self::WxDecryptFailed => "wx-decrypt-failed",
            Self::WxSignatureMismatch => "wx-signature-mismatch",
            Self::SessionRequired => "session-required",
            Self::SessionInvalid => "session-invalid",
            Self::SessionExpired => "session-expired",
            Self::TicketRequired => "ticket-required",
            Self::TicketReused => "ticket-reused",
            Self::TicketExpired => "ticket-expired",
            Self::TicketRejected { .. } => "ticket-rejected",
            Self::TicketUpstreamError => "ticket-upstream-error",
            Self::Internal => "internal-error",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_)
            | Self::SceneRequired
            | Self::DeviceIdRequired
            | Self::TextRequired
            | Self::VerifyFail
            | Self::VerifyOverdue
            | Self::WxCodeRequired
            | Self::WxCodeInvalid
            | Self::WxDecryptFailed
            | Self::WxSignatureMismatch
            | Self::TicketRequired
            | Self::TicketExpired
            | Self::TicketRejected { .. } => StatusCode::BAD_REQUEST,
            Self::SessionRequired | Self::SessionInvalid | Self::SessionExpired => {
                StatusCode::UNAUTHORIZED
            }
            Self::WxUserBlocked => StatusCode::FORBIDDEN,
            Self::RefreshFail => StatusCode::NOT_FOUND,
            Self::TicketReused => StatusCode::CONFLICT,
            Self::RateLimited { .. } | Self::WxRateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::WxUpstreamError | Self::TicketUpstreamError => StatusCode::BAD_GATEWAY,
            Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::CreateFail | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `errMsg` for a client, in its language.
    pub fn message(&self, lang: Lang) -> String {
        let (zh, en) = match self {
            Self::InvalidRequest(detail) => {
                return match lang {
                    Lang::Zh => format!("请求无效：{detail}"),
                    Lang::En => format!("Invalid request: {detail}"),
                };
            }
            Self::SceneRequired => (
                "请传入有效的 scene",
                "A valid scene is required ([A-Za-z0-9_-], 1 to 64 characters)",
            ),
            Self::DeviceIdRequired => ("请传入 deviceId", "deviceId is required"),
            Self::TextRequired => ("请输入验证码", "Captcha text is required"),
            Self::VerifyFail => ("验证码错误", "Captcha verification failed"),
            Self::VerifyOverdue => ("验证码已失效", "Captcha has expired"),
            Self::RefreshFail => (
                "刷新失败，请先创建验证码",
                "Nothing to refresh: create a captcha first",
            ),
            Self::CreateFail => ("验证码生成失败", "Captcha could not be created"),
            Self::RateLimited { retry_after_secs } => {
                return match lang {
                    Lang::Zh => format!("请求过于频繁，请 {retry_after_secs} 秒后再试"),
                    Lang::En => {
                        format!("Too many requests, retry in {retry_after_secs} s")
                    }
                };
            }
            Self::StoreUnavailable => (
                "存储服务暂不可用，请稍后再试",
                "Storage is unavailable, please retry later",
            ),
            Self::WxCodeRequired => ("请传入 code", "code is required"),
            Self::WxCodeInvalid => (
                "code 无效或已被使用",
                "The login code is invalid or was already used",
            ),
            Self::WxUserBlocked => ("该用户已被微信拦截", "WeChat blocked this user"),
            Self::WxRateLimited => (
                "微信登录请求过于频繁，请稍后再试",
                "WeChat login is rate limited, please retry later",
            ),
            Self::WxUpstreamError => (
                "微信服务暂不可用，请稍后再试",
                "WeChat is unavailable, please retry later",
            ),
            Self::WxDecryptFailed => ("用户数据解密失败", "User data could not be decrypted"),
            Self::WxSignatureMismatch => ("用户数据签名不一致", "User data signature mismatch"),
            Self::SessionRequired => ("请先登录", "A session token is required"),
            Self::SessionInvalid => ("登录状态无效", "The session token is invalid"),
            Self::SessionExpired => ("登录已过期，请重新登录", "The session has expired"),
            Self::TicketRequired => ("请传入 ticket", "ticket is required"),
            Self::TicketReused => ("ticket 已被使用", "The ticket was already used"),
            Self::TicketExpired => ("ticket 已过期", "The ticket has expired"),
            Self::TicketRejected { .. } => ("验证未通过", "The captcha ticket was rejected"),
            Self::TicketUpstreamError => (
                "验证码服务暂不可用，请稍后再试",
                "The captcha service is unavailable, please retry later",
            ),
            Self::Internal => ("服务内部错误", "Internal error"),
        };
        match lang {
            Lang::Zh => zh.to_owned(),
            Lang::En => en.to_owned(),
        }
    }
}

/// A store failure after the SDK's own retries. Routes turn it into
/// `store-unavailable`; the cause is logged where it is raised.
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {0}")]
pub struct StoreError(pub String);

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err.0, "store request failed");
        ApiError::StoreUnavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_message_in_both_languages() {
        let all = [
            ApiError::InvalidRequest("x".into()),
            ApiError::SceneRequired,
            ApiError::VerifyOverdue,
            ApiError::RateLimited {
                retry_after_secs: 3,
            },
            ApiError::TicketRejected {
                captcha_code: 7,
                captcha_msg: "randstr mismatch".into(),
            },
            ApiError::Internal,
        ];
        for err in all {
            assert!(!err.message(Lang::Zh).is_empty());
            assert!(err.message(Lang::En).is_ascii(), "{err:?}");
        }
    }

    #[test]
    fn statuses_follow_the_spec_table() {
        assert_eq!(ApiError::RefreshFail.status(), StatusCode::NOT_FOUND);
        assert_eq!(ApiError::TicketReused.status(), StatusCode::CONFLICT);
        assert_eq!(ApiError::WxUserBlocked.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            ApiError::StoreUnavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(ApiError::SessionExpired.status(), StatusCode::UNAUTHORIZED);
    }
}
