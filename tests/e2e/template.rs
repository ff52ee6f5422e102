//! `template.yaml` agrees with the route table (`gatehouse::api`): the same
//! functions, each with a crate under `functions/`, the same routes with the
//! same protection, and each function given exactly the settings it reads.
//! A route or function added in one place and not the other fails here.

use std::collections::BTreeSet;

use gatehouse::api::{Access, Function, ROUTES};
use gatehouse_e2e::repo_path;
use serde_yaml_ng::Value;

/// The authorizer a protected route names in the template.
const SESSION_AUTHORIZER: &str = "SessionAuthorizer";

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
            let protected = match props["Auth"]["Authorizer"].as_str() {
                None => false,
                Some(SESSION_AUTHORIZER) => true,
                Some(other) => panic!("{name}: unknown authorizer {other}"),
            };
            in_template.insert((
                name.clone(),
                props["Method"].as_str().unwrap().to_owned(),
                props["Path"].as_str().unwrap().to_owned(),
                protected,
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
                r.access == Access::Session,
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
