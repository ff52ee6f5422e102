//! `template.yaml` agrees with the route table (`gatehouse::api`): the same
//! functions, each with a crate under `functions/`, the same routes with the
//! same protection, and each function given exactly the settings it reads.
//! A route or function added in one place and not the other fails here.

use std::collections::BTreeSet;

use gatehouse::api::{Access, Function, ROUTES};
use gatehouse_e2e::cfn::{Stack, strings, transformed_template};
use gatehouse_e2e::repo_path;
use serde_yaml_ng::Value;

/// The authorizers a route names in the template, by its `Access`.
const SESSION_AUTHORIZER: &str = "SessionAuthorizer";
const GUARD_AUTHORIZER: &str = "GuardAuthorizer";
const IAM: &str = "AWS_IAM";

fn template() -> Value {
    let text = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// `(function name, resource)` of every `AWS::Serverless::Function`.
fn functions(template: &Value) -> Vec<(String, Value)> {
    let resources = template["Resources"].as_mapping().unwrap();
    resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|r| {
            let name = r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .expect("every function names its Binary")
                .to_owned();
            (name, r.clone())
        })
        .collect()
}

/// The dev server's request deadline is each function's `Timeout` (its
/// own or the Globals'), so the two must agree; and each leaves the
/// deadline's margin and at least 3 s of work.
#[test]
fn function_timeouts_are_the_templates() {
    let template = template();
    let global = template["Globals"]["Function"]["Timeout"]
        .as_u64()
        .expect("Globals.Function.Timeout");
    for (name, resource) in functions(&template) {
        let function = Function::from_name(&name).unwrap();
        let timeout = resource["Properties"]["Timeout"].as_u64().unwrap_or(global);
        assert_eq!(
            std::time::Duration::from_secs(timeout),
            function.timeout(),
            "{name}: template.yaml Timeout vs Function::timeout"
        );
        assert!(
            function.timeout() >= gatehouse::deadline::MARGIN + std::time::Duration::from_secs(3),
            "{name}: too short a time-out for the deadline's margin"
        );
    }
}

/// `SessionTtlSeconds` bounds what CloudFormation accepts by what wx-login
/// enforces at start-up, so a stack never deploys a value that stops it.
#[test]
fn session_ttl_parameter_has_the_bounds_the_code_enforces() {
    use gatehouse::wechat::config::{
        DEFAULT_SESSION_TTL_SECS, MAX_SESSION_TTL_SECS, MIN_SESSION_TTL_SECS,
    };
    let template = template();
    let parameter = &template["Parameters"]["SessionTtlSeconds"];
    assert_eq!(parameter["MinValue"].as_u64(), Some(MIN_SESSION_TTL_SECS));
    assert_eq!(parameter["MaxValue"].as_u64(), Some(MAX_SESSION_TTL_SECS));
    assert_eq!(
        parameter["Default"].as_u64(),
        Some(DEFAULT_SESSION_TTL_SECS)
    );
}

#[test]
fn template_functions_are_the_route_tables() {
    let in_template: BTreeSet<String> = functions(&template())
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let in_table: BTreeSet<String> = Function::ALL.iter().map(|f| f.name().to_owned()).collect();
    assert_eq!(in_template, in_table);
    let workspace = std::fs::read_to_string(repo_path("Cargo.toml")).unwrap();
    for function in Function::ALL {
        let dir = format!("functions/{}", function.name());
        assert!(
            repo_path(&dir).join("src/main.rs").is_file(),
            "{dir}/src/main.rs"
        );
        assert!(
            workspace.contains(&format!("\"{dir}\"")),
            "{dir} is a workspace member"
        );
    }
}

