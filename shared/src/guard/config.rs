//! The guard's configuration: per scene, the `guard` and `passTtlSeconds`
//! keys of `CAPTCHA_CONFIG` and the `enabled` switch of its `tencent` block
//! (merged key by key like every scene key, see [`crate::config::blocks`]);
//! and `GUARD_ROUTES`, the routes the authorizer guards. Both are validated
//! at start-up with the key, the value and the allowed range named.
//!
//! Adding a key of the `guard` block: a field of [`GuardSettings`] (and its
//! default), its name in [`GUARD_KEYS`] and one arm in
//! `GuardSettings::apply_guard`.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use super::wx_risk::WxRiskSettings;
use crate::config::blocks::{Part, PerScene};
use crate::config::{CAPTCHA_CONFIG, ConfigError, Entry, parse_object};
use crate::domain::Scene;

/// Allowed pass lifetime in seconds (`passTtlSeconds`).
pub const PASS_TTL_RANGE: RangeInclusive<u64> = 10..=3600;
/// Allowed failure thresholds (`imageAfterFailures`, `tencentAfterFailures`).
pub const FAILURES_RANGE: RangeInclusive<u64> = 0..=1_000_000;
/// Allowed failure window in seconds (`failureWindowSeconds`).
pub const FAILURE_WINDOW_RANGE: RangeInclusive<u64> = 10..=86_400;
/// Allowed request thresholds (`imageAfterRequests`, `tencentAfterRequests`;
/// 0 turns one off).
pub const REQUESTS_RANGE: RangeInclusive<u64> = 0..=1_000_000;
/// Allowed request window in seconds (`requestWindowSeconds`).
pub const REQUEST_WINDOW_RANGE: RangeInclusive<u64> = 10..=86_400;
/// Allowed factor of an IP's request thresholds (`ipRequestFactor`).
pub const IP_REQUEST_FACTOR_RANGE: RangeInclusive<u64> = 1..=10_000;
/// The variable that lists the guarded routes.
pub const GUARD_ROUTES: &str = "GUARD_ROUTES";
/// Most routes `GUARD_ROUTES` may list.
pub const MAX_GUARD_ROUTES: usize = 200;
/// Longest route key (`POST /a/b`).
pub const MAX_ROUTE_KEY_CHARS: usize = 256;

/// Keys of a `guard` block.
pub const GUARD_KEYS: &[&str] = &[
    "mode",
    "imageAfterFailures",
    "tencentAfterFailures",
    "failureWindowSeconds",
    "imageAfterRequests",
    "tencentAfterRequests",
    "requestWindowSeconds",
    "ipRequestFactor",
    "onStoreError",
    "wxRisk",
];
/// The key of a `tencent` block that is the guard's: whether the scene
/// offers Tencent captchas at all. The rest of that block is the Tencent
/// policy's (`crate::tencent::config`, a domain above this one), which also
/// checks the block's shape.
const TENCENT_SWITCH: &str = "enabled";

/// When a scene asks for a challenge (`guard.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuardMode {
    /// Never on its own (a route may still demand a pass).
    #[default]
    Off,
    /// Only once failures say so.
    Adaptive,
    /// Always at least an image captcha.
    Always,
}

/// What a door does when the store fails it (`guard.onStoreError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreErrorPolicy {
    /// Deny (the door) or answer `store-unavailable` (`/guard/check`).
    #[default]
    Deny,
    /// Admit without a pass, marked `degraded: true`.
    Admit,
}

/// What a client must show to pass: nothing, a captcha or ticket pass, or a
/// ticket pass only. Ordered: `None < Image < Tencent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    None,
    Image,
    Tencent,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Image => "image",
            Level::Tencent => "tencent",
        }
    }
}

/// The guard settings of one scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardSettings {
    pub mode: GuardMode,
    pub image_after_failures: u64,
    pub tencent_after_failures: u64,
    pub failure_window_seconds: u64,
    /// A device's or openid's requests in a window that pass at its
    /// failure level; 0: no request asks for an image pass.
    pub image_after_requests: u64,
    /// From this request of a device or openid in a window on, a ticket
    /// pass; 0: no request asks for one.
    pub tencent_after_requests: u64,
    pub request_window_seconds: u64,
    /// An IP's request thresholds are the device's times this (one public
    /// IP may hide many users behind carrier-grade NAT).
    pub ip_request_factor: u64,
    pub on_store_error: StoreErrorPolicy,
    /// Lifetime of a pass earned in this scene (`passTtlSeconds`).
    pub pass_ttl_seconds: u64,
    /// Whether Tencent captchas are offered at all (`tencent.enabled`):
    /// without them the `tencent` level falls back to `image`.
    pub tencent_enabled: bool,
    /// What WeChat's risk rank of a signed-in user asks for (`guard.wxRisk`,
    /// see [`super::wx_risk`]); `None`: the rank is not asked for.
    pub wx_risk: Option<WxRiskSettings>,
}

