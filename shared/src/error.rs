//! The one error type of every route, and the one place that maps it to an
//! errCode, an HTTP status and a message in Chinese or English.

use http::StatusCode;

use crate::lang::Lang;

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
    /// A route called with a method it does not serve; `allow` lists those
    /// it does (the `Allow` header).
    #[error("method {method} not allowed")]
    MethodNotAllowed { method: String, allow: String },
    /// No route for this method and path (the dev server; API Gateway
    /// answers these itself).
    #[error("no route {method} {path}")]
    RouteNotFound { method: String, path: String },
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
    /// A width or height from a client where the scene's `clientSize` is
    /// off.
    #[error("captcha size chosen by the client")]
    SizeNotAllowed,
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
    #[error("wx phone code required")]
    WxPhoneCodeRequired,
    #[error("wx phone code invalid or used")]
    WxPhoneCodeInvalid,
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
        /// Tencent's `EvilLevel`, when that is what the ticket was refused
        /// for (100 with `CaptchaCode` 1).
        evil_level: Option<i64>,
    },
    #[error("ticket upstream error")]
    TicketUpstreamError,
    /// Tencent's callback object says the captcha was not solved: `ret`
    /// 2 (the user closed it) or any other value but 0.
    #[error("captcha not solved (ret {ret})")]
    TicketNotSolved { ret: i64 },
    /// The door needs a pass (an image captcha's or a ticket's) and none
    /// was sent.
    #[error("guard: captcha required")]
    GuardCaptchaRequired,
    /// The door needs a ticket pass and none was sent.
    #[error("guard: tencent captcha required")]
    GuardTencentRequired,
    /// The pass sent is unknown, used, expired, of another scene or device,
    /// or a captcha pass where only a ticket pass will do.
    #[error("guard: pass invalid")]
    GuardPassInvalid,
    /// Not a mobile number we take (see `crate::sms::mobile`), or one
    /// Tencent calls incorrect (`InvalidParameterValue.IncorrectPhoneNumber`).
    #[error("mobile number invalid")]
    SmsMobileInvalid,
    /// A number whose country the scene does not list (`sms.countries`).
    #[error("mobile number of a country not allowed")]
    SmsCountryNotAllowed,
    /// The number's last code was sent less than `resendSeconds` ago.
    #[error("sms sent less than {retry_after_secs}s ago")]
    SmsSendTooSoon { retry_after_secs: u64 },
    /// The number had its `perMobilePerDay` codes today.
    #[error("sms daily limit of the number, retry after {retry_after_secs}s")]
    SmsDailyLimit { retry_after_secs: u64 },
    /// The scene sent its `dailyBudget` of messages today.
    #[error("sms daily budget spent, retry after {retry_after_secs}s")]
    SmsBudgetExhausted { retry_after_secs: u64 },
    /// Tencent's own frequency limits (`LimitExceeded.*`).
    #[error("sms limited upstream")]
    SmsUpstreamLimited,
    /// Tencent did not send: any other code, an error, a time-out, a
    /// garbled answer.
    #[error("sms upstream error")]
    SmsUpstreamError,
    #[error("sms code required")]
    SmsCodeRequired,
    /// Wrong, used, void, or no code sent to the number in the scene.
    #[error("sms code invalid")]
    SmsCodeInvalid,
    #[error("sms code expired")]
    SmsCodeExpired,
    /// A `deviceId` or `X-Device-Id` sent to the guard that is no device id
    /// (empty, over 128 characters, not visible ASCII): refused, never
    /// taken for no device.
    #[error("guard: invalid device id")]
    GuardInvalidDevice,
    /// The door refuses this user outright: WeChat rates them at or above
    /// the scene's `wxRisk.refuseFromRank`. No pass opens it.
    #[error("guard: refused")]
    GuardRefused,
    /// The request's deadline passed (see [`crate::deadline`]) before its
    /// store or upstream calls were done.
    #[error("request deadline exceeded")]
    DeadlineExceeded,
    #[error("internal error")]
    Internal,
}

/// One row of the error table: errCode, HTTP status, and the message in
/// Chinese and English (`{…}` placeholders filled by [`ApiError::message`]).
struct Row {
    code: &'static str,
    status: StatusCode,
    zh: &'static str,
    en: &'static str,
}

