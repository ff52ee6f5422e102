//! `CAPTCHA_CONFIG` as each function reads it. The variable is read once
//! ([`SceneBlocks`]) and each domain parses its own part of the root and
//! scene blocks:
//!
//! | part | keys (root and `scene.<name>`) | parsed by |
//! |---|---|---|
//! | captcha | `width` … `clientSize` | [`CaptchaConfig`] |
//! | rate limits | `rateLimit` | [`RateLimitConfig`] |
//! | guard | `guard`, `passTtlSeconds`, `tencent.enabled` | [`GuardSettings`] |
//! | ticket policy | `tencent` | [`TencentSettings`] |
//! | SMS codes | `sms` | [`SmsSettings`] |
//!
//! This module sits above those domains and is the one place that lists
//! them all: the captcha functions and the dev server read every part and
//! refuse a key that none reads; the other functions read only their own
//! parts ([`ConfigPart`]), so that a typo in a captcha-only key stops the
//! captcha functions but not logins, tickets or the guard, while a bad value
//! in a key a function reads still stops it.
//!
//! A new block (say `sms`, owned by a new `sms` domain): the domain
//! implements [`Part`] for one scene's settings (its keys, `apply`,
//! `check`); here its keys join [`EVERY_PART`], a field of [`Settings`]
//! holds it and [`Settings::from_blocks`] parses it for the parts that read
//! it. A new key of an existing block is a change in its domain alone.

use crate::captcha::{CaptchaConfig, CaptchaSettings};
use crate::config::ConfigError;
use crate::config::blocks::{Part, PerScene, SceneBlocks};
use crate::guard::config::{GuardConfig, GuardSettings};
use crate::ratelimit::RateLimitConfig;
use crate::sms::SmsSettings;
use crate::sms::service::SmsRouteSettings;
use crate::tencent::TicketSettings;
use crate::tencent::config::TencentSettings;

/// The keys of every part, in the order a refused key's message lists them.
pub const EVERY_PART: &[&[&str]] = &[
    CaptchaConfig::KEYS,
    RateLimitConfig::KEYS,
    GuardSettings::KEYS,
    TencentSettings::KEYS,
    SmsSettings::KEYS,
];

/// The parts of `CAPTCHA_CONFIG` a function reads (`docs/deploy-and-operations.md`,
/// "Configuration").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigPart {
    /// Every part, and no unknown key: create-, refresh- and verify-captcha
    /// (and the dev server).
    All,
    /// The root `rateLimit` block: wx-login and wx-phone.
    RateLimit,
    /// The guard's keys and the ticket policy (`guard`, `passTtlSeconds`,
    /// `tencent`) of the root and of every scene: the guard and the
    /// authorizer.
    Guard,
    /// Both of the above: verify-ticket.
    RateLimitAndGuard,
    /// Both of the above and the `sms` blocks: verify-sms.
    Sms,
    /// The guard's part and the ticket policy, the captcha keys (the answers
    /// a door judges: `maxAttempts`, expiry) and the root `rateLimit` (a
    /// ticket at a door counts as verify-ticket's `ticketPerIp`): the
    /// authorizer and the guard, whose doors judge challenges (SPEC §13).
    Door,
    /// [`ConfigPart::Sms`] and the captcha keys: send-sms, whose door judges
    /// challenges too.
    SmsDoor,
}

/// The parts of `CAPTCHA_CONFIG`, each parsed by the domain that owns it;
/// a part the function does not read keeps its defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub captcha: CaptchaConfig,
    /// Per scene for the captcha routes; the root's alone for the others.
    pub rate_limits: PerScene<RateLimitConfig>,
    pub guard: GuardConfig,
    pub tencent: PerScene<TencentSettings>,
    pub sms: PerScene<SmsSettings>,
}

