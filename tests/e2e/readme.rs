//! The documentation's examples are part of the contract: the configuration
//! examples of the guides (`docs/`) must load, their tables say what the
//! code and template hold, the README opens with the two commands and stays
//! a front door, and every link between them leads somewhere.

use gatehouse::domain::Scene;
use gatehouse::guard::{GuardRoutes, Level, PassRule};
use gatehouse::settings::Settings;
use gatehouse_e2e::{doc_holding, docs};

fn readme() -> String {
    std::fs::read_to_string(gatehouse_e2e::repo_path("README.md")).unwrap()
}

/// The first `count` JSON examples from the heading `heading` on, in the
/// one documentation file that holds it.
fn json_examples(heading: &str, count: usize) -> Vec<String> {
    let text = doc_holding(heading);
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no section {heading}"));
    let blocks: Vec<String> = text[start..]
        .split("```json\n")
        .skip(1)
        .take(count)
        .map(|block| block.split("```").next().unwrap().to_owned())
        .collect();
    assert_eq!(blocks.len(), count, "{count} JSON examples after {heading}");
    blocks
}

/// The first JSON example from the heading `heading` on.
fn json_example(heading: &str) -> String {
    json_examples(heading, 1).remove(0)
}

#[test]
fn captcha_config_example_loads() {
    let example = json_example("### Captcha configuration");
    let config = Settings::from_json(&example).unwrap().captcha;
    assert_eq!(config.scene("pay").size, 6);
    assert!(config.scene("register").math_expr);
    assert_eq!(config.scene("unconfigured").size, 4);
}

/// The `GUARD_ROUTES` and `CAPTCHA_CONFIG` examples of "Where a pass is
/// redeemed" (Clients) load, and say what the text says of them.
#[test]
fn clients_guard_examples_load() {
    let blocks = json_examples("### Where a pass is redeemed", 2);
    let routes = GuardRoutes::from_json(&blocks[0]).unwrap();
    let login = routes.get("POST /login").expect("POST /login");
    assert_eq!((login.door.pass, login.session), (PassRule::Always, false));
    let orders = routes.get("POST /orders").expect("POST /orders");
    assert_eq!((orders.door.pass, orders.session), (PassRule::Auto, true));
    assert_eq!(orders.door.scene.as_str(), "pay");
    let guard = Settings::from_json(&blocks[1]).unwrap().guard;
    // The two examples start together: every route's scene is declared.
    routes.check_scenes(&guard).unwrap();
    assert!(orders.door.bind_device && !orders.door.bind_ip);
    let pay = guard.scene(Scene::parse("pay").unwrap());
    assert_eq!(pay.level(2), Level::None);
    assert_eq!(pay.level(3), Level::Image);
    assert_eq!(pay.level(10), Level::Tencent);
}

/// The `wxRisk` example of "The user's risk rank" loads, and its ranks ask
/// for what the table says of the defaults.
#[test]
fn wx_risk_example_loads() {
    use gatehouse::guard::wx_risk::RankDecision;
    use gatehouse::wechat::risk_rank::RiskScene;
    let example = json_example("### The user's risk rank");
    let guard = Settings::from_json(&example).unwrap().guard;
    let signup = guard.scene("signup");
    let risk = signup.wx_risk.expect("a wxRisk block");
    assert_eq!((risk.scene, risk.cache_seconds), (RiskScene::Register, 600));
    let decisions: Vec<_> = (0..=4).map(|rank| risk.decision(rank, true)).collect();
    assert_eq!(
        decisions,
        [
            RankDecision::Level(Level::None),
            RankDecision::Level(Level::None),
            RankDecision::Level(Level::Image),
            RankDecision::Level(Level::Tencent),
            RankDecision::Level(Level::Tencent),
        ]
    );
    assert_eq!(guard.scene("other").wx_risk, None);
}

/// The example of the Tencent policy loads and says what the text says.
#[test]
fn tencent_policy_example_loads() {
    use gatehouse::tencent::config::Degrade;
    let example = json_example("### When Tencent cannot vouch for a ticket: the policy");
    let tencent = Settings::from_json(&example).unwrap().tencent;
    let login = tencent.scene(Scene::parse("login").unwrap()).policy;
    assert_eq!(login.disaster_ticket, Degrade::Admit);
    assert_eq!(login.code21, Degrade::Reject);
    assert_eq!(login.code26, Degrade::Admit);
    assert_eq!(login.unreachable, Degrade::Admit);
    let pay = tencent.scene(Scene::parse("pay").unwrap()).policy;
    assert_eq!(pay, Default::default());
}

