//! `CAPTCHA_CONFIG` read once, and the one way each part of it is parsed.
//!
//! The variable holds uni-captcha's `config.json` shape: root keys are
//! defaults, `scene.<name>` blocks override them key by key. Each domain
//! owns some of those keys (its *part*) and parses them by implementing
//! [`Part`]; [`SceneBlocks`] merges root and scene blocks for it, names
//! every refusal with its scene path (`scene.login.size`) and refuses the
//! keys no part reads. This module knows no domain: which parts exist, and
//! which function reads which, is [`crate::settings`]'s business.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{CAPTCHA_CONFIG, ConfigError, Entry, parse_object, read_json_source};
use crate::domain::Scene;

/// The key of the root block that holds the scene blocks.
const SCENE_KEY: &str = "scene";

/// A block of keys: the root, or one scene's.
type Block = Map<String, Value>;

/// The keys of `CAPTCHA_CONFIG` that one domain owns, and how it reads
/// them. A scene block starts from the root's parsed value and applies its
/// own keys on top, so a nested block (`rateLimit`, `guard` …) merges key by
/// key as well.
pub trait Part: Clone + Default {
    /// The keys of a root or scene block this part reads.
    const KEYS: &'static [&'static str];

    /// Sets this part from `key`, one of [`Part::KEYS`] in a root or scene
    /// block (its path is in its messages).
    fn apply(&mut self, key: &Entry) -> Result<(), ConfigError>;

    /// Checks that need more than one key, once a block is applied; `path`
    /// is the block's prefix (`""` or `scene.login.`).
    fn check(&self, _path: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// `CAPTCHA_CONFIG` as read: the root block (with its `scene` key), not yet
/// parsed, so that each function parses only the parts it uses.
#[derive(Debug, Clone, Default)]
pub struct SceneBlocks {
    root: Block,
}

impl SceneBlocks {
    /// Reads `CAPTCHA_CONFIG`: inline JSON when it starts with `{`, else a
    /// file path. Unset or empty: no key, every default.
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var(CAPTCHA_CONFIG) {
            Ok(v) if !v.trim().is_empty() => Self::from_source(&v),
            _ => Ok(Self::default()),
        }
    }

    /// Inline JSON (starts with `{`) or a path to a JSON file.
    pub fn from_source(source: &str) -> Result<Self, ConfigError> {
        Self::from_json(&read_json_source(CAPTCHA_CONFIG, source)?)
    }

    /// A config.json text, which must be one JSON object.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            root: parse_object(CAPTCHA_CONFIG, json)?,
        })
    }

    /// Declares scene `name` (an empty block: the root's settings) unless
    /// a block of it is there, or `scene` is no object (which parsing then
    /// refuses as usual).
    pub fn declare_scene(&mut self, name: &str) {
        let scenes = self
            .root
            .entry(SCENE_KEY)
            .or_insert_with(|| Value::Object(Block::new()));
        if let Value::Object(scenes) = scenes {
            scenes
                .entry(name)
                .or_insert_with(|| Value::Object(Block::new()));
        }
    }

    /// Part `P` of the root block alone (scene blocks are not read, nor
    /// checked).
    pub fn root<P: Part>(&self) -> Result<P, ConfigError> {
        let mut root = P::default();
        apply_block(&mut root, &self.root, "")?;
        Ok(root)
    }

    /// Part `P` of the root and of every scene block, each scene merged
    /// over the root key by key.
    pub fn per_scene<P: Part>(&self) -> Result<PerScene<P>, ConfigError> {
        let root = self.root::<P>()?;
        let mut scenes = BTreeMap::new();
        for (name, block) in self.scenes()? {
            let mut scene = root.clone();
            apply_block(&mut scene, block, &format!("{SCENE_KEY}.{name}."))?;
            scenes.insert(name.to_owned(), scene);
        }
        Ok(PerScene { root, scenes })
    }

    /// Refuses a key of the root or of a scene block that no part reads:
    /// `known` holds every part's [`Part::KEYS`], in the order the message
    /// lists them.
    pub fn refuse_unknown(&self, known: &[&[&str]]) -> Result<(), ConfigError> {
        let mut allowed: Vec<&str> = Vec::new();
        for key in known.iter().copied().flatten() {
            if !allowed.contains(key) {
                allowed.push(key);
            }
        }
        let at_root: Vec<&str> = allowed.iter().copied().chain([SCENE_KEY]).collect();
        let unknown = |block: &Block, path: &str, allowed: &[&str]| {
            block
                .iter()
                .find(|(key, _)| !allowed.contains(&key.as_str()))
                .map(|(key, value)| Entry::new(CAPTCHA_CONFIG, path, key, value).unknown(allowed))
        };
        if let Some(err) = unknown(&self.root, "", &at_root) {
            return Err(err);
        }
        for (name, block) in self.scenes()? {
            if let Some(err) = unknown(block, &format!("{SCENE_KEY}.{name}."), &allowed) {
                return Err(err);
            }
        }
        Ok(())
    }

    /// The scene blocks, each checked to be an object under a scene name.
    fn scenes(&self) -> Result<Vec<(&str, &Block)>, ConfigError> {
        let blocks = match self.root.get(SCENE_KEY) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Object(blocks)) => blocks,
            Some(other) => {
                let entry = Entry::new(CAPTCHA_CONFIG, "", SCENE_KEY, other);
                return Err(entry.invalid("an object of scene blocks"));
            }
        };
        let path = format!("{SCENE_KEY}.");
        blocks
            .iter()
            .map(|(name, value)| {
                let entry = Entry::new(CAPTCHA_CONFIG, &path, name, value);
                if !Scene::is_valid(name) {
                    return Err(ConfigError::Invalid {
                        setting: CAPTCHA_CONFIG,
                        key: entry.path(),
                        value: format!("{name:?}"),
                        allowed: "a scene name is 1-64 of A-Z a-z 0-9 _ -".into(),
                    });
                }
                match value {
                    Value::Object(block) => Ok((name.as_str(), block)),
                    _ => Err(entry.invalid("an object")),
                }
            })
            .collect()
    }
}

