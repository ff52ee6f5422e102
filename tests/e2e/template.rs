//! `template.yaml` agrees with the route table (`gatehouse::api`): the same
//! functions, each with a crate under `functions/`, the same routes with the
//! same protection, and each function given exactly the settings it reads.
//! A route or function added in one place and not the other fails here.

use std::collections::BTreeSet;

use gatehouse::api::{Access, Function, ROUTES};
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

#[test]
fn each_function_gets_exactly_the_settings_it_reads() {
    let template = template();
    let global: BTreeSet<String> = template["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(global, BTreeSet::from(["TABLE_NAME".to_owned()]));
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
fn the_default_guard_routes_parse_and_name_guarded_routes() {
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
}
