//! Items as DynamoDB holds them: attribute values in and out, each row's
//! codec, and SDK failures turned into [`StoreError`]s.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};

use crate::secret::Secret;
use crate::store::*;

pub(super) type Item = HashMap<String, AttributeValue>;

/// The attribute a captcha row holds for its right answer: `ok_` and the
/// hex SHA-256 of the (normalised) answer, valued [`CaptchaState::Verified`].
/// A verify with a pass at stake conditions its transaction on the
/// attribute of its answer existing, and the update that counts a wrong
/// answer on its absence (`attempt::count_and_judge_granting`); one
/// without writes `state = if_not_exists(<attribute of its answer>,
/// <pending or void>)` (`attempt::count_and_judge`). Either way one write
/// both counts an attempt and judges it: the answer is never judged before
/// it is counted.
pub(super) fn answer_attribute(answer: &str) -> String {
    format!("ok_{}", hex::encode(Sha256::digest(answer.as_bytes())))
}

/// The attribute of the `attempt`-th answer's request nonce in a captcha
/// row (`t1` … `t10`, as `maxAttempts` is at most 10): a verify whose
/// response was lost finds its nonce there on its retry.
pub(super) fn attempt_nonce_attribute(attempt: u32) -> String {
    format!("t{attempt}")
}

/// A fresh request nonce: 64 CSPRNG bits, hex. Written with a conditional
/// write, it lets the SDK's retry of that very request (same parameters,
/// same nonce) recognise the write of an earlier attempt whose response was
/// lost, instead of taking its own write for someone else's.
pub(super) fn request_nonce() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

/// The item of a captcha row, with `opendb-verify-codes`' field names (and
/// the right answer's attribute, see [`answer_attribute`]).
pub(super) fn captcha_item(record: &CaptchaRecord) -> Item {
    let mut item = HashMap::from([
        (KEY_ATTRIBUTE.to_owned(), s(record.key())),
        ("device_uuid".to_owned(), s(record.device_uuid.as_str())),
        ("scene".to_owned(), s(record.scene.as_str())),
        ("code".to_owned(), s(&record.code)),
        ("state".to_owned(), n(record.state as i64)),
        ("ip".to_owned(), s(&record.ip)),
        ("created_date".to_owned(), n(record.created_date)),
        ("expired_date".to_owned(), n(record.expired_date)),
        ("attempts".to_owned(), n(record.attempts)),
        (
            TTL_ATTRIBUTE.to_owned(),
            n(ttl_seconds(record.expired_date)),
        ),
    ]);
    // An empty code has no right answer (an empty answer never passes).
    if !record.code.is_empty() {
        item.insert(
            answer_attribute(&record.code),
            n(CaptchaState::Verified as i64),
        );
    }
    item
}

/// The item of an SMS code row: `opendb-verify-codes`' field names, the
/// code's keyed hash only as the name of its right answer's attribute
/// (`ok_<hash>`, see `attempt.rs`), and the send's id in
/// [`super::issue::ISSUE_NONCE`].
pub(super) fn sms_item(record: &SmsCodeRecord) -> Item {
    let mut item = HashMap::from([
        (KEY_ATTRIBUTE.to_owned(), s(record.key())),
        ("mobile".to_owned(), s(record.mobile.as_str())),
        ("scene".to_owned(), s(record.scene.as_str())),
        ("state".to_owned(), n(record.state as i64)),
        ("ip".to_owned(), s(&record.ip)),
        ("created_date".to_owned(), n(record.created_date)),
        ("expired_date".to_owned(), n(record.expired_date)),
        ("resend_after".to_owned(), n(record.resend_after)),
        ("attempts".to_owned(), n(record.attempts)),
        (super::issue::ISSUE_NONCE.to_owned(), s(&record.send_id)),
        (
            TTL_ATTRIBUTE.to_owned(),
            n(ttl_seconds(record.expired_date.max(record.resend_after))),
        ),
        (
            sms_answer_attribute(&record.code_hash),
            n(CaptchaState::Verified as i64),
        ),
    ]);
    if let Some(device) = &record.device {
        item.insert("device_uuid".to_owned(), s(device.as_str()));
    }
    item
}

/// The attribute an SMS code row holds for its right code: `ok_` and the
/// code's keyed hash (already a hash: not hashed again).
pub(super) fn sms_answer_attribute(code_hash: &str) -> String {
    format!("ok_{code_hash}")
}