impl Default for GuardSettings {
    fn default() -> Self {
        Self {
            mode: GuardMode::Off,
            image_after_failures: 3,
            tencent_after_failures: 10,
            failure_window_seconds: 900,
            // A sign-up or log-in page: a person sends a handful of
            // requests in ten minutes (a typo, a retry); ten is generous,
            // thirty is a script. An IP counts fifty times that: a carrier
            // NAT's users share it (`docs/guard.md`, "Velocity").
            image_after_requests: 10,
            tencent_after_requests: 30,
            request_window_seconds: 600,
            ip_request_factor: 50,
            on_store_error: StoreErrorPolicy::Deny,
            pass_ttl_seconds: 300,
            tencent_enabled: true,
            wx_risk: None,
        }
    }
}

impl Part for GuardSettings {
    const KEYS: &'static [&'static str] = &["guard", "passTtlSeconds", "tencent"];

    fn apply(&mut self, key: &Entry) -> Result<(), ConfigError> {
        match key.name() {
            "guard" => self.apply_guard(key),
            "passTtlSeconds" => {
                self.pass_ttl_seconds = key.int_in(PASS_TTL_RANGE)?;
                Ok(())
            }
            "tencent" => self.apply_tencent_switch(key),
            _ => Err(key.unknown(Self::KEYS)),
        }
    }

    fn check(&self, path: &str) -> Result<(), ConfigError> {
        if self.tencent_after_failures < self.image_after_failures {
            return Err(ConfigError::Invalid {
                setting: CAPTCHA_CONFIG,
                key: format!("{path}guard.tencentAfterFailures"),
                value: self.tencent_after_failures.to_string(),
                allowed: format!(
                    "must be >= {path}guard.imageAfterFailures ({})",
                    self.image_after_failures
                ),
            });
        }
        let (image, tencent) = (self.image_after_requests, self.tencent_after_requests);
        if image > 0 && tencent > 0 && tencent <= image {
            return Err(ConfigError::Invalid {
                setting: CAPTCHA_CONFIG,
                key: format!("{path}guard.tencentAfterRequests"),
                value: tencent.to_string(),
                allowed: format!("must be > {path}guard.imageAfterRequests ({image}), or 0 (off)"),
            });
        }
        Ok(())
    }
}

impl GuardSettings {
    /// Applies a `guard` block (`guard.mode` …).
    fn apply_guard(&mut self, entry: &Entry) -> Result<(), ConfigError> {
        let (block, path) = entry.block(GUARD_KEYS)?;
        for (key, value) in block {
            let key = Entry::new(CAPTCHA_CONFIG, &path, key, value);
            match key.name() {
                "mode" => {
                    self.mode = match key.one_of(&["off", "adaptive", "always"])? {
                        "adaptive" => GuardMode::Adaptive,
                        "always" => GuardMode::Always,
                        _ => GuardMode::Off,
                    }
                }
                "imageAfterFailures" => self.image_after_failures = key.int_in(FAILURES_RANGE)?,
                "tencentAfterFailures" => {
                    self.tencent_after_failures = key.int_in(FAILURES_RANGE)?
                }
                "failureWindowSeconds" => {
                    self.failure_window_seconds = key.int_in(FAILURE_WINDOW_RANGE)?
                }
                "imageAfterRequests" => self.image_after_requests = key.int_in(REQUESTS_RANGE)?,
                "tencentAfterRequests" => {
                    self.tencent_after_requests = key.int_in(REQUESTS_RANGE)?
                }
                "requestWindowSeconds" => {
                    self.request_window_seconds = key.int_in(REQUEST_WINDOW_RANGE)?
                }
                "ipRequestFactor" => {
                    self.ip_request_factor = key.int_in(IP_REQUEST_FACTOR_RANGE)?
                }
                "onStoreError" => {
                    self.on_store_error = match key.one_of(&["deny", "admit"])? {
                        "admit" => StoreErrorPolicy::Admit,
                        _ => StoreErrorPolicy::Deny,
                    }
                }
                "wxRisk" => self.wx_risk = WxRiskSettings::parse(&key, self.wx_risk)?,
                _ => return Err(key.unknown(GUARD_KEYS)),
            }
        }
        Ok(())
    }

