//! Values checked once, at the boundary: a handler parses what a client sent
//! into these, and everything below it (services, the store) takes them, so
//! no raw string reaches a table key.

use std::fmt;

use crate::error::ApiError;

/// Longest scene name; scenes are `[A-Za-z0-9_-]{1,64}`.
pub const MAX_SCENE_CHARS: usize = 64;
/// Longest `deviceId`, from the body or the `X-Device-Id` header.
pub const MAX_DEVICE_ID_CHARS: usize = 128;

/// A scene (`login`, `register`, `pay` …): `[A-Za-z0-9_-]{1,64}`. Never
/// holds `#`, which keeps every row key built from it unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scene(String);

impl Scene {
    /// `name` if it is a scene name, else `uni-captcha-scene-required`.
    pub fn parse(name: &str) -> Result<Self, ApiError> {
        if Self::is_valid(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(ApiError::SceneRequired)
        }
    }

    /// Whether `name` is `[A-Za-z0-9_-]{1,64}` (requests and configuration
    /// alike).
    pub fn is_valid(name: &str) -> bool {
        (1..=MAX_SCENE_CHARS).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client's device id: 1 to 128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceId(String);

impl DeviceId {
    /// `id` (already trimmed) if it is a device id: empty is
    /// `uni-captcha-deviceId-required`, too long or not visible ASCII is
    /// `invalid-request`.
    pub fn parse(id: &str) -> Result<Self, ApiError> {
        if id.is_empty() {
            return Err(ApiError::DeviceIdRequired);
        }
        if id.len() > MAX_DEVICE_ID_CHARS {
            return Err(ApiError::InvalidRequest(format!(
                "deviceId is longer than {MAX_DEVICE_ID_CHARS} characters"
            )));
        }
        if !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::InvalidRequest(
                "deviceId may hold only visible ASCII characters".into(),
            ));
        }
        Ok(Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Scene {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scene_names() {
        assert!(Scene::is_valid("login"));
        assert!(Scene::is_valid("a-b_C9"));
        assert!(Scene::is_valid(&"x".repeat(64)));
        assert!(!Scene::is_valid(&"x".repeat(65)));
        assert!(!Scene::is_valid(""));
        assert!(!Scene::is_valid("a.b"));
        assert!(!Scene::is_valid("登录"));
        assert_eq!(Scene::parse("a#b"), Err(ApiError::SceneRequired));
        assert_eq!(Scene::parse("pay").unwrap().as_str(), "pay");
    }

    #[test]
    fn device_ids_are_bounded_visible_ascii() {
        assert_eq!(DeviceId::parse("d-1").unwrap().as_str(), "d-1");
        assert_eq!(DeviceId::parse(""), Err(ApiError::DeviceIdRequired));
        for bad in ["a b".to_owned(), "d".repeat(MAX_DEVICE_ID_CHARS + 1)] {
            assert_eq!(DeviceId::parse(&bad).unwrap_err().code(), "invalid-request");
        }
    }
}
