//! `template.yaml` as CloudFormation receives it: after the SAM transform
//! that `sam deploy` runs first ([`transformed_template`]), and evaluated
//! for given parameters in a given partition ([`Stack`]), so that tests ask
//! what a deployed stack would hold (a role's statements, an alarm's
//! actions, an output) rather than how the YAML spells it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::repo_path;

/// The template after the SAM transform (`scripts/sam_transform.py`, with
/// samtranslator from the tools virtualenv `scripts/test.sh` installs:
/// `GATEHOUSE_TOOLS`, else `~/.cache/gatehouse-tools`), once per process.
/// A template the transform refuses fails here.
pub fn transformed_template() -> &'static Value {
    static TRANSFORMED: OnceLock<Value> = OnceLock::new();
    TRANSFORMED.get_or_init(|| {
        let tools = std::env::var_os("GATEHOUSE_TOOLS")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                let cache = std::env::var_os("XDG_CACHE_HOME")
                    .map(std::path::PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache"))
                    })?;
                Some(cache.join("gatehouse-tools"))
            })
            .expect("HOME or GATEHOUSE_TOOLS");
        let python = tools.join("bin/python");
        let out = std::process::Command::new(&python)
            .arg(repo_path("scripts/sam_transform.py"))
            .arg(repo_path("template.yaml"))
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (scripts/test.sh installs the SAM translator there)",
                    python.display()
                )
            });
        assert!(
            out.status.success(),
            "the SAM transform refuses template.yaml:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the transform prints JSON")
    })
}

/// Values of the parameters that have no default, as a deploy gives them.
const REQUIRED: [(&str, &str); 6] = [
    ("WxAppId", "wx0123456789abcdef"),
    ("TencentSecretId", "AKIDexample"),
    ("CaptchaAppId", "190000001"),
    ("SmsSdkAppId", "1400006666"),
    ("SmsSignName", "腾讯云"),
    ("SmsTemplateId", "1110"),
];

/// The transformed template deployed with some parameters (the rest at
/// their defaults) in one region. A resource's `Ref` is its logical id and
/// `Fn::GetAtt` is `GetAtt:<id>.<attribute>`: names that stand for what
/// CloudFormation would put there, equal wherever the same thing is meant.
pub struct Stack {
    template: &'static Value,
    values: BTreeMap<String, String>,
}

impl Stack {
    /// In `us-east-1` (partition `aws`), with `parameters` over the defaults.
    pub fn with(parameters: &[(&str, &str)]) -> Stack {
        Stack::in_region("us-east-1", parameters)
    }