#[test]
fn template_routes_are_the_route_tables() {
    let mut in_template = BTreeSet::new();
    for (name, resource) in functions(&template()) {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            assert_eq!(event["Type"].as_str(), Some("HttpApi"), "{name}: {event:?}");
            let props = &event["Properties"];
            let access = match props["Auth"]["Authorizer"].as_str() {
                None => Access::Public,
                Some(SESSION_AUTHORIZER) => Access::Session,
                Some(GUARD_AUTHORIZER) => Access::Guard,
                Some(IAM) => Access::Iam,
                Some(other) => panic!("{name}: unknown authorizer {other}"),
            };
            in_template.insert((
                name.clone(),
                props["Method"].as_str().unwrap().to_owned(),
                props["Path"].as_str().unwrap().to_owned(),
                format!("{access:?}"),
            ));
        }
    }
    let in_table: BTreeSet<_> = ROUTES
        .iter()
        .map(|r| {
            (
                r.function.name().to_owned(),
                r.method.to_owned(),
                r.path.to_owned(),
                format!("{:?}", r.access),
            )
        })
        .collect();
    assert_eq!(in_template, in_table);
}

/// What API Gateway will enforce is the transformed API's OpenAPI body, not
/// the SAM events: every route of the table is there, each with the
/// authorizer its `Access` names (none for a public route), and the IAM
/// routes with SigV4 (`AWS_IAM`, which the transform defines only when the
/// API enables it).
#[test]
fn the_sam_transform_gives_every_route_its_tables_authorizer() {
    let transformed = transformed_template();
    let apis: Vec<_> = transformed["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::ApiGatewayV2::Api")
        .collect();
    assert_eq!(apis.len(), 1, "one HTTP API");
    let body = &apis[0]["Properties"]["Body"];
    let mut in_api = BTreeSet::new();
    for (path, methods) in body["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            if method.starts_with("x-amazon") {
                continue;
            }
            let schemes: Vec<&str> = operation["security"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .flat_map(|req| req.as_object().unwrap().keys())
                        .map(String::as_str)
                        .collect()
                })
                .unwrap_or_default();
            let access = match schemes.as_slice() {
                [] => Access::Public,
                [SESSION_AUTHORIZER] => Access::Session,
                [GUARD_AUTHORIZER] => Access::Guard,
                [IAM] => Access::Iam,
                other => panic!("{method} {path}: authorizers {other:?}"),
            };
            in_api.insert((method.to_uppercase(), path.clone(), format!("{access:?}")));
        }
    }
    let in_table: BTreeSet<_> = ROUTES
        .iter()
        .map(|r| {
            (
                r.method.to_owned(),
                r.path.to_owned(),
                format!("{:?}", r.access),
            )
        })
        .collect();
    assert_eq!(in_api, in_table);
    for path in ["/guard/check", "/guard/report"] {
        assert_eq!(
            body["paths"][path]["post"]["security"],
            serde_json::json!([{ IAM: [] }]),
            "{path}"
        );
    }
    let schemes = &body["components"]["securitySchemes"];
    assert_eq!(schemes[IAM]["x-amazon-apigateway-authtype"], "awsSigv4");
    for authorizer in [SESSION_AUTHORIZER, GUARD_AUTHORIZER] {
        assert_eq!(
            schemes[authorizer]["x-amazon-apigateway-authorizer"]["authorizerPayloadFormatVersion"],
            "2.0",
            "{authorizer}"
        );
    }
}

