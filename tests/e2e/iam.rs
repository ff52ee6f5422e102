//! Who may forge what another function vouches for, decided by IAM as
//! CloudFormation would deploy the roles: a small evaluator of identity
//! policy statements (Allow and Deny, Action, Resource, Condition) runs
//! every function's DynamoDB statements of the transformed template
//! against forged requests, and prints the table of verdicts, which must
//! be [`TODAY`]: no function may forge what another vouches for (issue 25
//! point 2), each legitimate write is still allowed.
//!
//! How IAM decides, from AWS's documentation:
//! - Condition operators AND together, and so do the keys of one operator;
//!   the values of one key OR together (NOR for a negated operator). A key
//!   missing from the request makes a condition false, a negated one true,
//!   except `…IfExists` (true) and `Null`. `ForAllValues` holds when the
//!   request has no value for the key at all, hence the template's
//!   `Null: {dynamodb:LeadingKeys: false}`. (IAM User Guide, "Condition
//!   operators" and "Conditions with multiple context keys or values".)
//! - `dynamodb:LeadingKeys` is the partition key of every item a request
//!   names; `dynamodb:Attributes` the attribute names in a request or
//!   returned by it: those it writes (`Item`, the update expression), and
//!   those a condition expression evaluates ("These attributes can be read,
//!   written, or evaluated in a conditional write"; "it cannot perform
//!   conditional write operations based on any other attributes"), key
//!   attributes included ("you must specify the names of all of the
//!   primary key and index key attributes"). `dynamodb:ReturnValues` is a
//!   write's `ReturnValues`, always present (`NONE` unless given): a policy
//!   limiting attributes adds `StringEquals` on it to refuse `ALL_OLD` and
//!   `ALL_NEW`, which would return attributes outside the list. PutItem
//!   (and DeleteItem) replace a whole item, and UpdateItem creates the item
//!   it names when missing. No key covers `ReturnValuesOnConditionCheckFailure`
//!   or `Select` on a write. (Amazon DynamoDB Developer Guide, "Using IAM
//!   policy conditions for fine-grained access control",
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html>;
//!   Service Authorization Reference, "Actions, resources, and condition
//!   keys for Amazon DynamoDB".)

use std::collections::{BTreeMap, BTreeSet};

use gatehouse::api::Function;
use gatehouse_e2e::cfn::{Stack, strings};
use serde_json::{Value, json};

/// The table, as the evaluated template names it.
const TABLE: &str = "GetAtt:Table.Arn";

/// One request as IAM sees it: its action, the table, and its context keys.
#[derive(Debug, Clone)]
struct Request {
    action: &'static str,
    /// The partition key of the item it names (`None`: a request that
    /// names no item, which IAM sees without the key).
    key: Option<String>,
    /// Every top-level attribute it writes or its condition evaluates, the
    /// key attribute included.
    attributes: Vec<&'static str>,
    /// `ReturnValues` (`NONE` unless given).
    return_values: &'static str,
}

impl Request {
    fn write(action: &'static str, key: &str, attributes: &[&'static str]) -> Request {
        Request {
            action,
            key: Some(key.to_owned()),
            attributes: attributes.to_vec(),
            return_values: "NONE",
        }
    }

    /// The request context's values of `key` (`None`: not in the context).
    fn context(&self, key: &str) -> Option<Vec<String>> {
        match key {
            "dynamodb:LeadingKeys" => self.key.clone().map(|k| vec![k]),
            "dynamodb:Attributes" => {
                Some(self.attributes.iter().map(|a| (*a).to_owned()).collect())
            }
            "dynamodb:ReturnValues" => Some(vec![self.return_values.to_owned()]),
            _ => None,
        }
    }
}

/// IAM's `StringLike`: `*` any run of characters, `?` any one.
fn like(pattern: &str, value: &str) -> bool {
    match pattern.chars().next() {
        None => value.is_empty(),
        Some('*') => (0..=value.len())
            .filter(|&i| value.is_char_boundary(i))
            .any(|i| like(&pattern[1..], &value[i..])),
        Some(p) => value.chars().next().is_some_and(|v| {
            (p == '?' || p == v) && like(&pattern[p.len_utf8()..], &value[v.len_utf8()..])
        }),
    }
}