    /// In `region` (its partition: `aws-cn` for `cn-*`).
    pub fn in_region(region: &str, parameters: &[(&str, &str)]) -> Stack {
        let template = transformed_template();
        let mut values: BTreeMap<String, String> = template["Parameters"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, p)| {
                let value = match &p["Default"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => REQUIRED
                        .iter()
                        .find(|(required, _)| required == name)
                        .unwrap_or_else(|| {
                            panic!("{name} has no default: give it a REQUIRED value")
                        })
                        .1
                        .to_owned(),
                };
                (name.clone(), value)
            })
            .collect();
        for (name, value) in parameters {
            assert!(
                template["Parameters"].get(*name).is_some(),
                "no parameter {name}"
            );
            values.insert((*name).to_owned(), (*value).to_owned());
        }
        let china = region.starts_with("cn-");
        for (name, value) in [
            ("AWS::Region", region),
            ("AWS::Partition", if china { "aws-cn" } else { "aws" }),
            (
                "AWS::URLSuffix",
                if china {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                },
            ),
            ("AWS::AccountId", "123456789012"),
            ("AWS::StackName", "gatehouse"),
        ] {
            values.insert(name.to_owned(), value.to_owned());
        }
        Stack { template, values }
    }

    /// A parameter's (or pseudo parameter's) value.
    pub fn parameter(&self, name: &str) -> &str {
        self.values
            .get(name)
            .unwrap_or_else(|| panic!("parameter {name} has no value (no default?)"))
    }

    /// Whether the named condition holds.
    pub fn condition(&self, name: &str) -> bool {
        let condition = &self.template["Conditions"][name];
        assert!(!condition.is_null(), "no condition {name}");
        self.truth(condition)
    }

    /// The resources that exist, evaluated: `(logical id, resource)`.
    pub fn resources(&self) -> Vec<(String, Value)> {
        self.template["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["Condition"].as_str().is_none_or(|c| self.condition(c)))
            .filter_map(|(id, r)| Some((id.clone(), self.eval(r)?)))
            .collect()
    }

    /// The resources of `kind` (`AWS::CloudWatch::Alarm` …).
    pub fn resources_of(&self, kind: &str) -> Vec<(String, Value)> {
        self.resources()
            .into_iter()
            .filter(|(_, r)| r["Type"] == kind)
            .collect()
    }

    /// Every Lambda function: `(its binary, its logical id, the resource)`.
    pub fn functions(&self) -> Vec<(String, String, Value)> {
        self.resources_of("AWS::Lambda::Function")
            .into_iter()
            .map(|(id, r)| {
                let binary = r["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .expect("every function names its Binary")
                    .to_owned();
                (binary, id, r)
            })
            .collect()
    }

    /// The statements of the inline policies of the role the function with
    /// logical id `function` runs as (its only permissions besides
    /// AWSLambdaBasicExecutionRole, which SAM adds for the logs).
    pub fn statements_of(&self, function: &str) -> Vec<Value> {
        let resource = self.resource(function).expect("the function exists");
        let role = resource["Properties"]["Role"].as_str().unwrap();
        let role = role
            .strip_prefix("GetAtt:")
            .and_then(|r| r.strip_suffix(".Arn"))
            .unwrap_or_else(|| panic!("{function}: Role is its own role's Arn, got {role}"));
        let role = self.resource(role).expect("the role exists");
        role["Properties"]["Policies"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap().clone())
            .collect()
    }

    /// One resource, evaluated; `None` when its condition is false.
    pub fn resource(&self, id: &str) -> Option<Value> {
        let resource = &self.template["Resources"][id];
        assert!(!resource.is_null(), "no resource {id}");
        if let Some(c) = resource["Condition"].as_str()
            && !self.condition(c)
        {
            return None;
        }
        self.eval(resource)
    }

    /// An output's value.
    pub fn output(&self, name: &str) -> Value {
        let output = &self.template["Outputs"][name];
        assert!(!output.is_null(), "no output {name}");
        self.eval(&output["Value"]).expect("an output has a value")
    }

    /// Whether each assertion of the rule `name` holds (no assertion when
    /// its condition does not): what CloudFormation checks before a deploy.
    pub fn rule_holds(&self, name: &str) -> bool {
        let rule = &self.template["Rules"][name];
        assert!(!rule.is_null(), "no rule {name}");
        if !rule["RuleCondition"].is_null() && !self.truth(&rule["RuleCondition"]) {
            return true;
        }
        rule["Assertions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| self.truth(&a["Assert"]))
    }

    /// `value` with every intrinsic function resolved; `None` for
    /// `AWS::NoValue` (dropped from the list or map that holds it).
    pub fn eval(&self, value: &Value) -> Option<Value> {
        match value {
            Value::Array(items) => Some(Value::Array(
                items.iter().filter_map(|v| self.eval(v)).collect(),
            )),
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().unwrap();
                if key == "Ref" || key.starts_with("Fn::") || key == "Condition" {
                    self.intrinsic(key, arg)
                } else {
                    Some(Value::Object(self.eval_map(map)))
                }
            }
            Value::Object(map) => Some(Value::Object(self.eval_map(map))),
            other => Some(other.clone()),
        }
    }

    fn eval_map(&self, map: &Map<String, Value>) -> Map<String, Value> {
        map.iter()
            .filter_map(|(k, v)| Some((k.clone(), self.eval(v)?)))
            .collect()
    }

    fn intrinsic(&self, function: &str, arg: &Value) -> Option<Value> {
        let text = |v: &Value| match self.eval(v) {
            Some(Value::String(s)) => s,
            other => panic!("{function}: expected a string, got {other:?}"),
        };
        Some(match function {
            "Ref" => {
                let name = arg.as_str().unwrap();
                if name == "AWS::NoValue" {
                    return None;
                }
                Value::String(self.reference(name))
            }
            "Fn::GetAtt" => {
                let [id, attribute] = arg.as_array().unwrap().as_slice() else {
                    panic!("Fn::GetAtt {arg}")
                };
                Value::String(format!(
                    "GetAtt:{}.{}",
                    id.as_str().unwrap(),
                    attribute.as_str().unwrap()
                ))
            }
            "Fn::If" => {
                let [condition, then, otherwise] = arg.as_array().unwrap().as_slice() else {
                    panic!("Fn::If {arg}")
                };
                let chosen = if self.condition(condition.as_str().unwrap()) {
                    then
                } else {
                    otherwise
                };
                return self.eval(chosen);
            }
            "Fn::Sub" => {
                let (pattern, vars) = match arg {
                    Value::String(s) => (s.clone(), Map::new()),
                    Value::Array(parts) => (
                        parts[0].as_str().unwrap().to_owned(),
                        parts[1].as_object().unwrap().clone(),
                    ),
                    other => panic!("Fn::Sub {other}"),
                };
                Value::String(self.substitute(&pattern, &vars))
            }
            "Fn::Join" => {
                let [separator, items] = arg.as_array().unwrap().as_slice() else {
                    panic!("Fn::Join {arg}")
                };
                let items = match self.eval(items) {
                    Some(Value::Array(items)) => items,
                    other => panic!("Fn::Join of {other:?}"),
                };
                Value::String(
                    items
                        .iter()
                        .map(&text)
                        .collect::<Vec<_>>()
                        .join(separator.as_str().unwrap()),
                )
            }
            "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" | "Condition" => {
                let mut single = Map::new();
                single.insert(function.to_owned(), arg.clone());
                Value::Bool(self.truth(&Value::Object(single)))
            }
            other => panic!("the test's evaluator knows no {other}: teach it"),
        })
    }

    fn reference(&self, name: &str) -> String {
        match self.values.get(name) {
            Some(value) => value.clone(),
            None => {
                assert!(
                    !self.template["Resources"][name].is_null(),
                    "Ref to nothing: {name}"
                );
                name.to_owned()
            }
        }
    }

    fn substitute(&self, pattern: &str, vars: &Map<String, Value>) -> String {
        let mut out = String::new();
        let mut rest = pattern;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = start + rest[start..].find('}').expect("a closed ${…}");
            let name = &rest[start + 2..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
            } else if let Some(value) = vars.get(name) {
                out.push_str(self.eval(value).unwrap().as_str().unwrap());
            } else if let Some((id, attribute)) = name.split_once('.') {
                out.push_str(&format!("GetAtt:{id}.{attribute}"));
            } else {
                out.push_str(&self.reference(name));
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn truth(&self, condition: &Value) -> bool {
        let (function, arg) = condition
            .as_object()
            .and_then(|m| m.iter().next())
            .unwrap_or_else(|| panic!("a condition: {condition}"));
        let args = || arg.as_array().unwrap().iter();
        match function.as_str() {
            "Fn::Equals" => {
                let [a, b] = arg.as_array().unwrap().as_slice() else {
                    panic!("Fn::Equals {arg}")
                };
                self.eval(a) == self.eval(b)
            }
            "Fn::Not" => !self.truth(&arg[0]),
            "Fn::And" => args().all(|c| self.truth(c)),
            "Fn::Or" => args().any(|c| self.truth(c)),
            "Condition" => self.condition(arg.as_str().unwrap()),
            other => panic!("not a condition function: {other}"),
        }
    }
}

/// A string or a list of strings, as IAM and CloudFormation write them.
pub fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().expect("a string").to_owned())
            .collect(),
        other => panic!("expected a string or a list of strings, got {other}"),
    }
}
