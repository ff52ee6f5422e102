//! The Tencent Cloud SMS API client: one signed `SendSms` (API 3.0, version
//! `2021-01-11`, service `sms`, `X-TC-Region` required) over
//! [`crate::tencent::api`], and the status of its one number.
//!
//! Request and answer, as Tencent documents `SendSms` (cloud.tencent.com
//! /document/api/382/55981; the SDKs' `SendSmsRequestParams` and
//! `SendStatus` of `sms/v20210111`):
//!
//! ```text
//! {"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400006666",
//!  "SignName": "腾讯云", "TemplateId": "1110", "TemplateParamSet": ["123456", "5"]}
//! → {"Response": {"SendStatusSet": [{"SerialNo": "…", "PhoneNumber": "+8613800138000",
//!     "Fee": 1, "SessionContext": "", "Code": "Ok", "Message": "send success",
//!     "IsoCode": "CN"}], "RequestId": "…"}}
//! ```
//!
//! A number's `Code` is `Ok`, or why it was not sent (`LimitExceeded.*`,
//! `InvalidParameterValue.IncorrectPhoneNumber`,
//! `FailedOperation.InsufficientBalanceInSmsPackage` …); a request-level
//! failure is `Response.Error` instead. Verification-code templates take
//! parameters of 0 to 6 digits only
//! (`InvalidParameterValue.TemplateParameterFormatError`): the code and its
//! minutes are.
//!
//! `SendSms` is never retried: a retry after a time-out could send twice.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::SmsConfig;
use super::mobile::Mobile;
use crate::config::ConfigError;
use crate::tencent::api::{self, ApiClient, Credentials, UpstreamError};

/// The product in the credential scope.
pub const SERVICE: &str = "sms";
/// The API version of the SMS product.
pub const API_VERSION: &str = "2021-01-11";
/// The action.
pub const ACTION: &str = "SendSms";
/// A number's `Code` when its message was sent.
pub const SENT: &str = "Ok";
/// `SendSms` (no region: the configuration's).
const SEND_SMS: api::Action<'static> = api::Action {
    service: SERVICE,
    version: API_VERSION,
    name: ACTION,
    region: None,
};

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendSmsRequest<'a> {
    phone_number_set: [&'a str; 1],
    sms_sdk_app_id: &'a str,
    sign_name: &'a str,
    template_id: &'a str,
    template_param_set: [&'a str; 2],
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendSmsAnswer {
    send_status_set: Vec<StatusFields>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StatusFields {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    fee: u64,
}

/// What Tencent said of the one number a `SendSms` carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendStatus {
    /// [`SENT`], or why not.
    pub code: String,
    pub message: String,
    /// Messages billed (a long text is several; 0 when not sent).
    pub fee: u64,
    pub request_id: String,
}

/// The HTTP client of the SMS API, built once.
#[derive(Clone)]
pub struct SmsClient {
    api: ApiClient,
}

impl SmsClient {
    /// A client for `config`'s endpoint with `timeout` for the whole call.
    pub fn new(config: &SmsConfig, timeout: Duration) -> Result<Self, ConfigError> {
        let api = ApiClient::new(&config.endpoint())?.with_timeout(timeout);
        Ok(Self { api })
    }

    /// Sends `code` to `mobile` with the configured template, its
    /// parameters `[code, minutes]`. `timestamp` is epoch seconds.
    pub async fn send(
        &self,
        config: &SmsConfig,
        mobile: &Mobile,
        code: &str,
        minutes: u64,
        timestamp: i64,
    ) -> Result<SendStatus, UpstreamError> {
        let minutes = minutes.to_string();
        let request = SendSmsRequest {
            phone_number_set: [mobile.as_str()],
            sms_sdk_app_id: &config.sdk_app_id,
            sign_name: &config.sign_name,
            template_id: &config.template_id,
            template_param_set: [code, &minutes],
        };
        let credentials = Credentials::new(&config.secret_id, &config.secret_key);
        let action = SEND_SMS.in_region(Some(&config.region));
        (self.api)
            .send(&credentials, &action, &request, timestamp, parse_answer)
            .await
    }
}

/// Reads the answer to a `SendSms` of one number: its status, or the
/// `Response.Error` the answer carries. An answer without exactly one
/// status is not the expected JSON.
pub(crate) fn parse_answer(body: &[u8]) -> Result<SendStatus, UpstreamError> {
    let (answer, request_id) = api::read_answer::<SendSmsAnswer>(body)?;
    let [status] = <[StatusFields; 1]>::try_from(answer.send_status_set)
        .map_err(|_| UpstreamError::NotJson)?;
    Ok(SendStatus {
        code: status.code,
        message: status.message,
        fee: status.fee,
        request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_one_number_and_two_parameters() {
        let body = serde_json::to_value(SendSmsRequest {
            phone_number_set: ["+8613800138000"],
            sms_sdk_app_id: "1400006666",
            sign_name: "腾讯云",
            template_id: "1110",
            template_param_set: ["012345", "5"],
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400006666",
                "SignName": "腾讯云", "TemplateId": "1110", "TemplateParamSet": ["012345", "5"]})
        );
    }

    #[test]
    fn answers_parse_into_one_status_or_an_error() {
        let sent =
            br#"{"Response":{"SendStatusSet":[{"SerialNo":"2433:1","PhoneNumber":"+8613800138000",
            "Fee":1,"SessionContext":"","Code":"Ok","Message":"send success","IsoCode":"CN"}],
            "RequestId":"r1"}}"#;
        assert_eq!(
            parse_answer(sent).unwrap(),
            SendStatus {
                code: SENT.into(),
                message: "send success".into(),
                fee: 1,
                request_id: "r1".into()
            }
        );
        let limited =
            br#"{"Response":{"SendStatusSet":[{"Code":"LimitExceeded.PhoneNumberDailyLimit",
            "Message":"m","Fee":0}],"RequestId":"r2"}}"#;
        assert_eq!(
            parse_answer(limited).unwrap().code,
            "LimitExceeded.PhoneNumberDailyLimit"
        );
        api::assert_reads_request_errors(parse_answer);
        for bad in [
            &br#"{"Response":{"SendStatusSet":[],"RequestId":"r"}}"#[..],
            br#"{"Response":{"SendStatusSet":[{"Code":"Ok"},{"Code":"Ok"}]}}"#,
            br#"{"Response":{"SendStatusSet":[{"Fee":1}]}}"#,
            br#"{"Response":{"RequestId":"r"}}"#,
            b"<html>",
        ] {
            assert_eq!(parse_answer(bad).unwrap_err(), UpstreamError::NotJson);
        }
    }
}