/// Whether one condition operator holds for `request`.
fn operator_holds(operator: &str, keys: &Value, request: &Request) -> bool {
    let (set, base) = match operator.split_once(':') {
        Some((set @ ("ForAllValues" | "ForAnyValue"), base)) => (Some(set), base),
        _ => (None, operator),
    };
    let (base, if_exists) = match base.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (base, false),
    };
    keys.as_object().unwrap().iter().all(|(key, wanted)| {
        let values = request.context(key);
        if base == "Null" {
            let absent = values.is_none_or(|v| v.is_empty());
            return wanted.as_str() == Some(if absent { "true" } else { "false" });
        }
        let wanted = strings(wanted);
        let (matches, negated): (fn(&str, &str) -> bool, bool) = match base {
            "StringEquals" => (|p, v| p == v, false),
            "StringNotEquals" => (|p, v| p == v, true),
            "StringLike" => (like, false),
            "StringNotLike" => (like, true),
            other => panic!("the evaluator knows no {other}: teach it"),
        };
        // One value: it matches one of the wanted (none, when negated).
        let one = |value: &str| wanted.iter().any(|p| matches(p, value)) != negated;
        match (set, values) {
            (Some("ForAllValues"), values) => values.unwrap_or_default().iter().all(|v| one(v)),
            (Some(_), values) => values.unwrap_or_default().iter().any(|v| one(v)),
            (None, None) => if_exists || negated,
            (None, Some(values)) => values.iter().all(|v| one(v)),
        }
    })
}

/// Whether `statement` applies to `request` (action, resource, condition).
fn applies(statement: &Value, request: &Request) -> bool {
    strings(&statement["Action"])
        .iter()
        .any(|a| like(a, request.action))
        && strings(&statement["Resource"])
            .iter()
            .any(|r| like(r, TABLE))
        && statement["Condition"]
            .as_object()
            .is_none_or(|c| c.iter().all(|(op, keys)| operator_holds(op, keys, request)))
}

/// IAM's verdict: allowed when some Allow applies and no Deny does.
fn allowed(statements: &[Value], request: &Request) -> bool {
    let applying = |effect: &str| {
        statements
            .iter()
            .any(|s| s["Effect"] == effect && applies(s, request))
    };
    applying("Allow") && !applying("Deny")
}

/// A request that would make a row vouch for something, and the functions
/// whose job that is.
struct Forgery {
    what: &'static str,
    request: Request,
    vouched_by: &'static [Function],
}