#[test]
fn each_function_gets_exactly_the_settings_it_reads() {
    let template = template();
    let global: BTreeSet<String> = template["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        global,
        BTreeSet::from(["TABLE_NAME".to_owned(), "METRICS_NAMESPACE".to_owned()])
    );
    for (name, resource) in functions(&template) {
        let own: BTreeSet<String> = resource["Properties"]["Environment"]["Variables"]
            .as_mapping()
            .map(|vars| {
                vars.keys()
                    .map(|k| k.as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let reads: BTreeSet<String> = Function::from_name(&name)
            .unwrap()
            .settings()
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(own, reads, "{name}");
    }
}

#[test]
fn the_default_guard_routes_parse_name_guarded_routes_and_start() {
    let template = template();
    let default = template["Parameters"]["GuardRoutes"]["Default"]
        .as_str()
        .expect("GuardRoutes has a default");
    let routes = gatehouse::guard::GuardRoutes::from_json(default).unwrap();
    let guarded: BTreeSet<String> = ROUTES
        .iter()
        .filter(|r| r.access == Access::Guard)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let listed: BTreeSet<String> = routes.iter().map(|(key, _)| key.to_owned()).collect();
    assert_eq!(
        listed, guarded,
        "every guarded route is listed, and no other"
    );
    // The authorizer starts with the defaults as they are: every route's
    // scene is declared in the default CaptchaConfig (as it reads it).
    let config = template["Parameters"]["CaptchaConfig"]["Default"]
        .as_str()
        .expect("CaptchaConfig has a default");
    let settings = gatehouse::settings::Settings::from_json_part(
        config,
        gatehouse::settings::ConfigPart::Guard,
    )
    .unwrap();
    routes.check_scenes(&settings.guard).unwrap();
    // And the captcha functions start with it too (every part read).
    gatehouse::settings::Settings::from_json(config).unwrap();
}

/// `(tag, value)` of a YAML value written with a CloudFormation short-form
/// intrinsic (`!Ref X`, `!GetAtt X.Arn`).
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((
            tagged.tag.to_string().trim_start_matches('!').to_owned(),
            &tagged.value,
        )),
        _ => None,
    }
}

/// What one grant allows: an action on a key pattern, touching only the
/// attributes listed (none: any).
type Allowed = (String, String, Vec<String>);

/// `(action, key pattern, attributes)` a function's DynamoDB statements
/// grant, after checking that each is an Allow on the table alone, bounded
/// by `dynamodb:LeadingKeys` (every key, and at least one) and, where it
/// says so, by `dynamodb:Attributes` (every attribute).
fn table_grants_of(name: &str, statements: &[serde_json::Value]) -> BTreeSet<Allowed> {
    let mut pairs = BTreeSet::new();
    for statement in statements {
        let actions = strings(&statement["Action"]);
        if !actions.iter().any(|a| a.starts_with("dynamodb:")) {
            continue;
        }
        assert!(
            actions
                .iter()
                .all(|a| a.starts_with("dynamodb:") && !a.contains('*')),
            "{name}: {actions:?}"
        );
        assert_eq!(statement["Effect"], "Allow", "{name}");
        assert_eq!(
            statement["Resource"], "GetAtt:Table.Arn",
            "{name}: the table, not its indexes or anything else"
        );
        let condition = statement["Condition"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: {actions:?} without a condition"));
        let operators: BTreeSet<&str> = condition.keys().map(String::as_str).collect();
        let limited = operators.contains("ForAllValues:StringEquals");
        let mut expected = BTreeSet::from(["ForAllValues:StringLike", "Null"]);
        if limited {
            expected.insert("ForAllValues:StringEquals");
        }
        assert_eq!(operators, expected, "{name}: {actions:?}");
        assert_eq!(
            condition["Null"]["dynamodb:LeadingKeys"], "false",
            "{name}: a request must name its keys"
        );
        let mut attributes = Vec::new();
        if limited {
            let equals = condition["ForAllValues:StringEquals"].as_object().unwrap();
            assert_eq!(
                equals.keys().collect::<Vec<_>>(),
                ["dynamodb:Attributes"],
                "{name}: {actions:?}"
            );
            attributes = strings(&equals["dynamodb:Attributes"]);
            attributes.sort();
        }
        let patterns = strings(&condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]);
        for action in &actions {
            for pattern in &patterns {
                assert!(
                    pairs.insert((action.clone(), pattern.clone(), attributes.clone())),
                    "{name}: {action} on {pattern} granted twice"
                );
            }
        }
    }
    pairs
}

/// The roles of the deployed stack (every optional grant on: a KMS key
/// given) allow each function exactly the table actions, rows and
/// attributes of `Function::table_grants`. SAM policy templates (DynamoDBCrudPolicy and
/// the like) would grant every row: the template names none, and the
/// transform's roles would show them here.
#[test]
fn each_function_may_touch_only_its_own_rows() {
    let stack = Stack::with(&[(
        "SecretsKmsKeyArn",
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    )]);
    for (name, id, _) in stack.functions() {
        let function = Function::from_name(&name).unwrap();
        let granted = table_grants_of(&name, &stack.statements_of(&id));
        let wanted: BTreeSet<Allowed> = function
            .table_grants()
            .iter()
            .flat_map(|grant| {
                let mut attributes: Vec<String> =
                    grant.attributes.iter().map(|a| (*a).to_owned()).collect();
                attributes.sort();
                grant.actions.iter().flat_map(move |action| {
                    let attributes = attributes.clone();
                    grant.key_prefixes.iter().map(move |prefix| {
                        (
                            (*action).to_owned(),
                            format!("{prefix}*"),
                            attributes.clone(),
                        )
                    })
                })
            })
            .collect();
        let extra: Vec<_> = granted.difference(&wanted).collect();
        let missing: Vec<_> = wanted.difference(&granted).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{name}: the template grants {extra:?} that Function::table_grants does not, \
             and lacks {missing:?}"
        );
    }
}

