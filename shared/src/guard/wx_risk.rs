//! The `wxRisk` block of a scene's `guard` block: which WeChat risk ranks
//! (`getuserriskrank`, see [`crate::wechat::risk`]) need which pass, which
//! are refused outright, and how long a rank is cached.
//!
//! `"wxRisk": {"scene": "register" | "marketing", "imageFromRank": 2,
//! "tencentFromRank": 3, "refuseFromRank": null, "cacheSeconds": 600}`:
//!
//! - `scene` (required): WeChat's scene of the rank, `register` (0: sign-up,
//!   log-in) or `marketing` (1: coupons, lotteries, 薅羊毛).
//! - `imageFromRank`, `tencentFromRank`, `refuseFromRank`: a rank at or
//!   above one needs an image pass, a ticket pass, or is refused; each 0-4,
//!   or `null` for never, and `image <= tencent <= refuse` among those set.
//!   Defaults 2, 3, `null`.
//! - `cacheSeconds`: how long a rank is used before WeChat is asked again,
//!   60-86,400 (default 600). Under a minute would ask WeChat more often
//!   than a failure is cached; past a day, WeChat's re-rating of a user
//!   would go unseen for too long.
//!
//! A scene block merges key by key over the root's `wxRisk`, and
//! `"wxRisk": null` turns it off for that scene.

use std::ops::RangeInclusive;

use super::config::Level;
use crate::config::{CAPTCHA_CONFIG, ConfigError, Entry};
use crate::wechat::risk_rank::RiskScene;

/// The ranks WeChat answers.
pub const RANK_RANGE: RangeInclusive<u8> = 0..=4;
/// Allowed `cacheSeconds`.
pub const CACHE_SECONDS_RANGE: RangeInclusive<u64> = 60..=86_400;
/// Keys of a `wxRisk` block.
pub const WX_RISK_KEYS: &[&str] = &[
    "scene",
    "imageFromRank",
    "tencentFromRank",
    "refuseFromRank",
    "cacheSeconds",
];

/// A scene's `wxRisk` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WxRiskSettings {
    pub scene: RiskScene,
    /// From this rank on, an image pass (or a ticket pass) is needed.
    pub image_from_rank: Option<u8>,
    /// From this rank on, a ticket pass is needed.
    pub tencent_from_rank: Option<u8>,
    /// From this rank on, the door refuses (`guard-refused`).
    pub refuse_from_rank: Option<u8>,
    pub cache_seconds: u64,
}

/// What a rank asks of a user in a scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankDecision {
    /// At least this level (the guard takes the higher of it and the
    /// counters' level).
    Level(Level),
    /// Refused outright, whatever pass is shown.
    Refuse,
}

impl WxRiskSettings {
    /// The block `entry` over `inherited` (the root's, for a scene block):
    /// `None` when it is `null`.
    pub fn parse(entry: &Entry, inherited: Option<Self>) -> Result<Option<Self>, ConfigError> {
        if entry.value().is_null() {
            return Ok(None);
        }
        let (block, path) = entry.block(WX_RISK_KEYS)?;
        let mut scene = inherited.map(|s| s.scene);
        let mut ranks = inherited.map_or((Some(2), Some(3), None), |s| {
            (s.image_from_rank, s.tencent_from_rank, s.refuse_from_rank)
        });
        let mut cache_seconds = inherited.map_or(600, |s| s.cache_seconds);
        for (key, value) in block {
            let key = Entry::new(CAPTCHA_CONFIG, &path, key, value);
            match key.name() {
                "scene" => {
                    let name = key.one_of(&["register", "marketing"])?;
                    scene = RiskScene::parse(name);
                }
                "imageFromRank" => ranks.0 = optional_rank(&key)?,
                "tencentFromRank" => ranks.1 = optional_rank(&key)?,
                "refuseFromRank" => ranks.2 = optional_rank(&key)?,
                "cacheSeconds" => cache_seconds = key.int_in(CACHE_SECONDS_RANGE)?,
                _ => return Err(key.unknown(WX_RISK_KEYS)),
            }
        }
        let Some(scene) = scene else {
            return Err(ConfigError::Invalid {
                setting: CAPTCHA_CONFIG,
                key: format!("{path}scene"),
                value: "(missing)".into(),
                allowed: "required: \"register\" (WeChat's scene 0: sign-up, log-in) or \
                          \"marketing\" (1: coupons, lotteries)"
                    .into(),
            });
        };
        let settings = Self {
            scene,
            image_from_rank: ranks.0,
            tencent_from_rank: ranks.1,
            refuse_from_rank: ranks.2,
            cache_seconds,
        };
        settings.check_order(&path)?;
        Ok(Some(settings))
    }