/// The forgeries, in the shape of the rows (`store::dynamo::pass`,
/// `session.rs`, `risk_rank.rs`): a pass is a `pass#<kind>#…` row with its
/// `kind` and `pass_created` (what a door's own writes can never make),
/// redeemable while `pass_expired` is ahead and `pass_redeemed` absent; a
/// session is a row with an `openid` and an `expired_date` ahead; a cached
/// WeChat risk rank is a `wxrisk#` row with a `rank` and an
/// `expired_date` ahead (a lowered one would let a refused user in).
fn forgeries() -> Vec<Forgery> {
    use Function::*;
    const CAPTCHA_PASS_ROW: &str = "pass#captcha#5f1e…";
    const TICKET_PASS_ROW: &str = "pass#ticket#9b2d…";
    const SMS_PASS_ROW: &str = "pass#sms#3c7a…";
    const SESSION: &str = "session#9a0c…";
    const RISK_RANK: &str = "wxrisk#1#o6_bmjr…";
    const PASS: &[&str] = &[
        "pk",
        "kind",
        "scene",
        "device_uuid",
        "pass_created",
        "pass_expired",
    ];
    const SMS_PASS: &[&str] = &[
        "pk",
        "kind",
        "scene",
        "mobile",
        "pass_created",
        "pass_expired",
    ];
    const SESSION_ROW: &[&str] = &["pk", "token_hash", "openid", "created_date", "expired_date"];
    // A door decides admission itself: making a pass it holds redeemable
    // again, or longer, gives it nothing it lacks. IAM cannot stop it (the
    // redemption writes `pass_redeemed` and conditions on `pass_expired`,
    // and a SET is a REMOVE to IAM).
    // send-sms is the door of its scene's guard.
    const DOORS: &[Function] = &[Authorizer, Guard, SendSms];
    vec![
        Forgery {
            what: "a redeemable captcha pass, by PutItem",
            request: Request::write("dynamodb:PutItem", CAPTCHA_PASS_ROW, PASS),
            vouched_by: &[VerifyCaptcha],
        },
        Forgery {
            // UpdateItem creates the row it names when there is none.
            what: "a redeemable captcha pass, by UpdateItem",
            request: Request::write("dynamodb:UpdateItem", CAPTCHA_PASS_ROW, PASS),
            vouched_by: &[VerifyCaptcha],
        },
        Forgery {
            what: "a redeemable ticket pass, by PutItem",
            request: Request::write("dynamodb:PutItem", TICKET_PASS_ROW, PASS),
            vouched_by: &[VerifyTicket],
        },
        Forgery {
            what: "a redeemable ticket pass, by UpdateItem",
            request: Request::write("dynamodb:UpdateItem", TICKET_PASS_ROW, PASS),
            vouched_by: &[VerifyTicket],
        },
        Forgery {
            what: "a redeemable sms pass, by PutItem",
            request: Request::write("dynamodb:PutItem", SMS_PASS_ROW, SMS_PASS),
            vouched_by: &[VerifySms],
        },
        Forgery {
            what: "a redeemable sms pass, by UpdateItem",
            request: Request::write("dynamodb:UpdateItem", SMS_PASS_ROW, SMS_PASS),
            vouched_by: &[VerifySms],
        },
        Forgery {
            // The number is what an sms pass proves: a door that redeems
            // one must not rewrite it.
            what: "an sms pass made to prove another number",
            request: Request::write("dynamodb:UpdateItem", SMS_PASS_ROW, &["pk", "mobile"]),
            vouched_by: &[VerifySms],
        },
        Forgery {
            what: "a spent pass redeemable again",
            request: Request::write(
                "dynamodb:UpdateItem",
                TICKET_PASS_ROW,
                &["pk", "pass_redeemed"],
            ),
            vouched_by: DOORS,
        },
        Forgery {
            what: "a pass's life extended",
            request: Request::write(
                "dynamodb:UpdateItem",
                CAPTCHA_PASS_ROW,
                &["pk", "pass_expired"],
            ),
            vouched_by: DOORS,
        },
        Forgery {
            what: "a whole session, by PutItem",
            request: Request::write("dynamodb:PutItem", SESSION, SESSION_ROW),
            vouched_by: &[WxLogin, Session],
        },
        Forgery {
            // UpdateItem creates the row it names when there is none.
            what: "a whole session, by UpdateItem",
            request: Request::write("dynamodb:UpdateItem", SESSION, SESSION_ROW),
            vouched_by: &[WxLogin, Session],
        },
        Forgery {
            what: "a session's life extended, by UpdateItem",
            request: Request::write("dynamodb:UpdateItem", SESSION, &["pk", "expired_date"]),
            vouched_by: &[WxLogin, Session],
        },
        Forgery {
            // Not a forgery: wx-phone's own write, still allowed.
            what: "a phone number kept with a session",
            request: Request::write(
                "dynamodb:UpdateItem",
                SESSION,
                &["pk", "phone_number", "pure_phone_number", "country_code"],
            ),
            vouched_by: &[WxPhone],
        },
        Forgery {
            // The doors ask WeChat for a rank missing from the cache and
            // keep its answer.
            what: "a user's WeChat risk rank, by PutItem",
            request: Request::write(
                "dynamodb:PutItem",
                RISK_RANK,
                &["pk", "rank", "checked_date", "expired_date", "ttl"],
            ),
            vouched_by: DOORS,
        },
    ]
}

/// The functions IAM allows each forgery (those that vouch for it
/// included). Before the pass-storage redesign (issue 25 point 2) it was
/// create- and refresh-captcha forging captcha passes (PutItem on the
/// captcha row that held them), the doors forging any pass (UpdateItem on
/// captcha and ticket rows), verify-captcha and verify-ticket un-spending
/// passes, and wx-phone making or extending a session (`docs/deploy-and-operations.md`,
/// "Who may write a pass"). A cached risk rank is the doors' alone.
const TODAY: [(&str, &[&str]); 14] = [
    ("a redeemable captcha pass, by PutItem", &["verify-captcha"]),
    ("a redeemable captcha pass, by UpdateItem", &[]),
    ("a redeemable ticket pass, by PutItem", &["verify-ticket"]),
    ("a redeemable ticket pass, by UpdateItem", &[]),
    ("a redeemable sms pass, by PutItem", &["verify-sms"]),
    ("a redeemable sms pass, by UpdateItem", &[]),
    ("an sms pass made to prove another number", &[]),
    (
        "a spent pass redeemable again",
        &["authorizer", "guard", "send-sms"],
    ),
    (
        "a pass's life extended",
        &["authorizer", "guard", "send-sms"],
    ),
    ("a whole session, by PutItem", &["wx-login", "session"]),
    ("a whole session, by UpdateItem", &[]),
    ("a session's life extended, by UpdateItem", &[]),
    ("a phone number kept with a session", &["wx-phone"]),
    (
        "a user's WeChat risk rank, by PutItem",
        &["authorizer", "guard"],
    ),
];