    /// Reads `tencent.enabled` of a `tencent` block; the block's other keys,
    /// and a block that is no object, are the Tencent policy's to judge.
    fn apply_tencent_switch(&mut self, entry: &Entry) -> Result<(), ConfigError> {
        if let Some(value) = entry.value().get(TENCENT_SWITCH) {
            let path = format!("{}.", entry.path());
            self.tencent_enabled =
                Entry::new(CAPTCHA_CONFIG, &path, TENCENT_SWITCH, value).bool()?;
        }
        Ok(())
    }

    /// The level `failures` (the larger of the client's IP and device
    /// counts in the current window) calls for in this scene.
    pub fn level(&self, failures: u64) -> Level {
        let tencent = if self.tencent_enabled && failures >= self.tencent_after_failures {
            Level::Tencent
        } else {
            Level::Image
        };
        match self.mode {
            GuardMode::Off => Level::None,
            GuardMode::Always => tencent,
            GuardMode::Adaptive if failures >= self.image_after_failures => tencent,
            GuardMode::Adaptive => Level::None,
        }
    }
}

/// The guard settings of every scene: a scene without a block gets the
/// root's.
pub type GuardConfig = PerScene<GuardSettings>;

/// Whether a guarded route asks for a pass (`pass` of a `GUARD_ROUTES`
/// entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassRule {
    /// A pass of the route's scene, every time.
    Always,
    /// Whatever the scene's current level asks for.
    Auto,
    /// No pass (the route is guarded for its session alone).
    Never,
}

/// What a door asks of a request: a pass of its scene as `pass` says, and
/// what that pass must match besides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Door {
    pub scene: Scene,
    pub pass: PassRule,
    /// Only with the device that earned it (`bindDevice`): a pass earned
    /// without a device, or presented without one, is refused.
    pub bind_device: bool,
    /// Only from the IP that earned it, an IPv6 one by its /64 (`bindIp`).
    pub bind_ip: bool,
}

impl Door {
    /// A door of `scene` asking for a pass as `pass` says, binding nothing.
    pub fn new(scene: Scene, pass: PassRule) -> Self {
        Self {
            scene,
            pass,
            bind_device: false,
            bind_ip: false,
        }
    }
}

/// What a guarded route requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedRoute {
    pub door: Door,
    /// A live bearer session as well.
    pub session: bool,
}

/// `GUARD_ROUTES`: route key (`"POST /demo/guarded"`, as API Gateway's
/// `routeKey`) → what the route requires.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuardRoutes(BTreeMap<String, GuardedRoute>);

/// The HTTP methods a route key may start with (`ANY` as API Gateway has it).
const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
];
const ROUTE_KEYS: &[&str] = &["scene", "pass", "session", "bindDevice", "bindIp"];

impl GuardRoutes {
    /// The dev server's routes when `GUARD_ROUTES` is unset: the demo
    /// route, whose scene [`DEV_DEFAULT_SCENE`](Self::DEV_DEFAULT_SCENE)
    /// declares when `CAPTCHA_CONFIG` does not.
    pub const DEV_DEFAULT: &'static str =
        r#"{"POST /demo/guarded": {"scene": "demo", "pass": "auto", "session": false}}"#;
    /// The scene the dev server adds for [`DEV_DEFAULT`](Self::DEV_DEFAULT)
    /// to a `CAPTCHA_CONFIG` that does not declare it (the same as the
    /// template's default `CaptchaConfig`).
    pub const DEV_DEFAULT_SCENE: &'static str = "demo";