/// The item of a session row; `session_key` only when the login gave one.
pub(super) fn session_item(session: &SessionRecord, session_key: Option<&Secret>) -> Item {
    let mut item = HashMap::from([
        (
            KEY_ATTRIBUTE.to_owned(),
            s(session_key_of(&session.token_hash)),
        ),
        ("token_hash".to_owned(), s(&session.token_hash)),
        ("openid".to_owned(), s(&session.openid)),
        ("created_date".to_owned(), n(session.created_ms)),
        ("expired_date".to_owned(), n(session.expires_ms)),
        (TTL_ATTRIBUTE.to_owned(), n(ttl_seconds(session.expires_ms))),
    ]);
    if let Some(unionid) = &session.unionid {
        item.insert("unionid".to_owned(), s(unionid));
    }
    if let Some(phone) = &session.phone {
        item.extend(phone_attributes(phone));
    }
    if let Some(key) = session_key {
        item.insert("session_key".to_owned(), s(key.expose()));
    }
    item
}

/// The attributes a phone number is kept in, with WeChat's field names.
pub(super) fn phone_attributes(phone: &PhoneNumber) -> [(String, AttributeValue); 3] {
    [
        ("phone_number".to_owned(), s(&phone.phone_number)),
        ("pure_phone_number".to_owned(), s(&phone.pure_phone_number)),
        ("country_code".to_owned(), s(&phone.country_code)),
    ]
}

/// Every attribute [`session_from_item`] reads, and nothing else: what a
/// session read projects, so that `session_key` is never read back.
pub(super) const SESSION_ATTRIBUTES: [&str; 8] = [
    "token_hash",
    "openid",
    "unionid",
    "phone_number",
    "pure_phone_number",
    "country_code",
    "created_date",
    "expired_date",
];

/// `ProjectionExpression` and its attribute names for [`SESSION_ATTRIBUTES`]
/// (`#a0, #a1 …`, so no attribute name can clash with a reserved word).
pub(super) fn session_projection() -> (String, HashMap<String, String>) {
    let names: HashMap<String, String> = SESSION_ATTRIBUTES
        .iter()
        .enumerate()
        .map(|(i, name)| (format!("#a{i}"), (*name).to_owned()))
        .collect();
    let expression = (0..SESSION_ATTRIBUTES.len())
        .map(|i| format!("#a{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    (expression, names)
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn corrupt(attribute: &str, what: &str) -> StoreError {
    tracing::error!(attribute, what, "unexpected item in the DynamoDB table");
    StoreError(format!("item attribute {attribute}: {what}"))
}

pub(super) fn get_s<'a>(item: &'a Item, attribute: &str) -> Result<&'a str, StoreError> {
    match item.get(attribute) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(corrupt(attribute, "not a string")),
        None => Err(corrupt(attribute, "missing")),
    }
}

/// Whether `item`'s string `attribute` is `value` (a nonce: the write was
/// this request's).
pub(super) fn holds(item: &Item, attribute: &str, value: &str) -> bool {
    matches!(item.get(attribute), Some(v) if v.as_s().is_ok_and(|v| v == value))
}

pub(super) fn get_n(item: &Item, attribute: &str) -> Result<i64, StoreError> {
    match item.get(attribute) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt(attribute, "not an integer")),
        Some(_) => Err(corrupt(attribute, "not a number")),
        None => Err(corrupt(attribute, "missing")),
    }
}

fn optional_s(item: &Item, attribute: &str) -> Result<Option<String>, StoreError> {
    match item.get(attribute) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => Ok(Some(get_s(item, attribute)?.to_owned())),
    }
}

pub(super) fn session_from_item(item: &Item) -> Result<SessionRecord, StoreError> {
    let phone = match optional_s(item, "phone_number")? {
        None => None,
        Some(phone_number) => Some(PhoneNumber {
            phone_number,
            pure_phone_number: get_s(item, "pure_phone_number")?.to_owned(),
            country_code: get_s(item, "country_code")?.to_owned(),
        }),
    };
    Ok(SessionRecord {
        token_hash: get_s(item, "token_hash")?.to_owned(),
        openid: get_s(item, "openid")?.to_owned(),
        unionid: optional_s(item, "unionid")?,
        phone,
        created_ms: get_n(item, "created_date")?,
        expires_ms: get_n(item, "expired_date")?,
    })
}