#[test]
fn no_function_may_forge_what_another_vouches_for() {
    let stack = Stack::with(&[]);
    let roles: Vec<(String, Vec<Value>)> = stack
        .functions()
        .into_iter()
        .map(|(name, id, _)| (name, stack.statements_of(&id)))
        .collect();
    // Ordered as Function::ALL, for the table.
    let roles: Vec<(Function, Vec<Value>)> = Function::ALL
        .iter()
        .map(|f| {
            let (_, statements) = roles.iter().find(|(n, _)| n == f.name()).unwrap();
            (*f, statements.clone())
        })
        .collect();

    // The evaluator lets each function do what its grants name, with every
    // attribute they name (so a "denied" below is IAM's, not the
    // evaluator's, and no legitimate write is refused).
    for (function, statements) in &roles {
        for grant in function.table_grants() {
            let attributes = match grant.attributes {
                [] => &["pk"][..],
                listed => listed,
            };
            for action in grant.actions {
                for prefix in grant.key_prefixes {
                    let own = Request::write(action, &format!("{prefix}x"), attributes);
                    assert!(allowed(statements, &own), "{}: {own:?}", function.name());
                }
            }
        }
    }

    let mut table = String::new();
    let mut verdicts: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut forged = Vec::new();
    for forgery in forgeries() {
        table.push_str(&format!("{:<46}", forgery.what));
        let entry = verdicts.entry(forgery.what).or_default();
        for (function, statements) in &roles {
            let verdict = if !allowed(statements, &forgery.request) {
                "·"
            } else if forgery.vouched_by.contains(function) {
                entry.insert(function.name());
                "✓V"
            } else {
                entry.insert(function.name());
                forged.push(format!("{}: {}", function.name(), forgery.what));
                "✓F"
            };
            table.push_str(&format!(" {:>3}", verdict));
        }
        table.push('\n');
    }
    let legend: Vec<String> = roles
        .iter()
        .enumerate()
        .map(|(i, (f, _))| format!("{} {}", i + 1, f.name()))
        .collect();
    let columns: String = (1..=roles.len()).map(|i| format!(" {i:>3}")).collect();
    println!(
        "✓ allowed (V: the function vouches for it, or a door owns it: its redemptions; F: a forgery), · refused\n{:<46}{columns}\n{table}({})\n\nforgeries IAM allows:\n  {}",
        "",
        legend.join(", "),
        forged.join("\n  ")
    );
    let expected: BTreeMap<&str, BTreeSet<&str>> = TODAY
        .iter()
        .map(|(what, who)| (*what, who.iter().copied().collect()))
        .collect();
    assert_eq!(
        verdicts, expected,
        "the verdicts differ from TODAY:\n{table}"
    );
    assert!(forged.is_empty(), "IAM allows forgeries: {forged:?}");
}

