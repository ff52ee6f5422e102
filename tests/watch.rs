//! The local replays work as written: every `cargo lambda invoke` line of
//! the "Local replays" section (`docs/deploy-and-operations.md`), in its order, answers as
//! `tests/replay.json` expects for that event, when each function starts as
//! its `main` does (its `Function::lambda()`: started from the environment
//! of `events/watch.env`, then each event answered through its rows of the
//! route table) against the back ends `watch-backends` starts.
//!
//! The endpoints of `watch.env` are moved to free ports so the test can run
//! beside a developer's own watch set-up; everything else is read as is.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, TcpListener};

use gatehouse::api::Function;
use gatehouse::guard::AuthorizerRequest;
use gatehouse_e2e::watch_backends::{
    EVENT_SESSION_OPENID, WatchBackends, parse_env_file, watch_env_path,
};
use gatehouse_e2e::{docs, repo_path, status_and_json};
use serde_json::{Value, json};

/// `(function, event file)` of each `cargo lambda invoke` line of the
/// documentation (the README and `docs/`: the local replays are in
/// `docs/deploy-and-operations.md`), in its order.
fn readme_invoke_lines() -> Vec<(String, String)> {
    docs()
        .iter()
        .flat_map(|(_, text)| text.lines())
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["cargo", "lambda", "invoke", function, "--data-file", event] => {
                    Some((function.to_string(), event.to_string()))
                }
                ["cargo", "lambda", "invoke", ..] => {
                    panic!("an invoke line not in the form the test reads: {line}")
                }
                _ => None,
            }
        })
        .collect()
}

fn free_loopback_url() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
}

/// What one invocation answered: `{"status", "body"}` for an HTTP function,
/// the authorizer's own response for the authorizer. The function starts as
/// its `main` does, from the environment, for every invocation.
async fn invoke(function: &str, event: &str) -> Value {
    let function = Function::from_name(function)
        .unwrap_or_else(|| panic!("the docs invoke an unknown function {function}"));
    let lambda = function.lambda();
    let services = (lambda.start)().await.unwrap();
    if function == Function::Authorizer {
        let event: AuthorizerRequest = serde_json::from_str(event).unwrap();
        let verdict = lambda.authorize(&services, event, None).await;
        return serde_json::to_value(verdict).unwrap();
    }
    let request = lambda_http::request::from_str(event)
        .unwrap_or_else(|e| panic!("{}: the event does not parse: {e}", function.name()));
    let response = lambda.answer(&services, request).await;
    let (status, body) = status_and_json(&response);
    json!({ "status": status, "body": body })
}

#[test]
fn every_readme_invoke_line_answers_as_expected_under_watch_env() {
    let mut env = parse_env_file(&std::fs::read_to_string(watch_env_path()).unwrap()).unwrap();
    for key in [
        "DYNAMODB_ENDPOINT",
        "WX_API_BASE",
        "TENCENT_CAPTCHA_ENDPOINT",
        "TENCENT_SMS_ENDPOINT",
    ] {
        env.insert(key.to_owned(), free_loopback_url());
    }
    for (key, value) in &env {
        // SAFETY: no other thread of this process exists yet that could read
        // the environment: this binary holds this one test, and the runtime
        // and DynamoDB Local start below.
        unsafe { std::env::set_var(key, value) };
    }
    let expectations: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(repo_path("tests/replay.json")).unwrap())
            .unwrap();
    let lines = readme_invoke_lines();
    let functions: BTreeSet<&str> = lines.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        functions,
        Function::ALL.iter().map(|f| f.name()).collect(),
        "the local replays invoke every function"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let _backends = WatchBackends::start(&env).await.unwrap();
        let mut failures = Vec::new();
        for (function, event_path) in &lines {
            let name = event_path.trim_start_matches("events/");
            let expected = &expectations[name];
            let answer = invoke(
                function,
                &std::fs::read_to_string(repo_path(event_path)).unwrap(),
            )
            .await;
            let as_expected = match expected.get("authorizer") {
                Some(verdict) => {
                    answer["isAuthorized"] == verdict["isAuthorized"]
                        && answer["context"]["openid"] == EVENT_SESSION_OPENID
                }
                None => {
                    answer["status"] == expected["status"]
                        && answer["body"]["errCode"] == expected["errCode"]
                }
            };
            if !as_expected {
                failures.push(format!(
                    "cargo lambda invoke {function} --data-file {event_path}: {answer}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    });
}