/// Applies the keys of `block` that `P` reads, then checks it.
fn apply_block<P: Part>(part: &mut P, block: &Block, path: &str) -> Result<(), ConfigError> {
    for (key, value) in block {
        if P::KEYS.contains(&key.as_str()) {
            part.apply(&Entry::new(CAPTCHA_CONFIG, path, key, value))?;
        }
    }
    part.check(path)
}

/// One part's settings of the root and of every scene with a block: a scene
/// without one gets the root's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerScene<T> {
    root: T,
    scenes: BTreeMap<String, T>,
}

impl<T> PerScene<T> {
    /// The root's settings for every scene (what a function that reads no
    /// scene block holds).
    pub fn from_root(root: T) -> Self {
        Self {
            root,
            scenes: BTreeMap::new(),
        }
    }

    /// The settings of `scene`: its own block merged over the root, or the
    /// root's when it has none.
    pub fn scene(&self, scene: impl AsRef<str>) -> &T {
        self.scenes.get(scene.as_ref()).unwrap_or(&self.root)
    }

    /// The root settings (defaults of every scene).
    pub fn root(&self) -> &T {
        &self.root
    }

    /// Names of the scenes that have their own block.
    pub fn scene_names(&self) -> impl Iterator<Item = &str> {
        self.scenes.keys().map(String::as_str)
    }

    /// The root's settings and every scene's.
    pub fn all(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.root).chain(self.scenes.values())
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

    /// The same scenes with `f` applied to each one's settings.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> PerScene<U> {
        PerScene {
            root: f(self.root),
            scenes: self
                .scenes
                .into_iter()
                .map(|(name, t)| (name, f(t)))
                .collect(),
        }
    }
}