/// Every function is refused every write to the rows of the others: a key
/// prefix that none of its grants names, with any action.
#[test]
fn no_function_may_write_a_row_prefix_it_is_not_granted() {
    use gatehouse::api::rows::*;
    let prefixes = [
        CAPTCHA,
        TICKET,
        PASS_CAPTCHA,
        PASS_TICKET,
        PASS_SMS,
        SESSION,
        RATE_CREATE,
        RATE_REFRESH,
        RATE_VERIFY,
        RATE_WXLOGIN,
        RATE_TICKET,
        RATE_WXPHONE,
        SESSION_INDEX,
        ACCESS_TOKEN,
        RATE_GUARD,
        SMS,
        RATE_SMS_SEND,
        RATE_SMS_VERIFY,
        RATE_SMS_DAY,
        RATE_SMS_BUDGET,
        WX_RISK,
    ];
    let stack = Stack::with(&[]);
    for (name, id, _) in stack.functions() {
        let function = Function::from_name(&name).unwrap();
        let statements = stack.statements_of(&id);
        for prefix in prefixes {
            for action in [
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
            ] {
                let granted = function
                    .table_grants()
                    .iter()
                    .any(|g| g.actions.contains(&action) && g.key_prefixes.contains(&prefix));
                let request = Request::write(action, &format!("{prefix}x"), &["pk"]);
                assert_eq!(
                    allowed(&statements, &request),
                    granted,
                    "{name}: {action} on {prefix}"
                );
            }
        }
        // A request that names no key passes ForAllValues alone: the Null
        // condition refuses it.
        let keyless = Request {
            key: None,
            ..Request::write("dynamodb:UpdateItem", "", &[])
        };
        assert!(!allowed(&statements, &keyless), "{name}");
    }
}

/// The evaluator decides the DynamoDB Developer Guide's own examples as the
/// guide says IAM does, so that the policies of the redesign
/// (`dynamodb:Attributes`, `dynamodb:ReturnValues`) are judged right here.
#[test]
fn the_evaluator_decides_the_developer_guides_examples_as_iam_does() {
    // Example 3, "Grant permissions to prevent updates on certain
    // attributes": UpdateItem, no attribute like the two, ReturnValues one
    // of NONE, UPDATED_OLD, UPDATED_NEW.
    let prevent = [json!({
        "Effect": "Allow",
        "Action": ["dynamodb:UpdateItem"],
        "Resource": TABLE,
        "Condition": {
            "ForAllValues:StringNotLike": {
                "dynamodb:Attributes": ["FreeGamesAvailable", "BossLevelUnlocked"]
            },
            "StringEquals": {"dynamodb:ReturnValues": ["NONE", "UPDATED_OLD", "UPDATED_NEW"]}
        }
    })];
    let score = Request::write("dynamodb:UpdateItem", "u1", &["UserId", "TopScore"]);
    assert!(allowed(&prevent, &score));
    // A forbidden attribute written, or only evaluated by the condition:
    // both are in dynamodb:Attributes.
    let unlock = Request::write(
        "dynamodb:UpdateItem",
        "u1",
        &["UserId", "BossLevelUnlocked"],
    );
    assert!(!allowed(&prevent, &unlock));
    // ALL_NEW would return the forbidden attributes: refused.
    let all_new = Request {
        return_values: "ALL_NEW",
        ..score.clone()
    };
    assert!(!allowed(&prevent, &all_new));
    let updated_new = Request {
        return_values: "UPDATED_NEW",
        ..score.clone()
    };
    assert!(allowed(&prevent, &updated_new));
    // A PutItem is another action: not allowed by this statement at all.
    assert!(!allowed(
        &prevent,
        &Request::write("dynamodb:PutItem", "u1", &["UserId", "TopScore"])
    ));

    // Example 2, "limit access to specific attributes": ForAllValues
    // StringEquals on the attributes, the key attribute listed.
    let only = [json!({
        "Effect": "Allow",
        "Action": "dynamodb:UpdateItem",
        "Resource": [TABLE],
        "Condition": {
            "ForAllValues:StringEquals": {"dynamodb:Attributes": ["UserId", "TopScore"]},
            "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE", "UPDATED_OLD", "UPDATED_NEW"]}
        }
    })];
    assert!(allowed(&only, &score));
    assert!(!allowed(
        &only,
        &Request::write("dynamodb:UpdateItem", "u1", &["UserId", "TopScore", "Wins"])
    ));

    // A Deny wins over an Allow; wildcards match as StringLike does.
    let mut with_deny = only.to_vec();
    with_deny.push(json!({
        "Effect": "Deny", "Action": "dynamodb:*", "Resource": "*",
        "Condition": {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["u?"]}}
    }));
    assert!(!allowed(&with_deny, &score));
    assert!(like("rate#guard|*", "rate#guard|login|1.2.3.4"));
    assert!(!like("rate#guard|*", "rate#guarded"));
    assert!(like("t?", "t1") && !like("t?", "t12") && like("ok_*", "ok_"));
}
