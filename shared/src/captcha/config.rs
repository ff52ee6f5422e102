//! Captcha configuration in the shape of uni-captcha's
//! `uni-config-center/uni-captcha/config.json`: root keys are defaults,
//! `scene.<name>` blocks override them key by key.
//!
//! Parsed and validated once, at start-up, with the JSON toolkit of
//! [`crate::config`]: every rejection names the key (with its scene path, e.g.
//! `scene.login.size`), the value and what is allowed. Unknown keys are
//! refused so that a typo cannot pass silently.
//!
//! Adding a key: add a field to [`SceneConfig`] (and its default), then one
//! arm in [`apply_key`] and its name in [`KNOWN_KEYS`]. A nested block (such
//! as `rateLimit`) is parsed by its own `apply` from that arm.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use serde_json::{Map, Value};

use super::code::{self, CodeSpec, MathOperator, MathSpec};
use crate::config::{CAPTCHA_CONFIG, ConfigError, Entry, parse_object, read_json_source};
use crate::domain::Scene;
use crate::guard::config::{GuardConfig, GuardSettings, PASS_TTL_RANGE};
use crate::ratelimit::RateLimitConfig;

/// Allowed image width in pixels, for the config and for a client's request.
pub const WIDTH_RANGE: RangeInclusive<u32> = 60..=600;
/// Allowed image height in pixels, for the config and for a client's request.
pub const HEIGHT_RANGE: RangeInclusive<u32> = 24..=300;
/// Allowed code length (`size`).
pub const SIZE_RANGE: RangeInclusive<usize> = 1..=6;
/// Allowed number of noise curves (`noise`).
pub const NOISE_RANGE: RangeInclusive<u32> = 0..=20;
/// Allowed nominal glyph size in pixels (`fontSize`); the renderer shrinks it
/// further when the glyphs would not fit the image.
pub const FONT_SIZE_RANGE: RangeInclusive<f32> = 10.0..=200.0;
/// Allowed operands in math mode (`mathMin`, `mathMax`).
pub const MATH_RANGE: RangeInclusive<i64> = 0..=999;
/// Allowed lifetime of a captcha in seconds (`expiresDate`).
pub const EXPIRES_RANGE: RangeInclusive<u64> = 10..=86_400;
/// Allowed answers per captcha (`maxAttempts`).
pub const MAX_ATTEMPTS_RANGE: RangeInclusive<u32> = 1..=10;
/// Longest `ignoreChars` string.
pub const MAX_IGNORE_CHARS: usize = 256;
/// Fewest code characters that must remain after `ignoreChars`.
pub const MIN_ALPHABET: usize = 8;

/// The part of `CAPTCHA_CONFIG` a function reads. The captcha functions
/// read (and so check) all of it; the others read only their own keys, so
/// that a typo in a captcha-only key (`width`, `size` …, or an unknown key)
/// stops the captcha functions but not logins, tickets or the guard, while a
/// bad value in a key they do read still stops them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigPart {
    /// Every key: create-, refresh- and verify-captcha (and the dev server).
    All,
    /// The root `rateLimit` block: wx-login.
    RateLimit,
    /// The guard keys (`guard`, `passTtlSeconds`, `tencent`) of the root and
    /// of every scene: the guard and the authorizer.
    Guard,
    /// Both of the above: verify-ticket.
    RateLimitAndGuard,
}

/// The keys of a scene (or the root) that make its guard settings.
const GUARD_PART_KEYS: &[&str] = &["guard", "passTtlSeconds", "tencent"];

impl ConfigPart {
    fn reads_rate_limit(self) -> bool {
        matches!(
            self,
            ConfigPart::All | ConfigPart::RateLimit | ConfigPart::RateLimitAndGuard
        )
    }

    fn reads_guard(self) -> bool {
        matches!(
            self,
            ConfigPart::All | ConfigPart::Guard | ConfigPart::RateLimitAndGuard
        )
    }