/// Logs an SDK failure (operation and cause; requests carry no secrets, and
/// the SDK's error context holds none) and turns it into a [`StoreError`].
pub(super) fn sdk_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let cause = match &err {
        // The service's own code and message (the raw response adds nothing).
        SdkError::ServiceError(ctx) => format!(
            "{}: {}",
            ctx.err().code().unwrap_or("unknown error"),
            ctx.err().message().unwrap_or("no message")
        ),
        other => DisplayErrorContext(other).to_string(),
    };
    tracing::error!(operation, error = %cause, "DynamoDB request failed");
    StoreError(format!("{operation}: {cause}"))
}

/// The error codes with which DynamoDB throttles a request: a hot item or
/// partition, or the account's request rate.
const THROTTLED: [&str; 3] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

pub(super) fn throttled<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(ctx) if THROTTLED.contains(&ctx.err().code().unwrap_or("")))
}

/// The old item of an UpdateItem whose condition failed (`None` when there
/// was no item); any other failure is a [`StoreError`].
pub(super) fn update_condition_failed(
    err: SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
    operation: &'static str,
) -> Result<Option<Item>, StoreError> {
    match err {
        SdkError::ServiceError(ctx) => match ctx.err() {
            UpdateItemError::ConditionalCheckFailedException(failed) => Ok(failed.item().cloned()),
            _ => Err(sdk_error(operation, SdkError::ServiceError(ctx))),
        },
        other => Err(sdk_error(operation, other)),
    }
}

/// `Ok` when a PutItem failed only because its condition did.
pub(super) fn put_condition_failed(
    err: SdkError<PutItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
    operation: &'static str,
) -> Result<(), StoreError> {
    match err {
        SdkError::ServiceError(ctx) if ctx.err().is_conditional_check_failed_exception() => Ok(()),
        other => Err(sdk_error(operation, other)),
    }
}

/// The old item of a PutItem whose condition failed (`None` when there was
/// no item, or none was asked for); any other failure is a [`StoreError`].
pub(super) fn put_condition_failed_item(
    err: SdkError<PutItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
    operation: &'static str,
) -> Result<Option<Item>, StoreError> {
    match err {
        SdkError::ServiceError(ctx) => match ctx.err() {
            PutItemError::ConditionalCheckFailedException(failed) => Ok(failed.item().cloned()),
            _ => Err(sdk_error(operation, SdkError::ServiceError(ctx))),
        },
        other => Err(sdk_error(operation, other)),
    }
}

/// `Ok` when a DeleteItem failed only because its condition did.
pub(super) fn delete_condition_failed(
    err: SdkError<DeleteItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
    operation: &'static str,
) -> Result<(), StoreError> {
    match err {
        SdkError::ServiceError(ctx) if ctx.err().is_conditional_check_failed_exception() => Ok(()),
        other => Err(sdk_error(operation, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeviceId, Scene};

    #[test]
    fn captcha_items_use_the_opendb_field_names() {
        let record = CaptchaRecord {
            device_uuid: DeviceId::parse("dev").unwrap(),
            scene: Scene::parse("login").unwrap(),
            code: "ab3d".into(),
            state: CaptchaState::Pending,
            ip: "203.0.113.9".into(),
            created_date: 1_700_000_000_000,
            expired_date: 1_700_000_180_500,
            attempts: 0,
        };
        let item = captcha_item(&record);
        let mut names: Vec<_> = item.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "attempts",
                "code",
                "created_date",
                "device_uuid",
                "expired_date",
                "ip",
                "ok_6a2505967482224e01358c5c3ff1b2b2e0fe48b4bf3db3802f40ce55c306b2b1",
                "pk",
                "scene",
                "state",
                "ttl"
            ]
        );
        // The key is the captcha's locator, which a pass earned with it
        // carries: the SHA-256 of "login#dev".
        assert_eq!(
            item["pk"],
            s("captcha#5ed67f19e827b7a4d18bc36d5594e255ff71a8178115731125746c1b56b8d8e2")
        );
        assert_eq!(item["device_uuid"], s("dev"));
        assert_eq!(item["scene"], s("login"));
        assert_eq!(item["state"], n(0));
        assert_eq!(item["ttl"], n(1_700_000_181));
    }
}