    /// `image <= tencent <= refuse`, among the ranks that are set.
    fn check_order(&self, path: &str) -> Result<(), ConfigError> {
        let set = [
            ("imageFromRank", self.image_from_rank),
            ("tencentFromRank", self.tencent_from_rank),
            ("refuseFromRank", self.refuse_from_rank),
        ];
        for (i, (higher, high)) in set.iter().enumerate() {
            for (lower, low) in &set[..i] {
                if let (Some(high), Some(low)) = (high, low)
                    && high < low
                {
                    return Err(ConfigError::Invalid {
                        setting: CAPTCHA_CONFIG,
                        key: format!("{path}{higher}"),
                        value: high.to_string(),
                        allowed: format!("must be >= {path}{lower} ({low})"),
                    });
                }
            }
        }
        Ok(())
    }

    /// What `rank` asks of a user: refused at or above `refuseFromRank`,
    /// else `tencent` at or above `tencentFromRank` (`image` when the scene
    /// offers no Tencent captcha, `tencent_enabled` false), `image` at or
    /// above `imageFromRank`, and nothing below.
    pub fn decision(&self, rank: u8, tencent_enabled: bool) -> RankDecision {
        let reached = |from: Option<u8>| from.is_some_and(|from| rank >= from);
        if reached(self.refuse_from_rank) {
            RankDecision::Refuse
        } else if reached(self.tencent_from_rank) && tencent_enabled {
            RankDecision::Level(Level::Tencent)
        } else if reached(self.tencent_from_rank) || reached(self.image_from_rank) {
            RankDecision::Level(Level::Image)
        } else {
            RankDecision::Level(Level::None)
        }
    }
}