    /// Whether this part reads `key` of the root block (`at_root`) or of a
    /// scene block.
    fn reads(self, key: &str, at_root: bool) -> bool {
        self == ConfigPart::All
            || (at_root && key == "rateLimit" && self.reads_rate_limit())
            || (GUARD_PART_KEYS.contains(&key) && self.reads_guard())
    }
}

/// Every key a root block or a scene block accepts (besides `scene` at root).
pub const KNOWN_KEYS: &[&str] = &[
    "width",
    "height",
    "background",
    "size",
    "noise",
    "color",
    "fontSize",
    "ignoreChars",
    "mathExpr",
    "mathMin",
    "mathMax",
    "mathOperator",
    "expiresDate",
    "maxAttempts",
    "clientSize",
    "rateLimit",
    "guard",
    "passTtlSeconds",
    "tencent",
];

/// The settings of one scene: root defaults merged with `scene.<name>`.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneConfig {
    pub width: u32,
    pub height: u32,
    /// `None` = transparent (`""` in the config).
    pub background: Option<[u8; 3]>,
    pub size: usize,
    pub noise: u32,
    /// Effective colour switch: uni-captcha's rule, true whenever a
    /// background is set, else the configured `color`.
    pub color: bool,
    pub font_size: f32,
    pub ignore_chars: String,
    pub math_expr: bool,
    pub math_min: i64,
    pub math_max: i64,
    pub math_operator: MathOperator,
    /// Lifetime of a captcha, seconds.
    pub expires_date: u64,
    pub max_attempts: u32,
    /// Whether a client may choose the image's width and height
    /// (`clientSize`, default false: every image is the configured size, so
    /// a script cannot pick the size its OCR reads best).
    pub client_size: bool,
    /// Limits of our own routes (`rateLimit`, see [`crate::ratelimit`]);
    /// merged key by key like the others.
    pub rate_limit: RateLimitConfig,
    /// The guard of this scene (`guard`, `passTtlSeconds`, `tencent`; see
    /// [`crate::guard`]), merged key by key like the others.
    pub guard: GuardSettings,
}

impl Default for SceneConfig {
    fn default() -> Self {
        Raw::default().finish()
    }
}

impl SceneConfig {
    /// What this scene's codes are drawn from.
    pub fn code(&self) -> CodeSpec<'_> {
        CodeSpec {
            size: self.size,
            ignore_chars: &self.ignore_chars,
            math: self.math_expr.then_some(MathSpec {
                min: self.math_min,
                max: self.math_max,
                operator: self.math_operator,
            }),
        }
    }
}
/// Settings as written, before uni-captcha's colour rule is applied (the
/// merge is key by key on these, so a scene that only sets `background: ""`
/// keeps the root's own `color`).
#[derive(Debug, Clone, PartialEq)]
struct Raw {
    width: u32,
    height: u32,
    background: Option<[u8; 3]>,
    size: usize,
    noise: u32,
    color: bool,
    font_size: f32,
    ignore_chars: String,
    math_expr: bool,
    math_min: i64,
    math_max: i64,
    math_operator: MathOperator,
    expires_date: u64,
    max_attempts: u32,
    client_size: bool,
    rate_limit: RateLimitConfig,
    guard: GuardSettings,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            width: 150,
            height: 50,
            background: Some([0xFF, 0xFA, 0xE8]),
            size: 4,
            noise: 4,
            color: false,
            font_size: 40.0,
            ignore_chars: String::new(),
            math_expr: false,
            math_min: 1,
            math_max: 9,
            math_operator: MathOperator::Random,
            expires_date: 180,
            max_attempts: 1,
            client_size: false,
            rate_limit: RateLimitConfig::default(),
            guard: GuardSettings::default(),
        }
    }
}