const fn row(code: &'static str, status: StatusCode, zh: &'static str, en: &'static str) -> Row {
    Row {
        code,
        status,
        zh,
        en,
    }
}

impl ApiError {
    /// The table: adding an error is a variant and one row here.
    fn row(&self) -> Row {
        use StatusCode as S;
        match self {
            Self::InvalidRequest(_) => row(
                "invalid-request",
                S::BAD_REQUEST,
                "请求无效：{detail}",
                "Invalid request: {detail}",
            ),
            Self::MethodNotAllowed { .. } => row(
                "invalid-request",
                S::METHOD_NOT_ALLOWED,
                "请求无效：不支持 {method} 方法，请用 {allow}",
                "Invalid request: method {method} not allowed, use {allow}",
            ),
            Self::RouteNotFound { .. } => row(
                "invalid-request",
                S::NOT_FOUND,
                "请求无效：没有路由 {method} {path}",
                "Invalid request: no route {method} {path}",
            ),
            Self::SceneRequired => row(
                "uni-captcha-scene-required",
                S::BAD_REQUEST,
                "请传入有效的 scene",
                "A valid scene is required ([A-Za-z0-9_-], 1 to 64 characters)",
            ),
            Self::DeviceIdRequired => row(
                "uni-captcha-deviceId-required",
                S::BAD_REQUEST,
                "请传入 deviceId",
                "deviceId is required",
            ),
            Self::TextRequired => row(
                "uni-captcha-text-required",
                S::BAD_REQUEST,
                "请输入验证码",
                "Captcha text is required",
            ),
            Self::VerifyFail => row(
                "uni-captcha-verify-fail",
                S::BAD_REQUEST,
                "验证码错误",
                "Captcha verification failed",
            ),
            Self::VerifyOverdue => row(
                "uni-captcha-verify-overdue",
                S::BAD_REQUEST,
                "验证码已失效",
                "Captcha has expired",
            ),
            Self::RefreshFail => row(
                "uni-captcha-refresh-fail",
                S::NOT_FOUND,
                "刷新失败，请先创建验证码",
                "Nothing to refresh: create a captcha first",
            ),
            Self::CreateFail => row(
                "uni-captcha-create-fail",
                S::INTERNAL_SERVER_ERROR,
                "验证码生成失败",
                "Captcha could not be created",
            ),
            Self::SizeNotAllowed => row(
                "uni-captcha-size-not-allowed",
                S::BAD_REQUEST,
                "该场景不允许指定验证码图片尺寸，请去掉 width 和 height",
                "This scene does not let a client choose the image size: leave out width and height",
            ),
            Self::RateLimited { .. } => row(
                "rate-limited",
                S::TOO_MANY_REQUESTS,
                "请求过于频繁，请 {secs} 秒后再试",
                "Too many requests, retry in {secs} s",
            ),
            Self::StoreUnavailable => row(
                "store-unavailable",
                S::SERVICE_UNAVAILABLE,
                "存储服务暂不可用，请稍后再试",
                "Storage is unavailable, please retry later",
            ),
            Self::WxCodeRequired => row(
                "wx-code-required",
                S::BAD_REQUEST,
                "请传入 code",
                "code is required",
            ),
            Self::WxCodeInvalid => row(
                "wx-code-invalid",
                S::BAD_REQUEST,
                "code 无效或已被使用",
                "The login code is invalid or was already used",
            ),
            Self::WxUserBlocked => row(
                "wx-user-blocked",
                S::FORBIDDEN,
                "该用户已被微信拦截",
                "WeChat blocked this user",
            ),
            Self::WxRateLimited => row(
                "wx-rate-limited",
                S::TOO_MANY_REQUESTS,
                "微信接口调用过于频繁，请稍后再试",
                "WeChat is rate limiting requests, please retry later",
            ),
            Self::WxUpstreamError => row(
                "wx-upstream-error",
                S::BAD_GATEWAY,
                "微信服务暂不可用，请稍后再试",
                "WeChat is unavailable, please retry later",
            ),
            Self::WxDecryptFailed => row(
                "wx-decrypt-failed",
                S::BAD_REQUEST,
                "用户数据解密失败",
                "User data could not be decrypted",
            ),
            Self::WxSignatureMismatch => row(
                "wx-signature-mismatch",
                S::BAD_REQUEST,
                "用户数据签名不一致",
                "User data signature mismatch",
            ),
            Self::WxPhoneCodeRequired => row(
                "wx-phone-code-required",
                S::BAD_REQUEST,
                "请传入手机号 code",
                "The phone number code is required",
            ),
            Self::WxPhoneCodeInvalid => row(
                "wx-phone-code-invalid",
                S::BAD_REQUEST,
                "手机号 code 无效或已被使用，请重新授权",
                "The phone number code is invalid or was already used",
            ),
            Self::SessionRequired => row(
                "session-required",
                S::UNAUTHORIZED,
                "请先登录",
                "A session token is required",
            ),
            Self::SessionInvalid => row(
                "session-invalid",
                S::UNAUTHORIZED,
                "登录状态无效",
                "The session token is invalid",
            ),
            Self::SessionExpired => row(
                "session-expired",
                S::UNAUTHORIZED,
                "登录已过期，请重新登录",
                "The session has expired",
            ),
            Self::TicketRequired => row(
                "ticket-required",
                S::BAD_REQUEST,
                "请传入 ticket",
                "ticket is required",
            ),
            Self::TicketReused => row(
                "ticket-reused",
                S::CONFLICT,
                "ticket 已被使用",
                "The ticket was already used",
            ),
            Self::TicketExpired => row(
                "ticket-expired",
                S::BAD_REQUEST,
                "ticket 已过期",
                "The ticket has expired",
            ),
            Self::TicketRejected { .. } => row(
                "ticket-rejected",
                S::BAD_REQUEST,
                "验证未通过",
                "The captcha ticket was rejected",
            ),
            Self::TicketNotSolved { .. } => row(
                "ticket-not-solved",
                S::BAD_REQUEST,
                "验证码未完成（已关闭或出错），请重新验证",
                "The captcha was closed or failed before it was solved",
            ),
            Self::TicketUpstreamError => row(
                "ticket-upstream-error",
                S::BAD_GATEWAY,
                "验证码服务暂不可用，请稍后再试",
                "The captcha service is unavailable, please retry later",
            ),
            Self::GuardCaptchaRequired => row(
                "guard-captcha-required",
                S::FORBIDDEN,
                "请先完成验证码",
                "Solve a captcha first",
            ),
            Self::GuardTencentRequired => row(
                "guard-tencent-required",
                S::FORBIDDEN,
                "请先完成腾讯云验证码",
                "Solve the Tencent captcha first",
            ),
            Self::GuardPassInvalid => row(
                "guard-pass-invalid",
                S::FORBIDDEN,
                "验证凭证无效或已使用，请重新验证",
                "The pass is invalid or was already used: solve a captcha again",
            ),
            Self::SmsMobileInvalid => row(
                "sms-mobile-invalid",
                S::BAD_REQUEST,
                "手机号码格式不正确",
                "The mobile number is not valid: send it as +8613800138000 (E.164) or 13800138000",
            ),
            Self::SmsCountryNotAllowed => row(
                "sms-country-not-allowed",
                S::BAD_REQUEST,
                "暂不支持该国家或地区的手机号码",
                "Numbers of this country or region are not accepted here",
            ),
            Self::SmsSendTooSoon { .. } => row(
                "sms-send-too-soon",
                S::TOO_MANY_REQUESTS,
                "验证码已发送，请 {secs} 秒后再试",
                "A code was just sent: retry in {secs} s",
            ),
            Self::SmsDailyLimit { .. } => row(
                "sms-daily-limit",
                S::TOO_MANY_REQUESTS,
                "该手机号今日获取验证码次数已达上限，请明天再试",
                "This number had all its codes for today: retry tomorrow",
            ),
            Self::SmsBudgetExhausted { .. } => row(
                "sms-budget-exhausted",
                S::TOO_MANY_REQUESTS,
                "今日短信发送量已达上限，请明天再试",
                "Today's SMS budget is spent: retry tomorrow",
            ),
            Self::SmsUpstreamLimited => row(
                "sms-upstream-limited",
                S::TOO_MANY_REQUESTS,
                "短信发送过于频繁，请稍后再试",
                "Too many messages to this number: retry later",
            ),
            Self::SmsUpstreamError => row(
                "sms-upstream-error",
                S::BAD_GATEWAY,
                "短信发送失败，请稍后再试",
                "The SMS could not be sent, please retry later",
            ),
            Self::SmsCodeRequired => row(
                "sms-code-required",
                S::BAD_REQUEST,
                "请输入短信验证码",
                "The SMS code is required",
            ),
            Self::SmsCodeInvalid => row(
                "sms-code-invalid",
                S::BAD_REQUEST,
                "短信验证码错误或已失效",
                "The SMS code is wrong, or no longer valid",
            ),
            Self::SmsCodeExpired => row(
                "sms-code-expired",
                S::BAD_REQUEST,
                "短信验证码已过期，请重新获取",
                "The SMS code has expired: ask for a new one",
            ),
            Self::GuardInvalidDevice => row(
                "guard-invalid-device",
                S::BAD_REQUEST,
                "设备标识无效：须为 1 到 128 个可见 ASCII 字符",
                "Invalid device id: 1 to 128 visible ASCII characters",
            ),
            Self::GuardRefused => row(
                "guard-refused",
                S::FORBIDDEN,
                "当前账号存在安全风险，暂时无法进行此操作",
                "This account is rated too risky for this action: it is refused",
            ),
            Self::DeadlineExceeded => row(
                "deadline-exceeded",
                S::GATEWAY_TIMEOUT,
                "服务响应超时，请稍后再试",
                "The request took too long, please retry",
            ),
            Self::Internal => row(
                "internal-error",
                S::INTERNAL_SERVER_ERROR,
                "服务内部错误",
                "Internal error",
            ),
        }
    }

