//! Redeeming passes: a pass lives in the row that earned it (a captcha row,
//! a ticket row or an SMS code row), so one conditional UpdateItem on that row redeems it.
//! The redemption records its request nonce (`redeemed_by`): when the SDK
//! retries one whose first response was lost, the retry finds its own nonce
//! in the row its condition refused and still admits, exactly once.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::DynamoStore;
use super::codec::*;
use crate::domain::{DeviceId, Scene};
use crate::sms::mobile::Mobile;
use crate::store::*;

#[async_trait]
impl PassStore for DynamoStore {
    async fn redeem_pass(&self, claim: &PassClaim<'_>) -> Result<Redemption, StoreError> {
        let key = match claim.kind {
            PassKind::Captcha => captcha_key_of(claim.locator),
            PassKind::Ticket => ticket_key_of(&hex::encode(claim.locator)),
            PassKind::Sms => sms_key_of(claim.locator),
        };
        let nonce = request_nonce();
        let mut condition = String::from(
            "pass_hash = :hash AND attribute_not_exists(pass_redeemed) \
             AND pass_expired > :now AND #scene = :scene",
        );
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(key))
            .update_expression("SET pass_redeemed = :now, redeemed_by = :nonce")
            .expression_attribute_names("#scene", "scene")
            .expression_attribute_values(":hash", s(claim.secret_hash))
            .expression_attribute_values(":now", n(claim.now_ms))
            .expression_attribute_values(":nonce", s(&nonce))
            .expression_attribute_values(":scene", s(claim.scene.as_str()));
        if claim.kind != PassKind::Ticket {
            // Every answer writes its pass into the captcha or SMS code row
            // (see `attempt.rs`): only a right one's is valid.
            condition.push_str(" AND #state = :verified");
            update = update
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":verified", n(CaptchaState::Verified as i64));
        }
        if let Some(device) = claim.device {
            // A pass earned without a device (a ticket) fits any device.
            condition.push_str(" AND (attribute_not_exists(device_uuid) OR device_uuid = :device)");
            update = update.expression_attribute_values(":device", s(device.as_str()));
        }
        let result = update
            .condition_expression(condition)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out
                    .attributes()
                    .ok_or_else(|| corrupt("pass", "not returned"))?;
                Ok(Redemption::Redeemed(redeemed_pass(claim.kind, item)?))
            }
            Err(err) => {
                let old = update_condition_failed(err, "redeem_pass")?;
                classify_pass(old.as_ref(), claim, &nonce)
            }
        }
    }
}

/// What a redeemed row says about its pass.
fn redeemed_pass(kind: PassKind, item: &Item) -> Result<RedeemedPass, StoreError> {
    let scene = Scene::parse(get_s(item, "scene")?).map_err(|_| corrupt("scene", "invalid"))?;
    let device = match item.get("device_uuid") {
        None => None,
        Some(_) => Some(
            DeviceId::parse(get_s(item, "device_uuid")?)
                .map_err(|_| corrupt("device_uuid", "invalid"))?,
        ),
    };
    let evil_level = match item.get("evil_level") {
        None => None,
        Some(_) => Some(get_n(item, "evil_level")?),
    };
    let mobile = match kind {
        PassKind::Sms => {
            Some(Mobile::parse(get_s(item, "mobile")?).map_err(|_| corrupt("mobile", "invalid"))?)
        }
        _ => None,
    };
    Ok(RedeemedPass {
        kind,
        scene,
        device,
        ip: item
            .get("ip")
            .map(|_| get_s(item, "ip"))
            .transpose()?
            .unwrap_or_default()
            .to_owned(),
        evil_level,
        degraded: matches!(
            item.get("degraded"),
            Some(aws_sdk_dynamodb::types::AttributeValue::Bool(true))
        ),
        mobile,
        created_ms: get_n(item, "pass_created")?,
    })
}

/// Why a redemption was refused, judged from the row its condition saw, in
/// the order the embedded store checks.
fn classify_pass(
    old: Option<&Item>,
    claim: &PassClaim,
    nonce: &str,
) -> Result<Redemption, StoreError> {
    let Some(item) = old else {
        return Ok(Redemption::Unknown);
    };
    match item.get("pass_hash") {
        Some(_) if get_s(item, "pass_hash")? == claim.secret_hash => {}
        _ => return Ok(Redemption::Unknown),
    }
    if matches!(item.get("redeemed_by"), Some(v) if v.as_s().is_ok_and(|v| v == nonce)) {
        // This request's own redemption, made by an attempt whose response
        // was lost.
        return Ok(Redemption::Redeemed(redeemed_pass(claim.kind, item)?));
    }
    if claim.kind != PassKind::Ticket
        && CaptchaState::from_number(get_n(item, "state")?) != Some(CaptchaState::Verified)
    {
        return Ok(Redemption::Unknown);
    }
    if item.contains_key("pass_redeemed") {
        return Ok(Redemption::Used);
    }
    if claim.now_ms >= get_n(item, "pass_expired")? {
        return Ok(Redemption::Expired);
    }
    if get_s(item, "scene")? != claim.scene.as_str() {
        return Ok(Redemption::OtherScene);
    }
    Ok(Redemption::OtherDevice)
}
