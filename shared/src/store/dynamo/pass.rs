//! Pass rows (`pass#<kind>#<sha256 of secret>`): granted by one conditional
//! PutItem of the verify that vouches for them, redeemed by one conditional
//! UpdateItem of a door.
//!
//! **Who may write what.** IAM's `dynamodb:Attributes` names every
//! attribute a request writes *or* its condition reads, and cannot tell a
//! SET from a REMOVE nor one value from another. So the doors (authorizer,
//! guard) may write exactly [`REDEEM_ATTRIBUTES`], which the redemption
//! writes and conditions on, and a row holding only those is no pass: a
//! pass is a row with its [`KIND`] and [`CREATED`], which only the verify
//! functions may write, and only by PutItem on their own kind's prefix
//! (see `api::Function::table_grants`).
//!
//! **Retries.** The grant carries its request nonce (`granted_by`) and the
//! redemption its own (`redeemed_by`); each asks for the old item when its
//! condition fails, so a retry after a lost response recognises its own
//! write.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::DynamoStore;
use super::codec::*;
use crate::domain::{DeviceId, Scene};
use crate::sms::mobile::Mobile;
use crate::store::*;

/// A pass row's kind (`captcha`, `ticket`, `sms`): with [`CREATED`], what makes a
/// row a pass.
const KIND: &str = "kind";
const CREATED: &str = "pass_created";
const EXPIRED: &str = "pass_expired";
/// The client's IPv4 address or IPv6 /64, compared by a door that binds
/// the IP.
const IP_NET: &str = "ip_net";
pub(super) const GRANTED_BY: &str = "granted_by";
const REDEEMED: &str = "pass_redeemed";
const REDEEMED_BY: &str = "redeemed_by";
/// The idempotency key a redemption was made under.
const REDEEMED_KEY: &str = "redeemed_key";

/// Every attribute a grant of any kind writes (the key included), then
/// the kind's own.
macro_rules! pass_attributes {
    ($($own:expr),*) => {
        &[
            KEY_ATTRIBUTE,
            KIND,
            "scene",
            "device_uuid",
            "ip",
            IP_NET,
            CREATED,
            EXPIRED,
            TTL_ATTRIBUTE,
            GRANTED_BY,
            $($own),*
        ]
    };
}

/// Every attribute a ticket pass's grant writes (the key included): a
/// captcha pass's, then Tencent's word (`evil_level`, `degraded`). What IAM
/// lets verify-ticket write on `pass#ticket#` rows.
pub const TICKET_PASS_ATTRIBUTES: &[&str] = pass_attributes!("evil_level", "degraded");

/// Every attribute a captcha pass's grant writes: a ticket pass's but
/// Tencent's word. What IAM lets verify-captcha write on `pass#captcha#`
/// rows.
pub const CAPTCHA_PASS_ATTRIBUTES: &[&str] = pass_attributes!();

/// Every attribute an SMS pass's grant writes: a captcha pass's and the
/// number the code proved (`mobile`, E.164). What IAM lets verify-sms
/// write on `pass#sms#` rows.
pub const SMS_PASS_ATTRIBUTES: &[&str] = pass_attributes!("mobile");

/// Every attribute a redemption writes or its condition reads (the key
/// included): what IAM lets the doors touch on `pass#` rows, and nothing
/// that makes a row a pass.
pub const REDEEM_ATTRIBUTES: &[&str] = &[
    KEY_ATTRIBUTE,
    "scene",
    "device_uuid",
    IP_NET,
    EXPIRED,
    REDEEMED,
    REDEEMED_BY,
    REDEEMED_KEY,
];

