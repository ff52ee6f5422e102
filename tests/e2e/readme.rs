//! The README's examples are part of the contract: its configuration
//! examples must load, and its opening lines must be the two commands.

use gatehouse::captcha::CaptchaConfig;
use gatehouse::domain::Scene;
use gatehouse::guard::{GuardRoutes, Level, PassRule};

fn readme() -> String {
    std::fs::read_to_string(gatehouse_e2e::repo_path("README.md")).unwrap()
}

#[test]
fn captcha_config_example_loads() {
    let text = readme();
    let section = &text[text
        .find("### Captcha configuration")
        .expect("config section")..];
    let start = section.find("```json\n").expect("json example") + "```json\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let config = CaptchaConfig::from_json(example).unwrap();
    assert_eq!(config.scene("pay").size, 6);
    assert!(config.scene("register").math_expr);
    assert_eq!(config.scene("unconfigured").size, 4);
}

/// The `GUARD_ROUTES` and `CAPTCHA_CONFIG` examples of "Where a pass is
/// redeemed" (Clients) load, and say what the text says of them.
#[test]
fn clients_guard_examples_load() {
    let text = readme();
    let section = &text[text
        .find("### Where a pass is redeemed")
        .expect("guard section")..];
    let blocks: Vec<&str> = section
        .split("```json\n")
        .skip(1)
        .take(2)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    let routes = GuardRoutes::from_json(blocks[0]).unwrap();
    let login = routes.get("POST /login").expect("POST /login");
    assert_eq!((login.pass, login.session), (PassRule::Always, false));
    let orders = routes.get("POST /orders").expect("POST /orders");
    assert_eq!((orders.pass, orders.session), (PassRule::Auto, true));
    assert_eq!(orders.scene.as_str(), "pay");
    let config = CaptchaConfig::from_json(blocks[1]).unwrap();
    let guard = config.guard();
    let pay = guard.scene(&Scene::parse("pay").unwrap());
    assert_eq!(pay.level(2), Level::None);
    assert_eq!(pay.level(3), Level::Image);
    assert_eq!(pay.level(10), Level::Tencent);
}

/// The example of the Tencent policy loads and says what the text says.
#[test]
fn tencent_policy_example_loads() {
    use gatehouse::guard::config::Degrade;
    let text = readme();
    let section = &text[text
        .find("### When Tencent cannot vouch for a ticket: the policy")
        .expect("policy section")..];
    let start = section.find("```json\n").expect("json example") + "```json\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let guard = CaptchaConfig::from_json(example).unwrap().guard();
    let login = guard.scene(&Scene::parse("login").unwrap()).tencent_policy;
    assert_eq!(login.disaster_ticket, Degrade::Admit);
    assert_eq!(login.code21, Degrade::Reject);
    assert_eq!(login.code26, Degrade::Admit);
    assert_eq!(login.unreachable, Degrade::Admit);
    let pay = guard.scene(&Scene::parse("pay").unwrap()).tencent_policy;
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
    let text = readme();
    let section = &text[text
        .find("## The guard: passes that a business route redeems")
        .expect("guard section")..];
    let json_blocks: Vec<&str> = section
        .split("```json\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap())
        .take(2)
        .collect();
    let config = gatehouse::captcha::CaptchaConfig::from_json(json_blocks[0]).unwrap();
    let register = gatehouse::domain::Scene::parse("register").unwrap();
    assert_eq!(
        config.guard().scene(&register).mode,
        gatehouse::guard::config::GuardMode::Adaptive
    );
    let routes = gatehouse::guard::GuardRoutes::from_json(json_blocks[1]).unwrap();
    assert!(routes.get("POST /pay").unwrap().session);
}