    /// Parses and validates `GUARD_ROUTES`.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let routes = parse_object(GUARD_ROUTES, json)?;
        if routes.len() > MAX_GUARD_ROUTES {
            return Err(ConfigError::Json {
                setting: GUARD_ROUTES,
                reason: format!("lists {} routes, at most {MAX_GUARD_ROUTES}", routes.len()),
            });
        }
        let mut out = BTreeMap::new();
        for (route_key, value) in &routes {
            let entry = Entry::new(GUARD_ROUTES, "", route_key, value);
            if !valid_route_key(route_key) {
                return Err(ConfigError::Invalid {
                    setting: GUARD_ROUTES,
                    key: format!("{route_key:?}"),
                    value: show_key(route_key),
                    allowed: format!(
                        "a route key \"METHOD /path\" (METHOD one of {}; the path starts with /, \
                         no spaces, at most {MAX_ROUTE_KEY_CHARS} characters)",
                        METHODS.join(", ")
                    ),
                });
            }
            let (block, path) = entry.block(ROUTE_KEYS)?;
            let (mut scene, mut pass, mut session) = (None, PassRule::Auto, false);
            let (mut bind_device, mut bind_ip) = (false, false);
            for (key, value) in block {
                let key = Entry::new(GUARD_ROUTES, &path, key, value);
                match key.name() {
                    "scene" => {
                        let name = key.string(64)?;
                        scene =
                            Some(Scene::parse(name).map_err(|_| {
                                key.invalid("a scene name: 1-64 of A-Z a-z 0-9 _ -")
                            })?);
                    }
                    "pass" => {
                        pass = match key.one_of(&["always", "auto", "never"])? {
                            "always" => PassRule::Always,
                            "never" => PassRule::Never,
                            _ => PassRule::Auto,
                        }
                    }
                    "session" => session = key.bool()?,
                    "bindDevice" => bind_device = key.bool()?,
                    "bindIp" => bind_ip = key.bool()?,
                    _ => return Err(key.unknown(ROUTE_KEYS)),
                }
            }
            let Some(scene) = scene else {
                return Err(ConfigError::Invalid {
                    setting: GUARD_ROUTES,
                    key: format!("{path}scene"),
                    value: "(missing)".into(),
                    allowed: "every guarded route names its scene".into(),
                });
            };
            let door = Door {
                scene,
                pass,
                bind_device,
                bind_ip,
            };
            out.insert(route_key.clone(), GuardedRoute { door, session });
        }
        Ok(Self(out))
    }

    /// Refuses a route whose scene `CAPTCHA_CONFIG` does not declare under
    /// `scene` (`guard`: its per-scene settings): a typo would otherwise
    /// guard the route with the root's settings, mode `off` by default,
    /// and admit everyone.
    pub fn check_scenes(&self, guard: &GuardConfig) -> Result<(), ConfigError> {
        let declared: Vec<&str> = guard.scene_names().collect();
        for (route_key, route) in &self.0 {
            let scene = route.door.scene.as_str();
            if !declared.contains(&scene) {
                return Err(ConfigError::Invalid {
                    setting: GUARD_ROUTES,
                    key: format!("{route_key}.scene"),
                    value: format!("{scene:?}"),
                    allowed: format!(
                        "a scene {CAPTCHA_CONFIG} declares under \"scene\" (declared: {})",
                        if declared.is_empty() {
                            "none".to_owned()
                        } else {
                            declared.join(", ")
                        }
                    ),
                });
            }
        }
        Ok(())
    }

    /// What `route_key` requires, if it is guarded.
    pub fn get(&self, route_key: &str) -> Option<&GuardedRoute> {
        self.0.get(route_key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &GuardedRoute)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

fn valid_route_key(key: &str) -> bool {
    let Some((method, path)) = key.split_once(' ') else {
        return false;
    };
    key.len() <= MAX_ROUTE_KEY_CHARS
        && METHODS.contains(&method)
        && path.starts_with('/')
        && path.bytes().all(|b| b.is_ascii_graphic())
}

fn show_key(key: &str) -> String {
    key.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: GuardMode, tencent_enabled: bool) -> GuardSettings {
        GuardSettings {
            mode,
            image_after_failures: 3,
            tencent_after_failures: 10,
            tencent_enabled,
            ..GuardSettings::default()
        }
    }

    #[test]
    fn levels_follow_mode_and_failures() {
        let adaptive = settings(GuardMode::Adaptive, true);
        assert_eq!(adaptive.level(0), Level::None);
        assert_eq!(adaptive.level(2), Level::None);
        assert_eq!(adaptive.level(3), Level::Image);
        assert_eq!(adaptive.level(9), Level::Image);
        assert_eq!(adaptive.level(10), Level::Tencent);
        let no_tencent = settings(GuardMode::Adaptive, false);
        assert_eq!(no_tencent.level(50), Level::Image, "falls back to image");
        let always = settings(GuardMode::Always, true);
        assert_eq!(always.level(0), Level::Image);
        assert_eq!(always.level(10), Level::Tencent);
        assert_eq!(settings(GuardMode::Off, true).level(1000), Level::None);
        assert!(Level::None < Level::Image && Level::Image < Level::Tencent);
    }

    #[test]
    fn guard_routes_parse_with_defaults() {
        let routes = GuardRoutes::from_json(
            r#"{"POST /signup": {"scene": "register", "pass": "always", "session": true},
                "GET /items/{id}": {"scene": "browse"}}"#,
        )
        .unwrap();
        let signup = routes.get("POST /signup").unwrap();
        assert_eq!(signup.door.scene.as_str(), "register");
        assert_eq!((signup.door.pass, signup.session), (PassRule::Always, true));
        let items = routes.get("GET /items/{id}").unwrap();
        assert_eq!(
            items,
            &GuardedRoute {
                door: Door::new(Scene::parse("browse").unwrap(), PassRule::Auto),
                session: false
            }
        );
        assert!(routes.get("POST /other").is_none());
        assert!(
            GuardRoutes::from_json(GuardRoutes::DEV_DEFAULT)
                .unwrap()
                .get("POST /demo/guarded")
                .is_some()
        );
    }

    #[test]
    fn bad_guard_routes_name_key_value_and_range() {
        let cases = [
            (r#"[1]"#, "GUARD_ROUTES: not valid JSON"),
            (r#"{"POST": {"scene": "a"}}"#, "a route key"),
            (r#"{"FETCH /a": {"scene": "a"}}"#, "a route key"),
            (r#"{"POST a": {"scene": "a"}}"#, "a route key"),
            (r#"{"POST /a b": {"scene": "a"}}"#, "a route key"),
            (
                r#"{"POST /a": 1}"#,
                "an object with keys scene, pass, session, bindDevice, bindIp",
            ),
            (
                r#"{"POST /a": {"scene": "a", "bindIp": "yes"}}"#,
                "POST /a.bindIp",
            ),
            (
                r#"{"POST /a": {"scene": "a", "bindDevice": 1}}"#,
                "POST /a.bindDevice",
            ),
            (r#"{"POST /a": {}}"#, "POST /a.scene"),
            (r#"{"POST /a": {"scene": "bad scene"}}"#, "POST /a.scene"),
            (
                r#"{"POST /a": {"scene": "a", "pass": "sometimes"}}"#,
                "one of \"always\", \"auto\", \"never\"",
            ),
            (
                r#"{"POST /a": {"scene": "a", "session": "yes"}}"#,
                "true or false",
            ),
            (
                r#"{"POST /a": {"scene": "a", "sesion": true}}"#,
                "unknown key POST /a.sesion",
            ),
        ];
        for (json, want) in cases {
            let err = GuardRoutes::from_json(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
            assert!(err.starts_with("GUARD_ROUTES"), "{err}");
        }
    }

    #[test]
    fn bindings_parse_and_default_to_off() {
        let routes = GuardRoutes::from_json(
            r#"{"POST /pay": {"scene": "pay", "bindDevice": true, "bindIp": true},
                "POST /vote": {"scene": "pay", "bindIp": false}}"#,
        )
        .unwrap();
        let pay = &routes.get("POST /pay").unwrap().door;
        assert!(pay.bind_device && pay.bind_ip);
        let vote = &routes.get("POST /vote").unwrap().door;
        assert!(!vote.bind_device && !vote.bind_ip);
    }

    #[test]
    fn a_route_of_an_undeclared_scene_stops_the_start() {
        use crate::config::blocks::SceneBlocks;
        let guard = |json: &str| {
            SceneBlocks::from_json(json)
                .unwrap()
                .per_scene::<GuardSettings>()
                .unwrap()
        };
        let routes =
            GuardRoutes::from_json(r#"{"POST /signup": {"scene": "Signup", "pass": "auto"}}"#)
                .unwrap();
        let declared = guard(r#"{"scene": {"signup": {}, "login": {}}}"#);
        let err = routes.check_scenes(&declared).unwrap_err().to_string();
        for part in [
            "GUARD_ROUTES",
            "POST /signup.scene",
            "\"Signup\"",
            "login, signup",
        ] {
            assert!(err.contains(part), "{part}: {err}");
        }
        assert!(
            routes
                .check_scenes(&guard("{}"))
                .unwrap_err()
                .to_string()
                .contains("declared: none")
        );
        assert!(
            routes
                .check_scenes(&guard(r#"{"scene": {"Signup": {}}}"#))
                .is_ok()
        );
        assert!(GuardRoutes::default().check_scenes(&guard("{}")).is_ok());
    }
}