/// The item of a pass grant, with the grant's request nonce.
pub(super) fn pass_item(pass: &PassGrant, nonce: &str) -> Item {
    let mut item = Item::from([
        (KEY_ATTRIBUTE.to_owned(), s(pass.key())),
        (KIND.to_owned(), s(pass.kind.as_str())),
        ("scene".to_owned(), s(pass.scene.as_str())),
        (CREATED.to_owned(), n(pass.created_ms)),
        (EXPIRED.to_owned(), n(pass.expires_ms)),
        (TTL_ATTRIBUTE.to_owned(), n(ttl_seconds(pass.expires_ms))),
        (GRANTED_BY.to_owned(), s(nonce)),
    ]);
    let optional = [
        ("device_uuid", pass.device.as_ref().map(|d| s(d.as_str()))),
        ("ip", pass.ip.as_deref().map(s)),
        (IP_NET, pass.ip_net.as_deref().map(s)),
        ("evil_level", pass.evil_level.map(n)),
        ("mobile", pass.mobile.as_ref().map(|m| s(m.as_str()))),
        (
            "degraded",
            pass.degraded.then_some(AttributeValue::Bool(true)),
        ),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.to_owned(), value);
        }
    }
    item
}

#[async_trait]
impl PassStore for DynamoStore {
    async fn grant_pass(&self, pass: &PassGrant) -> Result<(), StoreError> {
        let nonce = request_nonce();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(pass_item(pass, &nonce)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let Err(err) = result else {
            return Ok(());
        };
        match put_condition_failed_item(err, "grant_pass")? {
            // Its own write, made by an attempt whose response was lost.
            Some(old) if holds(&old, GRANTED_BY, &nonce) => Ok(()),
            _ => Err(corrupt(KEY_ATTRIBUTE, "a pass row is already there")),
        }
    }

    /// One UpdateItem: `SET pass_redeemed, redeemed_by (, redeemed_key)`
    /// while the pass is unredeemed (or redeemed under the claim's
    /// idempotency key), unexpired, of the claim's scene, and of its device
    /// and IP as the claim binds them. `ALL_NEW` on success, `ALL_OLD` when
    /// the condition fails, to tell why.
    async fn redeem_pass(&self, claim: &PassClaim<'_>) -> Result<Redemption, StoreError> {
        if claim.bind_device && claim.device.is_none() {
            return Ok(Redemption::OtherDevice);
        }
        let nonce = request_nonce();
        let mut sets = vec![
            "#redeemed = if_not_exists(#redeemed, :now)",
            "#by = if_not_exists(#by, :nonce)",
        ];
        let mut condition = vec![match (claim.idempotency_key, claim.replay_only) {
            (Some(_), true) => "#rkey = :rkey",
            (Some(_), false) => "(attribute_not_exists(#redeemed) OR #rkey = :rkey)",
            (None, _) => "attribute_not_exists(#redeemed)",
        }];
        condition.push("#expired > :now AND #scene = :scene");
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(pass_key_of(claim.kind, claim.secret_hash)))
            .expression_attribute_names("#redeemed", REDEEMED)
            .expression_attribute_names("#by", REDEEMED_BY)
            .expression_attribute_names("#expired", EXPIRED)
            .expression_attribute_names("#scene", "scene")
            .expression_attribute_values(":now", n(claim.now_ms))
            .expression_attribute_values(":nonce", s(&nonce))
            .expression_attribute_values(":scene", s(claim.scene.as_str()));
        if let Some(key) = claim.idempotency_key {
            sets.push("#rkey = if_not_exists(#rkey, :rkey)");
            update = update
                .expression_attribute_names("#rkey", REDEEMED_KEY)
                .expression_attribute_values(":rkey", s(key));
        }
        if let Some(device) = claim.device {
            // A pass earned without a device fits any, unless the door
            // binds the device.
            condition.push(if claim.bind_device {
                "#device = :device"
            } else {
                "(attribute_not_exists(#device) OR #device = :device)"
            });
            update = update
                .expression_attribute_names("#device", "device_uuid")
                .expression_attribute_values(":device", s(device.as_str()));
        }
        if let Some(net) = claim.bind_ip_net {
            condition.push("#net = :net");
            update = update
                .expression_attribute_names("#net", IP_NET)
                .expression_attribute_values(":net", s(net));
        }
        let result = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(condition.join(" AND "))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out
                    .attributes()
                    .ok_or_else(|| corrupt("pass", "not returned"))?;
                // A row a door could have made (its attributes alone) is
                // no pass.
                Ok(match redeemed_pass(claim.kind, item)? {
                    Some(pass) => Redemption::Redeemed(pass),
                    None => Redemption::Unknown,
                })
            }
            Err(err) => {
                let old = update_condition_failed(err, "redeem_pass")?;
                classify_pass(old.as_ref(), claim, &nonce)
            }
        }
    }
}