impl Raw {
    fn finish(self) -> SceneConfig {
        SceneConfig {
            width: self.width,
            height: self.height,
            background: self.background,
            size: self.size,
            noise: self.noise,
            color: self.color || self.background.is_some(),
            font_size: self.font_size,
            ignore_chars: self.ignore_chars,
            math_expr: self.math_expr,
            math_min: self.math_min,
            math_max: self.math_max,
            math_operator: self.math_operator,
            expires_date: self.expires_date,
            max_attempts: self.max_attempts,
            client_size: self.client_size,
            rate_limit: self.rate_limit,
            guard: self.guard,
        }
    }

    /// Checks that need more than one key, among those `part` reads;
    /// `path` is the block's prefix.
    fn check(&self, path: &str, part: ConfigPart) -> Result<(), ConfigError> {
        if part.reads_guard() {
            self.guard.check(path)?;
        }
        if part != ConfigPart::All {
            return Ok(());
        }
        if self.math_min > self.math_max {
            return Err(ConfigError::Invalid {
                setting: CAPTCHA_CONFIG,
                key: format!("{path}mathMin"),
                value: self.math_min.to_string(),
                allowed: format!("must be <= {path}mathMax ({})", self.math_max),
            });
        }
        let left = code::alphabet(&self.ignore_chars).len();
        if left < MIN_ALPHABET {
            return Err(ConfigError::Invalid {
                setting: CAPTCHA_CONFIG,
                key: format!("{path}ignoreChars"),
                value: format!("{:?}", self.ignore_chars),
                allowed: format!(
                    "leaves {left} code characters, at least {MIN_ALPHABET} must remain of {:?}",
                    code::DEFAULT_ALPHABET
                ),
            });
        }
        Ok(())
    }
}

/// The whole captcha configuration: root defaults and named scenes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CaptchaConfig {
    root: SceneConfig,
    scenes: HashMap<String, SceneConfig>,
}

