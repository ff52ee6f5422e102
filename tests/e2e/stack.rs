//! What the deployed stack holds besides its routes and grants (those are
//! `template.rs`): who hears of a failure (the alarms, their topic, the
//! API's access log), and the smaller guards of issue 25: secrets named by
//! their full ARN and a KMS key used only through Secrets Manager, reserved
//! concurrency that cannot fail a deploy or cap the authorizer, throttles
//! of their own on the routes that cost money upstream, the dashboard's
//! URL in China. Each test reads the transformed template evaluated for
//! given parameters (`gatehouse_e2e::cfn::Stack`), as CloudFormation would
//! deploy it.

use std::collections::{BTreeMap, BTreeSet};

use gatehouse::api::{Access, Function, ROUTES};
use gatehouse::metrics::{self, Outcome};
use gatehouse_e2e::cfn::{Stack, strings, transformed_template};
use serde_json::{Value, json};

const ALARM: &str = "AWS::CloudWatch::Alarm";
const KEY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const WX_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gatehouse/wx-AbC123";
const TENCENT_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:gatehouse/tencent-x9Y8z7";

/// The values CloudFormation accepts for `parameter`: its
/// `AllowedPattern`, which must match the whole value.
fn allowed(parameter: &str) -> regex::Regex {
    let pattern = transformed_template()["Parameters"][parameter]["AllowedPattern"]
        .as_str()
        .unwrap_or_else(|| panic!("{parameter} has an AllowedPattern"));
    regex::Regex::new(&format!("^(?:{pattern})$")).unwrap()
}

/// CloudFormation accepts each of `good` for `parameter`, and none of `bad`.
fn accepts_only(parameter: &str, good: &[&str], bad: &[&str]) {
    let allowed = allowed(parameter);
    for value in good {
        assert!(allowed.is_match(value), "{parameter} refuses {value:?}");
    }
    for value in bad {
        assert!(!allowed.is_match(value), "{parameter} accepts {value:?}");
    }
}

/// One metric an alarm reads.
#[derive(Debug)]
struct Read {
    namespace: String,
    metric: String,
    dimensions: BTreeMap<String, String>,
    period: u64,
}