#[test]
fn readme_opens_with_the_two_commands() {
    let text = readme();
    let block = text
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let commands: Vec<&str> = block
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .collect();
    assert_eq!(
        commands,
        ["cargo run -p gatehouse-local", "scripts/test.sh"]
    );
    let ci = std::fs::read_to_string(gatehouse_e2e::repo_path(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == "scripts/test.sh"),
        ".ci/run calls the test command"
    );
}

#[test]
fn guard_section_examples_load() {
    let json_blocks = json_examples("## The guard: passes that a business route redeems", 2);
    let config = Settings::from_json(&json_blocks[0]).unwrap();
    let register = gatehouse::domain::Scene::parse("register").unwrap();
    assert_eq!(
        config.guard.scene(&register).mode,
        gatehouse::guard::config::GuardMode::Adaptive
    );
    let routes = gatehouse::guard::GuardRoutes::from_json(&json_blocks[1]).unwrap();
    let pay = routes.get("POST /pay").unwrap();
    assert!(pay.session && pay.door.bind_device && pay.door.bind_ip);
    // The routes' scenes are the config's: together they start.
    routes.check_scenes(&config.guard).unwrap();
}

/// The cells of the table of `text` whose header row is `header`.
fn table_rows(text: &str, header: &str) -> Vec<Vec<String>> {
    let start = text.find(header).unwrap_or_else(|| panic!("{header}"));
    text[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            row.replace("\\|", "\u{0}")
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().replace('\u{0}', "|"))
                .collect()
        })
        .collect()
}

/// The `code` spans of `text`.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The deploy section's table of functions says what the template holds:
/// each function's memory, its DynamoDB grants (action and key prefix,
/// `Function::table_grants`, which `template.rs` holds the template's
/// policies to) and its configuration.
#[test]
fn the_function_table_is_the_templates() {
    use gatehouse::api::Function;
    use std::collections::BTreeSet;
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(gatehouse_e2e::repo_path("template.yaml")).unwrap(),
    )
    .unwrap();
    let global_memory = template["Globals"]["Function"]["MemorySize"]
        .as_u64()
        .unwrap();
    let header = "| function | memory | DynamoDB actions on rows | configuration |";
    let rows = table_rows(&doc_holding(header), header);
    let listed: BTreeSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let all: BTreeSet<&str> = Function::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(listed, all);
    for row in &rows {
        let function = Function::from_name(&row[0]).unwrap();
        let resource = template["Resources"]
            .as_mapping()
            .unwrap()
            .values()
            .find(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(&row[0]))
            .unwrap();
        let memory = resource["Properties"]["MemorySize"]
            .as_u64()
            .unwrap_or(global_memory);
        assert!(row[1].starts_with(&format!("{memory} MB")), "{row:?}");

        // "PutItem, DeleteItem `captcha#`; UpdateItem `rate#create|` (…)":
        // each group's actions apply to each of its prefixes.
        let mut granted = BTreeSet::new();
        for group in row[2].split(';') {
            let group = group.split(" (").next().unwrap();
            let (actions, prefixes) = group.split_once('`').expect("actions, then `prefixes`");
            let prefixes = code_spans(&format!("`{prefixes}"))
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>();
            for action in actions.split(',').map(str::trim) {
                for prefix in &prefixes {
                    granted.insert((format!("dynamodb:{action}"), prefix.clone()));
                }
            }
        }
        let grants: BTreeSet<(String, String)> = function
            .table_grants()
            .iter()
            .flat_map(|g| {
                g.actions.iter().flat_map(move |a| {
                    g.key_prefixes
                        .iter()
                        .map(move |p| ((*a).to_owned(), (*p).to_owned()))
                })
            })
            .collect();
        assert_eq!(granted, grants, "{}: the documented grants", row[0]);

        let configuration: BTreeSet<&str> = code_spans(&row[3])
            .into_iter()
            .filter(|s| s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
            .collect();
        let mut settings: BTreeSet<&str> = function.settings().iter().copied().collect();
        settings.insert("TABLE_NAME");
        assert_eq!(
            configuration, settings,
            "{}: the documented configuration",
            row[0]
        );
    }
}