impl CaptchaConfig {
    /// Reads `CAPTCHA_CONFIG`: inline JSON when it starts with `{`, else a
    /// file path. Unset or empty: every default.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_part(ConfigPart::All)
    }

    /// Reads the `part` of `CAPTCHA_CONFIG` a function uses (see
    /// [`ConfigPart`]); every other key keeps its default.
    pub fn from_env_part(part: ConfigPart) -> Result<Self, ConfigError> {
        match std::env::var(CAPTCHA_CONFIG) {
            Ok(v) if !v.trim().is_empty() => {
                Self::from_json_part(&read_json_source(CAPTCHA_CONFIG, &v)?, part)
            }
            _ => Ok(Self::default()),
        }
    }

    /// Inline JSON (starts with `{`) or a path to a JSON file.
    pub fn from_source(source: &str) -> Result<Self, ConfigError> {
        Self::from_json(&read_json_source(CAPTCHA_CONFIG, source)?)
    }

    /// Parses and validates a config.json text.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        Self::from_json_part(json, ConfigPart::All)
    }

    /// Parses and validates the `part` of a config.json text; keys outside
    /// it are neither read nor checked.
    pub fn from_json_part(json: &str, part: ConfigPart) -> Result<Self, ConfigError> {
        let root_obj = parse_object(CAPTCHA_CONFIG, json)?;
        let mut root = Raw::default();
        let mut scene_block: Option<&Map<String, Value>> = None;
        for (key, value) in &root_obj {
            let entry = Entry::new(CAPTCHA_CONFIG, "", key, value);
            if key == "scene" {
                match value {
                    // wx-login reads no scene.
                    _ if part == ConfigPart::RateLimit => {}
                    Value::Object(m) => scene_block = Some(m),
                    Value::Null => {}
                    _ => return Err(entry.invalid("an object of scene blocks")),
                }
                continue;
            }
            if part.reads(key, true) {
                apply_key(&mut root, &entry)?;
            }
        }
        root.check("", part)?;
        let mut scenes = HashMap::new();
        for (name, value) in scene_block.into_iter().flatten() {
            let entry = Entry::new(CAPTCHA_CONFIG, "scene.", name, value);
            if !Scene::is_valid(name) {
                return Err(ConfigError::Invalid {
                    setting: CAPTCHA_CONFIG,
                    key: entry.path(),
                    value: format!("{name:?}"),
                    allowed: "a scene name is 1-64 of A-Z a-z 0-9 _ -".into(),
                });
            }
            let path = format!("scene.{name}.");
            let Value::Object(obj) = value else {
                return Err(entry.invalid("an object"));
            };
            let mut raw = root.clone();
            for (key, value) in obj {
                if part.reads(key, false) {
                    apply_key(&mut raw, &Entry::new(CAPTCHA_CONFIG, &path, key, value))?;
                }
            }
            raw.check(&path, part)?;
            scenes.insert(name.clone(), raw.finish());
        }
        Ok(CaptchaConfig {
            root: root.finish(),
            scenes,
        })
    }

    /// The settings of `scene`: root defaults merged with `scene.<name>`, key
    /// by key. A scene without a block gets the root settings.
    pub fn scene(&self, scene: &str) -> &SceneConfig {
        self.scenes.get(scene).unwrap_or(&self.root)
    }

    /// The root settings (defaults of every scene).
    pub fn root(&self) -> &SceneConfig {
        &self.root
    }

    /// Names of the scenes that have their own block.
    pub fn scene_names(&self) -> impl Iterator<Item = &str> {
        self.scenes.keys().map(String::as_str)
    }

    /// The counter bucket of `scene`: its own name when it has a block,
    /// else `*`, shared by every scene without one (so that inventing scene
    /// names does not multiply a client's rate limits).
    pub fn scene_bucket<'a>(&self, scene: &'a str) -> &'a str {
        if self.scenes.contains_key(scene) {
            scene
        } else {
            "*"
        }
    }

    /// The guard settings of every scene.
    pub fn guard(&self) -> GuardConfig {
        GuardConfig::new(
            self.root.guard,
            self.scenes
                .iter()
                .map(|(name, scene)| (name.clone(), scene.guard))
                .collect(),
        )
    }

    /// Largest configured width and height over root and every scene.
    pub fn max_dimensions(&self) -> (u32, u32) {
        self.scenes
            .values()
            .chain(std::iter::once(&self.root))
            .fold((0, 0), |(w, h), s| (w.max(s.width), h.max(s.height)))
    }
}

/// `#RGB`, `#RRGGBB`, or `""` (transparent).
pub fn parse_colour(s: &str) -> Option<Option<[u8; 3]>> {
    let s = s.trim();
    if s.is_empty() {
        return Some(None);
    }
    let hex = s.strip_prefix('#')?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let nib = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).ok();
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    match hex.len() {
        3 => Some(Some([nib(0)? * 17, nib(1)? * 17, nib(2)? * 17])),
        6 => Some(Some([byte(0)?, byte(2)?, byte(4)?])),
        _ => None,
    }
}