/// A rank key: 0-4, or `null` for never.
fn optional_rank(key: &Entry) -> Result<Option<u8>, ConfigError> {
    if key.value().is_null() {
        return Ok(None);
    }
    key.int_in(RANK_RANGE)
        .map(Some)
        .map_err(|_| key.invalid("an integer from 0 to 4 (WeChat's ranks), or null for never"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(
        value: Value,
        inherited: Option<WxRiskSettings>,
    ) -> Result<Option<WxRiskSettings>, String> {
        let entry = Entry::new(CAPTCHA_CONFIG, "guard.", "wxRisk", &value);
        WxRiskSettings::parse(&entry, inherited).map_err(|e| e.to_string())
    }

    fn defaults(scene: RiskScene) -> WxRiskSettings {
        WxRiskSettings {
            scene,
            image_from_rank: Some(2),
            tencent_from_rank: Some(3),
            refuse_from_rank: None,
            cache_seconds: 600,
        }
    }

    #[test]
    fn blocks_take_defaults_merge_over_the_inherited_one_and_null_turns_off() {
        let register = parse(json!({"scene": "register"}), None).unwrap();
        assert_eq!(register, Some(defaults(RiskScene::Register)));
        let full = parse(
            json!({"scene": "marketing", "imageFromRank": 1, "tencentFromRank": 2,
                   "refuseFromRank": 4, "cacheSeconds": 60}),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (full.scene, full.image_from_rank, full.tencent_from_rank),
            (RiskScene::Marketing, Some(1), Some(2))
        );
        assert_eq!((full.refuse_from_rank, full.cache_seconds), (Some(4), 60));
        // A scene block changes one key of the root's, scene included.
        let merged = parse(json!({"cacheSeconds": 120}), Some(full))
            .unwrap()
            .unwrap();
        assert_eq!(
            merged,
            WxRiskSettings {
                cache_seconds: 120,
                ..full
            }
        );
        let never = parse(json!({"imageFromRank": null}), Some(full))
            .unwrap()
            .unwrap();
        assert_eq!(never.image_from_rank, None);
        assert_eq!(parse(Value::Null, Some(full)).unwrap(), None);
    }

    #[test]
    fn bad_blocks_name_key_value_and_range() {
        let cases = [
            (json!({}), "guard.wxRisk.scene = (missing): required"),
            (
                json!({"scene": "ugc"}),
                "guard.wxRisk.scene = \"ugc\": one of",
            ),
            (
                json!({"scene": "register", "imageFromRank": 5}),
                "guard.wxRisk.imageFromRank = 5: an integer from 0 to 4",
            ),
            (
                json!({"scene": "register", "refuseFromRank": "4"}),
                "guard.wxRisk.refuseFromRank",
            ),
            (
                json!({"scene": "register", "cacheSeconds": 59}),
                "guard.wxRisk.cacheSeconds = 59: an integer from 60 to 86400",
            ),
            (
                json!({"scene": "register", "cacheSeconds": 86401}),
                "from 60 to 86400",
            ),
            (
                json!({"scene": "register", "imageFromRank": 4}),
                "guard.wxRisk.tencentFromRank = 3: must be >= guard.wxRisk.imageFromRank (4)",
            ),
            (
                json!({"scene": "register", "refuseFromRank": 2}),
                "guard.wxRisk.refuseFromRank = 2: must be >= guard.wxRisk.tencentFromRank (3)",
            ),
            (
                json!({"scene": "register", "tencentFromRank": null, "refuseFromRank": 1}),
                "refuseFromRank = 1: must be >= guard.wxRisk.imageFromRank (2)",
            ),
            (
                json!({"scene": "register", "imageFromrank": 1}),
                "unknown key guard.wxRisk.imageFromrank",
            ),
            (
                json!(true),
                "guard.wxRisk = true: an object with keys scene",
            ),
        ];
        for (value, want) in cases {
            let err = parse(value.clone(), None).unwrap_err();
            assert!(
                err.contains(want) && err.starts_with("CAPTCHA_CONFIG: "),
                "{value}: {err}"
            );
        }
    }

    #[test]
    fn ranks_map_to_levels_and_refusal() {
        let settings = WxRiskSettings {
            refuse_from_rank: Some(4),
            ..defaults(RiskScene::Register)
        };
        let decisions: Vec<_> = (0..=4).map(|rank| settings.decision(rank, true)).collect();
        assert_eq!(
            decisions,
            [
                RankDecision::Level(Level::None),
                RankDecision::Level(Level::None),
                RankDecision::Level(Level::Image),
                RankDecision::Level(Level::Tencent),
                RankDecision::Refuse,
            ]
        );
        // Without Tencent captchas the ticket band asks for an image pass.
        assert_eq!(
            settings.decision(3, false),
            RankDecision::Level(Level::Image)
        );
        assert_eq!(settings.decision(4, false), RankDecision::Refuse);
        // null: never. Only Tencent from 3, nothing refused.
        let tencent_only = WxRiskSettings {
            image_from_rank: None,
            ..defaults(RiskScene::Marketing)
        };
        assert_eq!(
            tencent_only.decision(2, true),
            RankDecision::Level(Level::None)
        );
        assert_eq!(
            tencent_only.decision(4, true),
            RankDecision::Level(Level::Tencent)
        );
        // From rank 0: everyone.
        let everyone = WxRiskSettings {
            image_from_rank: Some(0),
            ..defaults(RiskScene::Register)
        };
        assert_eq!(
            everyone.decision(0, true),
            RankDecision::Level(Level::Image)
        );
    }
}