/// IAM judges a request by one statement, and `dynamodb:LeadingKeys`
/// (`ForAllValues`) holds every key the request names: a grant of several
/// prefixes (the guard's counters and the risk rank read in one
/// BatchGetItem, an update of a pass with its counters alongside) must be
/// one statement naming them all, or the request is refused.
#[test]
fn the_keys_of_one_grant_share_one_statement() {
    let stack = Stack::with(&[]);
    for (name, id, _) in stack.functions() {
        let statements = stack.statements_of(&id);
        for grant in Function::from_name(&name).unwrap().table_grants() {
            let patterns: BTreeSet<String> =
                grant.key_prefixes.iter().map(|p| format!("{p}*")).collect();
            for action in grant.actions {
                let together = statements.iter().any(|statement| {
                    let keys =
                        &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
                    strings(&statement["Action"]).iter().any(|a| a == action)
                        && patterns.is_subset(&strings(keys).into_iter().collect())
                });
                assert!(
                    together,
                    "{name}: {action} on {patterns:?} in one statement"
                );
            }
        }
    }
}

#[test]
fn the_table_is_kept_protected_and_every_function_logs_with_a_retention() {
    let template = template();
    let resources = &template["Resources"];
    assert_eq!(
        resources["Table"]["DeletionPolicy"].as_str(),
        Some("Retain")
    );
    assert_eq!(
        resources["Table"]["UpdateReplacePolicy"].as_str(),
        Some("Retain")
    );
    // And DeleteTable refused until someone turns the protection off.
    assert_eq!(
        resources["Table"]["Properties"]["DeletionProtectionEnabled"].as_bool(),
        Some(true)
    );
    let mut groups = BTreeSet::new();
    for (name, resource) in functions(&template) {
        let (tag, group) = intrinsic(&resource["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{name}: LoggingConfig.LogGroup: !Ref <its log group>"));
        assert_eq!(tag, "Ref", "{name}");
        let group = group.as_str().unwrap().to_owned();
        let declared = &resources[group.as_str()];
        assert_eq!(
            declared["Type"].as_str(),
            Some("AWS::Logs::LogGroup"),
            "{name}"
        );
        let (tag, days) = intrinsic(&declared["Properties"]["RetentionInDays"]).unwrap();
        assert_eq!(
            (tag.as_str(), days.as_str()),
            ("Ref", Some("LogRetentionDays"))
        );
        assert!(groups.insert(group), "{name} shares its log group");
    }
    assert_eq!(
        template["Parameters"]["LogRetentionDays"]["Default"].as_u64(),
        Some(30)
    );
}

#[test]
fn floods_are_capped_before_any_function_runs() {
    let template = template();
    let api = &template["Resources"]["Api"]["Properties"];
    let settings = &api["DefaultRouteSettings"];
    for (key, parameter) in [
        ("ThrottlingRateLimit", "ThrottlingRateLimit"),
        ("ThrottlingBurstLimit", "ThrottlingBurstLimit"),
    ] {
        let (tag, name) = intrinsic(&settings[key]).unwrap_or_else(|| panic!("{key}"));
        assert_eq!((tag.as_str(), name.as_str()), ("Ref", Some(parameter)));
        let default = template["Parameters"][parameter]["Default"].as_u64();
        assert!(default.is_some_and(|d| d > 0), "{parameter} has a default");
    }
}