    /// The `errCode` string; uni-captcha's names where one exists.
    pub fn code(&self) -> &'static str {
        self.row().code
    }

    pub fn status(&self) -> StatusCode {
        self.row().status
    }

    /// The `errMsg` for a client, in its language.
    pub fn message(&self, lang: Lang) -> String {
        let row = self.row();
        let template = lang.pick(row.zh, row.en);
        match self {
            Self::InvalidRequest(detail) => template.replace("{detail}", detail),
            Self::MethodNotAllowed { method, allow } => template
                .replace("{method}", method)
                .replace("{allow}", allow),
            Self::RouteNotFound { method, path } => {
                template.replace("{method}", method).replace("{path}", path)
            }
            _ => match self.retry_after() {
                Some(secs) => template.replace("{secs}", &secs.to_string()),
                None => template.to_owned(),
            },
        }
    }

    /// Whole seconds before the client may try again (the `Retry-After`
    /// header of a 429), when the error knows.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs }
            | Self::SmsSendTooSoon { retry_after_secs }
            | Self::SmsDailyLimit { retry_after_secs }
            | Self::SmsBudgetExhausted { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
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
            ApiError::SizeNotAllowed,
            ApiError::VerifyOverdue,
            ApiError::RateLimited {
                retry_after_secs: 3,
            },
            ApiError::TicketNotSolved { ret: 2 },
            ApiError::TicketRejected {
                captcha_code: 7,
                captcha_msg: "randstr mismatch".into(),
                evil_level: None,
            },
            ApiError::MethodNotAllowed {
                method: "PUT".into(),
                allow: "GET, DELETE".into(),
            },
            ApiError::RouteNotFound {
                method: "GET".into(),
                path: "/x".into(),
            },
            ApiError::WxPhoneCodeRequired,
            ApiError::WxPhoneCodeInvalid,
            ApiError::WxRateLimited,
            ApiError::GuardPassInvalid,
            ApiError::SmsSendTooSoon {
                retry_after_secs: 42,
            },
            ApiError::SmsDailyLimit {
                retry_after_secs: 3600,
            },
            ApiError::SmsBudgetExhausted {
                retry_after_secs: 60,
            },
            ApiError::SmsMobileInvalid,
            ApiError::SmsCodeInvalid,
            ApiError::GuardInvalidDevice,
            ApiError::GuardRefused,
            ApiError::DeadlineExceeded,
            ApiError::Internal,
        ];
        for err in all {
            assert!(!err.message(Lang::Zh).is_empty());
            assert!(err.message(Lang::En).is_ascii(), "{err:?}");
            for lang in [Lang::Zh, Lang::En] {
                let message = err.message(lang);
                assert!(!message.contains('{'), "unfilled placeholder: {message}");
            }
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
        assert_eq!(ApiError::GuardRefused.status(), StatusCode::FORBIDDEN);
        assert_eq!(ApiError::GuardRefused.code(), "guard-refused");
    }
}