impl Settings {
    /// All of `CAPTCHA_CONFIG` (inline JSON or a path; unset or empty:
    /// every default).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_part(ConfigPart::All)
    }

    /// The `part` of `CAPTCHA_CONFIG` a function reads.
    pub fn from_env_part(part: ConfigPart) -> Result<Self, ConfigError> {
        Self::from_blocks(&SceneBlocks::from_env()?, part)
    }

    /// All of a config.json text.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        Self::from_json_part(json, ConfigPart::All)
    }

    /// The `part` of a config.json text; keys outside it are neither read
    /// nor checked.
    pub fn from_json_part(json: &str, part: ConfigPart) -> Result<Self, ConfigError> {
        Self::from_blocks(&SceneBlocks::from_json(json)?, part)
    }

    /// The `part` of `blocks`, validated.
    pub fn from_blocks(blocks: &SceneBlocks, part: ConfigPart) -> Result<Self, ConfigError> {
        let mut settings = Self::default();
        if part == ConfigPart::All {
            blocks.refuse_unknown(EVERY_PART)?;
            settings.captcha = CaptchaConfig::from_blocks(blocks)?;
            settings.rate_limits = blocks.per_scene()?;
        } else if part != ConfigPart::Guard {
            // wx-login, wx-phone, verify-ticket and the SMS routes count at
            // the root's limits, whatever the scene.
            settings.rate_limits = PerScene::from_root(blocks.root()?);
        }
        if part != ConfigPart::RateLimit {
            settings.guard = blocks.per_scene()?;
            settings.tencent = blocks.per_scene()?;
        }
        if matches!(
            part,
            ConfigPart::All | ConfigPart::Sms | ConfigPart::SmsDoor
        ) {
            settings.sms = blocks.per_scene()?;
        }
        if matches!(part, ConfigPart::Door | ConfigPart::SmsDoor) {
            settings.captcha = CaptchaConfig::from_blocks(blocks)?;
        }
        Ok(settings)
    }

    /// What the SMS routes read besides the rate limits: the `sms` blocks
    /// and the guard's settings.
    pub fn sms_settings(&self) -> SmsRouteSettings {
        SmsRouteSettings {
            sms: self.sms.clone(),
            guard: self.guard.clone(),
        }
    }

    /// What the captcha routes read besides the rate limits: their keys and
    /// the guard's settings.
    pub fn captcha_settings(&self) -> CaptchaSettings {
        CaptchaSettings {
            captcha: self.captcha.clone(),
            guard: self.guard.clone(),
        }
    }

    /// What ticket verify reads besides the rate limits: the guard's
    /// settings and the ticket policies.
    pub fn ticket_settings(&self) -> TicketSettings {
        TicketSettings {
            guard: self.guard.clone(),
            policies: self.tencent.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Scene;
    use crate::guard::config::GuardMode;
    use crate::tencent::config::{Degrade, TencentPolicy};

    fn err(json: &str) -> ConfigError {
        Settings::from_json(json).expect_err(json)
    }

    fn err_key(json: &str) -> String {
        match err(json) {
            ConfigError::Invalid { key, .. } | ConfigError::UnknownKey { key, .. } => key,
            other => panic!("unexpected error {other:?} for {json}"),
        }
    }

    #[test]
    fn every_part_is_known_to_the_unknown_key_check() {
        // A part parsed here but missing from EVERY_PART would stop the
        // captcha functions on its own keys.
        let one_of_each = r#"{"size": 5, "rateLimit": {"createPerIp": 2}, "guard": {"mode": "always"},
            "passTtlSeconds": 60, "tencent": {"acceptEvil": true}, "sms": {"dailyBudget": 7},
            "scene": {"login": {"size": 6, "rateLimit": {}, "guard": {}, "passTtlSeconds": 90,
                                "tencent": {"enabled": false}, "sms": {"maxAttempts": 3}}}}"#;
        let all = Settings::from_json(one_of_each).unwrap();
        assert_eq!(all.captcha.scene("login").size, 6);
        assert_eq!(all.rate_limits.scene("login").create_per_ip, 2);
        assert_eq!(all.guard.scene("login").pass_ttl_seconds, 90);
        assert!(!all.guard.scene("login").tencent_enabled);
        assert!(all.guard.root().tencent_enabled);
        assert!(all.tencent.scene("login").accept_evil);
        assert_eq!(all.sms.scene("login").max_attempts, 3);
        assert_eq!(all.sms.scene("login").daily_budget, 7);
        let sms = Settings::from_json_part(one_of_each, ConfigPart::Sms).unwrap();
        assert_eq!(sms.sms, all.sms);
        assert_eq!(sms.guard, all.guard);
        assert_eq!(sms.rate_limits.root().create_per_ip, 2);
        assert_eq!(
            Settings::from_json_part(one_of_each, ConfigPart::Guard)
                .unwrap()
                .sms,
            PerScene::default(),
            "the guard reads no sms block"
        );
        // The doors (authorizer, guard; send-sms) read the captcha keys of
        // the answers they judge, and the root's rate limits of tickets.
        let door = Settings::from_json_part(one_of_each, ConfigPart::Door).unwrap();
        assert_eq!(door.captcha, all.captcha);
        assert_eq!(door.guard, all.guard);
        assert_eq!(door.tencent, all.tencent);
        assert_eq!(door.rate_limits.root().create_per_ip, 2);
        assert_eq!(
            door.sms,
            PerScene::default(),
            "the guard reads no sms block"
        );
        let sms_door = Settings::from_json_part(one_of_each, ConfigPart::SmsDoor).unwrap();
        assert_eq!(sms_door.captcha, all.captcha);
        assert_eq!(sms_door.sms, all.sms);
        assert_eq!(
            Settings::from_json_part(one_of_each, ConfigPart::Sms)
                .unwrap()
                .captcha,
            CaptchaConfig::default(),
            "verify-sms reads no captcha key"
        );
    }

    #[test]
    fn every_rejection_names_key_value_and_range() {
        let cases: &[(&str, &str)] = &[
            (r#"{"width": 10}"#, "width"),
            (r#"{"width": 601}"#, "width"),
            (r#"{"width": "150"}"#, "width"),
            (r#"{"width": 150.5}"#, "width"),
            (r#"{"width": -1}"#, "width"),
            (r#"{"height": 5}"#, "height"),
            (r#"{"height": 1000}"#, "height"),
            (r#"{"size": 0}"#, "size"),
            (r#"{"size": 7}"#, "size"),
            (r#"{"noise": 21}"#, "noise"),
            (r#"{"noise": -1}"#, "noise"),
            (r#"{"color": "yes"}"#, "color"),
            (r#"{"fontSize": 5}"#, "fontSize"),
            (r#"{"fontSize": 500}"#, "fontSize"),
            (r#"{"fontSize": "40"}"#, "fontSize"),
            (r#"{"background": "red"}"#, "background"),
            (r##"{"background": "#12"}"##, "background"),
            (r#"{"background": null}"#, "background"),
            (r#"{"ignoreChars": 5}"#, "ignoreChars"),
            (
                r#"{"ignoreChars": "23456789abcdefhkmnprtuvwxyABCDEFGHJKMNPRTUVWXY"}"#,
                "ignoreChars",
            ),
            (r#"{"mathExpr": 1}"#, "mathExpr"),
            (r#"{"mathMin": -1}"#, "mathMin"),
            (r#"{"mathMax": 1000}"#, "mathMax"),
            (r#"{"mathMin": 10, "mathMax": 5}"#, "mathMin"),
            (r#"{"mathOperator": "*"}"#, "mathOperator"),
            (r#"{"mathOperator": 1}"#, "mathOperator"),
            (r#"{"expiresDate": 5}"#, "expiresDate"),
            (r#"{"expiresDate": 100000}"#, "expiresDate"),
            (r#"{"maxAttempts": 0}"#, "maxAttempts"),
            (r#"{"maxAttempts": 11}"#, "maxAttempts"),
            (r#"{"rateLimit": 5}"#, "rateLimit"),
            (r#"{"rateLimit": {"enabled": 1}}"#, "rateLimit.enabled"),
            (
                r#"{"rateLimit": {"windowSeconds": 0}}"#,
                "rateLimit.windowSeconds",
            ),
            (
                r#"{"rateLimit": {"createPerIp": -1}}"#,
                "rateLimit.createPerIp",
            ),
            (
                r#"{"rateLimit": {"ticketPerIp": 1.5}}"#,
                "rateLimit.ticketPerIp",
            ),
            (r#"{"rateLimit": {"perIp": 5}}"#, "rateLimit.perIp"),
            (
                r#"{"scene": {"pay": {"rateLimit": {"verifyPerIp": 2000000}}}}"#,
                "scene.pay.rateLimit.verifyPerIp",
            ),
            (r#"{"sise": 4}"#, "sise"),
            (r#"{"guard": 1}"#, "guard"),
            (r#"{"guard": {"mode": "sometimes"}}"#, "guard.mode"),
            (
                r#"{"guard": {"imageAfterFailures": -1}}"#,
                "guard.imageAfterFailures",
            ),
            (
                r#"{"guard": {"failureWindowSeconds": 5}}"#,
                "guard.failureWindowSeconds",
            ),
            (r#"{"guard": {"modes": "adaptive"}}"#, "guard.modes"),
            (
                r#"{"scene": {"pay": {"guard": {"imageAfterFailures": 5, "tencentAfterFailures": 2}}}}"#,
                "scene.pay.guard.tencentAfterFailures",
            ),
            (r#"{"passTtlSeconds": 5}"#, "passTtlSeconds"),
            (r#"{"passTtlSeconds": 3601}"#, "passTtlSeconds"),
            (
                r#"{"tencent": {"acceptEvil": "yes"}}"#,
                "tencent.acceptEvil",
            ),
            (r#"{"tencent": {"evil": true}}"#, "tencent.evil"),
            (r#"{"scene": 4}"#, "scene"),
            (r#"{"scene": {"login": 4}}"#, "scene.login"),
            (r#"{"scene": {"bad name": {}}}"#, "scene.bad name"),
            (r#"{"scene": {"login": {"size": 9}}}"#, "scene.login.size"),
            (
                r#"{"scene": {"login": {"scene": {}}}}"#,
                "scene.login.scene",
            ),
            (
                r#"{"scene": {"login": {"mathMax": 0}}}"#,
                "scene.login.mathMin",
            ),
            (
                r#"{"scene": {"login": {"ignoreChars": "23456789abcdefhkmnprtuACEFHKMNPRTU"}}}"#,
                "scene.login.ignoreChars",
            ),
        ];
        for (json, key) in cases {
            assert_eq!(&err_key(json), key, "{json}");
            let msg = err(json).to_string();
            assert!(msg.contains(key), "{msg}");
        }
        let msg = err(r#"{"scene": {"login": {"size": 9}}}"#).to_string();
        assert!(msg.contains("scene.login.size") && msg.contains('9') && msg.contains("1 to 6"));
        let msg = err(r#"{"mathMin": 10, "mathMax": 5}"#).to_string();
        assert!(msg.contains("10") && msg.contains("mathMax (5)"), "{msg}");
    }

    #[test]
    fn rate_limits_default_and_merge_key_by_key() {
        let c = Settings::from_json("{}").unwrap();
        assert_eq!(*c.rate_limits.root(), RateLimitConfig::default());
        assert!(c.rate_limits.root().enabled);
        let c = Settings::from_json(
            r#"{"rateLimit": {"windowSeconds": 30, "createPerIp": 5},
                "scene": {"pay": {"rateLimit": {"createPerIp": 2, "verifyPerIp": 0}}}}"#,
        )
        .unwrap();
        let pay = *c.rate_limits.scene("pay");
        assert_eq!(
            (pay.window_seconds, pay.create_per_ip, pay.verify_per_ip),
            (30, 2, 0)
        );
        assert_eq!(pay.create_per_device, 20, "default kept");
        assert_eq!(c.rate_limits.root().create_per_ip, 5);
        assert_eq!(c.rate_limits.scene_bucket("pay"), "pay");
        assert_eq!(c.rate_limits.scene_bucket("other"), "*");
    }

    #[test]
    fn guard_settings_default_and_merge_key_by_key() {
        let c = Settings::from_json("{}").unwrap();
        assert_eq!(*c.guard.root(), GuardSettings::default());
        assert_eq!(c.guard.root().mode, GuardMode::Off);
        assert_eq!(c.guard.root().pass_ttl_seconds, 300);
        let c = Settings::from_json(
            r#"{"passTtlSeconds": 600, "guard": {"failureWindowSeconds": 60},
                "scene": {"signup": {"guard": {"mode": "adaptive", "imageAfterFailures": 2},
                                     "tencent": {"acceptEvil": true}}}}"#,
        )
        .unwrap();
        let signup = *c.guard.scene("signup");
        assert_eq!(signup.mode, GuardMode::Adaptive);
        assert_eq!(signup.image_after_failures, 2);
        assert_eq!(signup.tencent_after_failures, 10, "default kept");
        assert_eq!(signup.failure_window_seconds, 60, "inherited from root");
        assert_eq!(signup.pass_ttl_seconds, 600, "inherited from root");
        assert!(c.tencent.scene("signup").accept_evil);
        let guard = &c.guard;
        assert_eq!(*guard.scene(Scene::parse("signup").unwrap()), signup);
        assert_eq!(
            guard.scene(Scene::parse("other").unwrap()).mode,
            GuardMode::Off
        );
    }

    #[test]
    fn wx_risk_blocks_merge_per_scene_and_null_turns_them_off() {
        use crate::guard::wx_risk::WxRiskSettings;
        use crate::wechat::risk_rank::RiskScene;
        let c = Settings::from_json_part(
            r#"{"guard": {"wxRisk": {"scene": "register", "refuseFromRank": 4}},
                "scene": {"coupon": {"guard": {"wxRisk": {"scene": "marketing", "cacheSeconds": 300}}},
                          "plain": {"guard": {"wxRisk": null}},
                          "login": {"guard": {"mode": "adaptive"}}}}"#,
            ConfigPart::Guard,
        )
        .unwrap();
        let root = WxRiskSettings {
            scene: RiskScene::Register,
            image_from_rank: Some(2),
            tencent_from_rank: Some(3),
            refuse_from_rank: Some(4),
            cache_seconds: 600,
        };
        assert_eq!(c.guard.root().wx_risk, Some(root));
        assert_eq!(c.guard.scene("login").wx_risk, Some(root), "inherited");
        assert_eq!(
            c.guard.scene("coupon").wx_risk,
            Some(WxRiskSettings {
                scene: RiskScene::Marketing,
                cache_seconds: 300,
                ..root
            })
        );
        assert_eq!(c.guard.scene("plain").wx_risk, None);
        let err = Settings::from_json_part(
            r#"{"guard": {"wxRisk": {"scene": "register"}},
                "scene": {"x": {"guard": {"wxRisk": {"imageFromRank": 4}}}}}"#,
            ConfigPart::Guard,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "CAPTCHA_CONFIG: scene.x.guard.wxRisk.tencentFromRank = 3: \
             must be >= scene.x.guard.wxRisk.imageFromRank (4)"
        );
    }

    #[test]
    fn tencent_policy_defaults_to_reject_and_names_bad_values() {
        let c = Settings::from_json_part(
            r#"{"tencent": {"unreachable": "admit"},
                "scene": {"login": {"tencent": {"disasterTicket": "admit", "code21": "reject",
                                                "code26": "admit"}}}}"#,
            ConfigPart::RateLimitAndGuard,
        )
        .unwrap();
        assert_eq!(
            c.tencent.root().policy,
            TencentPolicy {
                unreachable: Degrade::Admit,
                ..TencentPolicy::default()
            }
        );
        let login = c.tencent.scene("login").policy;
        assert_eq!(login.disaster_ticket, Degrade::Admit);
        assert_eq!(login.code21, Degrade::Reject);
        assert_eq!(login.code26, Degrade::Admit);
        assert_eq!(login.unreachable, Degrade::Admit, "inherited from root");
        assert_eq!(
            Settings::from_json("{}").unwrap().tencent.root().policy,
            TencentPolicy::default()
        );
        assert_eq!(TencentPolicy::default().code26, Degrade::Reject);
        for (json, key) in [
            (
                r#"{"scene": {"login": {"tencent": {"code21": "maybe"}}}}"#,
                "scene.login.tencent.code21",
            ),
            (
                r#"{"tencent": {"unreachable": true}}"#,
                "tencent.unreachable",
            ),
            (r#"{"tencent": {"code22": "admit"}}"#, "tencent.code22"),
        ] {
            for part in [
                ConfigPart::All,
                ConfigPart::Guard,
                ConfigPart::RateLimitAndGuard,
            ] {
                let text = Settings::from_json_part(json, part)
                    .unwrap_err()
                    .to_string();
                assert!(text.contains(key), "{json}: {text}");
            }
        }
        let text = err(r#"{"tencent": {"disasterTicket": "skip"}}"#).to_string();
        assert!(
            text.contains("\"skip\"") && text.contains("one of \"reject\", \"admit\""),
            "{text}"
        );
        // wx-login reads no tencent block.
        assert!(
            Settings::from_json_part(r#"{"tencent": {"code21": "maybe"}}"#, ConfigPart::RateLimit)
                .is_ok()
        );
    }

    #[test]
    fn partial_readers_skip_captcha_only_keys_but_check_their_own() {
        // Typos and bad values in captcha-only keys, root and scene.
        let captcha_typos = r#"{"widht": 5, "size": 99, "mathMin": 9, "mathMax": 1,
            "rateLimit": {"wxLoginPerIp": 7, "ticketPerIp": 8},
            "scene": {"login": {"sise": 4, "width": "wide", "rateLimit": {"nope": 1},
                                "guard": {"mode": "adaptive"}, "passTtlSeconds": 60}}}"#;
        assert!(Settings::from_json_part(captcha_typos, ConfigPart::All).is_err());
        let login = Settings::from_json_part(captcha_typos, ConfigPart::RateLimit).unwrap();
        assert_eq!(login.rate_limits.root().wx_login_per_ip, 7);
        assert_eq!(
            login.rate_limits.scene_names().count(),
            0,
            "wx-login reads no scene"
        );
        for part in [ConfigPart::Guard, ConfigPart::RateLimitAndGuard] {
            let c = Settings::from_json_part(captcha_typos, part).unwrap();
            let guard = &c.guard;
            let login = guard.scene(Scene::parse("login").unwrap());
            assert_eq!(login.mode, GuardMode::Adaptive);
            assert_eq!(login.pass_ttl_seconds, 60);
            let limits = c.rate_limits.root();
            let read = part == ConfigPart::RateLimitAndGuard;
            assert_eq!(limits.ticket_per_ip == 8, read, "{part:?}");
        }
        // A bad value in a key a part reads still stops it, named.
        let cases: &[(&str, ConfigPart, &str)] = &[
            (
                r#"{"rateLimit": {"wxLoginPerIp": -1}}"#,
                ConfigPart::RateLimit,
                "rateLimit.wxLoginPerIp",
            ),
            (
                r#"{"rateLimit": {"ticketPerIpp": 1}}"#,
                ConfigPart::RateLimitAndGuard,
                "rateLimit.ticketPerIpp",
            ),
            (
                r#"{"scene": {"pay": {"guard": {"mode": "sometimes"}}}}"#,
                ConfigPart::RateLimitAndGuard,
                "scene.pay.guard.mode",
            ),
            (
                r#"{"scene": {"pay": {"passTtlSeconds": 1}}}"#,
                ConfigPart::Guard,
                "scene.pay.passTtlSeconds",
            ),
            (
                r#"{"guard": {"imageAfterFailures": 5, "tencentAfterFailures": 2}}"#,
                ConfigPart::Guard,
                "guard.tencentAfterFailures",
            ),
            (
                r#"{"scene": {"bad name": {}}}"#,
                ConfigPart::RateLimitAndGuard,
                "scene.bad name",
            ),
        ];
        for (json, part, key) in cases {
            let err = Settings::from_json_part(json, *part).expect_err(json);
            let msg = err.to_string();
            assert!(
                msg.contains(key) && msg.contains("CAPTCHA_CONFIG"),
                "{json}: {msg}"
            );
        }
        // The guard reads no rateLimit: a bad one there is the captcha
        // functions' and wx-login's business.
        assert!(Settings::from_json_part(r#"{"rateLimit": {"x": 1}}"#, ConfigPart::Guard).is_ok());
        // Not JSON stops every part.
        assert!(Settings::from_json_part("{", ConfigPart::RateLimit).is_err());
    }
}