/// Applies one key of a root or scene block.
fn apply_key(raw: &mut Raw, key: &Entry) -> Result<(), ConfigError> {
    match key.name() {
        "width" => raw.width = key.int_in(WIDTH_RANGE)?,
        "height" => raw.height = key.int_in(HEIGHT_RANGE)?,
        "size" => raw.size = key.int_in(SIZE_RANGE)?,
        "noise" => raw.noise = key.int_in(NOISE_RANGE)?,
        "mathMin" => raw.math_min = key.int_in(MATH_RANGE)?,
        "mathMax" => raw.math_max = key.int_in(MATH_RANGE)?,
        "expiresDate" => raw.expires_date = key.int_in(EXPIRES_RANGE)?,
        "maxAttempts" => raw.max_attempts = key.int_in(MAX_ATTEMPTS_RANGE)?,
        "color" => raw.color = key.bool()?,
        "clientSize" => raw.client_size = key.bool()?,
        "rateLimit" => raw.rate_limit.apply(key)?,
        "guard" => raw.guard.apply_guard(key)?,
        "tencent" => raw.guard.apply_tencent(key)?,
        "passTtlSeconds" => raw.guard.pass_ttl_seconds = key.int_in(PASS_TTL_RANGE)?,
        "mathExpr" => raw.math_expr = key.bool()?,
        "fontSize" => raw.font_size = key.number_in(FONT_SIZE_RANGE)?,
        "background" => {
            raw.background = key
                .value()
                .as_str()
                .and_then(parse_colour)
                .ok_or_else(|| key.invalid("\"#RGB\", \"#RRGGBB\", or \"\" for transparent"))?;
        }
        "ignoreChars" => raw.ignore_chars = key.string(MAX_IGNORE_CHARS)?.to_owned(),
        "mathOperator" => {
            raw.math_operator = match key.value().as_str().map(str::trim) {
                Some("") | Some("+-") | Some("+/-") => MathOperator::Random,
                Some("+") => MathOperator::Add,
                Some("-") => MathOperator::Sub,
                _ => return Err(key.invalid("\"+\", \"-\", or \"\" (random of + and -)")),
            };
        }
        _ => {
            let mut allowed = KNOWN_KEYS.to_vec();
            if key.path() == key.name() {
                allowed.push("scene");
            }
            return Err(key.unknown(&allowed));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> ConfigError {
        CaptchaConfig::from_json(json).expect_err(json)
    }

    fn err_key(json: &str) -> String {
        match err(json) {
            ConfigError::Invalid { key, .. } | ConfigError::UnknownKey { key, .. } => key,
            other => panic!("unexpected error {other:?} for {json}"),
        }
    }

    #[test]
    fn defaults_match_uni_captcha() {
        let c = CaptchaConfig::from_json("{}").unwrap();
        let s = c.scene("anything");
        assert_eq!((s.width, s.height), (150, 50));
        assert_eq!(s.background, Some([0xFF, 0xFA, 0xE8]));
        assert_eq!(s.size, 4);
        assert_eq!(s.noise, 4);
        assert!(s.color, "a background is set, so color is on");
        assert_eq!(s.font_size, 40.0);
        assert_eq!(s.ignore_chars, "");
        assert!(!s.math_expr);
        assert_eq!((s.math_min, s.math_max), (1, 9));
        assert_eq!(s.math_operator, MathOperator::Random);
        assert_eq!(s.expires_date, 180);
        assert_eq!(s.max_attempts, 1);
        assert_eq!(c, CaptchaConfig::default());
    }

    #[test]
    fn scene_overrides_root_key_by_key() {
        let c = CaptchaConfig::from_json(
            r##"{"width": 200, "size": 5, "noise": 2,
                "scene": {"login": {"size": 6, "mathExpr": true},
                          "pay": {"width": 120}}}"##,
        )
        .unwrap();
        let login = c.scene("login");
        assert_eq!(login.size, 6);
        assert!(login.math_expr);
        assert_eq!(login.width, 200, "inherited from root");
        assert_eq!(login.noise, 2, "inherited from root");
        assert_eq!(login.height, 50, "default");
        let pay = c.scene("pay");
        assert_eq!((pay.width, pay.size), (120, 5));
        assert!(!pay.math_expr);
        let other = c.scene("register");
        assert_eq!((other.width, other.size), (200, 5));
        assert_eq!(c.root(), other);
        assert_eq!(c.max_dimensions(), (200, 50));
    }

    #[test]
    fn color_follows_background_after_the_merge() {
        let c = CaptchaConfig::from_json(
            r##"{"background": "", "scene": {"a": {"background": "#fff"}, "b": {"color": true}, "c": {}}}"##,
        )
        .unwrap();
        assert!(!c.root().color);
        assert_eq!(c.root().background, None);
        assert!(c.scene("a").color);
        assert_eq!(c.scene("a").background, Some([255, 255, 255]));
        assert!(c.scene("b").color);
        assert!(!c.scene("c").color);
        // A scene that clears the background keeps the root's own color flag.
        let c = CaptchaConfig::from_json(r##"{"scene": {"t": {"background": ""}}}"##).unwrap();
        assert!(!c.scene("t").color);
        assert!(c.root().color);
    }

    #[test]
    fn colours_parse() {
        assert_eq!(parse_colour("#abc"), Some(Some([0xAA, 0xBB, 0xCC])));
        assert_eq!(parse_colour("#FFFAE8"), Some(Some([0xFF, 0xFA, 0xE8])));
        assert_eq!(parse_colour(""), Some(None));
        for bad in ["fff", "#ffff", "#ggg", "#12345", "red", "#+12", "#１２３"] {
            assert_eq!(parse_colour(bad), None, "{bad}");
        }
    }

    #[test]
    fn math_operator_values() {
        for (v, op) in [
            ("", MathOperator::Random),
            ("+", MathOperator::Add),
            ("-", MathOperator::Sub),
        ] {
            let c = CaptchaConfig::from_json(&format!(r#"{{"mathOperator": "{v}"}}"#)).unwrap();
            assert_eq!(c.root().math_operator, op);
        }
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
        use crate::ratelimit::RateLimitConfig;
        let c = CaptchaConfig::from_json("{}").unwrap();
        assert_eq!(c.root().rate_limit, RateLimitConfig::default());
        assert!(c.root().rate_limit.enabled);
        let c = CaptchaConfig::from_json(
            r#"{"rateLimit": {"windowSeconds": 30, "createPerIp": 5},
                "scene": {"pay": {"rateLimit": {"createPerIp": 2, "verifyPerIp": 0}}}}"#,
        )
        .unwrap();
        let pay = c.scene("pay").rate_limit;
        assert_eq!(
            (pay.window_seconds, pay.create_per_ip, pay.verify_per_ip),
            (30, 2, 0)
        );
        assert_eq!(pay.create_per_device, 20, "default kept");
        assert_eq!(c.root().rate_limit.create_per_ip, 5);
        assert_eq!(c.scene_bucket("pay"), "pay");
        assert_eq!(c.scene_bucket("other"), "*");
    }

    #[test]
    fn guard_settings_default_and_merge_key_by_key() {
        use crate::guard::config::GuardMode;
        let c = CaptchaConfig::from_json("{}").unwrap();
        assert_eq!(c.root().guard, GuardSettings::default());
        assert_eq!(c.root().guard.mode, GuardMode::Off);
        assert_eq!(c.root().guard.pass_ttl_seconds, 300);
        let c = CaptchaConfig::from_json(
            r#"{"passTtlSeconds": 600, "guard": {"failureWindowSeconds": 60},
                "scene": {"signup": {"guard": {"mode": "adaptive", "imageAfterFailures": 2},
                                     "tencent": {"acceptEvil": true}}}}"#,
        )
        .unwrap();
        let signup = c.scene("signup").guard;
        assert_eq!(signup.mode, GuardMode::Adaptive);
        assert_eq!(signup.image_after_failures, 2);
        assert_eq!(signup.tencent_after_failures, 10, "default kept");
        assert_eq!(signup.failure_window_seconds, 60, "inherited from root");
        assert_eq!(signup.pass_ttl_seconds, 600, "inherited from root");
        assert!(signup.accept_evil);
        let guard = c.guard();
        assert_eq!(*guard.scene(&Scene::parse("signup").unwrap()), signup);
        assert_eq!(
            guard.scene(&Scene::parse("other").unwrap()).mode,
            GuardMode::Off
        );
    }

    #[test]
    fn tencent_policy_defaults_to_reject_and_names_bad_values() {
        use crate::guard::config::{Degrade, TencentPolicy};
        let c = CaptchaConfig::from_json_part(
            r#"{"tencent": {"unreachable": "admit"},
                "scene": {"login": {"tencent": {"disasterTicket": "admit", "code21": "reject",
                                                "code26": "admit"}}}}"#,
            ConfigPart::RateLimitAndGuard,
        )
        .unwrap();
        assert_eq!(
            c.root().guard.tencent_policy,
            TencentPolicy {
                unreachable: Degrade::Admit,
                ..TencentPolicy::default()
            }
        );
        let login = c.scene("login").guard.tencent_policy;
        assert_eq!(login.disaster_ticket, Degrade::Admit);
        assert_eq!(login.code21, Degrade::Reject);
        assert_eq!(login.code26, Degrade::Admit);
        assert_eq!(login.unreachable, Degrade::Admit, "inherited from root");
        assert_eq!(
            CaptchaConfig::from_json("{}")
                .unwrap()
                .root()
                .guard
                .tencent_policy,
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
                let text = CaptchaConfig::from_json_part(json, part)
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
            CaptchaConfig::from_json_part(
                r#"{"tencent": {"code21": "maybe"}}"#,
                ConfigPart::RateLimit
            )
            .is_ok()
        );
    }

    #[test]
    fn partial_readers_skip_captcha_only_keys_but_check_their_own() {
        use crate::guard::config::GuardMode;
        // Typos and bad values in captcha-only keys, root and scene.
        let captcha_typos = r#"{"widht": 5, "size": 99, "mathMin": 9, "mathMax": 1,
            "rateLimit": {"wxLoginPerIp": 7, "ticketPerIp": 8},
            "scene": {"login": {"sise": 4, "width": "wide", "rateLimit": {"nope": 1},
                                "guard": {"mode": "adaptive"}, "passTtlSeconds": 60}}}"#;
        assert!(CaptchaConfig::from_json_part(captcha_typos, ConfigPart::All).is_err());
        let login = CaptchaConfig::from_json_part(captcha_typos, ConfigPart::RateLimit).unwrap();
        assert_eq!(login.root().rate_limit.wx_login_per_ip, 7);
        assert_eq!(login.scene_names().count(), 0, "wx-login reads no scene");
        for part in [ConfigPart::Guard, ConfigPart::RateLimitAndGuard] {
            let c = CaptchaConfig::from_json_part(captcha_typos, part).unwrap();
            let guard = c.guard();
            let login = guard.scene(&Scene::parse("login").unwrap());
            assert_eq!(login.mode, GuardMode::Adaptive);
            assert_eq!(login.pass_ttl_seconds, 60);
            let limits = c.root().rate_limit;
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
            let err = CaptchaConfig::from_json_part(json, *part).expect_err(json);
            let msg = err.to_string();
            assert!(
                msg.contains(key) && msg.contains("CAPTCHA_CONFIG"),
                "{json}: {msg}"
            );
        }
        // The guard reads no rateLimit: a bad one there is the captcha
        // functions' and wx-login's business.
        assert!(
            CaptchaConfig::from_json_part(r#"{"rateLimit": {"x": 1}}"#, ConfigPart::Guard).is_ok()
        );
        // Not JSON stops every part.
        assert!(CaptchaConfig::from_json_part("{", ConfigPart::RateLimit).is_err());
    }

    #[test]
    fn not_json_or_not_object_is_refused() {
        assert!(matches!(err("{"), ConfigError::Json { .. }));
        assert!(matches!(err("[1]"), ConfigError::Json { .. }));
    }

    #[test]
    fn source_is_inline_json_or_a_path() {
        let c = CaptchaConfig::from_source(r#"  {"size": 5}"#).unwrap();
        assert_eq!(c.root().size, 5);
        let dir = std::env::temp_dir().join(format!("gatehouse-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(&path, r#"{"scene": {"pay": {"size": 6}}}"#).unwrap();
        let c = CaptchaConfig::from_source(path.to_str().unwrap()).unwrap();
        assert_eq!(c.scene("pay").size, 6);
        let missing = dir.join("missing.json");
        assert!(matches!(
            CaptchaConfig::from_source(missing.to_str().unwrap()),
            Err(ConfigError::Read { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