/// Every metric `alarm` reads: its own, or each of its metric math's.
fn reads(alarm: &Value) -> Vec<Read> {
    let props = &alarm["Properties"];
    let dimensions = |dims: &Value| {
        dims.as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["Name"].as_str().unwrap().to_owned(),
                    d["Value"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    if let Some(queries) = props["Metrics"].as_array() {
        return queries
            .iter()
            .filter_map(|q| {
                let stat = q.get("MetricStat")?;
                Some(Read {
                    namespace: stat["Metric"]["Namespace"].as_str().unwrap().to_owned(),
                    metric: stat["Metric"]["MetricName"].as_str().unwrap().to_owned(),
                    dimensions: dimensions(&stat["Metric"]["Dimensions"]),
                    period: stat["Period"].as_u64().unwrap(),
                })
            })
            .collect();
    }
    vec![Read {
        namespace: props["Namespace"].as_str().unwrap().to_owned(),
        metric: props["MetricName"].as_str().unwrap().to_owned(),
        dimensions: dimensions(&props["Dimensions"]),
        period: props["Period"].as_u64().unwrap(),
    }]
}

#[test]
fn the_api_logs_who_asked_what_and_why_it_failed_into_a_log_group_with_a_retention() {
    let stack = Stack::with(&[]);
    let stages = stack.resources_of("AWS::ApiGatewayV2::Stage");
    let [(_, stage)] = stages.as_slice() else {
        panic!("one stage: {stages:?}")
    };
    let settings = &stage["Properties"]["AccessLogSettings"];
    assert_eq!(settings["DestinationArn"], "GetAtt:ApiAccessLogGroup.Arn");
    let line: serde_json::Map<String, Value> =
        serde_json::from_str(settings["Format"].as_str().unwrap()).expect("a JSON line");
    let variables: BTreeSet<&str> = line.values().map(|v| v.as_str().unwrap()).collect();
    for wanted in [
        "$context.requestId",
        "$context.identity.sourceIp",
        "$context.routeKey",
        "$context.status",
        "$context.authorizer.error",
        "$context.integrationErrorMessage",
    ] {
        assert!(variables.contains(wanted), "{wanted} in {line:?}");
    }
    let group = stack.resource("ApiAccessLogGroup").unwrap();
    assert_eq!(group["Type"], "AWS::Logs::LogGroup");
    assert_eq!(
        group["Properties"]["RetentionInDays"],
        stack.parameter("LogRetentionDays")
    );
}

#[test]
fn alarms_notify_a_topic_of_the_stacks_own_or_the_one_given() {
    let notified = |stack: &Stack, topic: &str| {
        let alarms = stack.resources_of(ALARM);
        assert!(alarms.len() >= 13, "{} alarms", alarms.len());
        for (id, alarm) in alarms {
            for actions in ["AlarmActions", "OKActions"] {
                assert_eq!(alarm["Properties"][actions], json!([topic]), "{id}");
            }
        }
        assert_eq!(stack.output("AlarmTopic"), topic);
    };
    // By default, a topic of its own and nobody subscribed.
    let own = Stack::with(&[]);
    assert_eq!(
        own.resource("AlarmTopic").unwrap()["Type"],
        "AWS::SNS::Topic"
    );
    assert!(own.resource("AlarmEmailSubscription").is_none());
    notified(&own, "AlarmTopic");
    // With an address, subscribed to that topic.
    let mailed = Stack::with(&[("AlarmEmail", "ops@example.com")]);
    assert_eq!(
        mailed.resource("AlarmEmailSubscription").unwrap()["Properties"],
        json!({"TopicArn": "AlarmTopic", "Protocol": "email", "Endpoint": "ops@example.com"})
    );
    assert!(mailed.rule_holds("AlarmEmailNeedsOwnTopic"));
    // A topic given: none of its own, and an address with it refused
    // before the deploy (it would subscribe nothing).
    let topic = "arn:aws:sns:us-east-1:123456789012:on-call";
    let given = Stack::with(&[("AlarmTopicArn", topic)]);
    assert!(given.resource("AlarmTopic").is_none());
    assert!(given.resource("AlarmEmailSubscription").is_none());
    notified(&given, topic);
    assert!(given.rule_holds("AlarmEmailNeedsOwnTopic"));
    let both = Stack::with(&[("AlarmTopicArn", topic), ("AlarmEmail", "ops@example.com")]);
    assert!(!both.rule_holds("AlarmEmailNeedsOwnTopic"));

    accepts_only(
        "AlarmEmail",
        &["", "ops@example.com"],
        &["ops", "ops@example", "two words@example.com"],
    );
    accepts_only(
        "AlarmTopicArn",
        &["", topic],
        &["on-call", "arn:aws:sqs:us-east-1:123456789012:on-call", " "],
    );
}

#[test]
fn lambda_errors_and_throttles_of_every_function_raise_alarms_the_authorizers_first() {
    let stack = Stack::with(&[]);
    let functions: BTreeSet<String> = stack.functions().into_iter().map(|(_, id, _)| id).collect();
    let alarms = stack.resources_of(ALARM);
    for metric in ["Errors", "Throttles"] {
        // Function → the alarms reading its metric.
        let mut watched: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for (id, alarm) in &alarms {
            for read in reads(alarm) {
                if read.namespace == "AWS/Lambda" && read.metric == metric {
                    let keys: Vec<&String> = read.dimensions.keys().collect();
                    assert_eq!(keys, ["FunctionName"], "{id}");
                    watched
                        .entry(read.dimensions["FunctionName"].clone())
                        .or_default()
                        .push(id);
                }
            }
        }
        let covered: BTreeSet<String> = watched.keys().cloned().collect();
        assert_eq!(covered, functions, "{metric}: every function, and no other");
        for (function, alarms) in &watched {
            assert_eq!(alarms.len(), 1, "{function} {metric}: {alarms:?}");
        }
        // The authorizer's alarm is its own: per minute, at the first one.
        let own = stack.resource(watched["AuthorizerFunction"][0]).unwrap();
        let read = reads(&own);
        assert_eq!(read.len(), 1, "{metric}: the authorizer's alone");
        assert_eq!(read[0].period, 60);
        assert_eq!(own["Properties"]["Threshold"], 1);
        assert_eq!(
            own["Properties"]["ComparisonOperator"],
            "GreaterThanOrEqualToThreshold"
        );
    }
}

#[test]
fn dynamodb_throttles_and_500s_raise_alarms_on_every_operation_the_store_sends() {
    // Every action a grant names, and the transaction of a session refresh
    // (authorised item by item as PutItem and DeleteItem, so no grant names
    // it). DynamoDB reports both metrics per operation.
    let mut operations: BTreeSet<String> = Function::ALL
        .iter()
        .flat_map(|f| f.table_grants())
        .flat_map(|g| g.actions)
        .map(|a| a.trim_start_matches("dynamodb:").to_owned())
        .collect();
    operations.insert("TransactWriteItems".to_owned());
    let stack = Stack::with(&[]);
    for metric in ["ThrottledRequests", "SystemErrors"] {
        let mut watched = BTreeSet::new();
        for (id, alarm) in stack.resources_of(ALARM) {
            for read in reads(&alarm) {
                if read.namespace == "AWS/DynamoDB" && read.metric == metric {
                    assert_eq!(read.dimensions["TableName"], "Table", "{id}");
                    assert!(
                        watched.insert(read.dimensions["Operation"].clone()),
                        "{id}: twice"
                    );
                }
            }
        }
        assert_eq!(watched, operations, "{metric}");
    }
}

#[test]
fn a_spike_of_authorizer_denials_raises_an_alarm_on_every_route_it_reports() {
    let stack = Stack::with(&[]);
    let namespace = format!("gatehouse/{}", stack.parameter("AWS::StackName"));
    let alarm = stack.resource("AuthorizerDeniedSpikeAlarm").unwrap();
    let mut routes = BTreeSet::new();
    for read in reads(&alarm) {
        assert_eq!(
            (read.namespace.as_str(), read.metric.as_str()),
            (namespace.as_str(), metrics::REQUESTS)
        );
        assert_eq!(
            read.dimensions[metrics::FUNCTION],
            Function::Authorizer.name()
        );
        assert_eq!(read.dimensions[metrics::OUTCOME], Outcome::Denied.as_str());
        routes.insert(read.dimensions[metrics::ROUTE].clone());
    }
    // The authorizer reports the table's routes behind it, and `other` for
    // the business routes GUARD_ROUTES adds (gatehouse::metrics).
    let mut reported: BTreeSet<String> = ROUTES
        .iter()
        .filter(|r| matches!(r.access, Access::Session | Access::Guard))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    reported.insert("other".to_owned());
    assert_eq!(routes, reported);
    assert_eq!(
        alarm["Properties"]["Threshold"],
        stack.parameter("AuthorizerDeniedAlarmThreshold")
    );
}

#[test]
fn every_alarm_reads_what_is_written_and_shows_on_the_dashboard() {
    let stack = Stack::with(&[]);
    let namespace = format!("gatehouse/{}", stack.parameter("AWS::StackName"));
    let recorded: BTreeSet<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    let dashboard = stack.resource("Dashboard").unwrap();
    let body: Value =
        serde_json::from_str(dashboard["Properties"]["DashboardBody"].as_str().unwrap()).unwrap();
    let on_dashboard: BTreeSet<String> = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| strings(&w["properties"]["alarms"]))
        .collect();
    let mut outcomes = BTreeSet::new();
    for (id, alarm) in stack.resources_of(ALARM) {
        assert!(
            on_dashboard.contains(&format!("GetAtt:{id}.Arn")),
            "{id} is on the dashboard"
        );
        for read in reads(&alarm) {
            match read.namespace.as_str() {
                "AWS/ApiGateway" => {
                    assert_eq!(
                        read.dimensions,
                        BTreeMap::from([("ApiId".into(), "Api".into())])
                    )
                }
                "AWS/Lambda" | "AWS/DynamoDB" => {}
                ns if ns == namespace => match read.metric.as_str() {
                    metrics::REQUESTS => {
                        for key in read.dimensions.keys() {
                            assert!(
                                [metrics::FUNCTION, metrics::ROUTE, metrics::OUTCOME]
                                    .contains(&key.as_str()),
                                "{id}: {key}"
                            );
                        }
                        let outcome = read.dimensions[metrics::OUTCOME].as_str();
                        assert!(
                            recorded.contains(outcome),
                            "{id}: no function records {outcome}"
                        );
                        outcomes.insert(outcome.to_owned());
                    }
                    metrics::TENCENT_REJECTED => assert_eq!(
                        read.dimensions,
                        BTreeMap::from([(metrics::FUNCTION.into(), "verify-ticket".into())])
                    ),
                    metrics::SMS_BUDGET_EXHAUSTED => assert_eq!(
                        read.dimensions,
                        BTreeMap::from([(metrics::FUNCTION.into(), "send-sms".into())])
                    ),
                    other => panic!("{id}: no function writes {other}"),
                },
                other => panic!("{id}: a metric of {other}"),
            }
        }
    }
    let expected = [
        "UpstreamError",
        "StoreError",
        "RateLimited",
        "Denied",
        "DeadlineExceeded",
    ];
    assert_eq!(outcomes, expected.map(str::to_owned).into());
}

#[test]
fn secrets_are_named_by_their_full_arn() {
    for parameter in ["WxSecretArn", "TencentSecretArn"] {
        // Without the six characters Secrets Manager appends, the role's
        // statement would name no secret.
        accepts_only(
            parameter,
            &[
                "",
                WX_ARN,
                "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:wx-secret-a1B2c3",
            ],
            &[
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:gatehouse/wx",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:gatehouse/wx-AbC12",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:*",
                "gatehouse/wx-AbC123",
            ],
        );
    }
}

/// Each function's secret statements: for each secret it reads (its
/// `GetSecretValue` resource), the kms:Decrypt statements naming that
/// secret, for the functions that read a secret. Every kms:Decrypt
/// statement names a secret the function reads.
fn secret_grants(stack: &Stack) -> BTreeMap<String, Vec<(Value, Vec<Value>)>> {
    let mut grants = BTreeMap::new();
    for (name, id, _) in stack.functions() {
        let statements = stack.statements_of(&id);
        let kms: Vec<Value> = statements
            .iter()
            .filter(|s| strings(&s["Action"]).iter().any(|a| a.starts_with("kms:")))
            .cloned()
            .collect();
        let reads: Vec<(Value, Vec<Value>)> = statements
            .iter()
            .filter(|s| strings(&s["Action"]) == ["secretsmanager:GetSecretValue"])
            .map(|read| {
                let secret = read["Resource"].clone();
                let decrypts = kms
                    .iter()
                    .filter(|k| {
                        k["Condition"]["StringEquals"]["kms:EncryptionContext:SecretARN"] == secret
                    })
                    .cloned()
                    .collect();
                (secret, decrypts)
            })
            .collect();
        let matched: usize = reads.iter().map(|(_, k)| k.len()).sum();
        assert_eq!(
            matched,
            kms.len(),
            "{name}: a kms:Decrypt of no secret it reads"
        );
        let secrets: BTreeSet<String> = reads.iter().map(|(s, _)| s.to_string()).collect();
        assert_eq!(
            secrets.len(),
            reads.len(),
            "{name}: one statement per secret"
        );
        if !reads.is_empty() {
            grants.insert(name, reads);
        }
    }
    grants
}

#[test]
fn a_key_of_ones_own_decrypts_only_through_secrets_manager_and_only_ones_own_secret() {
    // No key: no KMS grant anywhere, the secrets under aws/secretsmanager.
    let plain = Stack::with(&[]);
    for (name, reads) in secret_grants(&plain) {
        for (_, kms) in reads {
            assert!(kms.is_empty(), "{name}");
        }
    }
    for secret in ["WxSecretValue", "TencentSecretValue"] {
        assert!(plain.resource(secret).unwrap()["Properties"]["KmsKeyId"].is_null());
    }
    for (region, given) in [
        ("us-east-1", vec![]),
        (
            "us-east-1",
            vec![("WxSecretArn", WX_ARN), ("TencentSecretArn", TENCENT_ARN)],
        ),
        ("cn-north-1", vec![]),
    ] {
        let mut parameters = vec![("SecretsKmsKeyArn", KEY_ARN)];
        parameters.extend(given);
        let stack = Stack::in_region(region, &parameters);
        let via = format!(
            "secretsmanager.{region}.{}",
            stack.parameter("AWS::URLSuffix")
        );
        let grants = secret_grants(&stack);
        assert_eq!(
            grants.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "authorizer",
                "guard",
                "send-sms",
                "verify-ticket",
                "wx-login",
                "wx-phone"
            ]
        );
        for (name, reads) in grants {
            for (secret, kms) in reads {
                assert_eq!(
                    kms,
                    [json!({
                        "Effect": "Allow",
                        "Action": ["kms:Decrypt"],
                        "Resource": KEY_ARN,
                        "Condition": {"StringEquals": {
                            "kms:ViaService": via,
                            "kms:EncryptionContext:SecretARN": secret,
                        }},
                    })],
                    "{name} in {region}"
                );
            }
        }
        for secret in ["WxSecretValue", "TencentSecretValue"] {
            if let Some(created) = stack.resource(secret) {
                assert_eq!(created["Properties"]["KmsKeyId"], KEY_ARN, "{secret}");
            }
        }
    }
    accepts_only(
        "SecretsKmsKeyArn",
        &[
            "",
            KEY_ARN,
            "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
        ],
        &[
            "arn:aws:kms:us-east-1:123456789012:alias/secrets",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:123456789012:key/*",
        ],
    );
}

#[test]
fn secrets_stay_out_of_the_environment_and_only_their_function_reads_them() {
    let template = transformed_template();
    let no_echo: BTreeSet<&str> = template["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, p)| p["NoEcho"] == true)
        .map(|(name, _)| name.as_str())
        .collect();
    // TencentSecretId names a key and signs nothing: plain, not NoEcho.
    assert_eq!(
        no_echo,
        BTreeSet::from(["CaptchaAppSecretKey", "TencentSecretKey", "WxSecret"])
    );
    // A NoEcho value goes into a secret and nowhere else.
    for (id, resource) in template["Resources"].as_object().unwrap() {
        let text = resource.to_string();
        for name in &no_echo {
            let used = text.contains(&format!("${{{name}}}"))
                || text.contains(&format!("\"Ref\":\"{name}\""));
            assert!(
                !used || resource["Type"] == "AWS::SecretsManager::Secret",
                "{id} holds {name}"
            );
        }
    }
    let stack = Stack::with(&[("WxSecretArn", WX_ARN), ("TencentSecretArn", TENCENT_ARN)]);
    let grants = secret_grants(&stack);
    for (name, _, function) in stack.functions() {
        // The secrets its *_SECRET_ARN variables name, and no other.
        let named: BTreeSet<String> = function["Properties"]["Environment"]["Variables"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.ends_with("_SECRET_ARN"))
            .map(|(_, arn)| arn.to_string())
            .collect();
        let read: BTreeSet<String> = grants
            .get(&name)
            .map(|reads| reads.iter().map(|(s, _)| s.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(
            named, read,
            "{name}: may read exactly the secrets its variables name"
        );
    }
}

#[test]
fn reserved_concurrency_can_neither_fail_a_deploy_nor_cap_the_authorizer() {
    // Lambda keeps 100 of an account's executions unreserved, and the
    // default account limit is 1,000.
    const UNRESERVED: u64 = 100;
    const DEFAULT_ACCOUNT_LIMIT: u64 = 1_000;
    let reserved = |stack: &Stack| -> BTreeMap<String, Value> {
        stack
            .functions()
            .into_iter()
            .map(|(name, _, f)| {
                (
                    name,
                    f["Properties"]["ReservedConcurrentExecutions"].clone(),
                )
            })
            .collect()
    };
    assert!(reserved(&Stack::with(&[])).values().all(Value::is_null));
    for value in ["0", "90"] {
        for (name, set) in reserved(&Stack::with(&[("ReservedConcurrency", value)])) {
            if name == Function::Authorizer.name() {
                assert!(set.is_null(), "the authorizer is never capped");
            } else {
                assert_eq!(set, value, "{name}");
            }
        }
    }
    let accepted = allowed("ReservedConcurrency");
    let largest = (0..=100_000u64)
        .filter(|n| accepted.is_match(&n.to_string()))
        .max()
        .unwrap();
    accepts_only(
        "ReservedConcurrency",
        &["", "0", "90"],
        &["91", "100", "-1", "1e2"],
    );
    let capped = Function::ALL.len() as u64 - 1;
    assert!(
        capped * largest + UNRESERVED <= DEFAULT_ACCOUNT_LIMIT,
        "{capped} functions × {largest} leave fewer than {UNRESERVED} unreserved"
    );
}

/// The routes each call of which costs money upstream, and the prefix of
/// their throttle's parameters (`<prefix>RateLimit`, `<prefix>BurstLimit`).
/// A listed route not yet in the table has no settings (API Gateway
/// refuses settings for a route it does not have); the day it is in the
/// table, this test fails until the template gives it both.
const PAID_ROUTES: [(&str, &str); 2] = [
    ("POST /ticket/verify", "TicketVerify"),
    ("POST /sms/send", "SmsSend"),
];

#[test]
fn the_routes_that_cost_money_upstream_have_a_throttle_of_their_own() {
    let template = transformed_template();
    let stage = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .find(|r| r["Type"] == "AWS::ApiGatewayV2::Stage")
        .unwrap();
    let settings = stage["Properties"]["RouteSettings"].as_object().unwrap();
    let routes: BTreeSet<String> = ROUTES
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let default = |name: &str| template["Parameters"][name]["Default"].as_u64().unwrap();
    for (route, prefix) in PAID_ROUTES {
        if !routes.contains(route) {
            assert!(!settings.contains_key(route), "{route} is no route yet");
            continue;
        }
        for (key, suffix) in [
            ("ThrottlingRateLimit", "RateLimit"),
            ("ThrottlingBurstLimit", "BurstLimit"),
        ] {
            let parameter = format!("{prefix}{suffix}");
            assert_eq!(settings[route][key], json!({"Ref": parameter}), "{route}");
            assert!(
                default(&parameter) < default(key),
                "{parameter} is below the stage's {key}"
            );
        }
    }
    for route in settings.keys() {
        assert!(
            PAID_ROUTES.iter().any(|(r, _)| r == route),
            "{route} has settings of its own: list it in PAID_ROUTES"
        );
    }
}

#[test]
fn the_dashboard_url_opens_the_console_of_the_stacks_partition() {
    assert_eq!(
        Stack::in_region("eu-west-1", &[]).output("DashboardUrl"),
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1\
         #dashboards:name=Dashboard"
    );
    assert_eq!(
        Stack::in_region("cn-northwest-1", &[]).output("DashboardUrl"),
        "https://console.amazonaws.cn/cloudwatch/home?region=cn-northwest-1\
         #dashboards:name=Dashboard"
    );
}