impl<T> From<T> for PerScene<T> {
    /// The same settings for every scene ([`PerScene::from_root`]).
    fn from(root: T) -> Self {
        Self::from_root(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part of two keys, one a nested block, with a cross-key check.
    #[derive(Debug, Clone, Default, PartialEq)]
    struct Sample {
        size: u32,
        limits: BTreeMap<String, u64>,
    }

    impl Part for Sample {
        const KEYS: &'static [&'static str] = &["size", "limits"];

        fn apply(&mut self, key: &Entry) -> Result<(), ConfigError> {
            match key.name() {
                "size" => self.size = key.int_in(0..=9)?,
                _ => {
                    let (block, path) = key.block(&["a", "b"])?;
                    for (name, value) in block {
                        let entry = Entry::new(CAPTCHA_CONFIG, &path, name, value);
                        self.limits.insert(name.clone(), entry.int_in(0..=99)?);
                    }
                }
            }
            Ok(())
        }

        fn check(&self, path: &str) -> Result<(), ConfigError> {
            match self.limits.get("a") {
                Some(&a) if a > u64::from(self.size) => Err(ConfigError::Invalid {
                    setting: CAPTCHA_CONFIG,
                    key: format!("{path}limits.a"),
                    value: a.to_string(),
                    allowed: format!("must be <= {path}size"),
                }),
                _ => Ok(()),
            }
        }
    }

    fn blocks(json: &str) -> SceneBlocks {
        SceneBlocks::from_json(json).unwrap()
    }

    #[test]
    fn scenes_merge_over_the_root_key_by_key_nested_blocks_included() {
        let parsed = blocks(
            r#"{"size": 5, "limits": {"a": 1, "b": 2}, "other": true,
                "scene": {"x": {"limits": {"b": 7}}, "y": {"size": 9}}}"#,
        )
        .per_scene::<Sample>()
        .unwrap();
        let x = parsed.scene("x");
        assert_eq!((x.size, x.limits["a"], x.limits["b"]), (5, 1, 7));
        assert_eq!(parsed.scene("y").size, 9);
        assert_eq!(parsed.scene("z"), parsed.root(), "no block: the root's");
        assert_eq!(parsed.scene_names().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(
            (parsed.scene_bucket("x"), parsed.scene_bucket("z")),
            ("x", "*")
        );
        assert_eq!(parsed.all().count(), 3);
    }

    #[test]
    fn a_declared_scene_is_added_and_never_overrides_a_block() {
        let names = |json: &str| {
            let mut parsed = blocks(json);
            parsed.declare_scene("demo");
            parsed.per_scene::<Sample>().map(|p| {
                let names: Vec<String> = p.scene_names().map(str::to_owned).collect();
                (names, p.scene("demo").size)
            })
        };
        assert_eq!(names("{}").unwrap(), (vec!["demo".to_owned()], 0));
        assert_eq!(
            names(r#"{"size": 4, "scene": {"x": {}}}"#).unwrap(),
            (vec!["demo".to_owned(), "x".to_owned()], 4)
        );
        assert_eq!(
            names(r#"{"scene": {"demo": {"size": 7}}}"#).unwrap(),
            (vec!["demo".to_owned()], 7)
        );
        assert!(names(r#"{"scene": 4}"#).is_err(), "still refused");
    }

    #[test]
    fn the_root_alone_reads_no_scene_block() {
        let json = r#"{"size": 3, "scene": 4}"#;
        assert_eq!(blocks(json).root::<Sample>().unwrap().size, 3);
        let err = blocks(json).per_scene::<Sample>().unwrap_err();
        assert!(err.to_string().contains("scene = 4"), "{err}");
    }

    #[test]
    fn refusals_name_the_scene_path() {
        for (json, key) in [
            (r#"{"scene": {"x": {"size": 10}}}"#, "scene.x.size"),
            (
                r#"{"scene": {"x": {"limits": {"a": 4}}}}"#,
                "scene.x.limits.a",
            ),
            (r#"{"scene": {"bad name": {}}}"#, "scene.bad name"),
            (r#"{"scene": {"x": 1}}"#, "scene.x"),
            (r#"{"size": 2, "limits": {"a": 3}}"#, "limits.a"),
        ] {
            let err = blocks(json).per_scene::<Sample>().unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("CAPTCHA_CONFIG: ") && text.contains(key),
                "{json}: {text}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_every_known_one_listed() {
        let known: &[&[&str]] = &[Sample::KEYS, &["extra", "size"]];
        assert!(
            blocks(r#"{"extra": 1, "scene": {"x": {"size": 1}}}"#)
                .refuse_unknown(known)
                .is_ok()
        );
        let err = blocks(r#"{"sise": 1}"#).refuse_unknown(known).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CAPTCHA_CONFIG: unknown key sise (allowed: size, limits, extra, scene)"
        );
        let err = blocks(r#"{"scene": {"x": {"scene": {}}}}"#)
            .refuse_unknown(known)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "CAPTCHA_CONFIG: unknown key scene.x.scene (allowed: size, limits, extra)"
        );
    }
}