/// The deploy guide's CORS sentence names the template's methods and headers.
#[test]
fn the_cors_the_readme_describes_is_the_templates() {
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(gatehouse_e2e::repo_path("template.yaml")).unwrap(),
    )
    .unwrap();
    let cors = &template["Resources"]["Api"]["Properties"]["CorsConfiguration"];
    let list = |key: &str| -> std::collections::BTreeSet<String> {
        cors[key]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let text = doc_holding("CORS for");
    let start = text.find("CORS for").expect("the CORS sentence");
    let sentence = &text[start..start + text[start..].find(';').unwrap()];
    let (methods, rest) = sentence
        .split_once("with the headers")
        .expect("methods, then headers");
    let (headers, exposed) = rest.split_once("exposing").expect("then exposed headers");
    let named = |part: &str| -> std::collections::BTreeSet<String> {
        code_spans(part).into_iter().map(str::to_owned).collect()
    };
    assert_eq!(named(methods), list("AllowMethods"));
    assert_eq!(named(headers), list("AllowHeaders"));
    assert_eq!(named(exposed), list("ExposeHeaders"));
}

#[test]
fn sms_configuration_example_loads() {
    let text = doc_holding("### SMS configuration");
    let section = &text[text.find("### SMS configuration").unwrap()..];
    let json = &section[section.find("```json").unwrap() + 7..];
    let json = &json[..json.find("```").unwrap()];
    let settings = gatehouse::settings::Settings::from_json(json).unwrap();
    let bind = settings
        .sms
        .scene(gatehouse::domain::Scene::parse("bind").unwrap());
    assert_eq!(bind.per_mobile_per_day, 3);
    assert_eq!(bind.countries, ["86", "852", "853"]);
    assert_eq!(bind.daily_budget, 10_000, "the root's default");
}

/// The README is a front door: at most 400 lines, ending with a map of
/// `docs/` that names every guide there and no file that is not.
#[test]
fn the_readme_is_a_front_door() {
    use std::collections::BTreeSet;
    let text = readme();
    let lines = text.lines().count();
    assert!(
        lines <= 400,
        "README.md has {lines} lines, over 400: a guide belongs in docs/"
    );
    let map = &text[text.find("\n## Docs\n").expect("the map of docs/")..];
    let map = &map[..map[1..].find("\n## ").map_or(map.len(), |end| end + 1)];
    let mapped: BTreeSet<&str> = map
        .split("](docs/")
        .skip(1)
        .map(|link| link.split(['#', ')']).next().unwrap())
        .filter(|file| !file.is_empty())
        .collect();
    let guides: Vec<(String, String)> = docs();
    let guides: BTreeSet<&str> = guides
        .iter()
        .filter_map(|(name, _)| name.strip_prefix("docs/"))
        .collect();
    assert_eq!(mapped, guides, "the README's map of docs/");
}

/// GitHub's anchors of the headings of a Markdown `text` (lower case,
/// punctuation dropped, spaces as hyphens, a repeated one numbered).
fn anchors(text: &str) -> std::collections::BTreeSet<String> {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let mut fence = false;
    let mut anchors = std::collections::BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fence = !fence;
        }
        let heading = line.trim_start_matches('#');
        if fence || heading.len() == line.len() || !heading.starts_with(' ') {
            continue;
        }
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let count = seen.entry(slug.clone()).or_default();
        anchors.insert(match *count {
            0 => slug.clone(),
            n => format!("{slug}-{n}"),
        });
        *count += 1;
    }
    anchors
}

/// Every relative link of the README and the guides leads to a file of the
/// repository and, with an anchor, to a heading of that file: a section
/// moved to another file takes its links with it.
#[test]
fn every_link_of_the_docs_leads_somewhere() {
    let mut broken = Vec::new();
    for (name, text) in docs() {
        let dir = std::path::Path::new(&name).parent().unwrap().to_owned();
        for link in text.split("](").skip(1) {
            let target = link.split(')').next().unwrap();
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target, None),
            };
            let file = gatehouse_e2e::repo_path(dir.join(path).to_str().unwrap());
            if !file.exists() {
                broken.push(format!("{name}: {target}: no such file"));
                continue;
            }
            if let Some(anchor) = anchor {
                let holder = if path.is_empty() {
                    text.clone()
                } else {
                    std::fs::read_to_string(&file).unwrap()
                };
                if !anchors(&holder).contains(anchor) {
                    broken.push(format!("{name}: {target}: no such heading"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