/// What a pass row says about its pass; `None` when the row is not a pass
/// of `kind` (no kind, another, or no creation time).
fn redeemed_pass(kind: PassKind, item: &Item) -> Result<Option<RedeemedPass>, StoreError> {
    if !holds(item, KIND, kind.as_str()) || !item.contains_key(CREATED) {
        return Ok(None);
    }
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
    let mobile = match item.get("mobile") {
        None => None,
        Some(_) => {
            Some(Mobile::parse(get_s(item, "mobile")?).map_err(|_| corrupt("mobile", "invalid"))?)
        }
    };
    Ok(Some(RedeemedPass {
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
        degraded: matches!(item.get("degraded"), Some(AttributeValue::Bool(true))),
        mobile,
        created_ms: get_n(item, CREATED)?,
    }))
}

/// Why a redemption was refused, judged from the row its condition saw (as
/// the embedded store judges: [`HeldPass::refusal`]).
fn classify_pass(
    old: Option<&Item>,
    claim: &PassClaim,
    nonce: &str,
) -> Result<Redemption, StoreError> {
    let Some(item) = old else {
        return Ok(Redemption::Unknown);
    };
    let Some(pass) = redeemed_pass(claim.kind, item)? else {
        return Ok(Redemption::Unknown);
    };
    if holds(item, REDEEMED_BY, nonce) {
        // This request's own redemption, made by an attempt whose response
        // was lost.
        return Ok(Redemption::Redeemed(pass));
    }
    let held = HeldPass {
        redeemed: item.contains_key(REDEEMED),
        same_key: claim
            .idempotency_key
            .is_some_and(|key| holds(item, REDEEMED_KEY, key)),
        expires_ms: get_n(item, EXPIRED)?,
        scene: &pass.scene,
        device: pass.device.as_ref(),
        ip_net: item
            .get(IP_NET)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
    };
    // Only a replay may redeem a pass no condition refuses, and this one
    // was not redeemed under its key.
    Ok(held.refusal(claim).unwrap_or(Redemption::Unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(kind: PassKind, evil_level: Option<i64>, degraded: bool) -> PassGrant {
        PassGrant {
            kind,
            secret_hash: "ab".repeat(32),
            scene: Scene::parse("signup").unwrap(),
            device: Some(DeviceId::parse("d").unwrap()),
            ip: Some("2001:db8::1".into()),
            ip_net: Some("2001:db8::/64".into()),
            evil_level,
            degraded,
            mobile: None,
            created_ms: 1,
            expires_ms: 2,
        }
    }

    /// A grant writes only what IAM lets its kind's verify function write.
    #[test]
    fn grants_write_their_kinds_attributes_only() {
        for (pass, allowed) in [
            (
                grant(PassKind::Captcha, None, false),
                CAPTCHA_PASS_ATTRIBUTES,
            ),
            (
                grant(PassKind::Ticket, Some(0), true),
                TICKET_PASS_ATTRIBUTES,
            ),
            (
                PassGrant {
                    mobile: Some(Mobile::parse("+8613800138000").unwrap()),
                    ..grant(PassKind::Sms, None, false)
                },
                SMS_PASS_ATTRIBUTES,
            ),
        ] {
            let item = pass_item(&pass, "n");
            let mut written: Vec<&str> = item.keys().map(String::as_str).collect();
            let mut allowed = allowed.to_vec();
            written.sort_unstable();
            allowed.sort_unstable();
            assert_eq!(written, allowed, "{:?}", pass.kind);
            assert!(
                item[KEY_ATTRIBUTE]
                    .as_s()
                    .unwrap()
                    .starts_with(&format!("pass#{}#", pass.kind.as_str()))
            );
        }
        // Nothing that makes a row a pass, nor the number an sms pass
        // proves, is the doors' to write.
        for attribute in [KIND, CREATED, "mobile"] {
            assert!(!REDEEM_ATTRIBUTES.contains(&attribute));
        }
    }
}
