//! The captcha keys of `CAPTCHA_CONFIG`, in the shape of uni-captcha's
//! `uni-config-center/uni-captcha/config.json`: root keys are defaults,
//! `scene.<name>` blocks override them key by key.
//!
//! Parsed and validated once, at start-up, through [`crate::config::blocks`]:
//! every rejection names the key (with its scene path, e.g.
//! `scene.login.size`), the value and what is allowed. The other keys of
//! the same blocks (`rateLimit`, `guard` …) are their domains' parts;
//! [`crate::settings`] refuses the keys no part reads.
//!
//! Adding a key: add a field to [`SceneConfig`] (and its default), then its
//! name in [`CaptchaConfig::KEYS`] and one arm in `Raw::apply`.

use std::ops::RangeInclusive;

use super::code::{self, CodeSpec, MathOperator, MathSpec};
use crate::config::blocks::{Part, PerScene, SceneBlocks};
use crate::config::{CAPTCHA_CONFIG, ConfigError, Entry};

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
        }
    }
}

impl Part for Raw {
    const KEYS: &'static [&'static str] = &[
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
    ];

    fn apply(&mut self, key: &Entry) -> Result<(), ConfigError> {
        match key.name() {
            "width" => self.width = key.int_in(WIDTH_RANGE)?,
            "height" => self.height = key.int_in(HEIGHT_RANGE)?,
            "size" => self.size = key.int_in(SIZE_RANGE)?,
            "noise" => self.noise = key.int_in(NOISE_RANGE)?,
            "mathMin" => self.math_min = key.int_in(MATH_RANGE)?,
            "mathMax" => self.math_max = key.int_in(MATH_RANGE)?,
            "expiresDate" => self.expires_date = key.int_in(EXPIRES_RANGE)?,
            "maxAttempts" => self.max_attempts = key.int_in(MAX_ATTEMPTS_RANGE)?,
            "color" => self.color = key.bool()?,
            "clientSize" => self.client_size = key.bool()?,
            "mathExpr" => self.math_expr = key.bool()?,
            "fontSize" => self.font_size = key.number_in(FONT_SIZE_RANGE)?,
            "background" => {
                self.background =
                    key.value().as_str().and_then(parse_colour).ok_or_else(|| {
                        key.invalid("\"#RGB\", \"#RRGGBB\", or \"\" for transparent")
                    })?;
            }
            "ignoreChars" => self.ignore_chars = key.string(MAX_IGNORE_CHARS)?.to_owned(),
            "mathOperator" => {
                self.math_operator = match key.value().as_str().map(str::trim) {
                    Some("") | Some("+-") | Some("+/-") => MathOperator::Random,
                    Some("+") => MathOperator::Add,
                    Some("-") => MathOperator::Sub,
                    _ => return Err(key.invalid("\"+\", \"-\", or \"\" (random of + and -)")),
                };
            }
            _ => return Err(key.unknown(Self::KEYS)),
        }
        Ok(())
    }

    fn check(&self, path: &str) -> Result<(), ConfigError> {
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

/// The captcha settings of the root and of every scene with a block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CaptchaConfig(PerScene<SceneConfig>);

impl CaptchaConfig {
    /// The captcha keys of a root or scene block.
    pub const KEYS: &'static [&'static str] = Raw::KEYS;

    /// The captcha keys of `CAPTCHA_CONFIG` (see [`SceneBlocks::from_env`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_blocks(&SceneBlocks::from_env()?)
    }

    /// The captcha keys of inline JSON (starts with `{`) or of a JSON file.
    pub fn from_source(source: &str) -> Result<Self, ConfigError> {
        Self::from_blocks(&SceneBlocks::from_source(source)?)
    }

    /// The captcha keys of a config.json text (other keys are not read).
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        Self::from_blocks(&SceneBlocks::from_json(json)?)
    }

    /// The captcha keys of the root and every scene block, validated.
    pub fn from_blocks(blocks: &SceneBlocks) -> Result<Self, ConfigError> {
        Ok(Self(blocks.per_scene::<Raw>()?.map(Raw::finish)))
    }

    /// The settings of `scene`: root defaults merged with `scene.<name>`, key
    /// by key. A scene without a block gets the root settings.
    pub fn scene(&self, scene: &str) -> &SceneConfig {
        self.0.scene(scene)
    }

    /// The root settings (defaults of every scene).
    pub fn root(&self) -> &SceneConfig {
        self.0.root()
    }

    /// Names of the scenes that have their own block.
    pub fn scene_names(&self) -> impl Iterator<Item = &str> {
        self.0.scene_names()
    }

    /// Largest configured width and height over root and every scene.
    pub fn max_dimensions(&self) -> (u32, u32) {
        self.0
            .all()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> ConfigError {
        CaptchaConfig::from_json(json).expect_err(json)
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
